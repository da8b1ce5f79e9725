"""The drill: CloudWatch-shaped messages, scenario files, the runner and its verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediate.drill import messages, scenario
from remediation import intake
from remediation.models import Source
from tests.conftest import load_event

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 11, 23, 10, 29, 36, 557000, tzinfo=UTC)


def sample_alarm(name: str) -> dict:
    return json.loads(load_event(name)["Records"][0]["Sns"]["Message"])


# -- messages ---------------------------------------------------------------------------------


def test_metric_math_trigger_is_shaped_like_cloudwatchs():
    cloudwatch = sample_alarm("sns_alarm_metric_math.json")
    alarm = {
        "AlarmName": cloudwatch["AlarmName"],
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 5,
        "DatapointsToAlarm": 5,
        "Threshold": 5,
        "TreatMissingData": "notBreaching",
        "Metrics": [
            {
                "Id": "rate",
                "Expression": "100 * errors / MAX([errors, invocations])",
                "Label": "error rate %",
                "ReturnData": True,
            },
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
    assert messages.trigger(alarm) == cloudwatch["Trigger"]


def test_single_metric_message_parses_like_the_real_one():
    cloudwatch = sample_alarm("sns_alarm_single_metric.json")
    alarm = {
        "AlarmName": "test-orders-error-rate",
        "MetricName": "Errors",
        "Namespace": "AWS/Lambda",
        "Statistic": "Sum",
        "Dimensions": [
            {"Name": "FunctionName", "Value": "orders"},
            {"Name": "Resource", "Value": "live"},
        ],
        "Period": 60,
        "EvaluationPeriods": 5,
        "DatapointsToAlarm": 5,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 5,
    }
    built = messages.alarm_message(
        alarm,
        arn=cloudwatch["AlarmArn"],
        region="eu-west-1",
        account="123456789012",
        new_state="ALARM",
        old_state="OK",
        reason=cloudwatch["NewStateReason"],
        when=WHEN,
    )
    assert built["Trigger"] == cloudwatch["Trigger"]
    assert built["StateChangeTime"] == cloudwatch["StateChangeTime"]
    assert built["Region"] == "EU (Ireland)"
    topic = "arn:aws:sns:eu-west-1:123456789012:remediation-rollback"
    envelope = messages.alarm_envelope(topic, built, WHEN)
    assert (
        envelope["Records"][0]["Sns"]["Subject"]
        == 'ALARM: "test-orders-error-rate" in EU (Ireland)'
    )
    request = intake.parse(intake.split(envelope)[0])
    assert request.source is Source.ALARM
    assert request.idempotency_key == f"{cloudwatch['AlarmArn']}|{built['StateChangeTime']}|ALARM"


def test_budget_notice_parses_as_a_budget():
    subject, body = messages.budget_notice("drill-monthly", "123456789012", 1000, 1250, WHEN)
    envelope = messages.sns_envelope("arn:aws:sns:us-east-1:123456789012:t", subject, body, WHEN)
    request = intake.parse(envelope["Records"][0])
    assert request.source is Source.BUDGET
    assert request.key == "drill-monthly"


# -- scenario files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"steps": [{"alarm": "x", "expect": {"outcome": "executed"}}]},
            "unknown key(s) ['outcome']",
        ),
        ({"steps": [{"alarm": "x", "state": "BAD"}]}, "state must be one of"),
        ({"steps": [{"advance": "ten minutes"}]}, "duration 'ten minutes'"),
        ({"steps": [{"alarm": "x", "switch": "on"}]}, "exactly one of"),
        ({"switch": "maybe", "steps": [{"advance": "1m"}]}, "switch must be one of"),
        ({"steps": []}, "steps must be a non-empty list"),
    ],
)
def test_malformed_scenarios_name_the_step_and_key(data, message):
    with pytest.raises(scenario.ScenarioError, match=r"bad\.yaml") as raised:
        scenario.parse(data, Path("bad.yaml"))
    assert message in str(raised.value)


def test_yaml_on_and_off_read_as_switch_modes():
    parsed = scenario.parse(
        {"switch": True, "steps": [{"switch": False}, {"advance": "90s"}]}, Path("s.yaml")
    )
    assert parsed.switch == "on"
    assert parsed.steps[0].value == "off"
    assert parsed.steps[1].value.total_seconds() == 90


def test_every_shipped_scenario_parses():
    paths = scenario.discover(ROOT / "scenarios")
    parsed = [scenario.load(p) for p in paths]
    assert len({s.name for s in parsed}) == len(parsed)
