"""flip-flag through the whole pipeline against the moto server: a Lambda environment
variable (the webhook switch) and an SSM parameter, flipped on ALARM, restored on OK."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_function
from serverless_remediation.remediation.actions.flag import FlipFlag
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome
from tests.conftest import load_event, sns_alarm
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"  # the alarm name in the sample events
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:leads"
WEBHOOK = f"{FUNCTION}#WEBHOOK_ENABLED"
PARAMETER = "/nigredo/test/payment-processor"
PARAMETER_TARGET = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{PARAMETER}"

# Values that a careless rewrite would mangle: empty, padded, multi-line, non-ASCII, JSON.
ENVIRONMENT = {
    "WEBHOOK_ENABLED": "true",
    "WEBHOOK_URL": "https://api.example.com/public/nigredo-event?token=a%20b&x=1",
    "EMPTY": "",
    "PADDED": "  leading and trailing  ",
    "MULTILINE": "line one\nline two\r\n",
    "UNICODE": "café ☕ naïve — ünïcödé",
    "JSON_CONFIG": '{"retries": 3, "targets": ["a", "b"], "nested": {"k": null}}',
    "EQUALS": "a=b=c;d",
}


def transition(state: str, at: str = "2026-11-23T10:29:36.557+0000") -> dict:
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    alarm["NewStateValue"] = state
    alarm["OldStateValue"] = "ALARM" if state == "OK" else "OK"
    alarm["StateChangeTime"] = at
    return sns_alarm(alarm)


def playbook(target: str, **params: Any) -> dict:
    return {"alarms": {ALARM: {"action": "flip-flag", "target": target, "params": params}}}


def deliver(stack, target: str, state: str = "ALARM", *, at: str | None = None, **params):
    event = transition(state, at) if at else transition(state)
    if at:  # delivered as the state changes: the remediator's clock is the event's
        stack.now = datetime.fromisoformat(at)
    (result,) = stack.pipeline(playbook(target, **params)).handle(event)
    return result


@pytest.fixture
def webhook(stack) -> str:
    create_function(stack.clients, "leads", versions=0, alias=None, environment=ENVIRONMENT)
    return WEBHOOK


@pytest.fixture
def parameter(stack) -> str:
    stack.clients("ssm").put_parameter(Name=PARAMETER, Value="primary", Type="String")
    return PARAMETER_TARGET


def variables(stack) -> dict[str, str]:
    config = stack.clients("lambda").get_function_configuration(FunctionName="leads")
    return config["Environment"]["Variables"]


def parameter_value(stack) -> str:
    return stack.clients("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]


# -- the acceptance test -------------------------------------------------------------------


def test_webhook_disable_keeps_other_variables_byte_for_byte_and_ok_restores(stack, webhook):
    disabled = deliver(stack, webhook, "ALARM")

    assert disabled.outcome is Outcome.EXECUTED, disabled.reason
    after_alarm = variables(stack)
    assert after_alarm["WEBHOOK_ENABLED"] == "false"
    others = {k: v.encode() for k, v in ENVIRONMENT.items() if k != "WEBHOOK_ENABLED"}
    assert {k: v.encode() for k, v in after_alarm.items() if k != "WEBHOOK_ENABLED"} == others
    assert (disabled.before, disabled.after) == ({"value": "true"}, {"value": "false"})

    # Same clock: the flip's 15 min cooldown is still running and must not block the restore.
    restored = deliver(stack, webhook, "OK", at="2026-11-23T10:45:00.000+0000")

    assert restored.outcome is Outcome.EXECUTED, restored.reason
    assert {k: v.encode() for k, v in variables(stack).items()} == {
        k: v.encode() for k, v in ENVIRONMENT.items()
    }
    assert (restored.before, restored.after) == ({"value": "false"}, {"value": "true"})
    assert disabled.audit_id in restored.reason
    records = {r["state"]: r for r in stack.audit_items()}
    assert records["ALARM"]["before_state"] == {"value": "true"}
    assert records["OK"]["after_state"] == {"value": "true"}
    subjects = [n["subject"] for n in stack.notices()]
    assert len(subjects) == 2
    assert all("did flip-flag" in s for s in subjects)


def test_ssm_flag_flips_on_alarm_and_restores_on_ok(stack, parameter):
    flipped = deliver(stack, parameter, "ALARM", value="backup")
    assert flipped.outcome is Outcome.EXECUTED, flipped.reason
    assert parameter_value(stack) == "backup"
    got = stack.clients("ssm").get_parameter(Name=PARAMETER)["Parameter"]
    assert got["Type"] == "String"

    restored = deliver(stack, parameter, "OK", at="2026-11-23T10:50:00.000+0000", value="backup")
    assert restored.outcome is Outcome.EXECUTED, restored.reason
    assert parameter_value(stack) == "primary"


def test_update_carries_the_revision_and_the_whole_merged_map(stack, emulator):
    # Checked against the real Lambda API model: the write names the revision it read, so a
    # concurrent deploy fails the write instead of being overwritten.
    client = boto3.client("lambda", region_name=REGION, config=DEFAULT_CONFIG)
    stubber = Stubber(client)
    clients = emulator.clients(overrides={"lambda": client})
    config = {"Environment": {"Variables": dict(ENVIRONMENT)}, "RevisionId": "rev-1"}
    merged = {**ENVIRONMENT, "WEBHOOK_ENABLED": "false"}
    stubber.add_response("get_function_configuration", config, {"FunctionName": FUNCTION})
    stubber.add_response("get_function_configuration", config, {"FunctionName": FUNCTION})
    stubber.add_response(
        "update_function_configuration",
        {"RevisionId": "rev-2"},
        {"FunctionName": FUNCTION, "Environment": {"Variables": merged}, "RevisionId": "rev-1"},
    )
    stubber.add_response(
        "get_function_configuration",
        {"Environment": {"Variables": merged}, "RevisionId": "rev-2"},
        {"FunctionName": FUNCTION},
    )
    with stubber:
        (result,) = stack.pipeline(playbook(WEBHOOK), clients=clients).handle(transition("ALARM"))
    assert result.outcome is Outcome.EXECUTED, result.reason
    stubber.assert_no_pending_responses()


# -- preconditions and refusals ----------------------------------------------------------


def test_missing_variable_escalates_and_adds_nothing(stack, webhook):
    result = deliver(stack, f"{FUNCTION}#PAYMENTS_ENABLED")

    assert result.outcome is Outcome.ESCALATED
    assert "does not exist" in result.reason
    assert variables(stack) == ENVIRONMENT
    assert "needs a human" in stack.notices()[0]["subject"]


def test_missing_parameter_escalates_and_creates_nothing(stack):
    result = deliver(stack, PARAMETER_TARGET)

    assert result.outcome is Outcome.ESCALATED
    assert "does not exist" in result.reason
    names = [p["Name"] for p in stack.clients("ssm").describe_parameters()["Parameters"]]
    assert PARAMETER not in names


def test_secure_string_escalates_without_reading_or_writing_it(stack):
    stack.clients("ssm").put_parameter(Name=PARAMETER, Value="s3cret", Type="SecureString")
    result = deliver(stack, PARAMETER_TARGET)

    assert result.outcome is Outcome.ESCALATED
    assert "SecureString" in result.reason
    assert "s3cret" not in str(stack.audit_items())
    got = stack.clients("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)
    assert got["Parameter"]["Value"] == "s3cret"


def test_target_in_another_region_is_refused_by_the_scope_check(stack, parameter):
    elsewhere = PARAMETER_TARGET.replace(REGION, "us-east-1")
    result = deliver(stack, elsewhere)

    assert result.outcome is Outcome.REJECTED
    assert "outside this deployment: region us-east-1" in result.reason
    assert parameter_value(stack) == "primary"


def test_flag_already_in_safe_position_is_skipped(stack, webhook):
    stack.clients("lambda").update_function_configuration(
        FunctionName="leads",
        Environment={"Variables": {**ENVIRONMENT, "WEBHOOK_ENABLED": "false"}},
    )
    result = deliver(stack, webhook)

    assert result.outcome is Outcome.SKIPPED
    assert "already 'false'" in result.reason
    assert stack.notices() == []


def test_manual_request_cannot_choose_the_value(stack, webhook):
    request = {
        "action": "flip-flag",
        "target": webhook,
        "params": {"value": "https://evil.example"},
        "reason": "try to point the flag elsewhere",
        "requested_by": "mallory@example.com",
    }
    (result,) = stack.pipeline(playbook(webhook)).handle(request)

    assert result.outcome is Outcome.REJECTED
    assert "fixed by configuration" in result.reason
    assert variables(stack) == ENVIRONMENT


# -- recovery ------------------------------------------------------------------------------


def test_ok_within_the_hold_time_escalates_and_keeps_the_flag(stack, webhook):
    flipped = deliver(stack, webhook, "ALARM", hold_minutes=30)
    stack.now += timedelta(minutes=10)
    held = deliver(stack, webhook, "OK", at="2026-11-23T10:40:00.000+0000", hold_minutes=30)

    assert held.outcome is Outcome.ESCALATED
    assert "held until" in held.reason
    assert f"manual revert of audit {flipped.audit_id}" in held.reason
    assert variables(stack)["WEBHOOK_ENABLED"] == "false"


def test_ok_after_the_hold_time_restores(stack, webhook):
    deliver(stack, webhook, "ALARM", hold_minutes=30)
    stack.now += timedelta(minutes=31)
    restored = deliver(stack, webhook, "OK", at="2026-11-23T11:01:00.000+0000", hold_minutes=30)

    assert restored.outcome is Outcome.EXECUTED, restored.reason
    assert variables(stack) == ENVIRONMENT


def test_ok_after_a_human_changed_the_flag_escalates_and_keeps_their_value(stack, parameter):
    deliver(stack, parameter, "ALARM", value="backup")
    stack.clients("ssm").put_parameter(Name=PARAMETER, Value="tertiary", Overwrite=True)
    result = deliver(stack, parameter, "OK", at="2026-11-23T10:45:00.000+0000", value="backup")

    assert result.outcome is Outcome.ESCALATED
    assert "changed since" in result.reason
    assert parameter_value(stack) == "tertiary"


def test_ok_without_a_flip_on_record_changes_nothing(stack, webhook):
    result = deliver(stack, webhook, "OK")

    assert result.outcome is Outcome.SKIPPED
    assert "nothing to restore" in result.reason
    assert variables(stack) == ENVIRONMENT


def test_second_ok_after_a_restore_does_not_flip_again(stack, webhook):
    deliver(stack, webhook, "ALARM")
    deliver(stack, webhook, "OK", at="2026-11-23T10:45:00.000+0000")
    again = deliver(stack, webhook, "OK", at="2026-11-23T10:50:00.000+0000")

    assert again.outcome is Outcome.SKIPPED
    assert variables(stack) == ENVIRONMENT


# -- dry-run, verify, throttling, access ---------------------------------------------------


def test_dry_run_switch_plans_and_changes_nothing(stack, webhook):
    stack.set_switch("dry-run")
    result = deliver(stack, webhook)

    assert result.outcome is Outcome.DRY_RUN
    assert result.after == {"value": "false"}
    assert variables(stack) == ENVIRONMENT
    assert "(dry-run) flip-flag" in stack.notices()[0]["subject"]


def test_change_that_does_not_show_fails_verify(stack, parameter):
    Wire(stack.clients("ssm")).queue("PutParameter", response(200, {"Version": 2}))
    result = deliver(stack, parameter, value="backup")

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert parameter_value(stack) == "primary"
    assert "FAILED flip-flag" in stack.notices()[0]["subject"]


def test_throttled_update_is_retried_by_the_client(stack, webhook, backoff):
    client = stack.clients("lambda")
    wire = Wire(client).queue("UpdateFunctionConfiguration", throttled(client), None)
    result = deliver(stack, webhook)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["UpdateFunctionConfiguration"] == 2
    assert len(backoff) == 1
    assert variables(stack) == {**ENVIRONMENT, "WEBHOOK_ENABLED": "false"}


def test_access_denied_fails_with_a_notice(stack, parameter):
    wire = Wire(stack.clients("ssm")).queue("PutParameter", denied())
    result = deliver(stack, parameter, value="backup")

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert wire.attempts["PutParameter"] == 1
    assert parameter_value(stack) == "primary"
    (notice,) = stack.notices()
    assert "FAILED flip-flag" in notice["subject"]
    assert "AccessDeniedException" in notice["message"]
    assert stack.audit_items()[0]["before_state"] == {"value": "primary"}


def test_resources_are_the_parameter_or_the_function():
    assert FlipFlag.resources(PARAMETER_TARGET) == [PARAMETER_TARGET]
    assert FlipFlag.resources(WEBHOOK) == [FUNCTION]
