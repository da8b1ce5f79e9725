"""Intake: every supported shape parses; anything else is rejected with a clear reason."""

from __future__ import annotations

import json

import pytest

from serverless_remediation.remediation import intake
from serverless_remediation.remediation.models import RejectedError, Source
from tests.conftest import load_event, sns_alarm


def parse_all(event):
    return [intake.parse(message) for message in intake.split(event)]


def parse_one(event):
    (message,) = intake.split(event)
    return intake.parse(message)


def test_sns_single_metric_alarm():
    request = parse_one(load_event("sns_alarm_single_metric.json"))
    assert request.source is Source.ALARM
    assert request.key == "test-orders-error-rate"
    assert request.state == "ALARM"
    assert request.idempotency_key == (
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:test-orders-error-rate"
        "|2026-11-23T10:29:36.557+0000|ALARM"
    )
    # Region comes from the ARN, not the display name "EU (Ireland)".
    assert request.details["region"] == "eu-west-1"
    assert request.details["metric"] == "AWS/Lambda Errors"
    assert request.occurred_at.isoformat() == "2026-11-23T10:29:36.557000+00:00"


def test_sns_metric_math_alarm_names_the_expression():
    request = parse_one(load_event("sns_alarm_metric_math.json"))
    assert request.key == "test-orders-error-rate-pct"
    assert request.details["metric"] == "100 * errors / MAX([errors, invocations])"
    assert request.details["region"] == "eu-west-1"


def test_direct_lambda_alarm_action_matches_sns_form():
    direct = parse_one(load_event("lambda_alarm_action.json"))
    via_sns = parse_one(load_event("sns_alarm_single_metric.json"))
    assert direct.key == via_sns.key
    assert direct.idempotency_key == via_sns.idempotency_key
    assert direct.state == "ALARM"
    assert direct.details["old_state"] == "OK"


def test_budget_plain_text_notice():
    request = parse_one(load_event("sns_budget_notice.json"))
    assert request.source is Source.BUDGET
    assert request.key == "test-monthly"
    assert request.state == "ALARM"
    assert request.idempotency_key.startswith("budget|test-monthly|")


def test_budget_duplicate_has_same_key_and_other_notice_another():
    first = parse_one(load_event("sns_budget_notice.json"))
    again = parse_one(load_event("sns_budget_notice.json"))
    other = load_event("sns_budget_notice.json")
    other["Records"][0]["Sns"]["Message"] += "\nForecasted"
    assert first.idempotency_key == again.idempotency_key
    assert parse_one(other).idempotency_key != first.idempotency_key


def test_manual_request():
    request = parse_one(load_event("manual_request.json"))
    assert request.source is Source.MANUAL
    assert (request.action, request.dry_run) == ("rollback", True)
    assert request.params == {"window_minutes": 30}
    assert request.requested_by == "alice@example.com"
    assert request.idempotency_key == ""


def test_null_description_and_missing_reason_are_fine():
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    alarm["AlarmDescription"] = None
    del alarm["NewStateReason"]
    request = parse_one(sns_alarm(alarm))
    assert request.reason == "alarm test-orders-error-rate is ALARM"


def _alarm_with(**changes):
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    for key, value in changes.items():
        if value is ...:
            del alarm[key]
        else:
            alarm[key] = value
    return sns_alarm(alarm)


def _sns_body(body, subject="ALARM"):
    event = load_event("sns_alarm_single_metric.json")
    event["Records"][0]["Sns"]["Message"] = body
    event["Records"][0]["Sns"]["Subject"] = subject
    return event


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("not json at all", "unrecognised event"),
        (None, "unrecognised event"),
        ([1, 2], "unrecognised event"),
        ({"hello": "world"}, "unrecognised event"),
        ({"Records": []}, "no Records"),
        (_sns_body("{not json"), "neither CloudWatch alarm JSON nor an AWS Budgets notice"),
        (_sns_body("[1, 2]"), "must be an object"),
        (_sns_body(""), "Message missing or empty"),
        (_alarm_with(AlarmName=...), "AlarmName missing"),
        (_alarm_with(AlarmName=42), "AlarmName missing or not a non-empty string"),
        (_alarm_with(NewStateValue="FIRE"), "NewStateValue must be one of"),
        (_alarm_with(StateChangeTime="yesterday"), "not an ISO 8601 time"),
        (_alarm_with(StateChangeTime="2026-11-23T10:29:36"), "no time zone"),
        (_alarm_with(AlarmArn="arn:aws:sns:eu-west-1:1:x"), "not a CloudWatch alarm ARN"),
        (_alarm_with(AlarmName="x" * 300), "longer than 255"),
        (_alarm_with(Trigger="oops"), "Trigger must be an object"),
        (_sns_body("no name here", "AWS Budgets: "), "without a budget name"),
        ({"source": "aws.cloudwatch", "alarmArn": "x"}, "alarmData must be an object"),
        ({"source": "aws.cloudwatch"}, "alarmArn missing"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(event, expected):
    with pytest.raises(RejectedError) as caught:
        parse_all(event)
    assert expected in caught.value.reason


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"action": None}, "action must be string"),
        ({"action": "Roll Back!"}, "action must match pattern"),
        ({"reason": "x"}, "reason must be longer than or equal to 3"),
        ({"dry_run": "yes"}, "dry_run must be boolean"),
        ({"params": [1]}, "params must be object"),
        ({"source": "aws.cloudwatch.forged"}, "must not contain"),
        ({"requested_by": ""}, "requested_by must be longer than or equal to 1"),
    ],
)
def test_manual_request_schema_errors_are_clear(change, expected):
    request = {**load_event("manual_request.json"), **change}
    with pytest.raises(RejectedError) as caught:
        intake.parse(request)
    assert caught.value.reason.startswith("manual request invalid:")
    assert expected in caught.value.reason
    assert json.loads(caught.value.raw)["action"] == request["action"]


def test_manual_request_missing_field():
    request = load_event("manual_request.json")
    del request["requested_by"]
    with pytest.raises(RejectedError, match="requested_by"):
        intake.parse(request)


def test_raw_excerpt_is_bounded():
    with pytest.raises(RejectedError) as caught:
        intake.parse({"blob": "y" * 100_000})
    assert len(caught.value.raw) == intake.RAW_EXCERPT
