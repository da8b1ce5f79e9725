"""capacity-bump: give a struggling resource more room, one bounded step at a time.

``kind`` says which dimension, and the target ARN must fit it:

========================================  ============================================
kind                                      target
========================================  ============================================
``lambda-memory``, ``lambda-timeout``,    function ARN without a qualifier (published
``lambda-reserved-concurrency``           versions are immutable: an alias cannot grow)
``lambda-provisioned-concurrency``        alias ARN (``...:function:NAME:ALIAS``)
``dynamodb-throughput``,                  table ARN (``arn:P:dynamodb:R:A:table/NAME``); a
``dynamodb-on-demand``                    GSI's (``.../index/I``) when it is auto-scaled
``apigateway-throttle``                   REST stage ARN (``...::/restapis/ID/stages/NAME``)
========================================  ============================================

Each step multiplies by ``factor`` (at least +1) and stops at the configured cap. Already
at the cap: escalate and change nothing. Preconditions that make a bump useless or unsafe
also escalate: a Lambda update or provisioned allocation still in progress, no reserved
concurrency (throttles then come from the account pool) or reserved concurrency 0 (switched
off on purpose), a table not ACTIVE or already on-demand, a stage with no throttle of its own.

A bump must reach the live traffic, or it is not done:

- A function with an alias serves its traffic through published versions, which cannot
  change: memory or timeout on the unqualified function changes only ``$LATEST``. Such a
  function escalates (provisioned concurrency on the alias acts at once; a memory or timeout
  change needs a deploy).
- A table or GSI under Application Auto Scaling: its scalable targets' range is raised
  instead of an UpdateTable the next scaling activity would undo (``autoscaling.py``).

A table's state holds each GSI's provisioned throughput (``indexes``), so going back to
provisioned (the revert of an on-demand switch) sends throughput for the table and for every
GSI, as AWS requires.

Runbooks: OMNIX "Lambda timeout/memory issues", "DynamoDB throttling", Nigredo "Lambda Cold
Starts" (provisioned concurrency 5), OMNIX API Gateway ``update-stage`` throttling.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ...errors import RejectedError
from ..arns import REST_STAGE, is_stage_arn, parse_alias_arn, parse_stage_arn
from ..base import Action, Limit, Plan, VerifyError, register
from .autoscaling import (
    apply_scaling,
    own_scaling,
    plan_autoscaled,
    scalable_targets,
    table_resources,
    verify_scaling,
    wanted_units,
)
from .plans import (
    AUTOSCALING,
    DIMENSION,
    FUNCTION_ARN,
    INDEX_ARN,
    KINDS,
    LAMBDA_MAX_MEMORY_MB,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    MEMORY,
    ON_DEMAND,
    PLANNERS,
    PROVISIONED,
    RESERVED,
    TABLE_ARN,
    TABLE_CAPACITY,
    THROTTLE,
    THROUGHPUT,
    TIMEOUT,
    CapacityCurrent,
    CapacityParams,
    CapacityState,
    Units,
    check_target,
    grow,
    index_name,
    plan_dynamodb_on_demand,
    plan_dynamodb_throughput,
    plan_memory,
    plan_provisioned_concurrency,
    plan_reserved_concurrency,
    plan_stage_throttle,
    plan_timeout,
    table_name,
)

if TYPE_CHECKING:
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef
    from mypy_boto3_dynamodb.type_defs import (
        GlobalSecondaryIndexUpdateTypeDef,
        ProvisionedThroughputDescriptionTypeDef,
        ProvisionedThroughputTypeDef,
        UpdateTableInputTypeDef,
    )

__all__ = [
    "DIMENSION",
    "KINDS",
    "LAMBDA_MAX_MEMORY_MB",
    "LAMBDA_MAX_TIMEOUT_SECONDS",
    "ON_DEMAND",
    "PLANNERS",
    "THROUGHPUT",
    "CapacityBump",
    "CapacityCurrent",
    "CapacityParams",
    "CapacityState",
    "check_target",
    "grow",
    "plan_dynamodb_on_demand",
    "plan_dynamodb_throughput",
    "plan_memory",
    "plan_provisioned_concurrency",
    "plan_reserved_concurrency",
    "plan_stage_throttle",
    "plan_timeout",
]


@register
class CapacityBump(Action[CapacityParams, CapacityCurrent, CapacityState]):
    """Raise one capacity dimension of a Lambda function, DynamoDB table or REST API stage
    by a bounded step; escalate at the cap."""

    name = "capacity-bump"
    Params = CapacityParams
    permissions = (
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        # revert of a bump from none restores "none"
        "lambda:DeleteProvisionedConcurrencyConfig",
        # is the function served through an alias (a memory/timeout bump would not reach it)?
        "lambda:ListAliases",
        "dynamodb:DescribeTable",
        "dynamodb:UpdateTable",
        # is the table under auto scaling (which would undo an UpdateTable)? Then its range
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "apigateway:GET",
        "apigateway:PATCH",
    )
    # Manual requests may pick a smaller factor or lower caps, never the dimension.
    limits: ClassVar[dict[str, Limit]] = {
        name: Limit.AT_MOST
        for name in (
            "factor",
            "max_memory_mb",
            "max_timeout_seconds",
            "max_reserved_concurrency",
            "max_provisioned_concurrency",
            "provisioned_start",
            "max_read_units",
            "max_write_units",
            "max_rate_limit",
            "max_burst_limit",
        )
    }

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        if FUNCTION_ARN.match(target):
            return [target]
        if TABLE_ARN.match(target) or INDEX_ARN.match(target):
            return table_resources(target, params)
        if is_stage_arn(target):
            if parse_stage_arn(target).kind != REST_STAGE:
                raise RejectedError(f"capacity-bump takes REST API stages only: {target[:200]!r}")
            return [target]
        function_arn, _ = parse_alias_arn(target)
        return [function_arn, target]

    def read(self, target: str, params: CapacityParams) -> CapacityCurrent:
        check_target(params.kind, target)
        dimension = DIMENSION[params.kind]
        state = self._state(target, dimension)
        # What decides whether a change would reach live traffic at all (plans only: verify
        # reads the values back, nothing more).
        if dimension in (MEMORY, TIMEOUT):
            state["aliases"] = self._aliases(target)
        elif dimension == TABLE_CAPACITY:
            scaling = self.clients("application-autoscaling")
            state["index"] = index_name(target)
            state["autoscaled"] = found = scalable_targets(scaling, target, state["indexes"])
            own = own_scaling(target, found, wanted_units(params))
            if params.kind == THROUGHPUT and own and state["billing_mode"] == "PROVISIONED":
                return {"dimension": AUTOSCALING, "status": state["status"], "scaling": own}
        return state

    def plan(
        self, current: CapacityCurrent, params: CapacityParams, now: datetime
    ) -> Plan[CapacityState]:
        if current.get("dimension") == AUTOSCALING and params.kind == THROUGHPUT:
            return plan_autoscaled(current, params)
        if current.get("dimension") != DIMENSION[params.kind]:
            raise ValueError(
                f"read dimension {current.get('dimension')!r} for kind {params.kind!r}"
            )
        return PLANNERS[params.kind](current, params)

    def apply(self, target: str, plan: Plan[CapacityState]) -> None:
        after = plan.after
        dimension = after["dimension"]
        if dimension in (MEMORY, TIMEOUT, RESERVED, PROVISIONED):
            self._apply_function(target, after)
        elif dimension == TABLE_CAPACITY:
            self._apply_table(target, plan)
        elif dimension == AUTOSCALING:
            scaling = self.clients("application-autoscaling")
            apply_scaling(scaling, target, plan.before.get("scaling") or {}, after["scaling"])
        elif dimension == THROTTLE:
            stage = parse_stage_arn(target)
            self.clients("apigateway").update_stage(
                restApiId=stage.api_id,
                stageName=stage.stage,
                patchOperations=[
                    _replace("/*/*/throttling/rateLimit", after["rate_limit"]),
                    _replace("/*/*/throttling/burstLimit", after["burst_limit"]),
                ],
            )
        else:
            raise ValueError(f"unknown capacity dimension {dimension!r}")

    def _apply_function(self, target: str, after: CapacityState) -> None:
        lam = self.clients("lambda")
        dimension = after["dimension"]
        if dimension == MEMORY:
            lam.update_function_configuration(FunctionName=target, MemorySize=after["memory_mb"])
        elif dimension == TIMEOUT:
            lam.update_function_configuration(FunctionName=target, Timeout=after["timeout_seconds"])
        elif dimension == RESERVED:
            lam.put_function_concurrency(
                FunctionName=target,
                ReservedConcurrentExecutions=_required(after["reserved_concurrency"]),
            )
        elif dimension == PROVISIONED:
            function_arn, alias = parse_alias_arn(target)
            if after["provisioned_concurrency"]:
                lam.put_provisioned_concurrency_config(
                    FunctionName=function_arn,
                    Qualifier=alias,
                    ProvisionedConcurrentExecutions=after["provisioned_concurrency"],
                )
            else:
                lam.delete_provisioned_concurrency_config(
                    FunctionName=function_arn, Qualifier=alias
                )

    def verify(self, target: str, plan: Plan[CapacityState]) -> CapacityState:
        dimension = plan.after["dimension"]
        if dimension == AUTOSCALING:
            return verify_scaling(self.clients("application-autoscaling"), target, plan)
        state = self._state(target, dimension)
        if dimension == PROVISIONED and state.get("status") == "FAILED":
            raise VerifyError(f"provisioned concurrency FAILED: {state.get('reason')}")
        read: Mapping[str, Any] = state
        seen = cast("CapacityState", {key: read.get(key) for key in plan.after})
        if seen != plan.after and dimension == TABLE_CAPACITY and state.get("status") == "UPDATING":
            # DynamoDB shows the old capacity until the update finishes; UPDATING right
            # after our call is the change under way. Only ``plan.after``'s keys: the
            # after-state is what a revert compares with ``read`` (an extra key would make
            # every revert see a change that is not there).
            return plan.after.copy()
        if seen != plan.after:
            raise VerifyError(f"reads back as {seen}, expected {plan.after}")
        return seen

    # -- reads ----------------------------------------------------------------------------

    def _state(self, target: str, dimension: str) -> CapacityCurrent:
        """The current values (named as in plans) and what the preconditions need."""
        if dimension in (MEMORY, TIMEOUT):
            found = self.clients("lambda").get_function_configuration(FunctionName=target)
            return {
                "dimension": dimension,
                "memory_mb": found.get("MemorySize", 0),
                "timeout_seconds": found.get("Timeout", 0),
                "updating": found.get("LastUpdateStatus") == "InProgress",
            }
        if dimension == RESERVED:
            concurrency = self.clients("lambda").get_function_concurrency(FunctionName=target)
            return {
                "dimension": dimension,
                "reserved_concurrency": concurrency.get("ReservedConcurrentExecutions"),
            }
        if dimension == PROVISIONED:
            return self._read_provisioned(target)
        if dimension == TABLE_CAPACITY:
            return self._read_table(target)
        if dimension == THROTTLE:
            return self._read_throttle(target)
        raise ValueError(f"unknown capacity dimension {dimension!r}")

    def _read_provisioned(self, target: str) -> CapacityCurrent:
        function_arn, alias = parse_alias_arn(target)
        lam = self.clients("lambda")
        try:
            found = lam.get_provisioned_concurrency_config(
                FunctionName=function_arn, Qualifier=alias
            )
        except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
            return {
                "dimension": PROVISIONED,
                "provisioned_concurrency": 0,
                "status": None,
                "reason": None,
            }
        return {
            "dimension": PROVISIONED,
            "provisioned_concurrency": found.get("RequestedProvisionedConcurrentExecutions", 0),
            "status": found.get("Status"),
            "reason": found.get("StatusReason"),
        }

    def _read_table(self, target: str) -> CapacityCurrent:
        table = self.clients("dynamodb").describe_table(TableName=table_name(target))["Table"]
        billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        throughput = table.get("ProvisionedThroughput") or {}
        return {
            "dimension": TABLE_CAPACITY,
            "status": table["TableStatus"],
            "billing_mode": billing,
            "read_units": throughput.get("ReadCapacityUnits", 0),
            "write_units": throughput.get("WriteCapacityUnits", 0),
            "indexes": {
                index["IndexName"]: _units(index.get("ProvisionedThroughput") or {})
                for index in table.get("GlobalSecondaryIndexes") or []
            },
        }

    def _aliases(self, target: str) -> list[str]:
        """The function's aliases (any one means live traffic runs a published version)."""
        lam = self.clients("lambda")
        # By name: AWS takes a name or an ARN here, moto 5.2 only a name.
        name = target.rsplit(":", 1)[1]
        return sorted(
            alias["Name"]
            for page in lam.get_paginator("list_aliases").paginate(FunctionName=name)
            for alias in page.get("Aliases", [])
        )

    def _read_throttle(self, target: str) -> CapacityCurrent:
        stage = parse_stage_arn(target)
        found = self.clients("apigateway").get_stage(restApiId=stage.api_id, stageName=stage.stage)
        # Stage-wide throttling lives in the "*/*" method setting.
        settings = (found.get("methodSettings") or {}).get("*/*") or {}
        rate = settings.get("throttlingRateLimit")
        burst = settings.get("throttlingBurstLimit")
        return {
            "dimension": THROTTLE,
            "rate_limit": float(rate) if rate is not None else None,
            "burst_limit": int(burst) if burst is not None else None,
        }

    def _apply_table(self, target: str, plan: Plan[CapacityState]) -> None:
        after = plan.after
        request: UpdateTableInputTypeDef = {"TableName": table_name(target)}
        if after["billing_mode"] != plan.before.get("billing_mode"):
            request["BillingMode"] = after["billing_mode"]
        if after["billing_mode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = _throughput(after)
            if plan.before.get("billing_mode") != "PROVISIONED":
                # Back to provisioned (a revert of on-demand): AWS refuses the switch unless
                # every GSI gets its throughput in the same request.
                updates: list[GlobalSecondaryIndexUpdateTypeDef] = [
                    {"Update": {"IndexName": name, "ProvisionedThroughput": _throughput(units)}}
                    for name, units in sorted((after.get("indexes") or {}).items())
                ]
                if updates:
                    request["GlobalSecondaryIndexUpdates"] = updates
        self.clients("dynamodb").update_table(**request)


def _required(value: int | None) -> int:
    if value is None:
        raise ValueError("the plan holds no value to set")
    return value


def _units(throughput: ProvisionedThroughputDescriptionTypeDef) -> Units:
    """DynamoDB's ``ProvisionedThroughput`` -> ``{"read_units", "write_units"}``."""
    return {
        "read_units": throughput.get("ReadCapacityUnits", 0),
        "write_units": throughput.get("WriteCapacityUnits", 0),
    }


def _throughput(units: Units | CapacityState) -> ProvisionedThroughputTypeDef:
    """``{"read_units", "write_units"}`` -> DynamoDB's ``ProvisionedThroughput``."""
    return {"ReadCapacityUnits": units["read_units"], "WriteCapacityUnits": units["write_units"]}


def _replace(path: str, value: float | int | None) -> PatchOperationTypeDef:
    return {"op": "replace", "path": path, "value": str(value)}
