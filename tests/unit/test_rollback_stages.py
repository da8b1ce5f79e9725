"""Pure pieces of rollback for API Gateway stages: ARNs, IAM resources, the plan."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.base import ActionContext
from serverless_remediation.remediation.actions.rollback import (
    HTTP_STAGE,
    LAMBDA_ALIAS,
    REST_STAGE,
    Rollback,
    RollbackParams,
    parse_stage_arn,
    plan_http_stage_rollback,
    plan_rest_stage_rollback,
    previous_deployment,
    target_kind,
)
from serverless_remediation.remediation.models import RejectedError
from serverless_remediation.remediation.scope import Deployment

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
DEPLOYMENT = Deployment(account="123456789012", region="eu-west-1")
REST = "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod"
HTTP = "arn:aws:apigateway:eu-west-1::/apis/xyz789/stages/$default"
ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def history(*items: tuple[str, float | None]) -> list[dict]:
    return [{"id": i, "created": at(age) if age is not None else None} for i, age in items]


class TestTargets:
    def test_stage_arns_parse(self):
        rest, http = parse_stage_arn(REST), parse_stage_arn(HTTP)
        assert (rest.kind, rest.api_id, rest.stage) == (REST_STAGE, "abc123", "prod")
        assert (http.kind, http.api_id, http.stage) == (HTTP_STAGE, "xyz789", "$default")
        assert rest.api_arn == "arn:aws:apigateway:eu-west-1::/restapis/abc123"

    @pytest.mark.parametrize(
        "target",
        [
            "arn:aws:apigateway:eu-west-1::/restapis/abc123",
            "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod/extra",
            "arn:aws:apigateway:eu-west-1::/domainnames/x/stages/prod",
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/",
            "arn:aws:lambda:eu-west-1:123456789012:function:orders",
            "orders",
        ],
    )
    def test_other_targets_are_rejected(self, target):
        with pytest.raises(RejectedError):
            Rollback.resources(target)

    def test_kind_follows_the_arn(self):
        assert [target_kind(t) for t in (ALIAS, REST, HTTP)] == [
            LAMBDA_ALIAS,
            REST_STAGE,
            HTTP_STAGE,
        ]

    def test_iam_resources_cover_stage_stages_and_deployments(self):
        assert Rollback.resources(REST) == [
            REST,
            "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages",
            "arn:aws:apigateway:eu-west-1::/restapis/abc123/deployments",
            "arn:aws:apigateway:eu-west-1::/restapis/abc123/deployments/*",
        ]
        assert Rollback.resources(HTTP)[1:3] == [
            "arn:aws:apigateway:eu-west-1::/apis/xyz789/stages",
            "arn:aws:apigateway:eu-west-1::/apis/xyz789/deployments",
        ]
        assert Rollback.resources(ALIAS) == [ALIAS.rsplit(":", 1)[0], ALIAS]
        assert {"apigateway:GET", "apigateway:PATCH"} <= set(Rollback.permissions)


class TestPreviousDeployment:
    def test_newest_earlier_deployment_wins(self):
        found = previous_deployment("c", history(("a", 300), ("b", 120), ("c", 10)), 60, NOW)
        assert found == ("b", "")

    def test_newer_deployments_than_the_live_one_are_not_predecessors(self):
        deployments = history(("a", 300), ("b", 20), ("c", 10))
        assert previous_deployment("b", deployments, 60, NOW) == ("a", "")

    def test_exactly_at_the_window_still_acts(self):
        assert previous_deployment("b", history(("a", 300), ("b", 60)), 60, NOW)[0] == "a"
        previous, why = previous_deployment("b", history(("a", 300), ("b", 61)), 60, NOW)
        assert previous is None
        assert "61 min ago" in why

    @pytest.mark.parametrize(
        ("deployments", "why"),
        [
            (history(("a", 20), ("b", 10), ("c", 10)), "same second as the live"),
            (history(("a", 20), ("x", 20), ("c", 10)), "cannot tell which was live before"),
            (history(("a", 20), ("c", None)), "cannot tell when deployment c was created"),
            (history(("a", 20)), "cannot tell when deployment c was created"),
            (history(("c", 10)), "no predecessor"),
        ],
        ids=["tie-with-live", "tie-among-earlier", "no-date", "live-missing", "only-one"],
    )
    def test_unsure_means_none(self, deployments, why):
        previous, reason = previous_deployment("c", deployments, 60, NOW)
        assert previous is None
        assert why in reason

    def test_failed_deployments_are_skipped(self):
        deployments = history(("a", 300), ("b", 120), ("c", 10))
        deployments[1]["status"] = "FAILED"
        deployments[0]["status"] = deployments[2]["status"] = "DEPLOYED"
        assert previous_deployment("c", deployments, 60, NOW) == ("a", "")


class TestStagePlans:
    def rest(self, **over):
        current = {
            "kind": REST_STAGE,
            "stage": "prod",
            "stages": ["prod"],
            "deployment_id": "c",
            "canary_percent": 0.0,
            "deployments": history(("a", 300), ("b", 120), ("c", 10)),
        }
        return {**current, **over}

    def test_rest_plan_goes_back_one_deployment(self):
        plan = plan_rest_stage_rollback(self.rest(), 60, NOW)
        assert plan.verdict == "change"
        assert (plan.before, plan.after) == ({"deployment_id": "c"}, {"deployment_id": "b"})

    def test_rest_plan_escalates_under_a_canary_or_without_a_deployment(self):
        assert plan_rest_stage_rollback(self.rest(canary_percent=10.0), 60, NOW).verdict == (
            "escalate"
        )
        plan = plan_rest_stage_rollback(self.rest(deployment_id=None), 60, NOW)
        assert (plan.verdict, plan.after) == ("escalate", {"deployment_id": None})

    @pytest.mark.parametrize("auto_deploy", [True, False])
    def test_http_plan_always_leaves_auto_deploy_off(self, auto_deploy):
        current = {**self.rest(), "kind": HTTP_STAGE, "auto_deploy": auto_deploy}
        plan = plan_http_stage_rollback(current, 60, NOW)
        assert plan.before == {"deployment_id": "c", "auto_deploy": auto_deploy}
        assert plan.after == {"deployment_id": "b", "auto_deploy": False}
        assert ("auto-deploy off" in plan.summary) is auto_deploy

    def test_plans_do_not_touch_their_input(self):
        current = self.rest()
        kept = copy.deepcopy(current)
        ctx = ActionContext(
            clients=None, audit=None, deployment=DEPLOYMENT, clock=lambda: NOW
        ).for_target(REST)
        Rollback(ctx).plan(current, RollbackParams(), NOW)
        assert current == kept

    def test_escalated_plans_change_nothing(self):
        plan = plan_rest_stage_rollback(self.rest(), 5, NOW)
        assert plan.verdict == "escalate"
        assert plan.after == plan.before


class TestStageHistory:
    """API Gateway keeps no deployment history per stage: with other stages, escalate."""

    def current(self, kind: str, stages: list[str] | None) -> dict:
        current = {
            "kind": kind,
            "stage": "prod",
            "stages": stages,
            "deployment_id": "c",
            "canary_percent": 0.0,
            "auto_deploy": False,
            # "b" may well be the staging stage's deployment: nothing in AWS says which
            "deployments": history(("a", 300), ("b", 120), ("c", 10)),
        }
        return current

    @pytest.mark.parametrize(
        "planner", [plan_rest_stage_rollback, plan_http_stage_rollback], ids=["rest", "http"]
    )
    def test_other_stages_escalate_and_are_named(self, planner):
        kind = REST_STAGE if planner is plan_rest_stage_rollback else HTTP_STAGE
        plan = planner(self.current(kind, ["dev", "prod", "staging"]), 60, NOW)
        assert plan.verdict == "escalate"
        assert "other stages (dev, staging) besides prod" in plan.summary
        assert "no deployment history per stage" in plan.summary
        assert plan.after == plan.before

    @pytest.mark.parametrize(
        "planner", [plan_rest_stage_rollback, plan_http_stage_rollback], ids=["rest", "http"]
    )
    def test_the_only_stage_goes_back_one_deployment(self, planner):
        kind = REST_STAGE if planner is plan_rest_stage_rollback else HTTP_STAGE
        plan = planner(self.current(kind, ["prod"]), 60, NOW)
        assert plan.verdict == "change"
        assert plan.after["deployment_id"] == "b"

    def test_unknown_stages_escalate(self):
        plan = plan_rest_stage_rollback(self.current(REST_STAGE, None), 60, NOW)
        assert plan.verdict == "escalate"
        assert "cannot tell which stages" in plan.summary

    def test_many_other_stages_are_cut_short(self):
        stages = ["prod", *(f"s{n:02d}" for n in range(12))]
        plan = plan_rest_stage_rollback(self.current(REST_STAGE, stages), 60, NOW)
        assert "s09 and 2 more" in plan.summary
        assert "s10" not in plan.summary
