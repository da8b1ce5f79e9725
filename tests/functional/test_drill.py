"""The drill: CloudWatch-shaped messages, scenario files, the runner and its verdicts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from remediate import drill
from remediate.drill import messages, scenario, template
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


# -- against the synthesized drill environment ------------------------------------------------

ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live"


@pytest.fixture(scope="session")
def drill_assembly() -> Path:
    """``cdk synth -c env=drill``, once (reused while newer than the CDK app and functions)."""
    return template.synth(ROOT, "drill")


def test_template_wires_every_routed_alarm_to_one_remediator(drill_assembly):
    deployment = template.load(drill_assembly, "drill")
    playbook = deployment.playbook()
    assert playbook["alarms"], "the drill env routes alarms"
    for name, route in playbook["alarms"].items():
        alarm = deployment.alarm(name)
        subscribers = [s for t in alarm.alarm_topics for s in deployment.subscribers(t)]
        assert [s.actions for s in subscribers] == [[route["action"]]], name
    for remediator in deployment.remediators:
        assert remediator.playbook_path is not None, remediator.name
        assert remediator.environment["AUDIT_TABLE"] == deployment.setting("AUDIT_TABLE")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_scenario_runs_green_against_the_template(emulator, drill_assembly, tmp_path):
    path = write(
        tmp_path,
        "ok.yaml",
        """
name: rollback then duplicate
resources: {functions: {orders-api: {versions: 3, alias: live}}}
steps:
  - alarm: orders-api-error-rate
    expect: {outcomes: [executed], state: {functions: {orders-api: {alias: "2"}}}, notices: 1}
  - duplicate: true
    expect: {outcomes: [skipped], reason: duplicate, notices: 0}
expect: {audit: {executed: 1, skipped: 1}}
""",
    )
    console = Console(file=io.StringIO(), width=200)
    report = tmp_path / "report.md"
    (result,) = drill.run(
        path,
        root=ROOT,
        console=console,
        report_path=report,
        assembly=drill_assembly,
        emulator=emulator,
    )
    assert result.passed, [str(f) for f in result.failures]
    text = report.read_text()
    assert "1/1 scenarios passed" in text
    assert 'functions.orders-api.alias: "3" -> "2"' in text
    assert "lambda:UpdateAlias" in text


def test_a_wrong_expectation_exits_non_zero_naming_it_and_what_was_seen(
    emulator, drill_assembly, tmp_path
):
    from typer.testing import CliRunner

    from remediate import cli

    path = write(
        tmp_path,
        "wrong.yaml",
        """
name: deliberately wrong
resources: {functions: {orders-api: {versions: 3, alias: live}}}
steps:
  - alarm: orders-api-error-rate
    expect:
      outcomes: [escalated]
      state: {functions: {orders-api: {alias: "3"}}}
""",
    )
    result = CliRunner().invoke(
        cli.app,
        [
            "drill",
            str(path),
            "--cdk-out",
            str(drill_assembly),
            "--endpoint-url",
            emulator.endpoint_url,
            "--report",
            str(tmp_path / "r.md"),
        ],
    )
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "deliberately wrong: step 1 (alarm orders-api-error-rate -> ALARM)" in flat
    assert "expected outcomes ['escalated']; saw ['executed']" in flat
    assert "expected functions.orders-api.alias = '3'; saw '2'" in flat
    assert "0/1 scenarios passed" in flat


def test_resolver_names_resources_and_resolves_intrinsics(tmp_path):
    core = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "app-drill-rollback"}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"aws:asset:path": "asset.x"},
                "Properties": {
                    "Environment": {
                        "Variables": {
                            "REMEDIATION_ACTIONS": "rollback",
                            "AUDIT_TABLE": {"Ref": "Table"},
                            "SWITCH_PARAMETER": {
                                "Fn::Join": ["", ["/app/", {"Ref": "AWS::StackName"}, "/switch"]]
                            },
                            "NOTICE_TOPIC_ARN": {"Fn::Sub": "arn:aws:sns:${AWS::Region}:x:n"},
                        }
                    }
                },
            },
            "Sub": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "Protocol": "lambda",
                    "TopicArn": {"Ref": "Topic"},
                    "Endpoint": {"Fn::GetAtt": ["Fn", "Arn"]},
                },
            },
        },
        "Outputs": {"T": {"Value": {"Ref": "Topic"}, "Export": {"Name": "topic-arn"}}},
    }
    alarms = {
        "Resources": {
            "A": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "app-drill-orders-error-rate",
                    "AlarmActions": [{"Fn::ImportValue": "topic-arn"}],
                    "Threshold": 5,
                },
            }
        }
    }
    (tmp_path / "asset.x").mkdir()
    (tmp_path / "asset.x" / "playbook.json").write_text('{"alarms": {}}')
    artifacts = {}
    for name, body in (("core", core), ("alarms", alarms)):
        (tmp_path / f"{name}.template.json").write_text(json.dumps(body))
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": "aws://123456789012/us-east-2",
            "properties": {"templateFile": f"{name}.template.json", "stackName": f"app-{name}"},
        }
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))

    deployment = template.load(tmp_path, "drill")

    (fn,) = deployment.remediators
    assert fn.environment["AUDIT_TABLE"] == "app-core-Table"
    assert fn.environment["SWITCH_PARAMETER"] == "/app/app-core/switch"
    assert fn.environment["NOTICE_TOPIC_ARN"] == "arn:aws:sns:us-east-2:x:n"
    assert fn.playbook_path == tmp_path / "asset.x" / "playbook.json"
    topic = "arn:aws:sns:us-east-2:123456789012:app-drill-rollback"
    assert fn.topics == [topic]
    alarm = deployment.alarm("orders-error-rate")
    assert alarm.alarm_topics == [topic]
    assert (
        alarm.arn == "arn:aws:cloudwatch:us-east-2:123456789012:alarm:app-drill-orders-error-rate"
    )
    assert deployment.region == "us-east-2"
    with pytest.raises(template.TemplateError, match="not in the template"):
        deployment.alarm("latency")


def test_logs_insights_stand_in_filters_and_counts_like_the_waf_query():
    from remediate.drill.gaps import insights
    from remediate.drill.world import access_log_lines
    from remediation.actions.waf_block import DEFAULT_QUERY, parse_rows

    lines = access_log_lines(
        {
            "hits": {"203.0.113.9": 3, "198.51.100.7": 1},
            "lines": [{"ip": "192.0.2.1", "status": "200"}, "not json"],
        }
    )
    rows = insights(DEFAULT_QUERY, lines)
    assert parse_rows(rows, "ip", "requests") == [
        {"ip": "203.0.113.9", "count": 3},
        {"ip": "198.51.100.7", "count": 1},
    ]
    raw = insights("fields @message | filter status = 200", lines)
    assert [json.loads(r[0]["value"])["ip"] for r in raw] == ["192.0.2.1"]
