"""capacity-bump ("dynamodb-throughput") on a table or GSI under Application Auto Scaling:
the scalable target's range is raised with RegisterScalableTarget (moto implements it),
never an UpdateTable; the revert registers the recorded range again."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from serverless_remediation.remediation.actions.base import Plan
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_capacity import alarm, playbook, throughput
from tests.functional.actions.test_capacity_reach import (
    INDEX,
    make_indexed_table,
    revert,
)
from tests.functional.actions.wire import Wire

PARAMS = {"kind": "dynamodb-throughput", "max_read_units": 40, "max_write_units": 40}


def register(stack, resource: str, unit: str, low: int, high: int) -> None:
    kind = "index" if "/index/" in resource else "table"
    stack.clients("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId=resource,
        ScalableDimension=f"dynamodb:{kind}:{unit}CapacityUnits",
        MinCapacity=low,
        MaxCapacity=high,
    )


def ranges(stack, resource: str) -> dict[str, tuple[int, int]]:
    found = stack.clients("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="dynamodb", ResourceIds=[resource]
    )["ScalableTargets"]
    return {
        t["ScalableDimension"].rsplit(":", 1)[1]: (t["MinCapacity"], t["MaxCapacity"])
        for t in found
    }


def scaled_table(stack, low: int = 10, high: int = 20) -> str:
    target = make_indexed_table(stack)
    register(stack, "table/orders", "Read", low, high)
    register(stack, "table/orders", "Write", low, high)
    return target


def test_table_under_auto_scaling_raises_its_range_not_the_table(stack):
    target = scaled_table(stack)
    wire = Wire(stack.clients("dynamodb"))
    result = alarm(stack, target, PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    # min 10 -> 15, max 20 -> 30 (factor 1.5, cap 40)
    assert ranges(stack, "table/orders") == {
        "ReadCapacityUnits": (15, 30),
        "WriteCapacityUnits": (15, 30),
    }
    assert wire.attempts["UpdateTable"] == 0
    assert throughput(stack, target) == (5, 5)
    assert result.before == {
        "dimension": "dynamodb-autoscaling",
        "scaling": {"read": {"min": 10, "max": 20}, "write": {"min": 10, "max": 20}},
    }
    assert result.after["scaling"]["read"] == {"min": 15, "max": 30}


def test_a_gsi_target_raises_the_gsi_range(stack):
    target = make_indexed_table(stack)
    register(stack, f"table/orders/index/{INDEX}", "Read", 4, 8)
    index = f"{target}/index/{INDEX}"
    result = alarm(stack, index, {**PARAMS, "units": "read"})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert ranges(stack, f"table/orders/index/{INDEX}") == {"ReadCapacityUnits": (6, 12)}
    assert ranges(stack, "table/orders") == {}


def test_a_gsi_without_auto_scaling_escalates(stack):
    target = make_indexed_table(stack)
    wire = Wire(stack.clients("dynamodb"))
    result = alarm(stack, f"{target}/index/{INDEX}", PARAMS)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert f"GSI {INDEX} is not under Application Auto Scaling" in result.reason
    assert wire.attempts["UpdateTable"] == 0


def test_maximum_stops_at_the_cap_and_a_higher_one_is_kept(stack):
    target = make_indexed_table(stack)
    register(stack, "table/orders", "Read", 30, 38)
    register(stack, "table/orders", "Write", 10, 200)
    result = alarm(stack, target, PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert ranges(stack, "table/orders") == {
        "ReadCapacityUnits": (40, 40),  # both at the cap
        "WriteCapacityUnits": (15, 200),  # a maximum above the cap is never lowered
    }


def test_minimum_at_the_cap_escalates_and_changes_nothing(stack):
    target = scaled_table(stack, low=40, high=80)
    result = alarm(stack, target, PARAMS)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "minimum 40 is at the cap (40)" in result.reason
    assert ranges(stack, "table/orders")["ReadCapacityUnits"] == (40, 80)


def test_dry_run_changes_nothing(stack):
    target = scaled_table(stack)
    stack.set_switch("dry-run")
    result = alarm(stack, target, PARAMS)

    assert result.outcome is Outcome.DRY_RUN, result.reason
    assert "would auto scaling range read min 10 -> 15" in result.reason
    assert ranges(stack, "table/orders")["ReadCapacityUnits"] == (10, 20)


def test_revert_registers_the_recorded_range_again(stack):
    target = scaled_table(stack)
    bumped = alarm(stack, target, PARAMS)
    assert bumped.outcome is Outcome.EXECUTED, bumped.reason

    result = revert(stack, bumped.audit_id, target, PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert ranges(stack, "table/orders") == {
        "ReadCapacityUnits": (10, 20),
        "WriteCapacityUnits": (10, 20),
    }


def test_revert_refuses_when_someone_changed_the_range_since(stack):
    target = scaled_table(stack)
    bumped = alarm(stack, target, PARAMS)
    register(stack, "table/orders", "Read", 25, 50)  # a human raised it further

    result = revert(stack, bumped.audit_id, target, PARAMS)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "changed since audit" in result.reason
    assert ranges(stack, "table/orders")["ReadCapacityUnits"] == (25, 50)


def test_verify_fails_when_the_range_does_not_read_back(stack):
    target = scaled_table(stack)
    from tests.functional.actions.test_capacity import action_for

    action = action_for(stack, target)
    params = action.Params.from_dict(PARAMS)
    plan: Plan[Any] = action.plan(action.read(target, params), params, stack.now)
    # AWS accepted nothing (RegisterScalableTarget never sent): the range reads back as before
    with pytest.raises(Exception, match="auto scaling reads back as"):
        action.verify(target, plan)


def test_register_request_matches_the_api_model(stack):
    """Each changed range is sent with both values, for the table's own resource id."""
    from serverless_remediation.remediation.actions.capacity.autoscaling import apply_scaling

    client = stack.clients("application-autoscaling")
    with Stubber(client) as stub:
        for unit in ("Read", "Write"):
            stub.add_response(
                "register_scalable_target",
                {},
                {
                    "ServiceNamespace": "dynamodb",
                    "ResourceId": "table/orders",
                    "ScalableDimension": f"dynamodb:table:{unit}CapacityUnits",
                    "MinCapacity": 15,
                    "MaxCapacity": 30,
                },
            )
        apply_scaling(
            client,
            "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
            {"read": {"min": 10, "max": 20}, "write": {"min": 10, "max": 20}},
            {"read": {"min": 15, "max": 30}, "write": {"min": 15, "max": 30}},
        )
        stub.assert_no_pending_responses()


def test_gsi_throttle_alarm_event_acts_on_the_gsi(stack):
    """The real-format GSI throttle alarm (tests/events) routed to the GSI's range."""
    target = make_indexed_table(stack)
    register(stack, f"table/orders/index/{INDEX}", "Read", 4, 8)
    book = playbook(f"{target}/index/{INDEX}", {**PARAMS, "units": "read"})
    book["alarms"] = {"test-orders-gsi-throttles": book["alarms"].popitem()[1]}
    pipeline = stack.pipeline(book)
    (result,) = pipeline.handle(stack.event("sns_alarm_dynamodb_gsi_throttles.json"))

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert ranges(stack, f"table/orders/index/{INDEX}") == {"ReadCapacityUnits": (6, 12)}
