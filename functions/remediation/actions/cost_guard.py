"""cost-guard: shed spend on the functions configuration marks sheddable, when a cost alarm
(``AWS/Billing EstimatedCharges``) or an AWS Budgets notice fires.

For each sheddable function: delete every provisioned concurrency configuration, and cap
reserved concurrency at ``max_reserved`` (a function without reserved concurrency gets
exactly ``max_reserved``; one already at or below it keeps its value). Nothing else is
touched: the functions come only from ``sheddable`` in the playbook, a cap (a manual request
cannot add to it), and each name is resolved in the target's account and region.

Target: ``arn:PARTITION:lambda:REGION:ACCOUNT:function:*``, the functions of one account and
region (cooldown, circuit breaker and audit history are kept for it as a whole). For IAM,
``resources(target, params)`` scopes the role to the sheddable functions (and their aliases
and versions, where provisioned concurrency lives); without params it returns the target's
wildcard.

Preconditions (else escalate, change nothing): at least one function is marked sheddable
and at least one of them exists. A sheddable function that no longer exists is left out and
named in the summary. Already shed: skip.

Not restored on OK (spend comes back only when a human says so: ``revert`` the audit record).
Order of the calls: provisioned concurrency is deleted before reserved concurrency is lowered
(AWS refuses reserved below the provisioned total), and restored after it is raised.

Runbook: Monitoring Infrastructure "Cost Overrun" (shed non-essential spend, then review).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypedDict

from ..clients import error_code
from ..errors import RejectedError
from .base import (
    Action,
    ActionParams,
    Limit,
    Plan,
    VerifyError,
    register,
)

MAX_SHEDDABLE = 100
_TARGET = re.compile(r"^(?P<prefix>arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)\*$")
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_target(target: str) -> str:
    """``arn:PARTITION:lambda:REGION:ACCOUNT:function:*`` -> the prefix of its function ARNs."""
    match = _TARGET.match(target)
    if not match:
        raise RejectedError(
            f"cost-guard target must be arn:PARTITION:lambda:REGION:ACCOUNT:function:*, "
            f"got {target[:200]!r}"
        )
    return match["prefix"]


@dataclass(frozen=True)
class CostGuardParams(ActionParams):
    #: names of the functions that may be shed (a cap: only configuration sets it)
    sheddable: list[str] = field(default_factory=list)
    #: reserved concurrency a shed function keeps (0 stops it; 1 keeps it trickling)
    max_reserved: int = 1

    def __post_init__(self) -> None:
        bad = [n for n in self.sheddable if not _FUNCTION_NAME.match(n)]
        if bad:
            raise ValueError(f"sheddable entries must be function names, got {bad[:5]}")
        if len(set(self.sheddable)) != len(self.sheddable):
            raise ValueError("sheddable lists a function twice")
        if len(self.sheddable) > MAX_SHEDDABLE:
            raise ValueError(f"at most {MAX_SHEDDABLE} sheddable functions")
        if not 0 <= self.max_reserved <= 1000:
            raise ValueError("max_reserved must be between 0 and 1000")


class Concurrency(TypedDict):
    """One function's reserved concurrency (None: unreserved) and its provisioned
    concurrency by qualifier."""

    reserved: int | None
    provisioned: dict[str, int]


class CostState(TypedDict):
    """The sheddable functions' concurrency, by function name."""

    functions: dict[str, Concurrency]


class CostCurrent(CostState):
    """As read, with the sheddable functions that do not exist."""

    missing: list[str]


def plan_shed(current: CostCurrent, sheddable: list[str], max_reserved: int) -> Plan[CostState]:
    """Pure: the sheddable functions' concurrency -> none provisioned, reserved capped."""
    functions = current["functions"]
    missing = current.get("missing", [])
    before: CostState = {"functions": functions}
    if not sheddable:
        return Plan.escalate(
            "no function is marked sheddable: cost-guard may touch nothing", before
        )
    if not functions:
        return Plan.escalate(
            f"none of the sheddable functions exist ({', '.join(missing)}): nothing to shed",
            before,
        )
    after: dict[str, Concurrency] = {}
    steps: list[str] = []
    for name in sorted(functions):
        reserved = functions[name]["reserved"]
        provisioned = functions[name]["provisioned"]
        capped = max_reserved if reserved is None else min(reserved, max_reserved)
        after[name] = {"reserved": capped, "provisioned": {}}
        if provisioned:
            total = sum(provisioned.values())
            steps.append(f"{name}: provisioned {total} -> 0")
        if capped != reserved:
            was = "unreserved" if reserved is None else reserved
            steps.append(f"{name}: reserved {was} -> {capped}")
    note = f" (not found: {', '.join(missing)})" if missing else ""
    if not steps:
        return Plan.noop(
            f"already shed: no provisioned concurrency, reserved at most {max_reserved}{note}",
            before,
        )
    return Plan.change("; ".join(steps) + note, before, {"functions": after})


@register
class CostGuard(Action[CostGuardParams, CostCurrent, CostState]):
    """Shed spend on sheddable functions: drop provisioned concurrency, cap reserved
    concurrency. Never touches a function configuration does not mark sheddable."""

    name = "cost-guard"
    Params = CostGuardParams
    permissions = (
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:ListProvisionedConcurrencyConfigs",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    )
    # A manual request may shed fewer functions, or leave them more concurrency.
    limits: ClassVar[dict[str, Limit]] = {"sheddable": Limit.SUBSET, "max_reserved": Limit.AT_LEAST}

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        prefix = parse_target(target)
        if params is None:
            return [target]
        parsed = CostGuardParams.from_dict(params)
        return [arn for name in parsed.sheddable for arn in (prefix + name, f"{prefix}{name}:*")]

    def read(self, target: str, params: CostGuardParams) -> CostCurrent:
        prefix = parse_target(target)
        functions: dict[str, Concurrency] = {}
        missing: list[str] = []
        for name in params.sheddable:
            state = self._read_function(prefix + name)
            if state is None:
                missing.append(name)
            else:
                functions[name] = state
        return {"functions": functions, "missing": missing}

    def plan(self, current: CostCurrent, params: CostGuardParams, now: datetime) -> Plan[CostState]:
        return plan_shed(current, params.sheddable, params.max_reserved)

    def apply(self, target: str, plan: Plan[CostState]) -> None:
        prefix = parse_target(target)
        lam = self.clients("lambda")
        for name, want in sorted(plan.after["functions"].items()):
            arn = prefix + name
            none: Concurrency = {"reserved": None, "provisioned": {}}
            had = plan.before["functions"].get(name) or none
            for qualifier in sorted(set(had["provisioned"]) - set(want["provisioned"])):
                lam.delete_provisioned_concurrency_config(FunctionName=arn, Qualifier=qualifier)
            if want["reserved"] != had["reserved"]:
                if want["reserved"] is None:
                    lam.delete_function_concurrency(FunctionName=arn)
                else:
                    lam.put_function_concurrency(
                        FunctionName=arn, ReservedConcurrentExecutions=want["reserved"]
                    )
            for qualifier, count in sorted(want["provisioned"].items()):
                if had["provisioned"].get(qualifier) != count:
                    lam.put_provisioned_concurrency_config(
                        FunctionName=arn,
                        Qualifier=qualifier,
                        ProvisionedConcurrentExecutions=count,
                    )

    def verify(self, target: str, plan: Plan[CostState]) -> CostState:
        """Reads back what apply changed: reserved and provisioned concurrency each only
        where the plan changes them (the rest is as read for the plan)."""
        prefix = parse_target(target)
        none: Concurrency = {"reserved": None, "provisioned": {}}
        seen: dict[str, Concurrency | None] = {}
        for name, want in plan.after["functions"].items():
            had = plan.before["functions"].get(name) or none
            seen[name] = self._read_function(
                prefix + name,
                reserved=want["reserved"] != had["reserved"],
                provisioned=want["provisioned"] != had["provisioned"],
                known=want,
            )
        wrong = sorted(n for n, want in plan.after["functions"].items() if seen[n] != want)
        if wrong:
            shown = {n: seen[n] for n in wrong}
            wanted = {n: plan.after["functions"][n] for n in wrong}
            raise VerifyError(f"concurrency reads back as {shown}, expected {wanted}")
        # None (a function gone since) differs from every planned state: raised above.
        return {"functions": {n: c for n, c in seen.items() if c is not None}}

    def _read_function(
        self,
        arn: str,
        *,
        reserved: bool = True,
        provisioned: bool = True,
        known: Concurrency | None = None,
    ) -> Concurrency | None:
        """Reserved and provisioned concurrency of one function (only the parts asked for;
        the others from ``known``); None if it does not exist."""
        lam = self.clients("lambda")
        base = known or {"reserved": None, "provisioned": {}}
        found: Concurrency = {
            "reserved": base["reserved"],
            "provisioned": dict(base["provisioned"]),
        }
        try:
            if reserved:
                got = lam.get_function_concurrency(FunctionName=arn)
                found["reserved"] = got.get("ReservedConcurrentExecutions")
            if provisioned:
                configs: dict[str, int] = {}
                pages = lam.get_paginator("list_provisioned_concurrency_configs")
                for page in pages.paginate(FunctionName=arn):
                    for item in page.get("ProvisionedConcurrencyConfigs", []):
                        qualifier = item["FunctionArn"].rsplit(":", 1)[1]
                        configs[qualifier] = item["RequestedProvisionedConcurrentExecutions"]
                found["provisioned"] = configs
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return found
