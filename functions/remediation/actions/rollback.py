"""rollback: put what was live before the suspect deploy back.

The target ARN says what to roll back:

- Lambda alias (``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:ALIAS``) -> the previous
  published version; or, when the alias routes a weight to a second version (a canary),
  all traffic back to the alias's primary version and the weights removed;
- API Gateway REST stage (``arn:PARTITION:apigateway:REGION::/restapis/ID/stages/NAME``) -> the
  deployment created before the live one;
- HTTP API stage (``arn:PARTITION:apigateway:REGION::/apis/ID/stages/NAME``) -> the deployment
  created before the live one, with auto-deploy switched off (else the next change to the API
  would redeploy the suspect state at once; the console asks for the same before a rollback).

Acts only when what is live went live within ``window_minutes`` (a recent deployment is
suspected) and a predecessor exists; otherwise it escalates and changes nothing. A stage's
live deployment "went live" when it was created: a stage update (throttling, variables) is
not a deploy, and an old deployment promoted into a stage escalates rather than guessing.

A canary (``RoutingConfig.AdditionalVersionWeights``) is rolled back only in its normal
shape: the primary is the stable version and one newer version, published within the window,
takes the weight. The rollback keeps the primary and drops the weight; it never promotes the
newer version. Anything else (more than one weighted version, a weighted version older than
the primary, versions that are not numbers, an unknown publish time) escalates. The audit's
before/after hold the version and the weights, so a revert restores the canary exactly.

API Gateway keeps no deployment history per stage: GetDeployments lists the deployments of
every stage of the API. With one stage that list is the stage's own history; with more, the
deployment this stage ran before cannot be known from AWS, and the rollback escalates naming
the other stages rather than pick another stage's newest deployment.

Runbooks: OMNIX "API Service Down", Nigredo "Rollback Procedure", Aureus "HighErrorRate".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from remediation.actions.base import (
    Action,
    ActionParams,
    Limit,
    Plan,
    VerifyError,
    register,
)
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
    #: ``arn:PARTITION:apigateway:REGION::/restapis/ID``: IAM resources hang off it
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
    """``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:ALIAS`` -> (function ARN, alias)."""
    parts = target.split(":")
    if len(parts) != 8 or parts[2] != "lambda" or parts[5] != "function" or not parts[7]:
        raise RejectedError(f"not a Lambda alias ARN: {target[:200]!r}")
    if parts[7] == "$LATEST" or parts[7].isdigit():
        raise RejectedError(f"rollback needs an alias, not a version: {target[:200]!r}")
    return ":".join(parts[:7]), parts[7]


def plan_alias_rollback(current: dict[str, Any], window_minutes: int, now: datetime) -> Plan:
    """Pure decision for a Lambda alias (see module docstring).

    ``current``: ``{"version": primary, "weights": {version: weight}, "live_since": when the
    primary was published, "previous": the newest published version before the primary,
    "published": {version: when published} for the versions the weights name}``.
    """
    weights = {str(v): float(w) for v, w in current["weights"].items()}
    before = {"version": current["version"], "weights": weights}
    if weights:
        return _plan_canary_rollback(current, before, window_minutes, now)
    live_since = current.get("live_since")
    if live_since is None:
        return Plan.escalate("cannot tell when the live version was published", before)
    outside = _outside_window(live_since, window_minutes, now)
    if outside:
        return Plan.escalate(
            f"live version {current['version']} went live {outside}: no recent deploy to blame",
            before,
        )
    previous = current.get("previous")
    if previous is None:
        return Plan.escalate(f"version {current['version']} has no predecessor", before)
    after = {"version": previous, "weights": {}}
    return Plan.change(f"alias {current['version']} -> {previous}", before, after)


def _plan_canary_rollback(
    current: dict[str, Any], before: dict[str, Any], window_minutes: int, now: datetime
) -> Plan:
    """A weighted alias: drop the weight and keep the primary, only in the normal canary shape
    (one newer version, published within the window, takes the weight)."""
    primary, weights = before["version"], before["weights"]
    shown = ", ".join(f"{v} ({_percent(w)})" for v, w in sorted(weights.items()))
    if len(weights) > 1:
        return Plan.escalate(
            f"the alias routes weights to {len(weights)} versions ({shown}) besides "
            f"{primary}: cannot tell which one is stable",
            before,
        )
    ((canary, weight),) = weights.items()
    if not (primary.isdigit() and canary.isdigit()):
        return Plan.escalate(
            f"the alias serves {primary} with {canary} weighted in: not both published "
            "version numbers, so which came first cannot be told",
            before,
        )
    if int(canary) <= int(primary):
        return Plan.escalate(
            f"weighted version {canary} ({_percent(weight)}) is not newer than the primary "
            f"{primary}: not a canary of a new version (a rollback or shift in progress?); "
            "which one is stable needs a human",
            before,
        )
    published = (current.get("published") or {}).get(canary)
    if published is None:
        return Plan.escalate(f"cannot tell when canary version {canary} was published", before)
    outside = _outside_window(published, window_minutes, now)
    if outside:
        return Plan.escalate(
            f"canary version {canary} was published {outside}: no recent deploy to blame",
            before,
        )
    return Plan.change(
        f"drop canary version {canary} ({_percent(weight)} of traffic): all traffic to "
        f"version {primary}",
        before,
        {"version": primary, "weights": {}},
    )


def _outside_window(since: str, window_minutes: int, now: datetime) -> str:
    """'N min ago, outside the W min window' if ``since`` is older than the window; else ''."""
    age = now - datetime.fromisoformat(since)
    if age <= timedelta(minutes=window_minutes):
        return ""
    minutes = int(age.total_seconds() // 60)
    return f"{minutes} min ago, outside the {window_minutes} min window"


def _percent(weight: float) -> str:
    return f"{weight * 100:g} %"


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


def _shared_history(current: dict[str, Any]) -> str:
    """Why the API's deployments are not this stage's own history, or ''.

    GetDeployments lists the deployments of every stage: only when the stage is the API's
    only one is that list its history. ``current["stages"]`` names every stage of the API.
    """
    stages = current.get("stages")
    if stages is None:
        return "cannot tell which stages the API has: its deployments may be another stage's"
    others = sorted(s for s in stages if s != current["stage"])
    if not others:
        return ""
    shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
    return (
        f"the API has other stages ({shown}) besides {current['stage']}: API Gateway keeps no "
        "deployment history per stage, so the deployment this stage ran before cannot be "
        "known; roll it back by hand"
    )


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
    shared = _shared_history(current)
    if shared:
        return Plan.escalate(shared, before)
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
    shared = _shared_history(current)
    if shared:
        return Plan.escalate(shared, before)
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
    # A manual request may only narrow the window a deploy is suspected in.
    limits: ClassVar[dict[str, Limit]] = {"window_minutes": Limit.AT_MOST}
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
        # GET on the stage, its API's stages and deployments; PATCH on the stage.
        return [
            target,
            f"{stage.api_arn}/stages",
            f"{stage.api_arn}/deployments",
            f"{stage.api_arn}/deployments/*",
        ]

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
        # GetStages (REST) is not paginated: it returns every stage of the API.
        listed = gateway.get_stages(restApiId=stage.api_id).get("item", [])
        stages = [item["stageName"] for item in listed]
        deployments = [
            {"id": item["id"], "created": _utc_iso(item.get("createdDate"))}
            for page in gateway.get_paginator("get_deployments").paginate(restApiId=stage.api_id)
            for item in page.get("items", [])
        ]
        canary = found.get("canarySettings") or {}
        return {
            "kind": REST_STAGE,
            "stage": stage.stage,
            "stages": sorted(stages),
            "deployment_id": found.get("deploymentId"),
            "canary_percent": float(canary.get("percentTraffic") or 0),
            "deployments": deployments,
        }

    def _read_http_stage(self, stage: StageArn) -> dict[str, Any]:
        gateway = self.clients("apigatewayv2")
        found = gateway.get_stage(ApiId=stage.api_id, StageName=stage.stage)
        stages = [
            item["StageName"]
            for page in gateway.get_paginator("get_stages").paginate(ApiId=stage.api_id)
            for item in page.get("Items", [])
        ]
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
            "stage": stage.stage,
            "stages": sorted(stages),
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
        weights = _weights(found)
        published: dict[str, str] = {}
        # By name: AWS takes a name or an ARN here, moto 5.2 only a name.
        name = function_arn.rsplit(":", 1)[1]
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
            for item in page["Versions"]:
                if item["Version"].isdigit():
                    # A published version is immutable: its LastModified is when it was published.
                    published[item["Version"]] = item["LastModified"]
        earlier = [int(v) for v in published if version.isdigit() and int(v) < int(version)]
        return {
            "kind": LAMBDA_ALIAS,
            "version": version,
            "weights": weights,
            "live_since": _iso(published.get(version)),
            "previous": str(max(earlier)) if earlier else None,
            "published": {v: _iso(published.get(v)) for v in sorted(weights)},
        }

    def _apply_alias(self, target: str, plan: Plan) -> None:
        function_arn, alias = parse_alias_arn(target)
        # An empty map removes the routing; a revert puts the recorded weights back as they
        # were (AWS takes each as a double between 0.0 and 1.0).
        weights = {str(v): float(w) for v, w in plan.after["weights"].items()}
        self.clients("lambda").update_alias(
            FunctionName=function_arn,
            Name=alias,
            FunctionVersion=plan.after["version"],
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    def _verify_alias(self, target: str, plan: Plan) -> dict[str, Any]:
        function_arn, alias = parse_alias_arn(target)
        found = self.clients("lambda").get_alias(FunctionName=function_arn, Name=alias)
        seen = {"version": found["FunctionVersion"], "weights": _weights(found)}
        wanted = {v: float(w) for v, w in plan.after["weights"].items()}
        if seen["version"] != plan.after["version"] or seen["weights"] != wanted:
            raise VerifyError(f"alias reads back as {seen}, expected {plan.after}")
        return seen


def _weights(alias: dict[str, Any]) -> dict[str, float]:
    """A GetAlias answer's ``AdditionalVersionWeights``, as ``{version: weight}``."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return {str(v): float(w) for v, w in weights.items()}


def _iso(lambda_time: str | None) -> str | None:
    """Lambda's ``2026-11-23T10:00:00.000+0000`` -> ISO 8601 with a colon offset."""
    return datetime.fromisoformat(lambda_time).isoformat() if lambda_time else None


def _utc_iso(when: datetime | None) -> str | None:
    """A timestamp botocore parsed (local time zone) -> ISO 8601 in UTC."""
    return when.astimezone(UTC).isoformat() if when else None
