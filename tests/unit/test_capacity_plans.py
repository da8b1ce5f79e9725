"""Pure pieces of capacity-bump: parameters, targets, the plan for each kind."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime

import pytest

from serverless_remediation.remediation.actions import get_action
from serverless_remediation.remediation.actions.base import ActionContext, Limit
from serverless_remediation.remediation.actions.capacity import (
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
from serverless_remediation.remediation.models import RejectedError
from serverless_remediation.remediation.scope import Deployment

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
DEPLOYMENT = Deployment(account="123456789012", region="eu-west-1")
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
ALIAS = f"{FUNCTION}:live"
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
REST = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod"
HTTP = "arn:aws:apigateway:eu-west-1::/apis/xyz789/stages/prod"


def params(kind: str, **over) -> CapacityParams:
    return CapacityParams(kind=kind, **over)


class TestParams:
    def test_registered_with_caps_a_manual_request_may_only_lower(self):
        assert get_action("capacity-bump") is CapacityBump
        caps_fields = {
            f.name for f in dataclasses.fields(CapacityParams) if f.name.startswith("max_")
        }
        assert caps_fields <= set(CapacityBump.limits)
        assert {CapacityBump.limits[name] for name in caps_fields} == {Limit.AT_MOST}
        assert CapacityBump.limits["factor"] is Limit.AT_MOST
        assert "kind" not in CapacityBump.limits  # the dimension is fixed by configuration

    def test_permissions_cover_the_reads_that_decide_reach(self):
        assert "lambda:ListAliases" in CapacityBump.permissions
        assert "application-autoscaling:DescribeScalableTargets" in CapacityBump.permissions

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
        scalable = "arn:aws:application-autoscaling:eu-west-1:123456789012:scalable-target/*"
        # a throughput route may meet an auto-scaled table: its range is then raised
        assert CapacityBump.resources(TABLE) == [TABLE, scalable]
        assert CapacityBump.resources(TABLE, {"kind": "dynamodb-throughput"}) == [TABLE, scalable]
        assert CapacityBump.resources(TABLE, {"kind": "dynamodb-on-demand"}) == [TABLE]
        index = f"{TABLE}/index/by-customer"
        assert CapacityBump.resources(index, {"kind": "dynamodb-throughput"}) == [
            TABLE,
            index,
            scalable,
        ]
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
        current = {
            "dimension": "lambda-memory",
            "memory_mb": 2500,
            "updating": False,
            "aliases": [],
        }
        plan = plan_memory(current, params("lambda-memory"))
        assert plan.verdict == "change"
        assert plan.before == {"dimension": "lambda-memory", "memory_mb": 2500}
        assert plan.after == {"dimension": "lambda-memory", "memory_mb": 3008}

    def test_memory_at_or_over_the_cap_escalates(self):
        for value in (3008, 4096):
            current = {"dimension": "lambda-memory", "memory_mb": value, "aliases": []}
            plan = plan_memory(current, params("lambda-memory"))
            assert plan.verdict == "escalate"
            assert plan.after == plan.before

    def test_update_in_progress_escalates(self):
        current = {
            "dimension": "lambda-timeout",
            "timeout_seconds": 30,
            "updating": True,
            "aliases": [],
        }
        plan = plan_timeout(current, params("lambda-timeout"))
        assert plan.verdict == "escalate"
        assert "being updated" in plan.summary

    @pytest.mark.parametrize(
        ("kind", "planner", "key", "what"),
        [
            ("lambda-memory", plan_memory, "memory_mb", "memory"),
            ("lambda-timeout", plan_timeout, "timeout_seconds", "timeout"),
        ],
    )
    def test_function_served_through_an_alias_escalates(self, kind, planner, key, what):
        current = {"dimension": kind, key: 30, "updating": False, "aliases": ["blue", "live"]}
        plan = planner(current, params(kind))
        assert plan.verdict == "escalate"
        assert f"served through alias blue, live: a {what} change reaches only $LATEST" in (
            plan.summary
        )
        assert "provisioned concurrency on the alias" in plan.summary
        assert plan.after == plan.before == {"dimension": kind, key: 30}

    def test_many_aliases_are_cut_short(self):
        aliases = [f"a{n}" for n in range(7)]
        current = {"dimension": "lambda-memory", "memory_mb": 512, "aliases": aliases}
        plan = plan_memory(current, params("lambda-memory"))
        assert "a0, a1, a2, a3, a4 and 2 more" in plan.summary

    def test_unknown_aliases_escalate(self):
        current = {"dimension": "lambda-memory", "memory_mb": 512, "updating": False}
        plan = plan_memory(current, params("lambda-memory"))
        assert plan.verdict == "escalate"
        assert "cannot tell whether the function is served through an alias" in plan.summary

    def test_timeout_reaches_the_aws_maximum_and_stops(self):
        kind = params("lambda-timeout", max_timeout_seconds=900)
        current = {"dimension": "lambda-timeout", "timeout_seconds": 800, "aliases": []}
        plan = plan_timeout(current, kind)
        assert plan.after["timeout_seconds"] == 900
        plan = plan_timeout({**current, "timeout_seconds": 900}, kind)
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
            "indexes": {"by-customer": {"read_units": 20, "write_units": 30}},
            "autoscaled": [],
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
        # and every GSI's throughput: going back to provisioned needs it (AWS refuses without)
        assert plan.before["indexes"] == {"by-customer": {"read_units": 20, "write_units": 30}}
        assert plan.after == {"dimension": "dynamodb-capacity", "billing_mode": "PAY_PER_REQUEST"}


SCALED = [
    {"resource": "table/orders", "dimension": "ReadCapacityUnits", "min": 5, "max": 100},
    {
        "resource": "table/orders/index/by-customer",
        "dimension": "WriteCapacityUnits",
        "min": 1,
        "max": 10,
    },
]


class TestAutoScaledTable:
    @pytest.mark.parametrize(
        ("kind", "planner"),
        [
            ("dynamodb-throughput", plan_dynamodb_throughput),
            ("dynamodb-on-demand", plan_dynamodb_on_demand),
        ],
    )
    def test_table_or_index_under_auto_scaling_escalates(self, kind, planner):
        current = {**TestTablePlans().table(), "autoscaled": SCALED}
        plan = planner(current, params(kind))
        assert plan.verdict == "escalate"
        assert "auto scaling would undo an UpdateTable" in plan.summary
        assert "raise the scalable target's minimum" in plan.summary
        assert "table/orders ReadCapacityUnits min 5 max 100" in plan.summary
        assert "table/orders/index/by-customer WriteCapacityUnits min 1 max 10" in plan.summary
        assert plan.after == plan.before

    def test_unknown_auto_scaling_escalates(self):
        current = TestTablePlans().table()
        del current["autoscaled"]
        plan = plan_dynamodb_throughput(current, params("dynamodb-throughput", units="read"))
        assert plan.verdict == "escalate"
        assert "cannot tell whether auto scaling manages the table" in plan.summary

    def test_throughput_bump_carries_the_index_throughput_unchanged(self):
        plan = plan_dynamodb_throughput(
            TestTablePlans().table(), params("dynamodb-throughput", units="read")
        )
        assert plan.after["indexes"] == plan.before["indexes"]


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
    ctx = ActionContext(clients=None, audit=None, deployment=DEPLOYMENT, clock=lambda: NOW)
    action = CapacityBump(ctx.for_target(FUNCTION))
    current = {"dimension": "lambda-memory", "memory_mb": 512, "updating": False, "aliases": []}
    kept = copy.deepcopy(current)
    action.plan(current, params("lambda-memory"), NOW)
    assert current == kept
    with pytest.raises(ValueError, match="dimension"):
        action.plan(current, params("lambda-timeout"), NOW)


def test_every_kind_has_a_planner():
    from serverless_remediation.remediation.actions.capacity import PLANNERS

    assert set(PLANNERS) == set(KINDS)
