"""capacity-bump on a DynamoDB table or GSI under Application Auto Scaling.

An UpdateTable on such a table is undone at the next scaling activity (OMNIX "DynamoDB
throttling": ``application-autoscaling register-scalable-target``). What lasts is the
scalable target's range: each step raises ``MinCapacity`` by ``factor`` (auto scaling then
provisions at least that at once) and ``MaxCapacity`` by the same factor, both at most the
configured cap (``max_read_units`` / ``max_write_units``). A maximum already above the cap (a
human set it) is left as it is: this action never lowers anything. The minimum at the cap:
escalate, change nothing.

``read`` decides: when every wanted unit (``units``: read, write or both) of the target's own
resource (the table, or the GSI a ``.../table/T/index/I`` target names) has a scalable
target, the state is this module's ``dynamodb-autoscaling`` one, and only the range is
recorded (the provisioned units move with auto scaling: recording them would make every
revert see a change that is not there). Some wanted units scaled and others not, or a GSI
scaled while the table target is not: the UpdateTable path escalates, as before.

Revert registers the recorded range again (``RegisterScalableTarget`` with both values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ...targets import build, parse
from ..base import Plan, VerifyError
from .plans import (
    AUTOSCALING,
    THROUGHPUT,
    CapacityCurrent,
    CapacityParams,
    CapacityState,
    ScalableTarget,
    ScalingBounds,
    grow,
    index_name,
    scaling_resource,
    table_name,
)

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.literals import ScalableDimensionType

Unit = Literal["read", "write"]
UNITS: tuple[Unit, ...] = ("read", "write")
_SUFFIX: dict[str, str] = {"read": "ReadCapacityUnits", "write": "WriteCapacityUnits"}


def wanted_units(params: CapacityParams) -> tuple[Unit, ...]:
    return tuple(unit for unit in UNITS if params.units in (unit, "both"))


def scalable_dimension(resource: str, unit: str) -> ScalableDimensionType:
    """``table/T`` + read -> ``dynamodb:table:ReadCapacityUnits`` (``index`` for a GSI)."""
    kind = "index" if "/index/" in resource else "table"
    dimension: ScalableDimensionType = f"dynamodb:{kind}:{_SUFFIX[unit]}"  # type: ignore[assignment]
    return dimension


def own_scaling(
    target: str, scaled: list[ScalableTarget], units: tuple[Unit, ...]
) -> dict[str, ScalingBounds] | None:
    """The target resource's range per wanted unit, or None unless every one is scaled."""
    resource = scaling_resource(target)
    found: dict[str, ScalingBounds] = {}
    for unit in units:
        for one in scaled:
            if one["resource"] == resource and one["dimension"] == _SUFFIX[unit]:
                found[unit] = {"min": one["min"], "max": one["max"]}
    return found if len(found) == len(units) else None


def plan_autoscaled(current: CapacityCurrent, params: CapacityParams) -> Plan[CapacityState]:
    """Pure: one step up of each wanted unit's range; escalate at the cap."""
    scaling = current.get("scaling") or {}
    before: CapacityState = {"dimension": AUTOSCALING, "scaling": dict(scaling)}
    if current.get("status") not in (None, "ACTIVE"):
        return Plan.escalate(f"table is {current.get('status')}, not ACTIVE", before)
    after_scaling: dict[str, ScalingBounds] = {}
    steps = []
    for unit in sorted(scaling):
        bounds = scaling[unit]
        cap = params.max_read_units if unit == "read" else params.max_write_units
        if bounds["min"] >= cap:
            return Plan.escalate(
                f"auto scaling {unit} minimum {bounds['min']} is at the cap ({cap})", before
            )
        new_min = grow(bounds["min"], params.factor, cap)
        new_max = max(bounds["max"], new_min, min(cap, grow(bounds["max"], params.factor, cap)))
        after_scaling[unit] = {"min": new_min, "max": new_max}
        steps.append(f"{unit} min {bounds['min']} -> {new_min}, max {bounds['max']} -> {new_max}")
    if not after_scaling:
        return Plan.escalate("no scalable target to raise", before)
    after: CapacityState = {"dimension": AUTOSCALING, "scaling": after_scaling}
    return Plan.change("auto scaling range " + "; ".join(steps), before, after)


# -- AWS calls ------------------------------------------------------------------------------


def read_scaling(
    client: ApplicationAutoScalingClient, target: str, units: tuple[Unit, ...]
) -> dict[str, ScalingBounds]:
    """The target resource's current range for ``units`` (a unit not scaled is left out)."""
    resource = scaling_resource(target)
    found: dict[str, ScalingBounds] = {}
    pages = client.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace="dynamodb", ResourceIds=[resource]
    )
    for page in pages:
        for item in page.get("ScalableTargets", []):
            for unit in units:
                if item["ScalableDimension"] == scalable_dimension(resource, unit):
                    found[unit] = {"min": item["MinCapacity"], "max": item["MaxCapacity"]}
    return found


def apply_scaling(
    client: ApplicationAutoScalingClient,
    target: str,
    before: Mapping[str, ScalingBounds],
    after: Mapping[str, ScalingBounds],
) -> None:
    """Register each changed range (an update of the existing target: both values sent)."""
    resource = scaling_resource(target)
    for unit, bounds in sorted(after.items()):
        if before.get(unit) == bounds:
            continue
        client.register_scalable_target(
            ServiceNamespace="dynamodb",
            ResourceId=resource,
            ScalableDimension=scalable_dimension(resource, unit),
            MinCapacity=bounds["min"],
            MaxCapacity=bounds["max"],
        )


def verify_scaling(
    client: ApplicationAutoScalingClient, target: str, plan: Plan[CapacityState]
) -> CapacityState:
    wanted = plan.after.get("scaling") or {}
    units = tuple(unit for unit in UNITS if unit in wanted)
    scaling = read_scaling(client, target, units)
    seen: CapacityState = {"dimension": AUTOSCALING, "scaling": dict(scaling)}
    if seen != plan.after:
        raise VerifyError(f"auto scaling reads back as {seen['scaling']}, expected {wanted}")
    return seen


def scalable_targets(
    client: ApplicationAutoScalingClient, target: str, indexes: Mapping[str, object]
) -> list[ScalableTarget]:
    """The Application Auto Scaling targets on the table and every one of its GSIs."""
    table = table_name(target)
    ids = [f"table/{table}", *(f"table/{table}/index/{name}" for name in sorted(indexes))]
    found: list[ScalableTarget] = []
    for start in range(0, len(ids), 50):  # at most 50 resource ids per request
        pages = client.get_paginator("describe_scalable_targets").paginate(
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


def table_resources(target: str, params: Mapping[str, Any] | None) -> list[str]:
    """IAM resources of a table or GSI target: the table (DescribeTable, UpdateTable), the
    GSI, and this account's and region's scalable targets (their ARNs end in an id AWS
    assigns: ``scalable-target/*`` is the narrowest pattern IAM takes)."""
    parsed = parse(target)
    table = build(parsed.partition, "dynamodb", parsed.region, parsed.account, "table/")
    found = [table + table_name(target)]
    if index_name(target):
        found.append(target)
    if params is None or params.get("kind") == THROUGHPUT:
        found.append(
            build(
                parsed.partition,
                "application-autoscaling",
                parsed.region,
                parsed.account,
                "scalable-target/*",
            )
        )
    return found
