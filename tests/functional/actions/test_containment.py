"""containment: manual only, on a REST stage (moto's UpdateStage) or a WAFv2 web ACL (moto's
GetWebACL/UpdateWebACL, and a Stubber holding a full ACL to check that UpdateWebACL sends
every setting back unchanged but the default action)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import REGION
from serverless_remediation.remediation.actions.containment import (
    Containment,
    ContainmentParams,
    web_acl_update,
)
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_capacity import action_for, make_stage, throttle

ALARM = "test-orders-error-rate"  # tests/events/sns_alarm_single_metric.json
STAGE_PARAMS = {"kind": "stage-throttle", "rate_limit": 0, "burst_limit": 0}
ACL_PARAMS = {"kind": "web-acl-block"}
RULE = {
    "Name": "rate-limit",
    "Priority": 1,
    "Statement": {"RateBasedStatement": {"Limit": 1000, "AggregateKeyType": "IP"}},
    "Action": {"Block": {}},
    "VisibilityConfig": {
        "SampledRequestsEnabled": True,
        "CloudWatchMetricsEnabled": True,
        "MetricName": "rate-limit",
    },
}


def request(target: str, params: dict, **extra: Any) -> dict:
    return {
        "action": "containment",
        "target": target,
        "params": params,
        "reason": "credential stuffing in progress (INC-4711)",
        "requested_by": "alice@example.com",
        **extra,
    }


def book(target: str, params: dict) -> dict:
    return {"inventory": [{"action": "containment", "target": target, "params": params}]}


def manual(stack, target: str, params: dict, **extra: Any) -> Any:
    pipeline = stack.pipeline(book(target, params))
    (result,) = pipeline.handle(request(target, params, **extra))
    return result


def make_acl(stack) -> str:
    waf = stack.clients("wafv2")
    found = waf.create_web_acl(
        Name="edge-acl",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=[RULE],
        Description="the public API's web ACL",
        VisibilityConfig={
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": "edge-acl",
        },
    )["Summary"]
    return found["ARN"]


def default_action(stack, target: str) -> dict:
    _, name, acl_id = target.rsplit("/", 2)
    acl = stack.clients("wafv2").get_web_acl(Name=name, Scope="REGIONAL", Id=acl_id)["WebACL"]
    return acl["DefaultAction"]


def test_manual_request_holds_the_stage_to_the_floor(stack):
    target = make_stage(stack)
    result = manual(stack, target, STAGE_PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert throttle(stack, target) == (0.0, 0)
    assert result.before == {"kind": "stage-throttle", "rate_limit": 100.0, "burst_limit": 200}


def test_an_alarm_never_runs_it_even_when_a_playbook_routes_one(stack):
    """The rule lives where every path passes (``automatic = False``, checked centrally)."""
    target = make_stage(stack)
    routed = {"action": "containment", "target": target, "params": STAGE_PARAMS}
    pipeline = stack.pipeline({"alarms": {ALARM: routed}})
    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))

    assert result.outcome is Outcome.REJECTED, result.reason
    assert "manual only" in result.reason
    assert throttle(stack, target) == (100.0, 200)
    assert Containment.automatic is False


def test_a_manual_request_cannot_change_the_configured_floor(stack):
    """The cap: the floor is fixed by configuration."""
    target = make_stage(stack)
    pipeline = stack.pipeline(book(target, STAGE_PARAMS))
    (result,) = pipeline.handle(request(target, {**STAGE_PARAMS, "rate_limit": 50}))

    assert result.outcome is Outcome.REJECTED, result.reason
    assert "fixed by configuration" in result.reason
    assert throttle(stack, target) == (100.0, 200)


def test_already_held_is_a_skip(stack):
    target = make_stage(stack)
    assert manual(stack, target, STAGE_PARAMS).outcome is Outcome.EXECUTED
    result = manual(stack, target, STAGE_PARAMS)
    assert result.outcome is Outcome.SKIPPED, result.reason


def test_dry_run_changes_nothing(stack):
    target = make_stage(stack)
    result = manual(stack, target, STAGE_PARAMS, dry_run=True)

    assert result.outcome is Outcome.DRY_RUN, result.reason
    assert throttle(stack, target) == (100.0, 200)


def revert(stack, audit_id: str, target: str, params: dict) -> Any:
    pipeline = stack.pipeline(book(target, params), actions={"containment", "revert"})
    (result,) = pipeline.handle(
        {
            "action": "revert",
            "target": audit_id,
            "reason": "incident contained",
            "requested_by": "alice@example.com",
        }
    )
    return result


def test_revert_restores_the_exact_previous_throttle(stack):
    target = make_stage(stack)
    done = manual(stack, target, STAGE_PARAMS)
    result = revert(stack, done.audit_id, target, STAGE_PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert throttle(stack, target) == (100.0, 200)


def test_web_acl_default_action_switches_to_block_and_rules_stay(stack):
    target = make_acl(stack)
    result = manual(stack, target, ACL_PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert default_action(stack, target) == {"Block": {}}
    _, name, acl_id = target.rsplit("/", 2)
    acl = stack.clients("wafv2").get_web_acl(Name=name, Scope="REGIONAL", Id=acl_id)["WebACL"]
    assert [r["Name"] for r in acl["Rules"]] == ["rate-limit"]
    assert acl["Description"] == "the public API's web ACL"


def test_web_acl_revert_restores_allow(stack):
    target = make_acl(stack)
    done = manual(stack, target, ACL_PARAMS)
    result = revert(stack, done.audit_id, target, ACL_PARAMS)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert default_action(stack, target) == {"Allow": {}}


def test_verify_fails_when_the_acl_does_not_read_back_blocked(stack):
    target = make_acl(stack)
    action = action_for(stack, target)
    containment = Containment(action.ctx)
    params = ContainmentParams(kind="web-acl-block")
    plan = containment.plan(containment.read(target, params), params, stack.now)
    with pytest.raises(Exception, match="reads back as"):
        containment.verify(target, plan)  # never applied


FULL_ACL = {
    "Name": "edge-acl",
    "Id": "22222222-3333-4444-5555-666666666666",
    "ARN": "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/edge-acl/"
    "22222222-3333-4444-5555-666666666666",
    "DefaultAction": {
        "Allow": {"CustomRequestHandling": {"InsertHeaders": [{"Name": "x-edge", "Value": "1"}]}}
    },
    "Description": "the public API's web ACL",
    "Rules": [RULE],
    "VisibilityConfig": RULE["VisibilityConfig"],
    "Capacity": 2,
    "CustomResponseBodies": {"blocked": {"ContentType": "TEXT_PLAIN", "Content": "blocked"}},
    "CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 300}},
    "ChallengeConfig": {"ImmunityTimeProperty": {"ImmunityTime": 300}},
    "TokenDomains": ["api.example.com"],
    "ManagedByFirewallManager": False,
    "LabelNamespace": "awswaf:123456789012:webacl:edge-acl:",
}


def test_update_web_acl_sends_the_whole_acl_back_but_the_default_action(emulator):
    """UpdateWebACL replaces every mutable setting: whatever is left out is deleted."""
    waf = boto3.client("wafv2", region_name=REGION, config=DEFAULT_CONFIG)
    target = FULL_ACL["ARN"]
    key = {"Name": "edge-acl", "Scope": "REGIONAL", "Id": FULL_ACL["Id"]}
    stub = Stubber(waf)
    stub.add_response("get_web_acl", {"WebACL": FULL_ACL, "LockToken": "token-1"}, key)
    stub.add_response("get_web_acl", {"WebACL": FULL_ACL, "LockToken": "token-2"}, key)
    sent = {
        **key,
        "DefaultAction": {"Block": {}},
        "Description": FULL_ACL["Description"],
        "Rules": [RULE],
        "VisibilityConfig": RULE["VisibilityConfig"],
        "CustomResponseBodies": FULL_ACL["CustomResponseBodies"],
        "CaptchaConfig": FULL_ACL["CaptchaConfig"],
        "ChallengeConfig": FULL_ACL["ChallengeConfig"],
        "TokenDomains": ["api.example.com"],
        "LockToken": "token-2",  # the token of the read just before the write
    }
    stub.add_response("update_web_acl", {"NextLockToken": "token-3"}, sent)
    stub.activate()
    clients = emulator.clients(overrides={"wafv2": waf})
    from serverless_remediation.remediation.actions.base import ActionContext
    from serverless_remediation.remediation.audit import AuditLog
    from tests.conftest import DEPLOYMENT

    ctx = ActionContext(clients, AuditLog(clients("dynamodb"), "unused"), DEPLOYMENT, lambda: None)
    action = Containment(ctx.for_target(target))
    params = ContainmentParams(kind="web-acl-block")
    plan = action.plan(action.read(target, params), params, None)  # type: ignore[arg-type]
    assert plan.before["default_action"] == FULL_ACL["DefaultAction"]
    action.apply(target, plan)
    stub.assert_no_pending_responses()


def test_web_acl_update_copies_only_what_the_api_takes():
    waf = boto3.client("wafv2", region_name=REGION)
    request = web_acl_update(FULL_ACL, "token", {"Block": {}}, waf)
    assert "Capacity" not in request  # read-only: AWS refuses it
    assert "ARN" not in request
    assert request["TokenDomains"] == ["api.example.com"]
    assert request["DefaultAction"] == {"Block": {}}
