"""rollback: put what was live before the suspect deploy back.

Lambda alias -> the previous published version (and any canary weights dropped).
Acts only when what is live went live within ``window_minutes`` (a recent deployment is
suspected) and a predecessor exists; otherwise it escalates and changes nothing.

Runbooks: OMNIX "API Service Down", Nigredo "Rollback Procedure", Aureus "HighErrorRate".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from remediation.actions.base import Action, ActionParams, Plan, VerifyError, register
from remediation.models import RejectedError


@dataclass(frozen=True)
class RollbackParams(ActionParams):
    #: only roll back when what is live went live at most this long ago
    window_minutes: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.window_minutes <= 7 * 24 * 60:
            raise ValueError("window_minutes must be between 1 and 10080")


def parse_alias_arn(target: str) -> tuple[str, str]:
    """``arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS`` -> (function ARN, alias)."""
    parts = target.split(":")
    if len(parts) != 8 or parts[2] != "lambda" or parts[5] != "function" or not parts[7]:
        raise RejectedError(f"not a Lambda alias ARN: {target[:200]!r}")
    if parts[7] == "$LATEST" or parts[7].isdigit():
        raise RejectedError(f"rollback needs an alias, not a version: {target[:200]!r}")
    return ":".join(parts[:7]), parts[7]


def plan_alias_rollback(current: dict[str, Any], window_minutes: int, now: datetime) -> Plan:
    """Pure decision for a Lambda alias (see module docstring)."""
    before = {"version": current["version"], "weights": current["weights"]}
    if current["weights"]:
        # A canary is live: drop it, keep the primary version.
        after = {"version": current["version"], "weights": {}}
        canary = ", ".join(sorted(current["weights"]))
        return Plan.change(f"drop canary version(s) {canary}", before, after)
    live_since = current.get("live_since")
    if live_since is None:
        return Plan.escalate("cannot tell when the live version was published", before)
    age = now - datetime.fromisoformat(live_since)
    if age > timedelta(minutes=window_minutes):
        minutes = int(age.total_seconds() // 60)
        return Plan.escalate(
            f"live version {current['version']} went live {minutes} min ago, outside the "
            f"{window_minutes} min window: no recent deploy to blame",
            before,
        )
    previous = current.get("previous")
    if previous is None:
        return Plan.escalate(f"version {current['version']} has no predecessor", before)
    after = {"version": previous, "weights": {}}
    return Plan.change(f"alias {current['version']} -> {previous}", before, after)


@register
class Rollback(Action):
    """Roll a Lambda alias back to the previous published version after a recent deploy."""

    name = "rollback"
    Params = RollbackParams
    permissions = ("lambda:GetAlias", "lambda:ListVersionsByFunction", "lambda:UpdateAlias")

    @classmethod
    def resources(cls, target: str) -> list[str]:
        function_arn, _ = parse_alias_arn(target)
        return [function_arn, target]

    def read(self, target: str, params: ActionParams) -> dict[str, Any]:
        function_arn, alias = parse_alias_arn(target)
        lam = self.clients("lambda")
        found = lam.get_alias(FunctionName=function_arn, Name=alias)
        version = found["FunctionVersion"]
        weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        published: dict[int, str] = {}
        # By name: AWS takes a name or an ARN here, moto 5.2 only a name.
        name = function_arn.rsplit(":", 1)[1]
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
            for item in page["Versions"]:
                if item["Version"].isdigit():
                    published[int(item["Version"])] = item["LastModified"]
        earlier = [v for v in published if version.isdigit() and v < int(version)]
        return {
            "version": version,
            "weights": {str(k): float(v) for k, v in weights.items()},
            "live_since": _iso(published.get(int(version))) if version.isdigit() else None,
            "previous": str(max(earlier)) if earlier else None,
        }

    def plan(self, current: dict[str, Any], params: ActionParams, now: datetime) -> Plan:
        assert isinstance(params, RollbackParams)
        return plan_alias_rollback(current, params.window_minutes, now)

    def apply(self, target: str, plan: Plan) -> None:
        function_arn, alias = parse_alias_arn(target)
        self.clients("lambda").update_alias(
            FunctionName=function_arn,
            Name=alias,
            FunctionVersion=plan.after["version"],
            RoutingConfig={"AdditionalVersionWeights": plan.after["weights"]},
        )

    def verify(self, target: str, plan: Plan) -> dict[str, Any]:
        function_arn, alias = parse_alias_arn(target)
        found = self.clients("lambda").get_alias(FunctionName=function_arn, Name=alias)
        weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        seen = {"version": found["FunctionVersion"], "weights": dict(weights)}
        if seen["version"] != plan.after["version"] or seen["weights"] != plan.after["weights"]:
            raise VerifyError(f"alias reads back as {seen}, expected {plan.after}")
        return seen


def _iso(lambda_time: str | None) -> str | None:
    """Lambda's ``2026-11-23T10:00:00.000+0000`` -> ISO 8601 with a colon offset."""
    return datetime.fromisoformat(lambda_time).isoformat() if lambda_time else None
