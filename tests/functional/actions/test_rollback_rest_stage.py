"""rollback of an API Gateway REST stage, through the pipeline against the moto server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from moto.apigateway.models import apigateway_backends

from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation.actions.base import ActionContext, Plan
from serverless_remediation.remediation.actions.rollback import Rollback, RollbackParams
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.models import Outcome
from tests.conftest import DEPLOYMENT
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"


def make_api(stack, ages_minutes: list[float]) -> tuple[str, str, list[str]]:
    """A REST API whose prod stage had one deployment per age (oldest first), the last live.

    moto stamps deployments with the wall clock; they are re-dated relative to ``stack.now``
    in the emulator's memory (the server runs in this process).
    """
    gateway = stack.clients("apigateway")
    api = gateway.create_rest_api(name="orders")["id"]
    root = gateway.get_resources(restApiId=api)["items"][0]["id"]
    gateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    ids = [gateway.create_deployment(restApiId=api, stageName="prod")["id"] for _ in ages_minutes]
    stored = apigateway_backends[ACCOUNT][REGION].apis[api].deployments
    for deployment, age in zip(ids, ages_minutes, strict=True):
        stored[deployment].created_date = int((stack.now - timedelta(minutes=age)).timestamp())
    target = f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/prod"
    return target, api, ids


def live(stack, api: str) -> str:
    return stack.clients("apigateway").get_stage(restApiId=api, stageName="prod")["deploymentId"]


def alarm(stack, target: str, params: dict | None = None):
    route = {"action": "rollback", "target": target, "params": params or {}}
    (result,) = stack.pipeline({"alarms": {ALARM: route}}).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    return result


def test_recent_deploy_rolls_stage_back_to_previous_deployment(stack):
    target, api, (_first, second, third) = make_api(stack, [300, 120, 10])
    result = alarm(stack, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live(stack, api) == second
    assert result.before == {"deployment_id": third}
    assert result.after == {"deployment_id": second}
    (record,) = stack.audit_items()
    assert record["after_state"] == {"deployment_id": second}
    assert "did rollback" in stack.notices()[0]["subject"]


@pytest.mark.parametrize(
    ("ages", "params", "why"),
    [
        ([300, 120], {}, "outside the 60 min window"),
        ([300, 120], {"window_minutes": 100}, "outside the 100 min window"),
        ([10], {}, "no predecessor"),
    ],
    ids=["old-deploy", "old-for-configured-window", "first-deploy"],
)
def test_precondition_not_met_escalates_and_changes_nothing(stack, ages, params, why):
    target, api, ids = make_api(stack, ages)
    result = alarm(stack, target, params)

    assert result.outcome is Outcome.ESCALATED
    assert why in result.reason
    assert live(stack, api) == ids[-1]
    assert "needs a human for rollback" in stack.notices()[0]["subject"]


def test_configured_window_lets_an_older_deploy_roll_back(stack):
    target, api, (first, _second) = make_api(stack, [300, 120])
    result = alarm(stack, target, {"window_minutes": 180})

    assert result.outcome is Outcome.EXECUTED
    assert live(stack, api) == first


def test_dry_run_switch_plans_and_changes_nothing(stack):
    target, api, (_, second, third) = make_api(stack, [300, 120, 10])
    stack.set_switch("dry-run")
    result = alarm(stack, target)

    assert result.outcome is Outcome.DRY_RUN
    assert result.after == {"deployment_id": second}
    assert live(stack, api) == third
    assert "(dry-run) rollback" in stack.notices()[0]["subject"]


def test_update_that_does_not_show_fails_verify(stack):
    target, api, ids = make_api(stack, [120, 10])
    Wire(stack.clients("apigateway")).queue("UpdateStage", response(200, {}))
    result = alarm(stack, target)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert live(stack, api) == ids[-1]


def test_throttled_update_is_retried(stack, backoff):
    target, api, (first, _second) = make_api(stack, [120, 10])
    client = stack.clients("apigateway")
    wire = Wire(client).queue("UpdateStage", throttled(client), None)
    result = alarm(stack, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["UpdateStage"] == 2
    assert len(backoff) == 1
    assert live(stack, api) == first


def test_access_denied_fails_with_a_notice(stack):
    target, api, ids = make_api(stack, [120, 10])
    wire = Wire(stack.clients("apigateway")).queue("UpdateStage", denied())
    result = alarm(stack, target)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert wire.attempts["UpdateStage"] == 1
    assert live(stack, api) == ids[-1]
    (notice,) = stack.notices()
    assert "FAILED rollback" in notice["subject"]
    assert "AccessDeniedException" in notice["message"]


def test_applying_the_before_state_undoes_the_rollback(stack):
    """The contract ``revert`` relies on: apply makes the stage look like ``plan.after``."""
    target, api, (second, third) = make_api(stack, [120, 10])
    ctx = ActionContext(
        clients=stack.clients,
        audit=AuditLog(stack.clients("dynamodb"), stack.table),
        deployment=DEPLOYMENT,
        clock=lambda: stack.now,
    )
    action = Rollback(ctx.for_target(target))
    plan = action.plan(action.read(target, RollbackParams()), RollbackParams(), stack.now)
    action.apply(target, plan)
    assert live(stack, api) == second

    undo = Plan.change("revert", plan.after, plan.before)
    action.apply(target, undo)
    assert action.verify(target, undo) == {"deployment_id": third}
    assert live(stack, api) == third


def test_two_stage_api_escalates_naming_the_other_stage(stack):
    """prod's deployments sit in one list with staging's: the newest one before prod's live
    deployment (here staging's, 30 min old) need not be what prod ran before."""
    target, api, (_first, suspect) = make_api(stack, [300, 10])
    gateway = stack.clients("apigateway")
    staging = gateway.create_deployment(restApiId=api, stageName="staging")["id"]
    stored = apigateway_backends[ACCOUNT][REGION].apis[api].deployments
    stored[staging].created_date = int((stack.now - timedelta(minutes=30)).timestamp())
    result = alarm(stack, target)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "other stages (staging) besides prod" in result.reason
    assert "no deployment history per stage" in result.reason
    assert live(stack, api) == suspect
    assert "needs a human for rollback" in stack.notices()[0]["subject"]


def test_the_only_stage_of_its_api_still_rolls_back(stack):
    target, api, (first, _second) = make_api(stack, [120, 10])
    stages = stack.clients("apigateway").get_stages(restApiId=api)["item"]
    assert [s["stageName"] for s in stages] == ["prod"]
    result = alarm(stack, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live(stack, api) == first
