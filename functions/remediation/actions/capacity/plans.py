"""capacity-bump's parameters, states and pure plans: one bounded step per kind."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Required, TypedDict, cast

from ...errors import RejectedError
from ..arns import REST_STAGE, parse_alias_arn, parse_stage_arn
from ..base import ActionParams, Plan

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
#: the state of a table or GSI under Application Auto Scaling: its scalable targets' range
AUTOSCALING = "dynamodb-autoscaling"

#: the state a kind reads and writes (both DynamoDB kinds change the table's capacity)
DIMENSION = {
    **{k: k for k in KINDS},
    THROUGHPUT: TABLE_CAPACITY,
    ON_DEMAND: TABLE_CAPACITY,
}


BillingMode = Literal["PROVISIONED", "PAY_PER_REQUEST"]


class Units(TypedDict):
    """A table's or a GSI's provisioned throughput."""

    read_units: int
    write_units: int


class ScalableTarget(TypedDict):
    """An Application Auto Scaling target on the table or one of its GSIs."""

    resource: str
    dimension: str
    min: int
    max: int


class ScalingBounds(TypedDict):
    """One scalable target's range (``MinCapacity``, ``MaxCapacity``)."""

    min: int
    max: int


class CapacityState(TypedDict, total=False):
    """The audit's before/after: the dimension and its values (only the dimension's keys)."""

    dimension: Required[str]
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None
    provisioned_concurrency: int
    billing_mode: BillingMode
    read_units: int
    write_units: int
    indexes: dict[str, Units]
    rate_limit: float | None
    burst_limit: int | None
    #: under auto scaling: "read" / "write" -> the target resource's range
    scaling: dict[str, ScalingBounds]


class CapacityCurrent(CapacityState, total=False):
    """What ``read`` sees: the state, plus what the preconditions need."""

    #: a Lambda update in progress
    updating: bool
    #: the function's aliases (None: unknown)
    aliases: list[str] | None
    #: provisioned concurrency's or the table's status
    status: str | None
    reason: str | None
    #: the table's auto scaling targets (None: unknown)
    autoscaled: list[ScalableTarget] | None
    #: the GSI a ``.../index/I`` target names (only its auto scaling range can be raised)
    index: str | None


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


def _step(
    current: CapacityCurrent, key: str, unit: str, cap: int, factor: float, what: str
) -> Plan[CapacityState]:
    value = int(cast(dict[str, Any], current)[key])
    before = cast(CapacityState, {"dimension": current["dimension"], key: value})
    if value >= cap:
        return Plan.escalate(f"{what} {value}{unit} is at the cap ({cap}{unit})", before)
    new = grow(value, factor, cap)
    after = cast(CapacityState, {**before, key: new})
    return Plan.change(f"{what} {value}{unit} -> {new}{unit}", before, after)


def _function_blocked(
    current: CapacityCurrent, before: CapacityState, what: str
) -> Plan[CapacityState] | None:
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


def plan_memory(current: CapacityCurrent, params: CapacityParams) -> Plan[CapacityState]:
    before: CapacityState = {"dimension": MEMORY, "memory_mb": current["memory_mb"]}
    blocked = _function_blocked(current, before, "memory")
    if blocked:
        return blocked
    return _step(current, "memory_mb", " MB", params.max_memory_mb, params.factor, "memory")


def plan_timeout(current: CapacityCurrent, params: CapacityParams) -> Plan[CapacityState]:
    before: CapacityState = {"dimension": TIMEOUT, "timeout_seconds": current["timeout_seconds"]}
    blocked = _function_blocked(current, before, "timeout")
    if blocked:
        return blocked
    cap = params.max_timeout_seconds
    return _step(current, "timeout_seconds", " s", cap, params.factor, "timeout")


def plan_reserved_concurrency(
    current: CapacityCurrent, params: CapacityParams
) -> Plan[CapacityState]:
    reserved = current["reserved_concurrency"]
    before: CapacityState = {"dimension": RESERVED, "reserved_concurrency": reserved}
    if reserved is None:
        return Plan.escalate(
            "no reserved concurrency: throttles come from the account's unreserved pool",
            before,
        )
    if reserved == 0:
        return Plan.escalate("reserved concurrency is 0: the function was switched off", before)
    cap = params.max_reserved_concurrency
    return _step(current, "reserved_concurrency", "", cap, params.factor, "reserved concurrency")


def plan_provisioned_concurrency(
    current: CapacityCurrent, params: CapacityParams
) -> Plan[CapacityState]:
    provisioned = current["provisioned_concurrency"]
    before: CapacityState = {"dimension": PROVISIONED, "provisioned_concurrency": provisioned}
    if current.get("status") == "IN_PROGRESS":
        return Plan.escalate("provisioned concurrency is still being allocated", before)
    cap = params.max_provisioned_concurrency
    if provisioned == 0 and cap > 0:
        start = min(params.provisioned_start, cap)
        after: CapacityState = {**before, "provisioned_concurrency": start}
        return Plan.change(f"provisioned concurrency none -> {start}", before, after)
    return _step(
        current, "provisioned_concurrency", "", cap, params.factor, "provisioned concurrency"
    )


def _table_before(current: CapacityCurrent) -> CapacityState:
    before: CapacityState = {"dimension": TABLE_CAPACITY, "billing_mode": current["billing_mode"]}
    if current["billing_mode"] == "PROVISIONED":
        # Each GSI's throughput too: going back to provisioned (a revert) must send it.
        before["read_units"] = current["read_units"]
        before["write_units"] = current["write_units"]
        before["indexes"] = current["indexes"]
    return before


def _table_blocked(current: CapacityCurrent, before: CapacityState) -> Plan[CapacityState] | None:
    if current["status"] != "ACTIVE":
        return Plan.escalate(f"table is {current['status']}, not ACTIVE", before)
    if current["billing_mode"] == "PAY_PER_REQUEST":
        return Plan.escalate("table is on-demand already: throttling has another cause", before)
    if current.get("index"):
        return Plan.escalate(
            f"GSI {current.get('index')} is not under Application Auto Scaling for every "
            "wanted unit: only an auto-scaled GSI's range is raised here; a human decides",
            before,
        )
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


def plan_dynamodb_throughput(
    current: CapacityCurrent, params: CapacityParams
) -> Plan[CapacityState]:
    before = _table_before(current)
    blocked = _table_blocked(current, before)
    if blocked:
        return blocked
    after = before.copy()
    steps = []
    if params.units in ("read", "both"):
        value, cap = before["read_units"], params.max_read_units
        if value >= cap:
            return Plan.escalate(f"read capacity {value} is at the cap ({cap})", before)
        after["read_units"] = grow(value, params.factor, cap)
        steps.append(f"read {value} -> {after['read_units']}")
    if params.units in ("write", "both"):
        value, cap = before["write_units"], params.max_write_units
        if value >= cap:
            return Plan.escalate(f"write capacity {value} is at the cap ({cap})", before)
        after["write_units"] = grow(value, params.factor, cap)
        steps.append(f"write {value} -> {after['write_units']}")
    return Plan.change("provisioned " + ", ".join(steps), before, after)


def plan_dynamodb_on_demand(
    current: CapacityCurrent, params: CapacityParams
) -> Plan[CapacityState]:
    before = _table_before(current)
    blocked = _table_blocked(current, before)
    if blocked:
        return blocked
    after: CapacityState = {"dimension": TABLE_CAPACITY, "billing_mode": "PAY_PER_REQUEST"}
    return Plan.change("table billing provisioned -> on-demand", before, after)


def plan_stage_throttle(current: CapacityCurrent, params: CapacityParams) -> Plan[CapacityState]:
    rate, burst = current["rate_limit"], current["burst_limit"]
    before: CapacityState = {"dimension": THROTTLE, "rate_limit": rate, "burst_limit": burst}
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
    after: CapacityState = {**before, "rate_limit": new_rate, "burst_limit": new_burst}
    return Plan.change(
        f"stage throttle {rate}/s burst {burst} -> {new_rate}/s burst {new_burst}", before, after
    )


PLANNERS: dict[str, Callable[[CapacityCurrent, CapacityParams], Plan[CapacityState]]] = {
    MEMORY: plan_memory,
    TIMEOUT: plan_timeout,
    RESERVED: plan_reserved_concurrency,
    PROVISIONED: plan_provisioned_concurrency,
    THROUGHPUT: plan_dynamodb_throughput,
    ON_DEMAND: plan_dynamodb_on_demand,
    THROTTLE: plan_stage_throttle,
}


FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+$")
TABLE_ARN = re.compile(r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]+$")
#: a GSI: auto-scaled ones only (``dynamodb-throughput``), its range is what is raised
INDEX_ARN = re.compile(
    r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]+/index/[A-Za-z0-9_.-]+$"
)


# -- targets -----------------------------------------------------------------------------


def check_target(kind: str, target: str) -> None:
    """``RejectedError`` unless ``target`` is the kind of ARN ``kind`` acts on."""
    if kind in (MEMORY, TIMEOUT, RESERVED):
        if not FUNCTION_ARN.match(target):
            raise RejectedError(
                f"{kind} needs a function ARN without a qualifier (an alias runs a published "
                f"version, whose configuration cannot change): {target[:200]!r}"
            )
    elif kind == PROVISIONED:
        parse_alias_arn(target)
    elif kind == THROUGHPUT:
        if not (TABLE_ARN.match(target) or INDEX_ARN.match(target)):
            raise RejectedError(f"{kind} needs a DynamoDB table or GSI ARN: {target[:200]!r}")
    elif kind == ON_DEMAND:
        if not TABLE_ARN.match(target):
            raise RejectedError(f"{kind} needs a DynamoDB table ARN: {target[:200]!r}")
    elif parse_stage_arn(target).kind != REST_STAGE:
        raise RejectedError(f"{kind} needs a REST API stage ARN: {target[:200]!r}")


def table_name(target: str) -> str:
    """``.../table/T`` or ``.../table/T/index/I`` -> ``T``."""
    return target.split(":table/", 1)[1].split("/", 1)[0]


def index_name(target: str) -> str | None:
    """The GSI a ``.../table/T/index/I`` target names, else None."""
    _, _, index = target.partition("/index/")
    return index or None


def scaling_resource(target: str) -> str:
    """Application Auto Scaling's resource id: ``table/T`` or ``table/T/index/I``."""
    return target.split(":", 5)[5]
