"""ecs-restart, ecs-scale and ecs-rollback through the whole pipeline: against the moto server
where moto shows what AWS does (UpdateService, RegisterScalableTarget), with a Stubber where it
cannot (a rollout still in progress at verify time; task definitions' registeredAt, which moto
leaves empty; a new deployment's task definition, which moto does not change)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.drill.resources_data import create_service, service_state
from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation.actions.ecs.plans import RESTART_NOT_REVERTABLE
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome

SERVICE = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/aureus/bridge"
TD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/bridge"
DOWN, LATENCY, ERRORS = "test-bridge-service-down", "test-bridge-latency", "test-bridge-error-rate"
EVENTS = {
    DOWN: "sns_alarm_ecs_service_down.json",
    LATENCY: "sns_alarm_ecs_latency.json",
    ERRORS: "sns_alarm_ecs_error_rate.json",
}
ACTIONS = {DOWN: "ecs-restart", LATENCY: "ecs-scale", ERRORS: "ecs-rollback"}
SERVED = {"ecs-restart", "ecs-scale", "ecs-rollback", "revert"}


def playbook(params: dict[str, dict] | None = None) -> dict:
    params = params or {}
    routes = {
        name: {"action": action, "target": SERVICE, "params": params.get(action, {})}
        for name, action in ACTIONS.items()
    }
    return {"alarms": routes, "inventory": list(routes.values())}


def alarm(stack, name: str, params: dict[str, dict] | None = None, clients=None) -> Any:
    pipeline = stack.pipeline(playbook(params), clients=clients, actions=SERVED)
    (result,) = pipeline.handle(stack.event(EVENTS[name]))
    return result


def revert(stack, audit_id: str, clients=None) -> Any:
    request = {
        "action": "revert",
        "target": audit_id,
        "reason": "incident over",
        "requested_by": "alice@example.com",
    }
    (result,) = stack.pipeline(playbook(), clients=clients, actions=SERVED).handle(request)
    return result


def state(stack) -> dict:
    return service_state(stack.clients, "aureus", "bridge")


def primary_id(stack) -> str:
    found = stack.clients("ecs").describe_services(cluster="aureus", services=["bridge"])
    return found["services"][0]["deployments"][0]["id"]


# -- ecs-restart ------------------------------------------------------------------------------


def test_restart_starts_a_new_deployment(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2)
    before = primary_id(stack)
    result = alarm(stack, DOWN)
    assert result.outcome is Outcome.EXECUTED, result.reason
    now = primary_id(stack)
    assert now != before
    assert state(stack)["task_definition"] == "bridge:2"
    record = next(r for r in stack.audit_items() if r["audit_id"] == result.audit_id)
    assert record["before_state"]["deployment"] == before
    assert record["after_state"] == {
        "task_definition": f"{TD}:2",
        "deployment": now,
        "note": RESTART_NOT_REVERTABLE,
    }


def test_restart_escalates_while_a_rollout_is_in_flight(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2, running=0)
    before = primary_id(stack)
    result = alarm(stack, DOWN)
    assert result.outcome is Outcome.ESCALATED
    assert "IN_PROGRESS" in result.reason
    assert primary_id(stack) == before


def test_restart_dry_run_changes_nothing(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2)
    before = primary_id(stack)
    stack.set_switch("dry-run")
    result = alarm(stack, DOWN)
    assert result.outcome is Outcome.DRY_RUN
    assert result.reason.startswith("would restart service bridge")
    assert primary_id(stack) == before


def test_restart_cannot_be_reverted(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2)
    done = alarm(stack, DOWN)
    assert done.outcome is Outcome.EXECUTED, done.reason
    after = primary_id(stack)
    result = revert(stack, done.audit_id)
    assert result.outcome is Outcome.ESCALATED
    assert "cannot be reverted" in result.reason
    assert primary_id(stack) == after


# -- ecs-scale ----------------------------------------------------------------------------------


def test_scale_raises_desired_and_the_auto_scaling_minimum_then_reverts_both(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2, autoscaling={"min": 1, "max": 6})
    result = alarm(stack, LATENCY)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert "desired 2 -> 4" in result.reason
    assert "min 1 -> 4" in result.reason
    assert state(stack) | {"task_definition": None} == {
        "desired": 4,
        "running": 4,
        "task_definition": None,
        "min_capacity": 4,
        "max_capacity": 6,
    }
    undone = revert(stack, result.audit_id)
    assert undone.outcome is Outcome.EXECUTED, undone.reason
    assert (state(stack)["desired"], state(stack)["min_capacity"]) == (2, 1)
    assert state(stack)["max_capacity"] == 6


def test_scale_never_goes_above_the_auto_scaling_maximum(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2, autoscaling={"min": 2, "max": 3})
    result = alarm(stack, LATENCY)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert "(capped)" in result.reason
    assert (state(stack)["desired"], state(stack)["min_capacity"]) == (3, 3)


def test_scale_at_the_cap_escalates(stack):
    create_service(stack.clients, "aureus", "bridge", desired=4)
    result = alarm(stack, LATENCY, {"ecs-scale": {"max_count": 4}})
    assert result.outcome is Outcome.ESCALATED
    assert "at the cap 4" in result.reason
    assert state(stack)["desired"] == 4


def test_scale_without_auto_scaling_is_capped_by_max_count(stack):
    create_service(stack.clients, "aureus", "bridge", desired=3)
    result = alarm(stack, LATENCY, {"ecs-scale": {"max_count": 5}})
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert state(stack)["desired"] == 5
    assert state(stack)["min_capacity"] is None


def test_scale_dry_run_changes_nothing(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2, autoscaling={"min": 1, "max": 6})
    stack.set_switch("dry-run")
    result = alarm(stack, LATENCY)
    assert result.outcome is Outcome.DRY_RUN
    assert (state(stack)["desired"], state(stack)["min_capacity"]) == (2, 1)


# -- answered by a Stubber ----------------------------------------------------------------------


@pytest.fixture
def stubbed(emulator, monkeypatch):
    client = boto3.client("ecs", region_name=REGION, config=DEFAULT_CONFIG)
    monkeypatch.setattr(
        "serverless_remediation.remediation.actions.ecs.time.sleep", lambda seconds: None
    )
    return Stubber(client), emulator.clients(overrides={"ecs": client})


def _service(revision: int, rollout: str = "COMPLETED", deployment: str = "ecs-svc/1", **over):
    found = {
        "serviceName": "bridge",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2 if rollout == "COMPLETED" else 1,
        "taskDefinition": f"{TD}:{revision}",
        "deployments": [
            {
                "id": deployment,
                "status": "PRIMARY",
                "rolloutState": rollout,
                "taskDefinition": f"{TD}:{revision}",
                "desiredCount": 2,
                "runningCount": 2 if rollout == "COMPLETED" else 1,
            }
        ],
        **over,
    }
    return {"services": [found]}


WHICH = {"cluster": "aureus", "services": ["bridge"]}


def test_restart_whose_rollout_does_not_complete_in_time_fails(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("describe_services", _service(2), WHICH)
    stubber.add_response(
        "update_service",
        {"service": {}},
        {"cluster": "aureus", "service": "bridge", "forceNewDeployment": True},
    )
    stubber.add_response("describe_services", _service(2, "IN_PROGRESS", "ecs-svc/2"), WHICH)
    with stubber:
        result = alarm(stack, DOWN, {"ecs-restart": {"verify_seconds": 0}}, clients=clients)
    stubber.assert_no_pending_responses()
    assert result.outcome is Outcome.FAILED
    assert "still IN_PROGRESS (1/2 running): not confirmed" in result.reason


def test_restart_whose_rollout_failed_fails_at_once(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("describe_services", _service(2), WHICH)
    stubber.add_response("update_service", {"service": {}})
    stubber.add_response("describe_services", _service(2, "FAILED", "ecs-svc/2"), WHICH)
    with stubber:
        result = alarm(stack, DOWN, {"ecs-restart": {"verify_seconds": 300}}, clients=clients)
    assert result.outcome is Outcome.FAILED
    assert "rollout failed" in result.reason


def _rollback_reads(stubber: Stubber, stack, live: int, registered_ago: timedelta) -> None:
    stubber.add_response("describe_services", _service(live), WHICH)
    stubber.add_response(
        "describe_task_definition",
        {
            "taskDefinition": {
                "taskDefinitionArn": f"{TD}:{live}",
                "family": "bridge",
                "revision": live,
                "registeredAt": stack.now - registered_ago,
            }
        },
        {"taskDefinition": f"{TD}:{live}"},
    )
    stubber.add_response(
        "list_task_definitions",
        {
            "taskDefinitionArns": [
                f"{TD}:5",
                f"{TD}:6",
                f"{TD}:7",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/bridge-worker:9",
            ]
        },
        {"familyPrefix": "bridge", "status": "ACTIVE"},
    )


def test_rollback_goes_back_one_revision_and_its_revert_forward_again(stack, stubbed):
    stubber, clients = stubbed
    _rollback_reads(stubber, stack, 7, timedelta(minutes=20))
    stubber.add_response(
        "update_service",
        {"service": {}},
        {"cluster": "aureus", "service": "bridge", "taskDefinition": f"{TD}:6"},
    )
    stubber.add_response("describe_services", _service(6, "IN_PROGRESS", "ecs-svc/2"), WHICH)
    stubber.add_response("describe_services", _service(6, "COMPLETED", "ecs-svc/2"), WHICH)
    with stubber:
        result = alarm(stack, ERRORS, clients=clients)
        stubber.assert_no_pending_responses()
        assert result.outcome is Outcome.EXECUTED, result.reason
        assert "bridge:7 -> bridge:6" in result.reason
        # revert: read the service (now on :6), then back to :7
        _rollback_reads(stubber, stack, 6, timedelta(minutes=25))
        stubber.add_response(
            "update_service",
            {"service": {}},
            {"cluster": "aureus", "service": "bridge", "taskDefinition": f"{TD}:7"},
        )
        stubber.add_response("describe_services", _service(7, "COMPLETED", "ecs-svc/3"), WHICH)
        undone = revert(stack, result.audit_id, clients=clients)
    assert undone.outcome is Outcome.EXECUTED, undone.reason
    stubber.assert_no_pending_responses()


def test_rollback_of_an_old_revision_escalates(stack, stubbed):
    stubber, clients = stubbed
    _rollback_reads(stubber, stack, 7, timedelta(hours=3))
    with stubber:
        result = alarm(stack, ERRORS, clients=clients)
    assert result.outcome is Outcome.ESCALATED
    assert "more than 60 min ago" in result.reason


def test_rollback_that_does_not_read_back_fails(stack, stubbed):
    stubber, clients = stubbed
    _rollback_reads(stubber, stack, 7, timedelta(minutes=5))
    stubber.add_response("update_service", {"service": {}})
    stubber.add_response("describe_services", _service(7), WHICH)
    with stubber:
        result = alarm(stack, ERRORS, {"ecs-rollback": {"verify_seconds": 0}}, clients=clients)
    assert result.outcome is Outcome.FAILED
    assert f"service runs {TD}:7, expected {TD}:6" in result.reason


# -- ecs-rollback on the emulator (with the drill's stand-ins for registeredAt and the new
# deployment, see remediate/drill/resources_data.py) ----------------------------------------


def test_rollback_of_a_revision_registered_long_before_escalates_on_the_emulator(stack):
    create_service(stack.clients, "aureus", "bridge", desired=2, revisions=3, live_minutes=10)
    stack.now = stack.now.replace(year=2100)  # the window is checked against the clock
    result = alarm(stack, ERRORS, {"ecs-rollback": {"window_minutes": 60}})
    assert result.outcome is Outcome.ESCALATED  # registered 10 min before *real* now
    assert "more than 60 min ago" in result.reason


def test_rollback_on_the_emulator_goes_back_and_revert_forward(stack):
    from datetime import UTC, datetime

    create_service(stack.clients, "aureus", "bridge", desired=2, revisions=3, live_minutes=10)
    stack.now = datetime.now(UTC)
    result = alarm(stack, ERRORS)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert state(stack)["task_definition"] == "bridge:2"
    undone = revert(stack, result.audit_id)
    assert undone.outcome is Outcome.EXECUTED, undone.reason
    assert state(stack)["task_definition"] == "bridge:3"
