"""A deployed environment's names from its core stack's outputs (``stacks/constructs/outputs.py``).

``remediate history``, ``gate`` and ``revert`` need only a few names: the audit table, the
switch parameter, the remediator functions. With ``--from-stack`` (or outside a checkout)
they read them with ``cloudformation:DescribeStacks`` instead of synthesizing the CDK app,
so an operator needs neither the repository's CDK app nor Node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serverless_remediation.remediate.drill import template as tpl
from serverless_remediation.stacks.constructs import outputs as keys

#: the core stack of an environment is ``<app>-<env>-core`` (stacks/stacks.py)
DEFAULT_APP = "autorem"


def core_stack_name(env: str, app: str = DEFAULT_APP) -> str:
    return f"{app}-{env}-core"


def from_stack(env: str, stack: dict[str, Any]) -> tpl.Deployment:
    """A ``Deployment`` holding what the outputs name (no alarms, no templates).

    Raises ``TemplateError`` when the stack is not this suite's core stack for ``env``."""
    name = stack.get("StackName", "?")
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    missing = [
        k for k in (keys.ENVIRONMENT, keys.SWITCH, keys.TABLE, keys.REMEDIATORS) if k not in outputs
    ]
    if missing:
        raise tpl.TemplateError(
            f"stack {name} has no output(s) {', '.join(missing)}: is it this suite's core "
            "stack, deployed by a version that writes them?"
        )
    if outputs[keys.ENVIRONMENT] != env:
        raise tpl.TemplateError(
            f"stack {name} is environment {outputs[keys.ENVIRONMENT]!r}, not {env!r}"
        )
    try:
        functions = json.loads(outputs[keys.REMEDIATORS])
    except ValueError as exc:
        raise tpl.TemplateError(f"stack {name}: output Remediators is not JSON: {exc}") from exc
    if not isinstance(functions, dict):
        raise tpl.TemplateError(f"stack {name}: output Remediators is not an object")
    # arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/ID
    parts = str(stack.get("StackId", "")).split(":")
    if len(parts) < 6:
        raise tpl.TemplateError(f"stack {name}: unexpected StackId {stack.get('StackId')!r}")
    region, account = parts[3], parts[4]
    shared = {
        "REMEDIATION_ENV": env,
        "AUDIT_TABLE": outputs[keys.TABLE],
        "SWITCH_PARAMETER": outputs[keys.SWITCH],
        "NOTICE_TOPIC_ARN": outputs.get(keys.NOTICES, ""),
    }
    if outputs.get(keys.OVERRIDES):
        shared["SWITCH_OVERRIDE_PREFIX"] = outputs[keys.OVERRIDES]
    remediators = [
        tpl.Remediator(
            logical_id="",
            name=str(function),
            environment={**shared, "REMEDIATION_ACTIONS": str(action)},
            asset_dir=None,
            region=region,
            account=account,
        )
        for action, function in sorted(functions.items())
    ]
    return tpl.Deployment(
        env=env,
        account=account,
        region=region,
        assembly=Path("."),
        resources=[],
        alarms={},
        topics={},
        remediators=remediators,
        budgets={},
    )
