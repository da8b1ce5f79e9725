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

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ..arns import (
    HTTP_STAGE,
    LAMBDA_ALIAS,
    REST_STAGE,
    StageArn,
    is_stage_arn,
    parse_alias_arn,
    parse_stage_arn,
)
from ..base import Action, Limit, Plan, VerifyError, register
from .plans import (
    AliasCurrent,
    AliasState,
    Deployment,
    HttpStageCurrent,
    HttpStageState,
    RestStageCurrent,
    RestStageState,
    RollbackCurrent,
    RollbackParams,
    RollbackState,
    plan_alias_rollback,
    plan_http_stage_rollback,
    plan_rest_stage_rollback,
    plan_rollback,
    previous_deployment,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_lambda.type_defs import AliasConfigurationResponseTypeDef

__all__ = [
    "HTTP_STAGE",
    "LAMBDA_ALIAS",
    "REST_STAGE",
    "Rollback",
    "RollbackParams",
    "StageArn",
    "parse_alias_arn",
    "parse_stage_arn",
    "plan_alias_rollback",
    "plan_http_stage_rollback",
    "plan_rest_stage_rollback",
    "previous_deployment",
    "target_kind",
]


def target_kind(target: str) -> str:
    """Which kind of thing ``target`` names; ``RejectedError`` if none this action handles."""
    if is_stage_arn(target):
        return parse_stage_arn(target).kind
    parse_alias_arn(target)
    return LAMBDA_ALIAS


@register
class Rollback(Action[RollbackParams, RollbackCurrent, RollbackState]):
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
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
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

    def read(self, target: str, params: RollbackParams) -> RollbackCurrent:
        kind = target_kind(target)
        if kind == REST_STAGE:
            return self._read_rest_stage(parse_stage_arn(target))
        if kind == HTTP_STAGE:
            return self._read_http_stage(parse_stage_arn(target))
        return self._read_alias(target)

    def plan(
        self, current: RollbackCurrent, params: RollbackParams, now: datetime
    ) -> Plan[RollbackState]:
        return plan_rollback(current, params.window_minutes, now)

    def apply(self, target: str, plan: Plan[RollbackState]) -> None:
        kind = target_kind(target)
        if kind == LAMBDA_ALIAS:
            self._apply_alias(target, cast("AliasState", plan.after))
            return
        stage = parse_stage_arn(target)
        if kind == REST_STAGE:
            rest = cast("RestStageState", plan.after)
            self.clients("apigateway").update_stage(
                restApiId=stage.api_id,
                stageName=stage.stage,
                patchOperations=[
                    {"op": "replace", "path": "/deploymentId", "value": rest["deployment_id"] or ""}
                ],
            )
        else:
            http = cast("HttpStageState", plan.after)
            self.clients("apigatewayv2").update_stage(
                ApiId=stage.api_id,
                StageName=stage.stage,
                DeploymentId=http["deployment_id"] or "",
                AutoDeploy=http["auto_deploy"],
            )

    def verify(self, target: str, plan: Plan[RollbackState]) -> RollbackState:
        kind = target_kind(target)
        if kind == LAMBDA_ALIAS:
            return self._verify_alias(target, cast("AliasState", plan.after))
        stage = parse_stage_arn(target)
        seen: RollbackState
        if kind == REST_STAGE:
            rest = self.clients("apigateway").get_stage(
                restApiId=stage.api_id, stageName=stage.stage
            )
            seen = {"deployment_id": rest.get("deploymentId")}
        else:
            http = self.clients("apigatewayv2").get_stage(ApiId=stage.api_id, StageName=stage.stage)
            seen = {
                "deployment_id": http.get("DeploymentId"),
                "auto_deploy": bool(http.get("AutoDeploy")),
            }
        if seen != plan.after:
            raise VerifyError(f"stage reads back as {seen}, expected {plan.after}")
        return seen

    # -- API Gateway ----------------------------------------------------------------------

    def _read_rest_stage(self, stage: StageArn) -> RestStageCurrent:
        gateway = self.clients("apigateway")
        found = gateway.get_stage(restApiId=stage.api_id, stageName=stage.stage)
        # GetStages (REST) is not paginated: it returns every stage of the API.
        listed = gateway.get_stages(restApiId=stage.api_id).get("item", [])
        stages = [item.get("stageName", "") for item in listed]
        deployments: list[Deployment] = [
            {"id": item.get("id", ""), "created": _utc_iso(item.get("createdDate"))}
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

    def _read_http_stage(self, stage: StageArn) -> HttpStageCurrent:
        gateway = self.clients("apigatewayv2")
        found = gateway.get_stage(ApiId=stage.api_id, StageName=stage.stage)
        stages = [
            item["StageName"]
            for page in gateway.get_paginator("get_stages").paginate(ApiId=stage.api_id)
            for item in page.get("Items", [])
        ]
        deployments: list[Deployment] = [
            {
                "id": item.get("DeploymentId", ""),
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

    def _read_alias(self, target: str) -> AliasCurrent:
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

    def _apply_alias(self, target: str, after: AliasState) -> None:
        function_arn, alias = parse_alias_arn(target)
        # An empty map removes the routing; a revert puts the recorded weights back as they
        # were (AWS takes each as a double between 0.0 and 1.0).
        weights = {str(v): float(w) for v, w in after["weights"].items()}
        self.clients("lambda").update_alias(
            FunctionName=function_arn,
            Name=alias,
            FunctionVersion=after["version"],
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    def _verify_alias(self, target: str, after: AliasState) -> AliasState:
        function_arn, alias = parse_alias_arn(target)
        found = self.clients("lambda").get_alias(FunctionName=function_arn, Name=alias)
        seen: AliasState = {"version": found["FunctionVersion"], "weights": _weights(found)}
        wanted = {v: float(w) for v, w in after["weights"].items()}
        if seen["version"] != after["version"] or seen["weights"] != wanted:
            raise VerifyError(f"alias reads back as {seen}, expected {after}")
        return seen


def _weights(alias: AliasConfigurationResponseTypeDef) -> dict[str, float]:
    """A GetAlias answer's ``AdditionalVersionWeights``, as ``{version: weight}``."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return {str(v): float(w) for v, w in weights.items()}


def _iso(lambda_time: str | None) -> str | None:
    """Lambda's ``2026-11-23T10:00:00.000+0000`` -> ISO 8601 with a colon offset."""
    return datetime.fromisoformat(lambda_time).isoformat() if lambda_time else None


def _utc_iso(when: datetime | None) -> str | None:
    """A timestamp botocore parsed (local time zone) -> ISO 8601 in UTC."""
    return when.astimezone(UTC).isoformat() if when else None
