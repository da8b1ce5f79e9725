"""``trigger: eventbridge``: the drill environment synthesized with EventBridge rules instead
of SNS alarm actions, cdk-nag and cfn-lint clean."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from serverless_remediation.stacks.config import ConfigError, parse_env
from serverless_remediation.stacks.constructs.trigger import (
    DETAIL_TYPE,
    MAX_PATTERN_CHARS,
    event_pattern,
    pattern_chunks,
    rule_name,
)
from tests.infra.conftest import Synth, synthesize
from tests.infra.test_config import env


@pytest.fixture(scope="module")
def eventbridge(context: dict[str, Any]) -> Synth:
    raw = copy.deepcopy(context["environments"]["drill"])
    raw["trigger"] = "eventbridge"
    return synthesize(parse_env(context.get("app_name", "autorem"), "drill", raw), nag=True)


def routed(synth: Synth) -> dict[str, set[str]]:
    """Alarm names by the action their route names, from the catalog."""
    out: dict[str, set[str]] = {}
    for alarm in synth.core.suite.catalog.alarms:
        out.setdefault(alarm.route.action, set()).add(alarm.name)
    return out


def alarm_rules(synth: Synth) -> dict[str, dict[str, Any]]:
    """The core stack's rules that match alarm events (not the sweeper's schedule)."""
    return {
        logical: body
        for logical, body in synth.core_template["Resources"].items()
        if body["Type"] == "AWS::Events::Rule" and "EventPattern" in body["Properties"]
    }


def test_trigger_defaults_to_sns_and_refuses_anything_else() -> None:
    assert parse_env("autorem", "test", env()).trigger == "sns"
    assert parse_env("autorem", "test", env(trigger="eventbridge")).trigger == "eventbridge"
    with pytest.raises(ConfigError, match="trigger"):
        parse_env("autorem", "test", env(trigger="sqs"))


def test_the_json_schema_documents_the_trigger() -> None:
    from serverless_remediation.stacks.config import json_schema

    text = json.dumps(json_schema())
    assert '"sns"' in text
    assert '"eventbridge"' in text
    assert "how alarm state changes reach the remediators" in text


def test_service_alarms_have_no_actions_and_health_alarms_keep_theirs(eventbridge: Synth) -> None:
    services = {name for names in routed(eventbridge).values() for name in names}
    assert services
    seen = set()
    for alarm in eventbridge.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["AlarmName"] in services:
            seen.add(props["AlarmName"])
            assert "AlarmActions" not in props, props["AlarmName"]
            assert "OKActions" not in props, props["AlarmName"]
        else:  # the suite's own health: a human hears of it through the notice topic
            assert props["AlarmActions"], props["AlarmName"]
            assert props["OKActions"], props["AlarmName"]
    assert seen == services


def test_only_budgets_keep_an_alarm_topic(eventbridge: Synth) -> None:
    topics = {
        t["Properties"]["TopicName"]
        for t in eventbridge.resources("AWS::SNS::Topic").values()
        if "TopicName" in t["Properties"]
    }
    prefix = eventbridge.config.prefix
    budget_actions = {b.route.action for b in eventbridge.core.suite.catalog.budgets}
    assert budget_actions
    alarm_topics = {t for t in topics if t.endswith("-alarms")}
    assert alarm_topics == {f"{prefix}-{action}-alarms" for action in budget_actions}
    # nothing subscribes a remediator to a topic no budget publishes to
    for sub in eventbridge.resources("AWS::SNS::Subscription").values():
        assert sub["Properties"]["Protocol"] != "lambda" or budget_actions


def test_one_rule_per_action_matches_exactly_its_alarms(eventbridge: Synth) -> None:
    template = eventbridge.core_template["Resources"]
    functions = {
        logical: body["Properties"]["FunctionName"]
        for logical, body in template.items()
        if body["Type"] == "AWS::Lambda::Function" and "FunctionName" in body["Properties"]
    }
    rules = alarm_rules(eventbridge)
    assert rules
    delivered: dict[str, set[str]] = {}
    for rule in rules.values():
        props = rule["Properties"]
        pattern = props["EventPattern"]
        assert pattern["source"] == ["aws.cloudwatch"]
        assert pattern["detail-type"] == [DETAIL_TYPE]
        assert "EventBusName" not in props  # the default bus: where CloudWatch delivers
        assert props["State"] == "ENABLED"
        (target,) = props["Targets"]
        function = functions[target["Arn"]["Fn::GetAtt"][0]]
        action = function.removeprefix(f"{eventbridge.config.prefix}-")
        assert props["Name"].startswith(f"{eventbridge.config.prefix}-{action}-alarms")
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86_400
        assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][1] == "Arn"
        delivered.setdefault(action, set()).update(pattern["detail"]["alarmName"])
    assert delivered == routed(eventbridge)


def test_the_invoke_permission_is_scoped_to_its_rule(eventbridge: Synth) -> None:
    template = eventbridge.core_template["Resources"]
    rules = alarm_rules(eventbridge)
    permissions = [
        body["Properties"]
        for body in template.values()
        if body["Type"] == "AWS::Lambda::Permission"
        and body["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    # every one names the rule that may invoke (none is open to all of EventBridge)
    assert all(p["SourceArn"]["Fn::GetAtt"][1] == "Arn" for p in permissions)
    by_rule = {
        p["SourceArn"]["Fn::GetAtt"][0]: p
        for p in permissions
        if p["SourceArn"]["Fn::GetAtt"][0] in rules
    }
    assert set(by_rule) == set(rules)
    for logical, permission in by_rule.items():
        (target,) = rules[logical]["Properties"]["Targets"]
        assert permission["FunctionName"] == target["Arn"]  # the rule's own target only
        assert permission["Action"] == "lambda:InvokeFunction"


def test_dead_letters_reach_the_alarmed_queue(eventbridge: Synth) -> None:
    template = eventbridge.core_template["Resources"]
    rules = set(alarm_rules(eventbridge))
    (queue,) = [k for k, v in template.items() if v["Type"] == "AWS::SQS::Queue"]
    for logical in rules:
        (target,) = template[logical]["Properties"]["Targets"]
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
    # the queue policy lets the rules send, each by its ARN
    statements = [
        s
        for body in template.values()
        if body["Type"] == "AWS::SQS::QueuePolicy"
        for s in body["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    senders = {s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in statements}
    assert senders == rules
    # the key lets EventBridge encrypt for these rules only, named by ARN
    (key,) = [v for v in template.values() if v["Type"] == "AWS::KMS::Key"]
    (grant,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    names = {template[r]["Properties"]["Name"] for r in rules}
    arns = set(grant["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert arns == {f"arn:aws:events:eu-west-1:123456789012:rule/{name}" for name in names}
    # and the queue is alarmed already: the suite's health
    alarms = {
        a["Properties"]["AlarmName"]
        for a in eventbridge.resources("AWS::CloudWatch::Alarm").values()
    }
    assert f"{eventbridge.config.prefix}-remediator-dlq-depth" in alarms


def test_eventbridge_templates_are_cfn_lint_clean_but_w3005(eventbridge: Synth) -> None:
    from cfnlint.api import ManualArgs, lint

    for name, template in eventbridge.templates.items():
        found = lint(json.dumps(template), config=ManualArgs(regions=[eventbridge.config.region]))
        assert {m.rule.id for m in found} <= {"W3005"}, (name, [str(m) for m in found])


def test_long_alarm_lists_split_into_rules_under_the_pattern_quota() -> None:
    names = [f"autorem-prod-service-{n:04d}-error-rate" for n in range(300)]
    chunks = pattern_chunks(names)
    assert len(chunks) > 1
    assert sorted(n for chunk in chunks for n in chunk) == sorted(names)
    for chunk in chunks:
        assert len(json.dumps(event_pattern(chunk))) <= MAX_PATTERN_CHARS
    assert rule_name("autorem-prod", "rollback", 1) == "autorem-prod-rollback-alarms"
    assert rule_name("autorem-prod", "rollback", 2) == "autorem-prod-rollback-alarms-2"
    assert len(rule_name("p" * 60, "rollback", 3)) == 64


def test_the_drill_reads_the_rules_of_an_eventbridge_template(eventbridge: Synth) -> None:
    from pathlib import Path

    from serverless_remediation.remediate.drill import template

    assembly = Path(eventbridge.app.synth().directory)
    deployment = template.load(assembly, "drill")
    for action, names in routed(eventbridge).items():
        owner = deployment.remediator_for(action)
        for name in names:
            assert deployment.rule_targets(name) == [owner], name
    assert deployment.rule_targets("no-such-alarm") == []
    # and no alarm has an SNS action left to deliver by
    assert not any(
        alarm.alarm_topics
        for alarm in deployment.alarms.values()
        if alarm.name in {n for names in routed(eventbridge).values() for n in names}
    )
