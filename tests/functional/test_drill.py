"""The drill: CloudWatch-shaped messages, scenario files, the runner and its verdicts."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from serverless_remediation.remediate import drill
from serverless_remediation.remediate.drill import messages, scenario, template
from serverless_remediation.remediate.replay import retime
from serverless_remediation.remediation import intake
from serverless_remediation.remediation.models import Source
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


@pytest.mark.parametrize(
    "event", ["sns_alarm_metric_math.json", "lambda_alarm_action.json", "captured"]
)
def test_at_now_moves_every_time_a_remediator_reads_and_nothing_else(event):
    """What a deliver or replay step's ``at`` does (``remediate.replay.retime``)."""
    if event == "captured":
        original = json.loads((ROOT / "scenarios/captures/orders-api-error-rate.json").read_text())
    else:
        original = load_event(event)
    kept = copy.deepcopy(original)
    later = WHEN + timedelta(days=9)
    moved = retime(original, later)
    assert original == kept  # a copy: the scenario's event is replayed again unchanged
    request = intake.parse(intake.split(moved)[0])
    assert request.occurred_at == later
    if "Records" in moved:
        sns = moved["Records"][0]["Sns"]
        assert sns["Timestamp"] == "2026-12-02T10:29:36.557Z"
        alarm, before = json.loads(sns["Message"]), json.loads(kept["Records"][0]["Sns"]["Message"])
        assert {k: v for k, v in alarm.items() if k != "StateChangeTime"} == {
            k: v for k, v in before.items() if k != "StateChangeTime"
        }
    else:
        assert moved["time"] == "2026-12-02T10:29:36.557+0000"


def test_at_now_moves_a_budget_notice_by_its_sns_timestamp():
    subject, body = messages.budget_notice("drill-monthly", "123456789012", 1000, 1250, WHEN)
    envelope = messages.sns_envelope("arn:aws:sns:us-east-1:123456789012:t", subject, body, WHEN)
    later = WHEN + timedelta(hours=5)
    moved = retime(envelope, later)
    assert intake.parse(moved["Records"][0]).occurred_at == later
    assert moved["Records"][0]["Sns"]["Message"] == body


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


ALARM = {"alarm": "x"}


@pytest.mark.parametrize(
    ("data", "where", "unknown", "allowed"),
    [
        ({"stepz": [], "steps": [ALARM]}, "bad.yaml:", "stepz", "steps"),
        ({"resources": {"lambdas": {}}, "steps": [ALARM]}, "resources:", "lambdas", "functions"),
        (
            {"resources": {"functions": {"orders-api": {"aliass": "live"}}}, "steps": [ALARM]},
            "resources.functions.orders-api:",
            "aliass",
            "alias_version",
        ),
        (
            {"resources": {"tables": {"leads": {"autoscaling": {"minimum": 5}}}}, "steps": [ALARM]},
            "resources.tables.leads.autoscaling:",
            "minimum",
            "min",
        ),
        (
            {"resources": {"http_apis": {"f6": {"stage": "prod", "canary": 10}}}, "steps": [ALARM]},
            "resources.http_apis.f6:",
            "canary",
            "auto_deploy",
        ),
        ({"steps": [{**ALARM, "cloudwatchh": "as-is"}]}, "step 1 (alarm):", "cloudwatchh", "at"),
        ({"steps": [{"duplicate": True, "at": "now"}]}, "step 1 (duplicate):", "at", ""),
        (
            {"steps": [{**ALARM, "cloudwatch": {"stat": "OK"}}]},
            "step 1: cloudwatch:",
            "stat",
            "since",
        ),
        (
            {"steps": [{**ALARM, "expect": {"outcome": "x"}}]},
            "step 1: expect:",
            "outcome",
            "outcomes",
        ),
        (
            {"steps": [{**ALARM, "expect": {"state": {"lambdas": {}}}}]},
            "step 1: expect.state:",
            "lambdas",
            "functions",
        ),
        (
            {"steps": [{**ALARM, "expect": {"state": {"functions": {"f": {"memroy": 1}}}}}]},
            "step 1: expect.state.functions.f:",
            "memroy",
            "weights",
        ),
        ({"steps": [ALARM], "expect": {"audits": {}}}, "bad.yaml: expect:", "audits", "audit"),
        (
            {"steps": [{"invoke": {"action": "rollback", "target": "t", "param": {}}}]},
            "step 1: invoke:",
            "param",
            "params",
        ),
        ({"steps": [{"switch": {"val": "ON "}}]}, "step 1: switch:", "val", "value"),
        (
            {"steps": [{"fault": "lambda:UpdateAlias", "eror": "X"}]},
            "step 1 (fault):",
            "eror",
            "error",
        ),
    ],
)
def test_an_unknown_key_anywhere_is_named_with_the_keys_allowed_there(
    data, where, unknown, allowed
):
    """A typo must fail loudly: an ignored ``outcome:`` would check nothing and pass."""
    with pytest.raises(scenario.ScenarioError) as raised:
        scenario.parse(data, Path("bad.yaml"))
    message = str(raised.value)
    assert where in message
    assert f"unknown key(s) ['{unknown}']" in message
    listed = message.split("; expected some of ", 1)[1]
    assert (repr(allowed) in listed) if allowed else listed == "[]"


def test_step_options_for_forged_outdated_and_replayed_events_parse():
    parsed = scenario.parse(
        {
            "switch": {"value": "ON "},
            "steps": [
                {"alarm": "x", "at": "-20m", "cloudwatch": {"state": "OK", "since": "+1m"}},
                {"alarm": "x", "cloudwatch": "absent"},
                {"deliver": {"hello": "world"}, "at": "now", "cloudwatch": "as-is"},
                {"switch": {"value": "true"}},
                {"fault": "lambda:UpdateAlias"},
            ],
        },
        Path("s.yaml"),
    )
    assert parsed.switch == {"value": "ON "}
    alarm, absent, deliver, switch, fault = parsed.steps
    assert alarm.options["at"] == -timedelta(minutes=20)
    assert alarm.options["cloudwatch"] == {"state": "OK", "since": timedelta(minutes=1)}
    assert absent.options["cloudwatch"] == "absent"
    assert deliver.options == {"at": timedelta(), "cloudwatch": "as-is"}
    assert switch.value == {"value": "true"}
    assert switch.title == "switch -> 'true'"
    assert fault.options == {"error": "AccessDeniedException", "times": 1}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"alarm": "x", "cloudwatch": "maybe"}, "cloudwatch must be one of ['agree', 'as-is'"),
        ({"alarm": "x", "cloudwatch": {"state": "RED"}}, "state must be one of"),
        ({"alarm": "x", "at": "yesterday"}, "must be now or a signed duration"),
        ({"fault": "UpdateAlias"}, "fault names one AWS call as service:Operation"),
        ({"fault": "lambda:UpdateAlias", "times": 0}, "times must be a whole number"),
        ({"switch": {"value": True}}, "value must be a string"),
        ({"switch": "ON "}, "or {value: TEXT}"),
        (
            {"alarm": "x", "expect": {"state": {"functions": {"f": {"weights": {}}}}}},
            None,
        ),
    ],
)
def test_bad_option_values_are_named(step, message):
    data = {"steps": [step]}
    if message is None:
        scenario.parse(data, Path("ok.yaml"))  # an empty mapping is a value, not a typo
        return
    with pytest.raises(scenario.ScenarioError) as raised:
        scenario.parse(data, Path("bad.yaml"))
    assert message in str(raised.value)


def test_a_canary_alias_is_a_resource_spec_and_weights_a_state_field():
    parsed = scenario.parse(
        {
            "resources": {
                "functions": {
                    "orders-api": {
                        "versions": 3,
                        "alias": "live",
                        "alias_version": 2,
                        "weights": {"3": 0.1},
                    }
                }
            },
            "steps": [
                {
                    "alarm": "orders-api-error-rate",
                    "expect": {"state": {"functions": {"orders-api": {"weights": {"3": 0.1}}}}},
                }
            ],
        },
        Path("canary.yaml"),
    )
    assert parsed.resources["functions"]["orders-api"]["weights"] == {"3": 0.1}
    with pytest.raises(scenario.ScenarioError, match="share between 0 and 1"):
        scenario.parse(
            {
                "resources": {"functions": {"f": {"weights": {"3": 10}}}},
                "steps": [{"advance": "1m"}],
            },
            Path("bad.yaml"),
        )


def test_an_empty_dict_expects_an_empty_dict():
    """``weights: {}`` must fail while a canary is still there (dicts otherwise compare only
    the keys given, and no keys would match anything)."""
    from serverless_remediation.remediate.drill.runner import matches

    assert matches({}, {})
    assert not matches({"3": 0.1}, {})
    assert matches({"3": 0.1, "4": 0.2}, {"3": 0.1})


def test_replay_reads_the_capture_beside_the_scenario(tmp_path):
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "event.json").write_text('{"Records": []}')
    parsed = scenario.parse(
        {"steps": [{"replay": "captures/event.json", "to": "rollback", "at": "now"}]},
        tmp_path / "s.yaml",
    )
    (step,) = parsed.steps
    assert step.value == {"file": "captures/event.json", "event": {"Records": []}}
    assert step.title == "replay captures/event.json to the rollback remediator"
    with pytest.raises(scenario.ScenarioError, match=r"cannot read missing\.json"):
        scenario.parse({"steps": [{"replay": "missing.json"}]}, tmp_path / "s.yaml")


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

    from serverless_remediation.remediate import cli

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
    from serverless_remediation.remediate.drill.gaps import insights
    from serverless_remediation.remediate.drill.world import access_log_lines
    from serverless_remediation.remediation.actions.waf_block import DEFAULT_QUERY, parse_rows

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


# -- what the emulated CloudWatch shows, and injected failures --------------------------------


def test_agree_alarm_shows_what_the_confirmation_reads(emulator):
    """``agree_alarm`` makes DescribeAlarms confirm the event; an earlier time does not."""
    from serverless_remediation.remediate.emulator import ACCOUNT, REGION, agree_alarm
    from serverless_remediation.remediation import confirm
    from serverless_remediation.remediation.models import RejectedError

    emulator.reset()
    clients = emulator.clients()
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:drill-agree"
    event = json.loads(json.dumps(load_event("sns_alarm_single_metric.json")))
    alarm = json.loads(event["Records"][0]["Sns"]["Message"])
    alarm.update(AlarmName="drill-agree", AlarmArn=arn)
    event["Records"][0]["Sns"]["Message"] = json.dumps(alarm)
    request = intake.parse(intake.split(event)[0])
    cloudwatch = clients("cloudwatch")

    agree_alarm(clients, arn, "ALARM", request.occurred_at)
    shown = confirm.describe_alarm(cloudwatch, "drill-agree")
    assert shown["StateValue"] == "ALARM"
    assert abs(shown["StateUpdatedTimestamp"] - request.occurred_at) < timedelta(seconds=1)
    confirm.check_alarm(request, shown)

    agree_alarm(clients, arn, "ALARM", request.occurred_at - timedelta(minutes=10))
    with pytest.raises(RejectedError, match="is not CloudWatch's"):
        confirm.check_alarm(request, confirm.describe_alarm(cloudwatch, "drill-agree"))

    other = arn.replace(ACCOUNT, "999999999999")
    agree_alarm(clients, other, "ALARM", request.occurred_at)  # another account: left alone
    assert (
        cloudwatch.describe_alarms(AlarmNames=["drill-agree"])["MetricAlarms"][0]["AlarmArn"] == arn
    )


def test_an_injected_fault_fails_only_active_calls_and_only_as_often_as_armed(emulator):
    import boto3
    from botocore.exceptions import ClientError

    from serverless_remediation.remediate.drill.faults import Faults

    emulator.reset()
    active = [False]
    faults = Faults(active=lambda: active[0])
    session = boto3.session.Session(region_name="eu-west-1")
    faults.register(session)
    ssm = session.client("ssm", endpoint_url=emulator.endpoint_url)
    ssm.put_parameter(Name="/drill/flag", Value="true", Type="String")
    faults.arm("ssm:GetParameter", "AccessDeniedException", times=1)
    assert ssm.get_parameter(Name="/drill/flag")["Parameter"]["Value"] == "true"  # inactive
    active[0] = True
    with pytest.raises(ClientError) as raised:
        ssm.get_parameter(Name="/drill/flag")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert ssm.get_parameter(Name="/drill/flag")["Parameter"]["Value"] == "true"  # used up
    assert faults.fired == ["ssm:GetParameter AccessDeniedException"]


def test_forged_outdated_canary_and_replayed_events_against_the_template(
    emulator, drill_assembly, tmp_path
):
    """The drill's own options end to end: a canary alias, CloudWatch left as it is, absent,
    or in ALARM since before the event, and a capture replayed unchanged and ``at: now``."""
    capture = json.loads((ROOT / "scenarios/captures/orders-api-error-rate.json").read_text())
    (tmp_path / "capture.json").write_text(json.dumps(capture))
    path = write(
        tmp_path,
        "options.yaml",
        """
name: drill options
switch: on
resources:
  functions: {orders-api: {versions: 3, alias: live, alias_version: 2, weights: {"3": 0.25}}}
steps:
  - alarm: orders-api-error-rate
    cloudwatch: as-is
    expect:
      outcomes: [rejected]
      reason: "is OK now"
      state: {functions: {orders-api: {weights: {"3": 0.25}}}}
  - advance: 1m
  - alarm: orders-api-error-rate
    cloudwatch: absent
    expect: {outcomes: [rejected], reason: "does not exist"}
  - advance: 1m
  - alarm: orders-api-error-rate
    cloudwatch: {since: -5m}
    expect: {outcomes: [rejected], reason: "is not CloudWatch's"}
  - advance: 1m
  - alarm: orders-api-error-rate
    at: -16m
    expect: {outcomes: [rejected], reason: "older than"}
  - replay: capture.json
    expect: {outcomes: [rejected], reason: "older than"}
  - replay: capture.json
    at: now
    expect:
      outcomes: [executed]
      state: {functions: {orders-api: {alias: "2", weights: {}}}}
expect: {audit: {rejected: 5, executed: 1}}
""",
    )
    console = Console(file=io.StringIO(), width=200)
    (result,) = drill.run(
        path, root=ROOT, console=console, assembly=drill_assembly, emulator=emulator
    )
    assert result.passed, [str(f) for f in result.failures]
    notes = [e.note for e in result.events]
    assert "CloudWatch left as it is: autorem-drill-orders-api-error-rate is OK" in notes[0]
    assert "CloudWatch has no alarm" in notes[2]
    assert "since 5 min 0 s before the event's time" in notes[4]
