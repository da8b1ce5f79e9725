"""An environment with Slack, Teams and PagerDuty configured: the channel configurations,
the API destination and its connection exist, cdk-nag and cfn-lint are clean, and no secret
value reaches a template."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from serverless_remediation.remediation.decisions import chat_identity
from serverless_remediation.remediation.notify import OUTCOME_DETAIL_TYPE, OUTCOME_SOURCE
from serverless_remediation.stacks.config import ConfigError, parse_env
from serverless_remediation.stacks.constructs.paging import PAGERDUTY_ENQUEUE, pages_rule_name
from tests.infra.conftest import Synth, synthesize

SECRET_NAME = "autorem/drill/pagerduty"
#: a routing key as an operator's shell might hold it while deploying: must appear nowhere
PLANTED = "R0UT1NGK3YPLANTEDabcdef0123456789"
CHANNEL = chat_identity("autorem-drill")
SLACK = {"workspace_id": "T0123ABCD", "channel_id": "C0456EFGH"}
TEAMS = {
    "team_id": "74361522-da01-538d-aa2e-ac7918c6bb92",
    "channel_id": "19%3a0123456789abcdef%40thread.tacv2",
    "tenant_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
}


def people(context: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    raw = copy.deepcopy(context["environments"]["drill"])
    raw["chat"] = {"slack": SLACK, "teams": TEAMS}
    raw["paging"] = {"pagerduty_secret": SECRET_NAME}
    # the channel may decide approvals (as in cdk.json's drill): Approve / Reject buttons
    approvers = list(dict.fromkeys([*raw["people"]["approvers"], CHANNEL]))
    raw["people"] = {**raw["people"], "approvers": approvers}
    raw.update(overrides)
    return raw


@pytest.fixture(scope="module")
def synth(context: dict[str, Any]) -> Synth:
    saved = os.environ.get("PAGERDUTY_ROUTING_KEY")
    os.environ["PAGERDUTY_ROUTING_KEY"] = PLANTED
    try:
        return synthesize(parse_env("autorem", "drill", people(context)), nag=True)
    finally:
        if saved is None:
            os.environ.pop("PAGERDUTY_ROUTING_KEY", None)
        else:
            os.environ["PAGERDUTY_ROUTING_KEY"] = saved


def one(synth: Synth, kind: str) -> dict[str, Any]:
    (found,) = synth.resources(kind).values()
    return found["Properties"]


def test_slack_and_teams_channels_subscribe_to_the_notice_topic(synth: Synth) -> None:
    slack = one(synth, "AWS::Chatbot::SlackChannelConfiguration")
    teams = one(synth, "AWS::Chatbot::MicrosoftTeamsChannelConfiguration")
    assert slack["SlackWorkspaceId"] == SLACK["workspace_id"]
    assert slack["SlackChannelId"] == SLACK["channel_id"]
    assert teams["TeamId"] == TEAMS["team_id"]
    assert teams["TeamsChannelId"] == TEAMS["channel_id"]
    assert teams["TeamsTenantId"] == TEAMS["tenant_id"]
    topics = synth.resources("AWS::SNS::Topic")
    (notice_id,) = [
        k.split("/", 1)[1]
        for k, v in topics.items()
        if v["Properties"]["TopicName"].endswith("-notices")
    ]
    for config in (slack, teams):
        assert config["SnsTopicArns"] == [{"Ref": notice_id}]
        assert config["UserRoleRequired"] is False
        (guardrail,) = config["GuardrailPolicies"]
        assert "Ref" in guardrail  # the suite's own policy, not an AWS-managed one


def test_the_channel_may_read_and_invoke_only_the_suite(synth: Synth) -> None:
    slack = one(synth, "AWS::Chatbot::SlackChannelConfiguration")
    (guardrail,) = slack["GuardrailPolicies"]
    policy = synth.core_template["Resources"][guardrail["Ref"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert all(s["Effect"] == "Allow" for s in statements)
    writes = {a for a in actions if not a.split(":")[1].startswith(("Describe", "Get", "List"))}
    assert writes == {"lambda:InvokeFunction"}
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    # the chat's entry point only: never a remediator, not even revert (it names who asks)
    assert invoke["Resource"] == {"Fn::GetAtt": [function_id(synth, "-chat-decisions"), "Arn"]}


def function_id(synth: Synth, suffix: str) -> str:
    functions = synth.resources("AWS::Lambda::Function")
    (found,) = [
        k.split("/", 1)[1]
        for k, v in functions.items()
        if v["Properties"].get("FunctionName", "").endswith(suffix)
    ]
    return found


def test_approve_and_reject_buttons_invoke_only_the_decisions_function(synth: Synth) -> None:
    actions = synth.resources("AWS::Chatbot::CustomAction")
    decider = function_id(synth, "-chat-decisions")
    by_verb = {}
    for logical, action in actions.items():
        props = action["Properties"]
        command = json.dumps(props["Definition"]["CommandText"])
        verb = "approve" if '\\"approve\\"' in command else "reject"
        by_verb[verb] = (logical.split("/", 1)[1], props)
        assert decider in command, command
        assert f'--payload {{\\"{verb}\\":\\"$approvalId\\"}} --region eu-west-1' in command
        (attachment,) = props["Attachments"]
        assert attachment["NotificationType"] == "Custom"
        assert attachment["ButtonText"] == verb.capitalize()
        # read from the notice as build_chat_notice writes it (metadata.additionalContext)
        assert attachment["Variables"] == {
            "approvalId": "event.metadata.additionalContext.approvalId",
            "env": "event.metadata.additionalContext.env",
        }
        assert sorted(attachment["Criteria"], key=lambda c: c["VariableName"]) == [
            {"Operator": "HAS_VALUE", "VariableName": "approvalId"},
            {"Operator": "EQUALS", "VariableName": "env", "Value": "drill"},
        ]
    assert set(by_verb) == {"approve", "reject"}
    listed = [{"Fn::GetAtt": [logical, "CustomActionArn"]} for logical, _ in by_verb.values()]
    for kind in ("SlackChannelConfiguration", "MicrosoftTeamsChannelConfiguration"):
        config = one(synth, f"AWS::Chatbot::{kind}")
        assert sorted(map(json.dumps, config["CustomizationResourceArns"])) == sorted(
            map(json.dumps, listed)
        )
    function = synth.core_template["Resources"][decider]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["CHAT_IDENTITY"] == CHANNEL
    # reports-worker's throttles wait for approval (cdk.json): capacity-bump decides them
    assert json.loads(variables["REMEDIATOR_FUNCTIONS"]) == {
        "capacity-bump": "autorem-drill-capacity-bump",
        "revert": "autorem-drill-revert",
    }


def test_no_buttons_when_the_approvers_do_not_admit_the_channel(context: dict[str, Any]) -> None:
    raw = people(context)
    raw["people"]["approvers"] = [a for a in raw["people"]["approvers"] if a != CHANNEL]
    synth = synthesize(parse_env("autorem", "drill", raw), nag=False)
    assert not synth.resources("AWS::Chatbot::CustomAction")
    # the chat's entry point stays (a decision from chat is refused there and recorded), and
    # it cannot reach the revert remediator: chat acts only where the approvers admit it
    decider = synth.core_template["Resources"][function_id(synth, "-chat-decisions")]
    variables = decider["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["REMEDIATOR_FUNCTIONS"]) == {
        "capacity-bump": "autorem-drill-capacity-bump"
    }


def test_custom_actions_attach_to_every_channel(context: dict[str, Any]) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Template

    from serverless_remediation.stacks.config import Chat, SlackChannel
    from serverless_remediation.stacks.constructs.chat import ChatChannels

    stack = Stack(App())
    chat = ChatChannels(
        stack,
        "Chat",
        prefix="autorem-x",
        chat=Chat(slack=SlackChannel(workspace_id="T1", channel_id="C1")),
        notice_topic=sns.Topic(stack, "T"),
    )
    arn = "arn:aws:chatbot::123456789012:custom-action/approve"
    chat.add_custom_action(arn)
    props = Template.from_stack(stack).find_resources("AWS::Chatbot::SlackChannelConfiguration")
    (config,) = props.values()
    assert config["Properties"]["CustomizationResourceArns"] == [arn]


def test_pages_go_to_pagerduty_through_an_api_destination(synth: Synth) -> None:
    destination = one(synth, "AWS::Events::ApiDestination")
    assert destination["InvocationEndpoint"] == PAGERDUTY_ENQUEUE
    assert destination["HttpMethod"] == "POST"
    connection = one(synth, "AWS::Events::Connection")
    assert connection["AuthorizationType"] == "API_KEY"
    reference = f"{{{{resolve:secretsmanager:{SECRET_NAME}:SecretString:::}}}}"
    (body,) = connection["AuthParameters"]["InvocationHttpParameters"]["BodyParameters"]
    assert body == {"Key": "routing_key", "Value": reference, "IsValueSecret": True}
    assert connection["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyValue"] == reference
    rules = synth.resources("AWS::Events::Rule")
    (rule,) = [
        r["Properties"]
        for r in rules.values()
        if r["Properties"].get("Name") == pages_rule_name(synth.config.prefix)
    ]
    assert rule["EventPattern"] == {
        "source": [OUTCOME_SOURCE],
        "detail-type": [OUTCOME_DETAIL_TYPE],
        "detail": {"env": ["drill"], "eventAction": ["trigger", "resolve"]},
    }
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "Arn" in target["DeadLetterConfig"]
    template = target["InputTransformer"]["InputTemplate"]
    assert '"event_action":<detail-eventAction>' in template.replace(" ", "")
    assert '"dedup_key":<detail-dedupKey>' in template.replace(" ", "")
    assert "routing_key" not in template
    alarms = {
        a["Properties"]["AlarmName"] for a in synth.resources("AWS::CloudWatch::Alarm").values()
    }
    assert f"{synth.config.prefix}-pages-dlq-depth" in alarms


def test_remediators_may_put_only_outcome_events_on_the_default_bus(synth: Synth) -> None:
    functions = synth.resources("AWS::Lambda::Function")
    remediators = [f for f in functions.values() if "REMEDIATION_ACTIONS" in json.dumps(f)]
    assert remediators
    for fn in remediators:
        assert fn["Properties"]["Environment"]["Variables"]["OUTCOME_EVENTS"] == "on"
    put = [
        s
        for p in synth.resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "events:PutEvents"
    ]
    assert len(put) == len(remediators)
    for statement in put:
        assert statement["Condition"] == {
            "StringEquals": {
                "events:source": OUTCOME_SOURCE,
                "events:detail-type": OUTCOME_DETAIL_TYPE,
            }
        }
        assert "event-bus/default" in json.dumps(statement["Resource"])


def test_no_secret_value_in_any_template_or_the_assembly(synth: Synth, tmp_path) -> None:
    texts = [json.dumps(t) for t in synth.templates.values()]
    assembly = synth.app.synth().directory
    for root, _, files in os.walk(assembly):
        for name in files:
            if name.endswith((".json", ".template")):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
    assert texts
    for text in texts:
        assert PLANTED not in text
    assert any(SECRET_NAME in t for t in texts)


def test_a_routing_key_written_in_cdk_json_is_refused(context: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="routing key"):
        parse_env("autorem", "drill", people(context, paging={"pagerduty_secret": PLANTED[:32]}))


@pytest.mark.parametrize(
    ("chat", "key"),
    [
        ({"slack": {**SLACK, "workspace_id": "t0123"}}, "workspace_id"),
        ({"slack": {**SLACK, "channel": "C1"}}, "channel"),
        ({"teams": {**TEAMS, "tenant_id": "not-a-uuid"}}, "tenant_id"),
        ({"teams": {**TEAMS, "channel_id": "19:abc@thread.tacv2"}}, "channel_id"),
        ({"discord": {}}, "discord"),
    ],
)
def test_bad_chat_ids_and_unknown_keys_are_refused(context, chat, key) -> None:
    with pytest.raises(ConfigError, match=key):
        parse_env("autorem", "drill", people(context, chat=chat))


def test_templates_are_cfn_lint_clean_but_w3005(synth: Synth) -> None:
    from cfnlint.api import ManualArgs, lint

    for name, template in synth.templates.items():
        found = lint(json.dumps(template), config=ManualArgs(regions=[synth.config.region]))
        assert {m.rule.id for m in found} <= {"W3005"}, (name, [str(m) for m in found])
