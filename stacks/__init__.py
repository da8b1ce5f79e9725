"""The CDK app: config (``config``), pure alarm/playbook catalog (``catalog``), one construct
per concern (``constructs``) and stacks that compose them (``stacks``).

``from stacks import AutoRemediation, ServiceAlarms`` for a team's own app. Loaded lazily:
``stacks.config`` and ``stacks.catalog`` need no CDK (and no JS runtime).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AutoRemediation", "ServiceAlarms"]


def __getattr__(name: str) -> Any:
    if name == "AutoRemediation":
        from serverless_remediation.stacks.constructs.suite import AutoRemediation

        return AutoRemediation
    if name == "ServiceAlarms":
        from serverless_remediation.stacks.constructs.alarms import ServiceAlarms

        return ServiceAlarms
    raise AttributeError(name)
