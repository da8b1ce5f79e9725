"""Every action kind, one module each, registered by name in ``REGISTRY``."""

from remediation.actions import (
    capacity,  # noqa: F401  (registers)
    cost_guard,  # noqa: F401  (registers)
    flag,  # noqa: F401  (registers)
    revert,  # noqa: F401  (registers)
    rollback,  # noqa: F401  (registers)
    waf_block,  # noqa: F401  (registers)
)
from remediation.actions.base import REGISTRY, Action, Plan, VerifyError, get_action

__all__ = ["REGISTRY", "Action", "Plan", "VerifyError", "get_action"]
