"""Pure plans and config rules of the edge actions: capacity-bump on auto-scaled tables,
api-cache, containment, cdn-invalidate and follow-up steps (no AWS)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.actions.api_cache import CacheParams, plan_cache
from serverless_remediation.remediation.actions.capacity import CapacityParams
from serverless_remediation.remediation.actions.capacity.autoscaling import (
    own_scaling,
    plan_autoscaled,
)
from serverless_remediation.remediation.actions.cdn_invalidate import (
    InvalidateParams,
    plan_invalidation,
)
from serverless_remediation.remediation.actions.containment import (
    Containment,
    ContainmentParams,
    plan_containment,
)
from serverless_remediation.remediation.audit import Entry, build_record
from serverless_remediation.remediation.followups import step_entry
from serverless_remediation.remediation.models import Outcome, RejectedError, Route, Source
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.stacks import catalog
from serverless_remediation.stacks.config import ConfigError, parse_env

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
CDK = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def scaled(read=(10, 20), write=(10, 20)) -> dict:
    return {
        "dimension": "dynamodb-autoscaling",
        "status": "ACTIVE",
        "scaling": {
            "read": {"min": read[0], "max": read[1]},
            "write": {"min": write[0], "max": write[1]},
        },
    }


class TestAutoScaledPlan:
    def test_raises_minimum_and_maximum_by_the_factor(self):
        plan = plan_autoscaled(scaled(), CapacityParams(kind="dynamodb-throughput"))
        assert plan.verdict == "change"
        assert plan.after["scaling"] == {
            "read": {"min": 15, "max": 30},
            "write": {"min": 15, "max": 30},
        }
        assert plan.before["scaling"]["read"] == {"min": 10, "max": 20}
        assert "read_units" not in plan.after  # auto scaling moves those: not recorded

    def test_the_cap_bounds_both_and_never_lowers_a_higher_maximum(self):
        params = CapacityParams(kind="dynamodb-throughput", max_read_units=24, max_write_units=24)
        plan = plan_autoscaled(scaled(read=(20, 22), write=(10, 500)), params)
        assert plan.after["scaling"] == {
            "read": {"min": 24, "max": 24},
            "write": {"min": 15, "max": 500},
        }

    def test_minimum_at_the_cap_escalates(self):
        params = CapacityParams(kind="dynamodb-throughput", max_read_units=10)
        plan = plan_autoscaled(scaled(), params)
        assert plan.verdict == "escalate"
        assert "read minimum 10 is at the cap (10)" in plan.summary
        assert plan.after == plan.before

    def test_a_table_not_active_escalates(self):
        plan = plan_autoscaled(
            {**scaled(), "status": "UPDATING"}, CapacityParams(kind="dynamodb-throughput")
        )
        assert plan.verdict == "escalate"

    def test_own_scaling_needs_every_wanted_unit_of_the_target_resource(self):
        targets = [
            {"resource": "table/orders", "dimension": "ReadCapacityUnits", "min": 1, "max": 5},
            {
                "resource": "table/orders/index/by-customer",
                "dimension": "WriteCapacityUnits",
                "min": 2,
                "max": 6,
            },
        ]
        assert own_scaling(TABLE, targets, ("read",)) == {"read": {"min": 1, "max": 5}}
        assert own_scaling(TABLE, targets, ("read", "write")) is None  # write not scaled
        index = f"{TABLE}/index/by-customer"
        assert own_scaling(index, targets, ("write",)) == {"write": {"min": 2, "max": 6}}
        assert own_scaling(index, targets, ("read",)) is None


class TestCachePlan:
    def test_off_goes_on_at_the_configured_size(self):
        plan = plan_cache({"enabled": False, "size": None, "status": None}, CacheParams(1.6))
        assert plan.verdict == "change"
        assert plan.after == {"enabled": True, "size": "1.6"}

    @pytest.mark.parametrize(
        "status", ["CREATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "FLUSH_IN_PROGRESS"]
    )
    def test_a_busy_cluster_escalates(self, status):
        plan = plan_cache({"enabled": False, "size": None, "status": status}, CacheParams())
        assert plan.verdict == "escalate"
        assert status in plan.summary

    def test_already_on_escalates(self):
        plan = plan_cache({"enabled": True, "size": "0.5", "status": "AVAILABLE"}, CacheParams())
        assert plan.verdict == "escalate"

    def test_only_sizes_aws_offers(self):
        with pytest.raises(ValueError, match="size_gb"):
            CacheParams(size_gb=1.0)


class TestContainmentPlan:
    def test_stage_goes_to_the_floor(self):
        current = {"kind": "stage-throttle", "rate_limit": 100.0, "burst_limit": 200}
        plan = plan_containment(current, ContainmentParams(kind="stage-throttle"))
        assert plan.verdict == "change"
        assert plan.after == {"kind": "stage-throttle", "rate_limit": 0.0, "burst_limit": 0}
        assert plan.before == current  # exactly what revert restores

    def test_a_stage_without_a_throttle_is_not_held(self):
        current = {"kind": "stage-throttle", "rate_limit": None, "burst_limit": None}
        plan = plan_containment(current, ContainmentParams(kind="stage-throttle"))
        assert plan.verdict == "change"

    def test_already_at_the_floor_is_a_noop(self):
        current = {"kind": "stage-throttle", "rate_limit": 0.0, "burst_limit": 0}
        assert plan_containment(current, ContainmentParams(kind="stage-throttle")).verdict == "noop"

    def test_web_acl_allow_with_custom_handling_goes_to_block_and_is_kept_for_revert(self):
        allow = {
            "Allow": {"CustomRequestHandling": {"InsertHeaders": [{"Name": "a", "Value": "b"}]}}
        }
        current = {"kind": "web-acl-block", "default_action": copy.deepcopy(allow)}
        plan = plan_containment(current, ContainmentParams(kind="web-acl-block"))
        assert plan.after == {"kind": "web-acl-block", "default_action": {"Block": {}}}
        assert plan.before["default_action"] == allow

    def test_never_automatic_and_nothing_a_manual_request_may_change(self):
        assert Containment.automatic is False
        assert Containment.limits == {}

    def test_target_kinds(self):
        stage = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod"
        acl = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/edge/1234"
        assert Containment.resources(stage, {"kind": "stage-throttle"}) == [stage]
        assert Containment.resources(acl, {"kind": "web-acl-block"}) == [acl]
        with pytest.raises(RejectedError):
            Containment.resources(acl, {"kind": "stage-throttle"})
        with pytest.raises(RejectedError):
            Containment.resources("arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/x/1")


class TestInvalidationPlan:
    def test_invalidates_the_paths(self):
        plan = plan_invalidation({"in_progress": 0, "paths": []}, InvalidateParams(("/b", "/a*")))
        assert plan.verdict == "change"
        assert plan.after == {"paths": ["/a*", "/b"], "invalidation": "requested"}

    def test_too_many_in_progress_escalates(self):
        plan = plan_invalidation({"in_progress": 3, "paths": []}, InvalidateParams())
        assert plan.verdict == "escalate"

    @pytest.mark.parametrize(
        "paths", [(), ("api/*",), ("/a*b",), tuple(f"/{n}" for n in range(16))]
    )
    def test_bad_paths_are_refused(self, paths):
        with pytest.raises(ValueError, match="path"):
            InvalidateParams(paths=paths)


class TestFollowUpRecords:
    def test_a_step_record_names_its_parent(self):
        parent = Entry(
            audit_id="a" * 32,
            correlation_id="corr",
            created_at=NOW,
            source=Source.ALARM,
            key="orders-error-rate",
            state="ALARM",
            requested_by="arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-error-rate",
            reason="5xx",
        )
        step = Route("cdn-invalidate", "arn:aws:cloudfront::123456789012:distribution/E1", {})
        entry = step_entry(parent, step, NOW)
        assert entry.parent == parent.audit_id
        assert entry.audit_id != parent.audit_id
        assert entry.correlation_id == "corr"
        record = build_record(entry, Outcome.PENDING)
        assert record["parent"] == parent.audit_id

    def test_the_playbook_reads_steps_and_refuses_nested_ones(self):
        step = {"action": "cdn-invalidate", "target": "arn:aws:cloudfront::1:distribution/E1"}
        route = {"action": "rollback", "target": "t", "then": [step]}
        book = Playbook.from_dict({"alarms": {"a": route}})
        assert book.alarms["a"].then[0].action == "cdn-invalidate"
        with pytest.raises(ValueError, match="then"):
            Playbook.from_dict({"alarms": {"a": {**route, "then": [{**step, "then": [step]}]}}})


def drill(**changes) -> dict:
    env = copy.deepcopy(CDK["environments"]["drill"])
    for key, value in changes.items():
        env[key] = value
    return env


class TestCatalogRules:
    def test_drill_routes(self):
        built = catalog.build(parse_env("autorem", "drill", drill()), REGISTRY)
        book = built.playbook()
        latency = book["alarms"]["autorem-drill-catalog-api-latency"]
        assert latency["action"] == "api-cache"
        rollback = book["alarms"]["autorem-drill-catalog-api-error-rate"]
        assert rollback["then"] == [
            {
                "action": "cdn-invalidate",
                "target": "arn:aws:cloudfront::123456789012:distribution/E2CATALOGCDN",
                "params": {"paths": ["/catalog/*", "/index.html"]},
            }
        ]
        assert [s.action for s in built.followups("rollback")] == ["cdn-invalidate"]
        # a stage not marked cacheable keeps acting on its function
        public = book["alarms"]["autorem-drill-public-api-latency"]
        assert public["action"] == "capacity-bump"

    def test_an_alarm_routed_to_a_manual_only_action_fails_the_synth(self):
        env = drill()
        stage = "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod"
        env["services"]["catalog-api"]["routes"] = {
            "error-rate": {
                "action": "containment",
                "target": stage,
                "params": {"kind": "stage-throttle"},
            }
        }
        with pytest.raises(ConfigError, match="containment is manual only"):
            catalog.build(parse_env("autorem", "drill", env), REGISTRY)

    def test_a_manual_only_follow_up_of_an_alarm_fails_the_synth(self):
        """Follow-up steps run automatically after their alarm's action: a manual-only action
        among them is refused as it is for the alarm itself."""
        cfg = parse_env("autorem", "drill", drill())
        built = catalog.build(cfg, REGISTRY)
        stage = "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod"
        step = Route("containment", stage, {"kind": "stage-throttle"})
        first = built.alarms[0]
        alarms = (dataclasses.replace(first, route=dataclasses.replace(first.route, then=(step,))),)
        with pytest.raises(ConfigError, match=r"then\[0\]: containment is manual only"):
            catalog._check(cfg, dataclasses.replace(built, alarms=alarms), REGISTRY)

    def test_api_cache_on_a_stage_not_marked_cacheable_fails_the_synth(self):
        env = drill()
        env["services"]["catalog-api"]["cacheable"] = False
        stage = "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod"
        env["inventory"] = [{"action": "api-cache", "target": stage}]
        with pytest.raises(ConfigError, match="cacheable: true"):
            catalog.build(parse_env("autorem", "drill", env), REGISTRY)

    def test_a_distribution_names_known_origins(self):
        env = drill()
        env["services"]["catalog-cdn"]["origins"] = ["nope"]
        with pytest.raises(ConfigError, match="origins: no service 'nope'"):
            catalog.build(parse_env("autorem", "drill", env), REGISTRY)

    def test_a_config_route_takes_no_follow_up_steps_by_hand(self):
        env = drill()
        env["services"]["catalog-api"]["routes"] = {
            "error-rate": {
                "action": "rollback",
                "target": "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod",
                "then": [],
            }
        }
        with pytest.raises(ConfigError):  # routes take no follow-up steps by hand: unknown key
            parse_env("autorem", "drill", env)
