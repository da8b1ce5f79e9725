"""EventBridge "CloudWatch Alarm State Change" intake: the same request as the SNS message of
the same transition, the same idempotency key, and a clear refusal of anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation import intake
from serverless_remediation.remediation.intake_eventbridge import parse_alarm_event
from serverless_remediation.remediation.models import RejectedError, Source
from serverless_remediation.remediation.scope import Deployment, ScopeError
from tests.conftest import load_event

ACCOUNT = "123456789012"
OTHER = "210987654321"
HERE = Deployment(ACCOUNT, "eu-west-1")


def parse_one(event):
    (message,) = intake.split(event)
    return intake.parse(message)


def test_single_metric_event_gives_the_sns_request():
    via_eventbridge = parse_one(load_event("eventbridge_alarm_single_metric.json"))
    via_sns = parse_one(load_event("sns_alarm_single_metric.json"))
    assert via_eventbridge.source is Source.ALARM
    for field in ("key", "idempotency_key", "state", "requested_by", "reason", "occurred_at"):
        assert getattr(via_eventbridge, field) == getattr(via_sns, field), field
    for detail in ("old_state", "region", "account", "account_id", "metric"):
        assert via_eventbridge.details[detail] == via_sns.details[detail], detail
    assert via_eventbridge.details["region_code"] == "eu-west-1"
    assert via_eventbridge.details["tags"] == {
        "service": "orders",
        "remediation:action": "rollback",
    }
    assert via_eventbridge.details["delivery"] == "eventbridge"


def test_the_three_deliveries_of_one_transition_share_one_key():
    keys = {
        parse_one(load_event(name)).idempotency_key
        for name in (
            "eventbridge_alarm_single_metric.json",
            "sns_alarm_single_metric.json",
            "lambda_alarm_action.json",
        )
    }
    assert keys == {
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:test-orders-error-rate"
        "|2026-11-23T10:29:36.557+0000|ALARM"
    }


def test_the_key_reads_the_time_not_its_spelling():
    event = load_event("eventbridge_alarm_single_metric.json")
    event["detail"]["state"]["timestamp"] = "2026-11-23T11:29:36.557+01:00"
    spelled_otherwise = parse_alarm_event(event)
    event["detail"]["state"]["timestamp"] = "2026-11-23T10:29:36.557Z"
    with_z = parse_alarm_event(event)
    sns = parse_one(load_event("sns_alarm_single_metric.json"))
    assert spelled_otherwise.idempotency_key == with_z.idempotency_key == sns.idempotency_key


def test_another_transition_of_the_same_alarm_has_another_key():
    alarm = parse_one(load_event("eventbridge_alarm_single_metric.json"))
    ok = parse_one(load_event("eventbridge_alarm_ok_transition.json"))
    later = load_event("eventbridge_alarm_single_metric.json")
    later["detail"]["state"]["timestamp"] = "2026-11-23T10:29:36.558+0000"
    assert ok.state == "OK"
    assert ok.details["old_state"] == "ALARM"
    assert len({alarm.idempotency_key, ok.idempotency_key, parse_one(later).idempotency_key}) == 3


def test_metric_math_event_names_the_expression_like_the_sns_message():
    via_eventbridge = parse_one(load_event("eventbridge_alarm_metric_math.json"))
    via_sns = parse_one(load_event("sns_alarm_metric_math.json"))
    assert via_eventbridge.details["metric"] == via_sns.details["metric"]
    assert via_eventbridge.details["metric"] == "100 * errors / MAX([errors, invocations])"
    assert via_eventbridge.idempotency_key == via_sns.idempotency_key
    assert via_eventbridge.details["old_state"] == "INSUFFICIENT_DATA"
    assert via_eventbridge.details["tags"] == {}


def test_composite_alarm_is_refused_clearly():
    with pytest.raises(RejectedError, match=r"composite alarm.*metric alarms only") as caught:
        parse_one(load_event("eventbridge_alarm_composite.json"))
    assert "test-orders-degraded" in caught.value.raw


def test_the_direct_alarm_action_payload_is_still_its_own_shape():
    direct = load_event("lambda_alarm_action.json")
    assert direct["source"] == "aws.cloudwatch"
    request = parse_one(direct)
    assert "delivery" not in request.details
    # The same payload with a detail-type is read as an EventBridge event, and refused as one.
    direct["detail-type"] = "CloudWatch Alarm State Change"
    with pytest.raises(RejectedError, match="detail must be an object"):
        parse_one(direct)


def mutated(change):
    event = load_event("eventbridge_alarm_single_metric.json")
    change(event)
    return event


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda e: e.update({"detail-type": "CloudWatch Alarm Configuration Change"}), "only"),
        (lambda e: e.update({"detail-type": "cloudwatch alarm state change"}), "detail-type"),
        (lambda e: e.update({"source": "custom.forged"}), "source 'custom.forged'"),
        (lambda e: e.pop("source"), "source 'None'"),
        (lambda e: e.update({"detail": "ALARM"}), "detail must be an object"),
        (lambda e: e.pop("resources"), "exactly one alarm ARN"),
        (lambda e: e.update({"resources": []}), "exactly one alarm ARN"),
        (lambda e: e["resources"].append(e["resources"][0]), "exactly one alarm ARN"),
        (
            lambda e: e.update({"resources": ["arn:aws:sns:eu-west-1:123456789012:topic"]}),
            "not a CloudWatch alarm ARN",
        ),
        (lambda e: e.update({"resources": [{"arn": 1}]}), "not a CloudWatch alarm ARN"),
        (lambda e: e["detail"].pop("alarmName"), "alarmName missing"),
        (
            lambda e: e["detail"].update({"alarmName": "test-payments-error-rate"}),
            "alarmName 'test-payments-error-rate' is not the alarm resources",
        ),
        (lambda e: e["detail"].update({"configuration": []}), "configuration must be an object"),
        (lambda e: e["detail"].pop("state"), "detail.state must be an object"),
        (lambda e: e["detail"]["state"].update({"value": "BROKEN"}), "detail.state.value must"),
        (lambda e: e["detail"]["state"].pop("timestamp"), "detail.state.timestamp missing"),
        (
            lambda e: e["detail"]["state"].update({"timestamp": "yesterday"}),
            "detail.state.timestamp is not an ISO 8601 time",
        ),
        (
            lambda e: e["detail"]["state"].update({"timestamp": "2026-11-23T10:29:36"}),
            "has no time zone",
        ),
        (lambda e: e.pop("account"), "top-level account missing"),
        (lambda e: e.update({"region": ""}), "top-level region missing"),
        (lambda e: e["detail"].update({"alarmTags": ["a"]}), "alarmTags must map"),
        (lambda e: e["detail"].update({"alarmTags": {"a": 1}}), "alarmTags must map"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(change, expected):
    event = mutated(change)
    with pytest.raises(RejectedError, match=expected) as caught:
        parse_one(event)
    assert caught.value.raw  # the audit record shows what arrived


def test_a_lone_surrogate_is_refused_before_parsing():
    event = load_event("eventbridge_alarm_single_metric.json")
    event["detail"]["state"]["reason"] = "bad \ud800"
    with pytest.raises(RejectedError, match="not valid Unicode"):
        parse_one(event)


def test_this_deployments_event_is_in_scope():
    HERE.check_request(parse_one(load_event("eventbridge_alarm_single_metric.json")))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: e.update({"account": OTHER}), "EventBridge account id .* disagrees"),
        (lambda e: e.update({"region": "us-west-2"}), "EventBridge region .* disagrees"),
        (
            lambda e: e.update(
                {
                    "account": OTHER,
                    "resources": [e["resources"][0].replace(ACCOUNT, OTHER)],
                }
            ),
            f"account {OTHER}, not {ACCOUNT}",
        ),
        (
            lambda e: e.update(
                {
                    "region": "us-west-2",
                    "resources": [e["resources"][0].replace("eu-west-1", "us-west-2")],
                }
            ),
            "region us-west-2, not eu-west-1",
        ),
    ],
)
def test_an_event_from_elsewhere_or_disagreeing_is_out_of_scope(change, why):
    request = parse_one(mutated(change))
    with pytest.raises(ScopeError, match=why):
        HERE.check_request(request)


def test_scope_refuses_an_eventbridge_request_without_its_envelope_fields():
    request = parse_one(load_event("eventbridge_alarm_single_metric.json"))
    stripped = type(request)(
        **{**request.__dict__, "details": {**request.details, "region_code": None}}
    )
    with pytest.raises(ScopeError, match="names no account or region"):
        HERE.check_request(stripped)


def test_parsed_times_are_aware_and_exact():
    request = parse_one(load_event("eventbridge_alarm_single_metric.json"))
    assert request.occurred_at == datetime(2026, 11, 23, 10, 29, 36, 557000, tzinfo=UTC)
    assert request.occurred_at - request.occurred_at.astimezone(UTC) == timedelta(0)


def test_sample_events_are_the_documented_shape():
    for name in ("single_metric", "metric_math", "ok_transition", "composite"):
        event = json.loads(json.dumps(load_event(f"eventbridge_alarm_{name}.json")))
        assert event["source"] == "aws.cloudwatch"
        assert event["detail-type"] == "CloudWatch Alarm State Change"
        assert event["resources"][0].endswith(":alarm:" + event["detail"]["alarmName"])
        assert {"version", "id", "account", "time", "region"} <= event.keys()


def test_retime_moves_an_eventbridge_event_and_its_key():
    from serverless_remediation.remediate.replay import retime

    event = load_event("eventbridge_alarm_single_metric.json")
    when = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    moved = retime(event, when)
    assert moved["time"] == "2027-01-02T03:04:05Z"
    assert moved["detail"]["state"]["timestamp"] == "2027-01-02T03:04:05.678+0000"
    # only the state change moves: the previous state and everything else stay
    assert moved["detail"]["previousState"] == event["detail"]["previousState"]
    assert {k: v for k, v in moved.items() if k not in ("time", "detail")} == {
        k: v for k, v in event.items() if k not in ("time", "detail")
    }
    assert event["time"] == "2026-11-23T10:29:36Z"  # a copy: the original is untouched
    request = parse_alarm_event(moved)
    assert request.occurred_at == when.replace(microsecond=678000)
    assert request.idempotency_key != parse_alarm_event(event).idempotency_key
    # the SNS message of the same moment still has the same key
    sns = parse_one(retime(load_event("sns_alarm_single_metric.json"), when))
    assert sns.idempotency_key == request.idempotency_key


MATH_ALARM = {
    "AlarmName": "test-orders-error-rate-pct",
    "AlarmDescription": None,
    "Metrics": [
        {"Id": "rate", "Expression": "100 * errors / MAX([errors, invocations])", "Label": "r"},
        *[
            {
                "Id": metric_id,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": "orders"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
            for metric_id, metric in (("errors", "Errors"), ("invocations", "Invocations"))
        ],
    ],
}
SINGLE_ALARM = {
    "AlarmName": "test-orders-error-rate",
    "Namespace": "AWS/Lambda",
    "MetricName": "Errors",
    "Dimensions": [{"Name": "FunctionName", "Value": "orders"}],
    "Period": 60,
    "Statistic": "Sum",
}


@pytest.mark.parametrize("alarm", [SINGLE_ALARM, MATH_ALARM], ids=["single", "math"])
def test_the_drills_eventbridge_event_reads_like_its_sns_message(alarm):
    """The drill's builder (``remediate.drill.messages.alarm_event``) has the documented
    shape, and gives the request its SNS message gives."""
    from serverless_remediation.remediate.drill import messages

    arn = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{alarm['AlarmName']}"
    when = datetime(2026, 11, 23, 10, 29, 36, 557000, tzinfo=UTC)
    common = {
        "arn": arn,
        "region": "eu-west-1",
        "account": ACCOUNT,
        "new_state": "ALARM",
        "old_state": "OK",
        "reason": "r",
        "when": when,
    }
    event = messages.alarm_event(alarm, **common)
    assert event["time"] == "2026-11-23T10:29:36Z"
    assert event["resources"] == [arn]
    metrics = event["detail"]["configuration"]["metrics"]
    assert all(("metricStat" in m) != ("expression" in m) for m in metrics)
    for metric in metrics:
        if "metricStat" in metric:
            assert metric["metricStat"]["metric"]["dimensions"] == {"FunctionName": "orders"}
    via_eventbridge = parse_alarm_event(event)
    sns = messages.alarm_envelope(
        f"arn:aws:sns:eu-west-1:{ACCOUNT}:t", messages.alarm_message(alarm, **common), when
    )
    via_sns = parse_one(sns)
    assert via_eventbridge.idempotency_key == via_sns.idempotency_key
    assert via_eventbridge.details["metric"] == via_sns.details["metric"] != ""
    HERE.check_request(via_eventbridge)
