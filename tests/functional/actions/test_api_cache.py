"""api-cache through the pipeline: moto implements UpdateStage's cache paths (and shows the
cluster AVAILABLE at once); a Stubber plays AWS's CREATE_IN_PROGRESS and failures, every
request checked against the API model."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import REGION
from serverless_remediation.remediation.clients import DEFAULT_CONFIG, Clients
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_capacity import make_stage

ALARM = "test-catalog-api-latency"  # tests/events/sns_alarm_rest_api_latency.json


def playbook(target: str, params: dict | None = None) -> dict:
    route = {"action": "api-cache", "target": target, "params": params or {}}
    return {"alarms": {ALARM: route}, "inventory": [route]}


def alarm(stack, target: str, params: dict | None = None, clients=None) -> Any:
    pipeline = stack.pipeline(playbook(target, params), clients=clients)
    (result,) = pipeline.handle(stack.event("sns_alarm_rest_api_latency.json"))
    return result


def cache(stack, target: str) -> tuple[bool, str | None, str | None]:
    api = target.split("/")[2]
    found = stack.clients("apigateway").get_stage(restApiId=api, stageName="prod")
    return (
        bool(found.get("cacheClusterEnabled")),
        found.get("cacheClusterSize") if found.get("cacheClusterEnabled") else None,
        found.get("cacheClusterStatus"),
    )


def revert(stack, audit_id: str, target: str) -> Any:
    request = {
        "action": "revert",
        "target": audit_id,
        "reason": "latency back to normal",
        "requested_by": "alice@example.com",
    }
    book = playbook(target, {"size_gb": 1.6})
    pipeline = stack.pipeline(book, actions={"api-cache", "revert"})
    (result,) = pipeline.handle(request)
    return result


def test_latency_alarm_enables_the_stage_cache(stack):
    target = make_stage(stack)
    result = alarm(stack, target, {"size_gb": 1.6})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert cache(stack, target) == (True, "1.6", "AVAILABLE")
    assert result.before == {"enabled": False, "size": None}
    assert result.after == {"enabled": True, "size": "1.6"}
    assert "AWS takes minutes to create it" in result.reason


def test_cache_already_on_escalates(stack):
    target = make_stage(stack)
    api = target.split("/")[2]
    stack.clients("apigateway").update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/cacheClusterEnabled", "value": "true"}],
    )
    result = alarm(stack, target)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "already on" in result.reason


def test_dry_run_changes_nothing(stack):
    target = make_stage(stack)
    stack.set_switch("dry-run")
    result = alarm(stack, target)

    assert result.outcome is Outcome.DRY_RUN, result.reason
    assert cache(stack, target)[0] is False


def test_revert_turns_the_cache_off(stack):
    target = make_stage(stack)
    done = alarm(stack, target, {"size_gb": 1.6})
    assert done.outcome is Outcome.EXECUTED, done.reason

    result = revert(stack, done.audit_id, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert cache(stack, target)[:2] == (False, None)


def test_ok_transition_never_enables_it(stack):
    target = make_stage(stack)
    pipeline = stack.pipeline(playbook(target))
    event = stack.event("sns_alarm_rest_api_latency.json")
    record = event["Records"][0]["Sns"]
    record["Message"] = (
        record["Message"]
        .replace('"NewStateValue": "ALARM"', '"NewStateValue": "OK"')
        .replace('"OldStateValue": "OK"', '"OldStateValue": "ALARM"')
    )
    (result,) = pipeline.handle(event)

    assert result.outcome is Outcome.SKIPPED, result.reason
    assert cache(stack, target)[0] is False


def _stubbed(emulator, target: str, status_after: str) -> tuple[Clients, Stubber]:
    """An API Gateway client whose answers follow AWS: the cluster is created over minutes."""
    api = target.split("/")[2]
    client = boto3.client("apigateway", region_name=REGION, config=DEFAULT_CONFIG)
    stub = Stubber(client)
    stage = {"restApiId": api, "stageName": "prod"}
    stub.add_response("get_stage", {"stageName": "prod", "cacheClusterEnabled": False}, stage)
    stub.add_response(
        "update_stage",
        {"stageName": "prod"},
        {
            **stage,
            "patchOperations": [
                {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
                {"op": "replace", "path": "/cacheClusterSize", "value": "0.5"},
            ],
        },
    )
    after = {
        "stageName": "prod",
        "cacheClusterEnabled": True,
        "cacheClusterSize": "0.5",
        "cacheClusterStatus": status_after,
    }
    stub.add_response("get_stage", after, stage)
    stub.activate()
    return emulator.clients(overrides={"apigateway": client}), stub


def test_a_cluster_still_being_created_is_verified(stack, emulator):
    target = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod"
    clients, stub = _stubbed(emulator, target, "CREATE_IN_PROGRESS")
    result = alarm(stack, target, clients=clients)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert result.after == {"enabled": True, "size": "0.5"}
    stub.assert_no_pending_responses()


def test_a_cluster_that_is_not_there_fails_the_verify(stack, emulator):
    target = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod"
    clients, stub = _stubbed(emulator, target, "NOT_AVAILABLE")
    result = alarm(stack, target, clients=clients)

    assert result.outcome is Outcome.FAILED, result.reason
    assert "cluster is NOT_AVAILABLE" in result.reason
    stub.assert_no_pending_responses()


def test_a_manual_request_may_ask_a_smaller_cache_not_a_larger_one(stack):
    target = make_stage(stack)
    book = playbook(target, {"size_gb": 1.6})
    pipeline = stack.pipeline(book)
    request = {
        "action": "api-cache",
        "target": target,
        "params": {"size_gb": 6.1},
        "reason": "latency",
        "requested_by": "alice@example.com",
    }
    (result,) = pipeline.handle(request)
    assert result.outcome is Outcome.REJECTED, result.reason
    assert "beyond the configured limit" in result.reason

    (result,) = pipeline.handle({**request, "params": {"size_gb": 0.5}})
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert cache(stack, target)[:2] == (True, "0.5")
