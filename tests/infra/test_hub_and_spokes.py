"""prod-example is a hub with two spokes (one of them in two regions): what its templates
grant, computed from the synthesized templates (cdk-nag ran on them in the fixture)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serverless_remediation.stacks.config import ConfigError, parse_env
from tests.infra.conftest import Synth

HUB = "210987654321"
ORG = "o-exampleorg1"
PREFIX = "autorem-prod-example"


def spoke_templates(prod: Synth) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in prod.templates.items() if "-spoke-" in n}


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_one_spoke_stack_per_account_and_region_in_its_own_account(prod: Synth) -> None:
    found = {s.stack_name: (s.account, s.region) for s in prod.stacks if "-spoke-" in s.stack_name}
    assert found == {
        f"{PREFIX}-spoke-payments": ("333333333333", "eu-west-1"),
        f"{PREFIX}-spoke-search-eu-west-1": ("444444444444", "eu-west-1"),
        f"{PREFIX}-spoke-search-us-east-1": ("444444444444", "us-east-1"),
    }


def test_a_spoke_role_trusts_only_the_hubs_remediator_of_its_kind_inside_the_org(
    prod: Synth,
) -> None:
    roles = 0
    for template in spoke_templates(prod).values():
        for role in of_type(template, "AWS::IAM::Role").values():
            props = role["Properties"]
            name = props.get("RoleName")
            if name is None:  # EventBridge's forwarding role
                (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
                assert statement["Principal"] == {"Service": "events.amazonaws.com"}
                continue
            roles += 1
            action = name.removeprefix(f"{PREFIX}-spoke-")
            (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
            assert statement["Principal"] == {"AWS": f"arn:aws:iam::{HUB}:role/{PREFIX}-{action}"}
            assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
            assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}
    assert roles >= 6  # capacity-bump, rollback and revert in each of 3 spoke stacks


def test_a_spoke_roles_grants_name_only_that_spokes_account(prod: Synth) -> None:
    for name, template in spoke_templates(prod).items():
        account = next(s.account for s in prod.stacks if s.stack_name == name)
        for policy in of_type(template, "AWS::IAM::ManagedPolicy").values():
            text = json.dumps(policy["Properties"]["PolicyDocument"])
            accounts = {
                part.split(":")[4]
                for part in text.split('"')
                if part.startswith("arn:aws:") and part.split(":")[4]
            }
            assert accounts <= {account}, (name, accounts)


def test_the_hubs_remediators_assume_exactly_the_spoke_roles_of_their_kind(prod: Synth) -> None:
    policies = prod.resources("AWS::IAM::ManagedPolicy")
    assumed: dict[str, set[str]] = {}
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid", "").startswith("SpokeRoles"):
                for arn in statement["Resource"]:
                    action = arn.rsplit(f"{PREFIX}-spoke-", 1)[1]
                    assumed.setdefault(action, set()).add(arn.split(":")[4])
                assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert assumed["rollback"] == {"333333333333", "444444444444"}
    assert HUB not in set().union(*assumed.values())


def test_the_hubs_bus_admits_only_the_organization(prod: Synth) -> None:
    (policy,) = of_type(prod.core_template, "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}


def test_spoke_alarms_are_routed_on_the_hubs_bus_to_their_remediator(prod: Synth) -> None:
    rules = of_type(prod.core_template, "AWS::Events::Rule")
    on_bus = [
        r
        for r in rules.values()
        if "EventBusName" in r["Properties"] and "-spokes-" in r["Properties"]["Name"]
    ]
    names = {n for r in on_bus for n in r["Properties"]["EventPattern"]["detail"]["alarmName"]}
    assert f"{PREFIX}-payments-payments-api-error-rate" in names
    assert all(n.startswith((f"{PREFIX}-payments-", f"{PREFIX}-search-")) for n in names)
    for rule in on_bus:
        # the bus admits the organization; a rule passes on the enrolled accounts only
        assert rule["Properties"]["EventPattern"]["account"] == ["333333333333", "444444444444"]
        (target,) = rule["Properties"]["Targets"]
        assert "DeadLetterConfig" in target
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_a_spokes_dead_letters_reach_the_hubs_notice_topic_and_nothing_else(prod: Synth) -> None:
    """The forwarding rule's dead letters are alarmed in the spoke; the alarm's state change
    goes to the hub like any of the spoke's, and one rule there sends it to the notices."""
    template = prod.templates[f"{PREFIX}-spoke-payments"]
    (alarm,) = (
        a
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith("-forward-dead-letters")
    )
    assert alarm["Properties"]["AlarmName"] == f"{PREFIX}-payments-forward-dead-letters"
    rules = of_type(prod.core_template, "AWS::Events::Rule").values()
    (health,) = (r for r in rules if r["Properties"].get("Name") == f"{PREFIX}-spoke-health")
    pattern = health["Properties"]["EventPattern"]["detail"]["alarmName"]
    assert pattern == [{"suffix": "-forward-dead-letters"}]
    (target,) = health["Properties"]["Targets"]
    assert "NoticeTopic" in target["Arn"]["Ref"]
    policies = of_type(prod.core_template, "AWS::SNS::TopicPolicy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (grant,) = (s for s in statements if s.get("Sid") == "SpokeHealthNotices")
    rule_arn = f"arn:aws:events:eu-west-1:{HUB}:rule/{PREFIX}-alarms/{PREFIX}-spoke-health"
    assert grant["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}


def test_a_spoke_forwards_only_its_own_alarms_to_the_hubs_bus(prod: Synth) -> None:
    template = prod.templates[f"{PREFIX}-spoke-payments"]
    (rule,) = of_type(template, "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["EventPattern"]["detail"] == {"alarmName": [{"prefix": f"{PREFIX}-payments-"}]}
    (target,) = props["Targets"]
    assert target["Arn"] == f"arn:aws:events:eu-west-1:{HUB}:event-bus/{PREFIX}-alarms"
    assert "DeadLetterConfig" in target
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert alarms
    assert all("AlarmActions" not in a["Properties"] for a in alarms.values())


def test_the_remediators_know_their_spokes(prod: Synth) -> None:
    functions = of_type(prod.core_template, "AWS::Lambda::Function")
    rollback = next(f for k, f in functions.items() if "Remediatorrollback" in k)
    variables = rollback["Properties"]["Environment"]["Variables"]
    assert prod.core.suite.routing.playbook()["spokes"] == {
        "333333333333": ["eu-west-1"],
        "444444444444": ["eu-west-1", "us-east-1"],
    }
    assert variables["SPOKE_ROLE_PREFIX"] == f"{PREFIX}-spoke-"


def hub(**organization: Any) -> dict[str, Any]:
    return {
        "account": HUB,
        "region": "eu-west-1",
        "organization": organization,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            hub(spokes={"self": {"account": HUB}}),
            "organization.spokes.self.account: the hub's own account is not a spoke",
        ),
        (
            hub(spokes={"a": {"account": "333333333333"}, "b": {"account": "333333333333"}}),
            "organization.spokes.b.account: 333333333333 is enrolled already as 'a'",
        ),
        (
            hub(spokes={"a": {"account": "333333333333", "regions": ["cn-north-1"]}}),
            "organization.spokes.a.regions: cn-north-1 is not in the hub's partition",
        ),
        (hub(id="org-1", spokes={}), "organization.id"),
    ],
)
def test_a_bad_organization_fails_naming_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_env("autorem", "hub", raw)


def test_a_hub_and_a_spoke_service_giving_one_alarm_name_fail_at_synth() -> None:
    from aws_cdk import App

    from serverless_remediation.stacks.stacks import add_environment

    lam = {"kind": "lambda", "function": "api", "alias": "live"}
    raw = {
        **hub(spokes={"payments": {"account": "333333333333", "services": {"api": lam}}}),
        "services": {"payments-api": lam},
    }
    with pytest.raises(ConfigError, match="made twice"):
        add_environment(App(), parse_env("autorem", "hub", raw))


def test_a_spoke_route_to_waf_block_is_refused_its_sweeper_cannot_reach_it() -> None:
    from aws_cdk import App

    from serverless_remediation.stacks.stacks import add_environment

    waf = {
        "kind": "waf",
        "ip_set_name": "blocked",
        "ip_set_id": "66666666-7777-8888-9999-000000000000",
        "log_group": "/aws/apigateway/access",
        "metric": {"namespace": "App", "name": "AuthFailures"},
    }
    raw = hub(spokes={"edge": {"account": "333333333333", "services": {"waf": waf}}})
    with pytest.raises(ConfigError, match="expiry sweeper runs in the hub"):
        add_environment(App(), parse_env("autorem", "hub", raw))


def test_one_account_less_target_in_two_accounts_is_refused_at_synth() -> None:
    from aws_cdk import App

    from serverless_remediation.stacks.stacks import add_environment

    api = {"kind": "http-api", "api_id": "s3a4r5c6h7", "stage": "prod", "function": "api"}
    raw = {
        **hub(spokes={"a": {"account": "333333333333", "services": {"a-http": api}}}),
        "services": {"hub-http": api},
    }
    with pytest.raises(ConfigError, match="configured in two accounts"):
        add_environment(App(), parse_env("autorem", "hub", raw))
