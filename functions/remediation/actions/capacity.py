"""capacity-bump: give a struggling resource more room, one bounded step at a time.

``kind`` says which dimension, and the target ARN must fit it:

========================================  ============================================
kind                                      target
========================================  ============================================
``lambda-memory``, ``lambda-timeout``,    function ARN without a qualifier (published
``lambda-reserved-concurrency``           versions are immutable: an alias cannot grow)
``lambda-provisioned-concurrency``        alias ARN (``...:function:NAME:ALIAS``)
``dynamodb-throughput``,                  table ARN (``arn:P:dynamodb:R:A:table/NAME``)
``dynamodb-on-demand``
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
- A table (or one of its GSIs) under Application Auto Scaling escalates: the next scaling
  activity would undo an UpdateTable; the scalable target's minimum is what to raise.

A table's state holds each GSI's provisioned throughput (``indexes``), so going back to
provisioned (the revert of an on-demand switch) sends throughput for the table and for every
GSI, as AWS requires.

Runbooks: OMNIX "Lambda timeout/memory issues", "DynamoDB throttling", Nigredo "Lambda Cold
Starts" (provisioned concurrency 5), OMNIX API Gateway ``update-stage`` throttling.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from remediation.actions.base import (
    Action,
    ActionParams,
    Limit,
    Plan,
    VerifyError,
    register,
)
from remediation.actions.rollback import REST_STAGE, parse_alias_arn, parse_stage_arn
from remediation.models import RejectedError

# AWS limits the caps may not exceed.
LAMBDA_MAX_MEMORY_MB = 10_240
LAMBDA_MAX_TIMEOUT_SECONDS = 900

MEMORY = "lambda-memory"
TIMEOUT = "lambda-timeout"
RESERVED = "lambda-reserved-concurrency"
PROVISIONED = "lambda-provisioned-concurrency"
THROUGHPUT = "dynamodb-throughput"
ON_DEMAND = "dynamodb-on-demand"
THROTTLE = "apigateway-throttle"
KINDS = (MEMORY, TIMEOUT, RESERVED, PROVISIONED, THROUGHPUT, ON_DEMAND, THROTTLE)
TABLE_CAPACITY = "dynamodb-capacity"

#: the state a kind reads and writes (both DynamoDB kinds change the table's capacity)
DIMENSION = {
    **{k: k for k in KINDS},
    THROUGHPUT: TABLE_CAPACITY,
    ON_DEMAND: TABLE_CAPACITY,
}

_FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+$")
_TABLE_ARN = re.compile(r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CapacityParams(ActionParams):
    #: which dimension to bump (see the module docstring)
    kind: str
    #: each step multiplies the current value by this (and adds at least 1)
    factor: float = 1.5
    max_memory_mb: int = 3008
    max_timeout_seconds: int = 300
    max_reserved_concurrency: int = 100
    max_provisioned_concurrency: int = 50
    #: provisioned concurrency set when the alias has none (Nigredo "Lambda Cold Starts")
    provisioned_start: int = 5
    #: DynamoDB: which provisioned capacity to raise: read, write or both
    units: str = "both"
    max_read_units: int = 1000
    max_write_units: int = 1000
    #: API Gateway stage throttle (requests per second, and burst)
    max_rate_limit: float = 5000.0
    max_burst_limit: int = 5000

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, not {self.kind!r}")
        if not 1.0 < self.factor <= 4.0:
            raise ValueError("factor must be above 1 and at most 4")
        if not 128 <= self.max_memory_mb <= LAMBDA_MAX_MEMORY_MB:
            raise ValueError(f"max_memory_mb must be between 128 and {LAMBDA_MAX_MEMORY_MB}")
        if not 1 <= self.max_timeout_seconds <= LAMBDA_MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"max_timeout_seconds must be between 1 and {LAMBDA_MAX_TIMEOUT_SECONDS}"
            )
        positive = (
            "max_reserved_concurrency",
            "max_provisioned_concurrency",
            "provisioned_start",
            "max_read_units",
            "max_write_units",
            "max_rate_limit",
            "max_burst_limit",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.units not in ("read", "write", "both"):
            raise ValueError("units must be read, write or both")


# -- pure plans, one per kind ------------------------------------------------------------


def grow(value: int, factor: float, cap: int) -> int:
    """One step up from ``value``: times ``factor``, at least +1, at most ``cap``."""
    return min(cap, max(value + 1, math.ceil(value * factor)))


def _step(current: dict, key: str, unit: str, cap: int, factor: float, what: str) -> Plan:
    before = {"dimension": current["dimension"], key: current[key]}
    value = current[key]
    if value >= cap:
        return Plan.escalate(f"{what} {value}{unit} is at the cap ({cap}{unit})", before)
    new = grow(value, factor, cap)
    return Plan.change(f"{what} {value}{unit} -> {new}{unit}", before, {**before, key: new})


def _function_blocked(current: dict[str, Any], before: dict[str, Any], what: str) -> Plan | None:
    """Why a memory or timeout change on the function would be unsafe or reach no traffic."""
    aliases = current.get("aliases")
    if aliases is None:
        return Plan.escalate(
            f"cannot tell whether the function is served through an alias: a {what} change "
            "might reach only $LATEST",
            before,
        )
    if aliases:
        shown = ", ".join(aliases[:5]) + (
            f" and {len(aliases) - 5} more" if len(aliases) > 5 else ""
        )
        return Plan.escalate(
            f"served through alias {shown}: a {what} change reaches only $LATEST, not the "
            "published version the alias runs (versions cannot change); use provisioned "
            "concurrency on the alias, or deploy a new version with the change",
            before,
        )
    if current.get("updating"):
        return Plan.escalate("the function is being updated: try again when it is done", before)
    return None


def plan_memory(current: dict[str, Any], params: CapacityParams) -> Plan:
    before = {"dimension": MEMORY, "memory_mb": current["memory_mb"]}
    blocked = _function_blocked(current, before, "memory")
    if blocked:
        return blocked
    return _step(current, "memory_mb", " MB", params.max_memory_mb, params.factor, "memory")


def plan_timeout(current: dict[str, Any], params: CapacityParams) -> Plan:
    before = {"dimension": TIMEOUT, "timeout_seconds": current["timeout_seconds"]}
    blocked = _function_blocked(current, before, "timeout")
    if blocked:
        return blocked
    cap = params.max_timeout_seconds
    return _step(current, "timeout_seconds", " s", cap, params.factor, "timeout")


def plan_reserved_concurrency(current: dict[str, Any], params: CapacityParams) -> Plan:
    reserved = current["reserved_concurrency"]
    before = {"dimension": RESERVED, "reserved_concurrency": reserved}
    if reserved is None:
        return Plan.escalate(
            "no reserved concurrency: throttles come from the account's unreserved pool",
            before,
        )
    if reserved == 0:
        return Plan.escalate("reserved concurrency is 0: the function was switched off", before)
    cap = params.max_reserved_concurrency
    return _step(current, "reserved_concurrency", "", cap, params.factor, "reserved concurrency")


def plan_provisioned_concurrency(current: dict[str, Any], params: CapacityParams) -> Plan:
    provisioned = current["provisioned_concurrency"]
    before = {"dimension": PROVISIONED, "provisioned_concurrency": provisioned}
    if current.get("status") == "IN_PROGRESS":
        return Plan.escalate("provisioned concurrency is still being allocated", before)
    cap = params.max_provisioned_concurrency
    if provisioned == 0 and cap > 0:
        start = min(params.provisioned_start, cap)
        after = {**before, "provisioned_concurrency": start}
        return Plan.change(f"provisioned concurrency none -> {start}", before, after)
    return _step(
        current, "provisioned_concurrency", "", cap, params.factor, "provisioned concurrency"
    )


def _table_before(current: dict[str, Any]) -> dict[str, Any]:
    before = {"dimension": TABLE_CAPACITY, "billing_mode": current["billing_mode"]}
    if current["billing_mode"] == "PROVISIONED":
        # Each GSI's throughput too: going back to provisioned (a revert) must send it.
        before.update(
            read_units=current["read_units"],
            write_units=current["write_units"],
            indexes=current["indexes"],
        )
    return before


def _table_blocked(current: dict[str, Any], before: dict[str, Any]) -> Plan | None:
    if current["status"] != "ACTIVE":
        return Plan.escalate(f"table is {current['status']}, not ACTIVE", before)
    if current["billing_mode"] == "PAY_PER_REQUEST":
        return Plan.escalate("table is on-demand already: throttling has another cause", before)
    scaled = current.get("autoscaled")
    if scaled is None:
        return Plan.escalate("cannot tell whether auto scaling manages the table", before)
    if scaled:
        shown = "; ".join(
            f"{t['resource']} {t['dimension']} min {t['min']} max {t['max']}" for t in scaled
        )
        return Plan.escalate(
            f"under Application Auto Scaling ({shown}): auto scaling would undo an "
            "UpdateTable; raise the scalable target's minimum capacity instead",
            before,
        )
    return None


def plan_dynamodb_throughput(current: dict[str, Any], params: CapacityParams) -> Plan:
    before = _table_before(current)
    blocked = _table_blocked(current, before)
    if blocked:
        return blocked
    after = dict(before)
    steps = []
    sides = {"read": params.max_read_units, "write": params.max_write_units}
    for side, cap in sides.items():
        if params.units not in (side, "both"):
            continue
        value = before[f"{side}_units"]
        if value >= cap:
            return Plan.escalate(f"{side} capacity {value} is at the cap ({cap})", before)
        after[f"{side}_units"] = grow(value, params.factor, cap)
        steps.append(f"{side} {value} -> {after[f'{side}_units']}")
    return Plan.change("provisioned " + ", ".join(steps), before, after)


def plan_dynamodb_on_demand(current: dict[str, Any], params: CapacityParams) -> Plan:
    before = _table_before(current)
    blocked = _table_blocked(current, before)
    if blocked:
        return blocked
    after = {"dimension": TABLE_CAPACITY, "billing_mode": "PAY_PER_REQUEST"}
    return Plan.change("table billing provisioned -> on-demand", before, after)


def plan_stage_throttle(current: dict[str, Any], params: CapacityParams) -> Plan:
    rate, burst = current["rate_limit"], current["burst_limit"]
    before = {"dimension": THROTTLE, "rate_limit": rate, "burst_limit": burst}
    if rate is None or burst is None or rate <= 0 or burst <= 0:
        return Plan.escalate(
            "the stage has no throttle of its own: 429s come from the account limit or a "
            "usage plan",
            before,
        )
    if rate >= params.max_rate_limit:
        return Plan.escalate(
            f"rate limit {rate}/s is at the cap ({params.max_rate_limit}/s)", before
        )
    if burst >= params.max_burst_limit:
        return Plan.escalate(
            f"burst limit {burst} is at the cap ({params.max_burst_limit})", before
        )
    new_rate = min(params.max_rate_limit, max(rate + 1, float(math.ceil(rate * params.factor))))
    new_burst = grow(burst, params.factor, params.max_burst_limit)
    after = {**before, "rate_limit": new_rate, "burst_limit": new_burst}
    return Plan.change(
        f"stage throttle {rate}/s burst {burst} -> {new_rate}/s burst {new_burst}", before, after
    )


PLANNERS: dict[str, Callable[[dict[str, Any], CapacityParams], Plan]] = {
    MEMORY: plan_memory,
    TIMEOUT: plan_timeout,
    RESERVED: plan_reserved_concurrency,
    PROVISIONED: plan_provisioned_concurrency,
    THROUGHPUT: plan_dynamodb_throughput,
    ON_DEMAND: plan_dynamodb_on_demand,
    THROTTLE: plan_stage_throttle,
}


# -- targets -----------------------------------------------------------------------------


def check_target(kind: str, target: str) -> None:
    """``RejectedError`` unless ``target`` is the kind of ARN ``kind`` acts on."""
    if kind in (MEMORY, TIMEOUT, RESERVED):
        if not _FUNCTION_ARN.match(target):
            raise RejectedError(
                f"{kind} needs a function ARN without a qualifier (an alias runs a published "
                f"version, whose configuration cannot change): {target[:200]!r}"
            )
    elif kind == PROVISIONED:
        parse_alias_arn(target)
    elif kind in (THROUGHPUT, ON_DEMAND):
        if not _TABLE_ARN.match(target):
            raise RejectedError(f"{kind} needs a DynamoDB table ARN: {target[:200]!r}")
    elif parse_stage_arn(target).kind != REST_STAGE:
        raise RejectedError(f"{kind} needs a REST API stage ARN: {target[:200]!r}")


def _table_name(target: str) -> str:
    return target.rsplit("/", 1)[1]


@register
class CapacityBump(Action):
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
        # is the table under auto scaling (which would undo an UpdateTable)?
        "application-autoscaling:DescribeScalableTargets",
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
    def resources(cls, target: str, params: dict[str, Any] | None = None) -> list[str]:
        if _FUNCTION_ARN.match(target) or _TABLE_ARN.match(target):
            return [target]
        if target.startswith("arn:") and ":apigateway:" in target:
            if parse_stage_arn(target).kind != REST_STAGE:
                raise RejectedError(f"capacity-bump takes REST API stages only: {target[:200]!r}")
            return [target]
        function_arn, _ = parse_alias_arn(target)
        return [function_arn, target]

    def read(self, target: str, params: ActionParams) -> dict[str, Any]:
        assert isinstance(params, CapacityParams)
        check_target(params.kind, target)
        dimension = DIMENSION[params.kind]
        state = {"dimension": dimension, **self._state(target, dimension)}
        # What decides whether a change would reach live traffic at all (plans only: verify
        # reads the values back, nothing more).
        if dimension in (MEMORY, TIMEOUT):
            state["aliases"] = self._aliases(target)
        elif dimension == TABLE_CAPACITY:
            state["autoscaled"] = self._scalable_targets(target, state["indexes"])
        return state

    def plan(self, current: dict[str, Any], params: ActionParams, now: datetime) -> Plan:
        assert isinstance(params, CapacityParams)
        if current.get("dimension") != DIMENSION[params.kind]:
            raise ValueError(
                f"read dimension {current.get('dimension')!r} for kind {params.kind!r}"
            )
        return PLANNERS[params.kind](current, params)

    def apply(self, target: str, plan: Plan) -> None:
        after = plan.after
        dimension = after["dimension"]
        if dimension in (MEMORY, TIMEOUT, RESERVED, PROVISIONED):
            self._apply_function(target, after)
        elif dimension == TABLE_CAPACITY:
            self._apply_table(target, plan)
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

    def _apply_function(self, target: str, after: dict[str, Any]) -> None:
        lam = self.clients("lambda")
        dimension = after["dimension"]
        if dimension == MEMORY:
            lam.update_function_configuration(FunctionName=target, MemorySize=after["memory_mb"])
        elif dimension == TIMEOUT:
            lam.update_function_configuration(FunctionName=target, Timeout=after["timeout_seconds"])
        elif dimension == RESERVED:
            lam.put_function_concurrency(
                FunctionName=target, ReservedConcurrentExecutions=after["reserved_concurrency"]
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

    def verify(self, target: str, plan: Plan) -> dict[str, Any]:
        dimension = plan.after["dimension"]
        state = {"dimension": dimension, **self._state(target, dimension)}
        if dimension == PROVISIONED and state["status"] == "FAILED":
            raise VerifyError(f"provisioned concurrency FAILED: {state.get('reason')}")
        seen = {key: state.get(key) for key in plan.after}
        if seen != plan.after and dimension == TABLE_CAPACITY and state["status"] == "UPDATING":
            # DynamoDB shows the old capacity until the update finishes; UPDATING right
            # after our call is the change under way. Only ``plan.after``'s keys: the
            # after-state is what a revert compares with ``read`` (an extra key would make
            # every revert see a change that is not there).
            return dict(plan.after)
        if seen != plan.after:
            raise VerifyError(f"reads back as {seen}, expected {plan.after}")
        return seen

    # -- reads ----------------------------------------------------------------------------

    def _state(self, target: str, dimension: str) -> dict[str, Any]:
        """The current values (named as in plans) and what the preconditions need."""
        if dimension in (MEMORY, TIMEOUT):
            found = self.clients("lambda").get_function_configuration(FunctionName=target)
            return {
                "memory_mb": found["MemorySize"],
                "timeout_seconds": found["Timeout"],
                "updating": found.get("LastUpdateStatus") == "InProgress",
            }
        if dimension == RESERVED:
            found = self.clients("lambda").get_function_concurrency(FunctionName=target)
            return {"reserved_concurrency": found.get("ReservedConcurrentExecutions")}
        if dimension == PROVISIONED:
            return self._read_provisioned(target)
        if dimension == TABLE_CAPACITY:
            return self._read_table(target)
        if dimension == THROTTLE:
            return self._read_throttle(target)
        raise ValueError(f"unknown capacity dimension {dimension!r}")

    def _read_provisioned(self, target: str) -> dict[str, Any]:
        function_arn, alias = parse_alias_arn(target)
        lam = self.clients("lambda")
        try:
            found = lam.get_provisioned_concurrency_config(
                FunctionName=function_arn, Qualifier=alias
            )
        except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
            return {"provisioned_concurrency": 0, "status": None, "reason": None}
        return {
            "provisioned_concurrency": found.get("RequestedProvisionedConcurrentExecutions", 0),
            "status": found.get("Status"),
            "reason": found.get("StatusReason"),
        }

    def _read_table(self, target: str) -> dict[str, Any]:
        table = self.clients("dynamodb").describe_table(TableName=_table_name(target))["Table"]
        billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        throughput = table.get("ProvisionedThroughput") or {}
        return {
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

    def _scalable_targets(self, target: str, indexes: dict[str, Any]) -> list[dict[str, Any]]:
        """The Application Auto Scaling targets on the table and its GSIs."""
        table = _table_name(target)
        ids = [f"table/{table}", *(f"table/{table}/index/{name}" for name in sorted(indexes))]
        scaling = self.clients("application-autoscaling")
        found = []
        for start in range(0, len(ids), 50):  # at most 50 resource ids per request
            pages = scaling.get_paginator("describe_scalable_targets").paginate(
                ServiceNamespace="dynamodb", ResourceIds=ids[start : start + 50]
            )
            found += [
                {
                    "resource": item["ResourceId"],
                    "dimension": item["ScalableDimension"].rsplit(":", 1)[-1],
                    "min": item["MinCapacity"],
                    "max": item["MaxCapacity"],
                }
                for page in pages
                for item in page.get("ScalableTargets", [])
            ]
        return sorted(found, key=lambda t: (t["resource"], t["dimension"]))

    def _read_throttle(self, target: str) -> dict[str, Any]:
        stage = parse_stage_arn(target)
        found = self.clients("apigateway").get_stage(restApiId=stage.api_id, stageName=stage.stage)
        # Stage-wide throttling lives in the "*/*" method setting.
        settings = (found.get("methodSettings") or {}).get("*/*") or {}
        rate = settings.get("throttlingRateLimit")
        burst = settings.get("throttlingBurstLimit")
        return {
            "rate_limit": float(rate) if rate is not None else None,
            "burst_limit": int(burst) if burst is not None else None,
        }

    def _apply_table(self, target: str, plan: Plan) -> None:
        after = plan.after
        request: dict[str, Any] = {"TableName": _table_name(target)}
        if after["billing_mode"] != plan.before.get("billing_mode"):
            request["BillingMode"] = after["billing_mode"]
        if after["billing_mode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = _throughput(after)
            if plan.before.get("billing_mode") != "PROVISIONED":
                # Back to provisioned (a revert of on-demand): AWS refuses the switch unless
                # every GSI gets its throughput in the same request.
                updates = [
                    {"Update": {"IndexName": name, "ProvisionedThroughput": _throughput(units)}}
                    for name, units in sorted((after.get("indexes") or {}).items())
                ]
                if updates:
                    request["GlobalSecondaryIndexUpdates"] = updates
        self.clients("dynamodb").update_table(**request)


def _units(throughput: dict[str, Any]) -> dict[str, int]:
    """DynamoDB's ``ProvisionedThroughput`` -> ``{"read_units", "write_units"}``."""
    return {
        "read_units": throughput.get("ReadCapacityUnits", 0),
        "write_units": throughput.get("WriteCapacityUnits", 0),
    }


def _throughput(units: dict[str, Any]) -> dict[str, int]:
    """``{"read_units", "write_units"}`` -> DynamoDB's ``ProvisionedThroughput``."""
    return {"ReadCapacityUnits": units["read_units"], "WriteCapacityUnits": units["write_units"]}


def _replace(path: str, value: float | int) -> dict[str, str]:
    return {"op": "replace", "path": path, "value": str(value)}
