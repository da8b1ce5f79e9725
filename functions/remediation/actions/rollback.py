"""rollback: put what was live before the suspect deploy back.

The target ARN says what to roll back:

- Lambda alias (``arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS``) -> the previous
  published version (and any canary weights dropped);
- API Gateway REST stage (``arn:aws:apigateway:REGION::/restapis/ID/stages/NAME``) -> the
  deployment created before the live one;
- HTTP API stage (``arn:aws:apigateway:REGION::/apis/ID/stages/NAME``) -> the deployment
  created before the live one, with auto-deploy switched off (else the next change to the API
  would redeploy the suspect state at once; the console asks for the same before a rollback).

Acts only when what is live went live within ``window_minutes`` (a recent deployment is
suspected) and a predecessor exists; otherwise it escalates and changes nothing. A stage's
live deployment "went live" when it was created: a stage update (throttling, variables) is
not a deploy, and an old deployment promoted into a stage escalates rather than guessing.

Runbooks: OMNIX "API Service Down", Nigredo "Rollback Procedure", Aureus "HighErrorRate".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


LAMBDA_ALIAS = "lambda-alias"
REST_STAGE = "rest-stage"
HTTP_STAGE = "http-stage"

_STAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:apigateway:(?P<region>[a-z0-9-]+)::"
    r"/(?P<api_kind>restapis|apis)/(?P<api_id>[A-Za-z0-9]+)/stages/(?P<stage>[A-Za-z0-9_$-]+)$"
)


@dataclass(frozen=True)
class StageArn:
    kind: str  # REST_STAGE or HTTP_STAGE
    api_id: str
    stage: str
    #: ``arn:aws:apigateway:REGION::/restapis/ID``: IAM resources hang off it
    api_arn: str


def parse_stage_arn(target: str) -> StageArn:
    """An API Gateway stage ARN (REST or HTTP API) -> its parts."""
    found = _STAGE_ARN.match(target)
    if found is None:
        raise RejectedError(f"not an API Gateway stage ARN: {target[:200]!r}")
    kind = REST_STAGE if found["api_kind"] == "restapis" else HTTP_STAGE
    api_arn = target.split("/stages/", 1)[0]
    return StageArn(kind, found["api_id"], found["stage"], api_arn)


def target_kind(target: str) -> str:
    """Which kind of thing ``target`` names; ``RejectedError`` if none this action handles."""
    if target.startswith("arn:") and ":apigateway:" in target:
        return parse_stage_arn(target).kind
    parse_alias_arn(target)
    return LAMBDA_ALIAS


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


def previous_deployment(
    live_id: str, deployments: list[dict[str, Any]], window_minutes: int, now: datetime
) -> tuple[str | None, str]:
    """Pure: the deployment to go back to, or (None, why not).

    ``deployments`` are ``{"id", "created" (ISO 8601 or None), "status" (optional)}``; only
    those without a status or with status ``DEPLOYED`` can be gone back to. Two deployments
    created in the same second cannot be ordered (the API gives whole seconds): escalate.
    """
    usable = [
        d
        for d in deployments
        if d.get("created") and d.get("status") in (None, "DEPLOYED") and d["id"] != live_id
    ]
    live = next((d for d in deployments if d["id"] == live_id), None)
    if live is None or not live.get("created"):
        return None, f"cannot tell when deployment {live_id} was created"
    live_at = datetime.fromisoformat(live["created"])
    age = now - live_at
    if age > timedelta(minutes=window_minutes):
        minutes = int(age.total_seconds() // 60)
        return None, (
            f"live deployment {live_id} went live {minutes} min ago, outside the "
            f"{window_minutes} min window: no recent deploy to blame"
        )
    created = {d["id"]: datetime.fromisoformat(d["created"]) for d in usable}
    same_time = sorted(i for i, at in created.items() if at == live_at)
    if same_time:
        return None, (
            f"deployment(s) {', '.join(same_time)} were created in the same second as the live "
            f"{live_id}: cannot tell which came first"
        )
    earlier = {i: at for i, at in created.items() if at < live_at}
    if not earlier:
        return None, f"deployment {live_id} has no predecessor"
    newest = max(earlier.values())
    candidates = sorted(i for i, at in earlier.items() if at == newest)
    if len(candidates) > 1:
        return None, (
            f"deployments {', '.join(candidates)} were created in the same second: "
            "cannot tell which was live before"
        )
    return candidates[0], ""


def plan_rest_stage_rollback(current: dict[str, Any], window_minutes: int, now: datetime) -> Plan:
    """Pure decision for an API Gateway REST stage (see module docstring)."""
    live = current["deployment_id"]
    before = {"deployment_id": live}
    if not live:
        return Plan.escalate("the stage has no deployment", before)
    if current.get("canary_percent"):
        # Rolling back under a live canary would change what two deployments serve at once.
        return Plan.escalate(
            f"a canary takes {current['canary_percent']} % of the stage's traffic: "
            "promote or remove it by hand",
            before,
        )
    previous, why = previous_deployment(live, current["deployments"], window_minutes, now)
    if previous is None:
        return Plan.escalate(why, before)
    return Plan.change(
        f"stage deployment {live} -> {previous}", before, {"deployment_id": previous}
    )


def plan_http_stage_rollback(current: dict[str, Any], window_minutes: int, now: datetime) -> Plan:
    """Pure decision for an HTTP API stage (see module docstring)."""
    live = current["deployment_id"]
    before = {"deployment_id": live, "auto_deploy": current["auto_deploy"]}
    if not live:
        return Plan.escalate("the stage has no deployment", before)
    previous, why = previous_deployment(live, current["deployments"], window_minutes, now)
    if previous is None:
        return Plan.escalate(why, before)
    summary = f"stage deployment {live} -> {previous}"
    if current["auto_deploy"]:
        summary += " and auto-deploy off (the next API change would redeploy the suspect)"
    return Plan.change(summary, before, {"deployment_id": previous, "auto_deploy": False})


PLANNERS = {
    LAMBDA_ALIAS: plan_alias_rollback,
    REST_STAGE: plan_rest_stage_rollback,
    HTTP_STAGE: plan_http_stage_rollback,
}


@register
class Rollback(Action):
    """Roll back a recent deploy: a Lambda alias to the previous published version, an API
    Gateway REST or HTTP API stage to the previous deployment."""

    name = "rollback"
    Params = RollbackParams
    permissions = (
        "lambda:GetAlias",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateAlias",
        "apigateway:GET",
        "apigateway:PATCH",
    )

    @classmethod
    def resources(cls, target: str, params: dict[str, Any] | None = None) -> list[str]:
        if target_kind(target) == LAMBDA_ALIAS:
            function_arn, _ = parse_alias_arn(target)
            return [function_arn, target]
        stage = parse_stage_arn(target)
        # GET on the stage and its API's deployments; PATCH on the stage.
        return [target, f"{stage.api_arn}/deployments", f"{stage.api_arn}/deployments/*"]

    def read(self, target: str, params: ActionParams) -> dict[str, Any]:
        kind = target_kind(target)
        if kind == REST_STAGE:
            return self._read_rest_stage(parse_stage_arn(target))
        if kind == HTTP_STAGE:
            return self._read_http_stage(parse_stage_arn(target))
        return self._read_alias(target)

    def plan(self, current: dict[str, Any], params: ActionParams, now: datetime) -> Plan:
        assert isinstance(params, RollbackParams)
        return PLANNERS[current["kind"]](current, params.window_minutes, now)

    def apply(self, target: str, plan: Plan) -> None:
        kind = target_kind(target)
        if kind == LAMBDA_ALIAS:
            self._apply_alias(target, plan)
            return
        stage = parse_stage_arn(target)
        if kind == REST_STAGE:
            self.clients("apigateway").update_stage(
                restApiId=stage.api_id,
                stageName=stage.stage,
                patchOperations=[
                    {"op": "replace", "path": "/deploymentId", "value": plan.after["deployment_id"]}
                ],
            )
        else:
            self.clients("apigatewayv2").update_stage(
                ApiId=stage.api_id,
                StageName=stage.stage,
                DeploymentId=plan.after["deployment_id"],
                AutoDeploy=plan.after["auto_deploy"],
            )

    def verify(self, target: str, plan: Plan) -> dict[str, Any]:
        kind = target_kind(target)
        if kind == LAMBDA_ALIAS:
            return self._verify_alias(target, plan)
        stage = parse_stage_arn(target)
        if kind == REST_STAGE:
            found = self.clients("apigateway").get_stage(
                restApiId=stage.api_id, stageName=stage.stage
            )
            seen: dict[str, Any] = {"deployment_id": found.get("deploymentId")}
        else:
            found = self.clients("apigatewayv2").get_stage(
                ApiId=stage.api_id, StageName=stage.stage
            )
            seen = {
                "deployment_id": found.get("DeploymentId"),
                "auto_deploy": bool(found.get("AutoDeploy")),
            }
        if seen != plan.after:
            raise VerifyError(f"stage reads back as {seen}, expected {plan.after}")
        return seen

    # -- API Gateway ----------------------------------------------------------------------

    def _read_rest_stage(self, stage: StageArn) -> dict[str, Any]:
        gateway = self.clients("apigateway")
        found = gateway.get_stage(restApiId=stage.api_id, stageName=stage.stage)
        deployments = [
            {"id": item["id"], "created": _utc_iso(item.get("createdDate"))}
            for page in gateway.get_paginator("get_deployments").paginate(restApiId=stage.api_id)
            for item in page.get("items", [])
        ]
        canary = found.get("canarySettings") or {}
        return {
            "kind": REST_STAGE,
            "deployment_id": found.get("deploymentId"),
            "canary_percent": float(canary.get("percentTraffic") or 0),
            "deployments": deployments,
        }

    def _read_http_stage(self, stage: StageArn) -> dict[str, Any]:
        gateway = self.clients("apigatewayv2")
        found = gateway.get_stage(ApiId=stage.api_id, StageName=stage.stage)
        deployments = [
            {
                "id": item["DeploymentId"],
                "created": _utc_iso(item.get("CreatedDate")),
                "status": item.get("DeploymentStatus"),
            }
            for page in gateway.get_paginator("get_deployments").paginate(ApiId=stage.api_id)
            for item in page.get("Items", [])
        ]
        return {
            "kind": HTTP_STAGE,
            "deployment_id": found.get("DeploymentId"),
            "auto_deploy": bool(found.get("AutoDeploy")),
            "deployments": deployments,
        }

    # -- Lambda alias ---------------------------------------------------------------------

    def _read_alias(self, target: str) -> dict[str, Any]:
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
            "kind": LAMBDA_ALIAS,
            "version": version,
            "weights": {str(k): float(v) for k, v in weights.items()},
            "live_since": _iso(published.get(int(version))) if version.isdigit() else None,
            "previous": str(max(earlier)) if earlier else None,
        }

    def _apply_alias(self, target: str, plan: Plan) -> None:
        function_arn, alias = parse_alias_arn(target)
        self.clients("lambda").update_alias(
            FunctionName=function_arn,
            Name=alias,
            FunctionVersion=plan.after["version"],
            RoutingConfig={"AdditionalVersionWeights": plan.after["weights"]},
        )

    def _verify_alias(self, target: str, plan: Plan) -> dict[str, Any]:
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


def _utc_iso(when: datetime | None) -> str | None:
    """A timestamp botocore parsed (local time zone) -> ISO 8601 in UTC."""
    return when.astimezone(UTC).isoformat() if when else None
