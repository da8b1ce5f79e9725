"""Pure pieces of capacity-bump: parameters, targets, the plan for each kind."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime

import pytest

from remediation.actions import get_action
from remediation.actions.capacity import (
    KINDS,
    CapacityBump,
    CapacityParams,
    check_target,
    grow,
    plan_dynamodb_on_demand,
    plan_dynamodb_throughput,
    plan_memory,
    plan_provisioned_concurrency,
    plan_reserved_concurrency,
    plan_stage_throttle,
    plan_timeout,
)
from remediation.models import RejectedError

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
ALIAS = f"{FUNCTION}:live"
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
REST = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod"
HTTP = "arn:aws:apigateway:eu-west-1::/apis/xyz789/stages/prod"


def params(kind: str, **over) -> CapacityParams:
    return CapacityParams(kind=kind, **over)


class TestParams:
    def test_registered_with_caps_config_only(self):
        assert get_action("capacity-bump") is CapacityBump
        caps_fields = {
            f.name for f in dataclasses.fields(CapacityParams) if f.name.startswith("max_")
        }
        assert caps_fields <= CapacityBump.caps
        assert "kind" in CapacityBump.caps
        assert "factor" not in CapacityBump.caps

    @pytest.mark.parametrize(
        "bad",
        [
            {"kind": "lambda-disk"},
            {"kind": "lambda-memory", "factor": 1.0},
            {"kind": "lambda-memory", "factor": 5},
            {"kind": "lambda-memory", "max_memory_mb": 10_241},
            {"kind": "lambda-timeout", "max_timeout_seconds": 901},
            {"kind": "dynamodb-throughput", "units": "all"},
            {"kind": "lambda-reserved-concurrency", "max_reserved_concurrency": 0},
            {"kind": "lambda-memory", "max_memory_mb": "3008"},
            {},
        ],
    )
    def test_invalid_params_are_rejected(self, bad):
        with pytest.raises(RejectedError):
            CapacityParams.from_dict(bad)

    def test_aws_maxima_are_allowed_as_caps(self):
        found = CapacityParams.from_dict(
            {"kind": "lambda-memory", "max_memory_mb": 10_240, "max_timeout_seconds": 900}
        )
        assert (found.max_memory_mb, found.max_timeout_seconds) == (10_240, 900)


class TestTargets:
    @pytest.mark.parametrize(
        ("kind", "target"),
        [
            ("lambda-memory", FUNCTION),
            ("lambda-timeout", FUNCTION),
            ("lambda-reserved-concurrency", FUNCTION),
            ("lambda-provisioned-concurrency", ALIAS),
            ("dynamodb-throughput", TABLE),
            ("dynamodb-on-demand", TABLE),
            ("apigateway-throttle", REST),
        ],
    )
    def test_each_kind_takes_its_target(self, kind, target):
        check_target(kind, target)
        assert target in CapacityBump.resources(target)

    @pytest.mark.parametrize(
        ("kind", "target"),
        [
            ("lambda-memory", ALIAS),
            ("lambda-reserved-concurrency", TABLE),
            ("lambda-provisioned-concurrency", FUNCTION),
            ("dynamodb-throughput", FUNCTION),
            ("apigateway-throttle", HTTP),
        ],
    )
    def test_mismatched_target_is_rejected(self, kind, target):
        with pytest.raises(RejectedError):
            check_target(kind, target)

    def test_iam_resources(self):
        assert CapacityBump.resources(ALIAS) == [FUNCTION, ALIAS]
        assert CapacityBump.resources(TABLE) == [TABLE]
        with pytest.raises(RejectedError):
            CapacityBump.resources(HTTP)


class TestGrow:
    @pytest.mark.parametrize(
        ("value", "factor", "cap", "expected"),
        [(512, 1.5, 3008, 768), (1, 1.5, 10, 2), (2000, 2.0, 3008, 3008), (30, 1.1, 900, 33)],
    )
    def test_step(self, value, factor, cap, expected):
        assert grow(value, factor, cap) == expected


class TestLambdaPlans:
    def test_memory_steps_and_clamps_to_the_cap(self):
        current = {"dimension": "lambda-memory", "memory_mb": 2500, "updating": False}
        plan = plan_memory(current, params("lambda-memory"))
        assert plan.verdict == "change"
        assert plan.before == {"dimension": "lambda-memory", "memory_mb": 2500}
        assert plan.after == {"dimension": "lambda-memory", "memory_mb": 3008}

    def test_memory_at_or_over_the_cap_escalates(self):
        for value in (3008, 4096):
            current = {"dimension": "lambda-memory", "memory_mb": value}
            plan = plan_memory(current, params("lambda-memory"))
            assert plan.verdict == "escalate"
            assert plan.after == plan.before

    def test_update_in_progress_escalates(self):
        current = {"dimension": "lambda-timeout", "timeout_seconds": 30, "updating": True}
        plan = plan_timeout(current, params("lambda-timeout"))
        assert plan.verdict == "escalate"
        assert "being updated" in plan.summary

    def test_timeout_reaches_the_aws_maximum_and_stops(self):
        kind = params("lambda-timeout", max_timeout_seconds=900)
        plan = plan_timeout({"dimension": "lambda-timeout", "timeout_seconds": 800}, kind)
        assert plan.after["timeout_seconds"] == 900
        plan = plan_timeout({"dimension": "lambda-timeout", "timeout_seconds": 900}, kind)
        assert plan.verdict == "escalate"

    @pytest.mark.parametrize(
        ("reserved", "verdict"), [(None, "escalate"), (0, "escalate"), (4, "change")]
    )
    def test_reserved_concurrency(self, reserved, verdict):
        current = {"dimension": "lambda-reserved-concurrency", "reserved_concurrency": reserved}
        plan = plan_reserved_concurrency(current, params("lambda-reserved-concurrency"))
        assert plan.verdict == verdict
        if verdict == "change":
            assert plan.after["reserved_concurrency"] == 6

    def test_provisioned_from_none_starts_at_start_but_not_over_the_cap(self):
        current = {"dimension": "lambda-provisioned-concurrency", "provisioned_concurrency": 0}
        kind = "lambda-provisioned-concurrency"
        assert (
            plan_provisioned_concurrency(current, params(kind)).after["provisioned_concurrency"]
            == 5
        )
        capped = plan_provisioned_concurrency(current, params(kind, max_provisioned_concurrency=3))
        assert capped.after["provisioned_concurrency"] == 3


class TestTablePlans:
    def table(self, **over):
        current = {
            "dimension": "dynamodb-capacity",
            "status": "ACTIVE",
            "billing_mode": "PROVISIONED",
            "read_units": 100,
            "write_units": 1000,
        }
        return {**current, **over}

    def test_one_side_only(self):
        plan = plan_dynamodb_throughput(self.table(), params("dynamodb-throughput", units="read"))
        assert plan.verdict == "change"
        assert (plan.after["read_units"], plan.after["write_units"]) == (150, 1000)

    def test_both_sides_with_one_at_the_cap_escalates(self):
        plan = plan_dynamodb_throughput(self.table(), params("dynamodb-throughput"))
        assert plan.verdict == "escalate"
        assert "write capacity 1000 is at the cap" in plan.summary

    def test_table_not_active_escalates(self):
        plan = plan_dynamodb_throughput(
            self.table(status="UPDATING"), params("dynamodb-throughput")
        )
        assert plan.verdict == "escalate"

    def test_on_demand_switch(self):
        plan = plan_dynamodb_on_demand(self.table(), params("dynamodb-on-demand"))
        assert plan.before["billing_mode"] == "PROVISIONED"
        assert plan.before["read_units"] == 100  # so a revert can restore it
        assert plan.after == {"dimension": "dynamodb-capacity", "billing_mode": "PAY_PER_REQUEST"}


class TestThrottlePlan:
    def stage(self, rate, burst):
        return {"dimension": "apigateway-throttle", "rate_limit": rate, "burst_limit": burst}

    def test_rate_and_burst_step_together(self):
        plan = plan_stage_throttle(self.stage(100.0, 200), params("apigateway-throttle"))
        assert (plan.after["rate_limit"], plan.after["burst_limit"]) == (150.0, 300)

    def test_fractional_rate_still_grows(self):
        plan = plan_stage_throttle(self.stage(0.5, 1), params("apigateway-throttle"))
        assert plan.after["rate_limit"] > 0.5
        assert plan.after["burst_limit"] == 2

    @pytest.mark.parametrize(("rate", "burst"), [(None, None), (-1.0, -1), (100.0, None)])
    def test_no_stage_throttle_escalates(self, rate, burst):
        plan = plan_stage_throttle(self.stage(rate, burst), params("apigateway-throttle"))
        assert plan.verdict == "escalate"

    def test_burst_at_the_cap_escalates(self):
        kind = params("apigateway-throttle", max_burst_limit=200)
        assert plan_stage_throttle(self.stage(100.0, 200), kind).verdict == "escalate"


def test_plan_is_pure_and_checks_the_dimension():
    action = CapacityBump(clients=None)
    current = {"dimension": "lambda-memory", "memory_mb": 512, "updating": False}
    kept = copy.deepcopy(current)
    action.plan(current, params("lambda-memory"), NOW)
    assert current == kept
    with pytest.raises(ValueError, match="dimension"):
        action.plan(current, params("lambda-timeout"), NOW)


def test_every_kind_has_a_planner():
    from remediation.actions.capacity import PLANNERS

    assert set(PLANNERS) == set(KINDS)
