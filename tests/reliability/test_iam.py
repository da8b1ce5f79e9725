"""IAM, from the synthesized templates of every environment in cdk.json: no remediator role
allows an action outside its declared permissions or a resource outside its targets; no topic
or key lets anything outside the account publish.

Synthesized in-process (``stacks.add_environment``, what ``npx cdk synth -c env=NAME`` runs,
without cdk-nag, which ``make synth`` and tests/infra run), once per session.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from serverless_remediation.stacks.stacks import SpokeStack
from tests.reliability.iam_check import Spoke, check, listed, routes

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
ENVIRONMENTS = sorted(CONTEXT["environments"])


@pytest.fixture(scope="module")
def synthesized():
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from serverless_remediation.stacks.config import load
    from serverless_remediation.stacks.stacks import add_environment

    out = {}
    for env in ENVIRONMENTS:
        config = load(CONTEXT, env)
        stacks = add_environment(App(), config)
        templates = {s.stack_name: Template.from_stack(s).to_json() for s in stacks}
        playbook = stacks[0].suite.routing.playbook()  # what the remediators bundle
        spokes = {
            s.stack_name: Spoke(
                s.account,
                s.region,
                frozenset(
                    f"arn:aws:cloudwatch:{o.region}:{o.account}:alarm:{o.alarm_prefix}-*"
                    for o in config.spokes
                    if o.account == s.account
                ),
                config.organization_id,
            )
            for s in stacks
            if isinstance(s, SpokeStack)
        }
        out[env] = (config, templates, playbook, spokes)
    return out


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_roles_topics_and_keys_stay_inside_their_declared_bounds(synthesized, figures, env):
    config, templates, playbook, spokes = synthesized[env]
    report = check(
        templates,
        playbook,
        account=config.account,
        region=config.region,
        alarm_prefix=config.prefix,
        spokes=spokes,
    )
    figures.add("iam_spoke_roles_checked", report.counts["spoke_roles"])
    figures.add("iam_roles_checked", report.counts["roles"])
    figures.add("iam_statements_checked", report.counts["statements"])
    figures.add("iam_topics_checked", report.counts["topics"])
    figures.add("iam_findings", len(report.findings))
    routed = {action for action, _ in routes(playbook)}
    assert report.counts["roles"] >= len(routed)  # one remediator per routed action, at least
    if config.chat.slack or config.chat.teams:
        assert report.counts["deciders"] == 1  # the chat buttons' function was checked
    assert report.counts["grants"] > 0
    assert not report.findings, "\n".join(report.findings)


def test_the_check_catches_an_extra_action_a_foreign_resource_and_an_open_topic(synthesized):
    """The checker is not vacuous: widen a synthesized template four ways, each is found."""
    config, templates, playbook, _ = synthesized["drill"]
    widened = copy.deepcopy(templates)
    core = widened[next(iter(widened))]["Resources"]
    managed = next(
        body
        for name, body in core.items()
        if body["Type"] == "AWS::IAM::ManagedPolicy" and "rollback" in name.lower()
    )
    statement = managed["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Action"] = [*statement["Action"], "lambda:DeleteFunction"]
    statement["Resource"] = [
        *statement["Resource"],
        "arn:aws:lambda:eu-west-1:999999999999:function:x",
    ]
    topic_policy = next(body for body in core.values() if body["Type"] == "AWS::SNS::TopicPolicy")
    topic_policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish", "Resource": "*"}
    )
    confirm = next(
        statement
        for body in core.values()
        if body["Type"] == "AWS::IAM::Policy"
        for statement in body["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ConfirmAlarms"
    )
    every_alarm = f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:*"
    confirm["Resource"] = [*listed(confirm["Resource"]), every_alarm]
    findings = check(
        widened,
        playbook,
        account=config.account,
        region=config.region,
        alarm_prefix=config.prefix,
    ).findings
    assert any("lambda:DeleteFunction" in f and "not a declared permission" in f for f in findings)
    assert any(f"cloudwatch:DescribeAlarms on {every_alarm}" in f for f in findings)
    assert any("999999999999" in f and "outside its targets" in f for f in findings)
    assert any("from outside the account" in f for f in findings)


def test_the_check_catches_a_wider_chat_decisions_function(synthesized):
    """The chat's entry point may invoke only the remediators that ask for approval and
    revert, read and write only its partitions, and carry no other policy: widen it three
    ways."""
    config, templates, playbook, _ = synthesized["drill"]
    widened = copy.deepcopy(templates)
    core = widened[next(iter(widened))]["Resources"]
    (role,) = [
        name
        for name, body in core.items()
        if body["Type"] == "AWS::IAM::Role" and "decisions" in name.lower()
    ]
    statements = next(
        body["Properties"]["PolicyDocument"]["Statement"]
        for body in core.values()
        if body["Type"] == "AWS::IAM::Policy" and {"Ref": role} in body["Properties"]["Roles"]
    )
    # rollback routes wait for no approval in the drill: its remediator is out of reach
    (rollback,) = [
        name
        for name, body in core.items()
        if body["Type"] == "AWS::Lambda::Function"
        and body["Properties"].get("FunctionName", "") == f"{config.prefix}-rollback"
    ]
    invoke = next(s for s in statements if s["Action"] == "lambda:InvokeFunction")
    invoke["Resource"] = [*listed(invoke["Resource"]), {"Fn::GetAtt": [rollback, "Arn"]}]
    read = next(s for s in statements if s.get("Sid") == "ReadApprovals")
    del read["Condition"]
    core[role]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    findings = check(
        widened, playbook, account=config.account, region=config.region,
        alarm_prefix=config.prefix,
    ).findings  # fmt: skip
    assert any(f"lambda:InvokeFunction on ${{{rollback}.Arn}}" in f for f in findings), findings
    assert any("no dynamodb:LeadingKeys condition" in f for f in findings), findings
    assert any("role carries policies not checked here" in f for f in findings), findings


def test_the_check_catches_a_spoke_role_trusting_more_or_granting_another_account(synthesized):
    """A hub's spoke roles are checked (prod-example is a hub), and not vacuously: widen one
    role's trust and one of its grants, each is found."""
    config, templates, playbook, spokes = synthesized["prod-example"]
    clean = check(
        templates, playbook, account=config.account, region=config.region,
        alarm_prefix=config.prefix, spokes=spokes,
    )  # fmt: skip
    assert clean.counts["spoke_roles"] >= 6
    assert not clean.findings
    widened = copy.deepcopy(templates)
    spoke = widened[sorted(spokes)[0]]["Resources"]
    role = next(
        body for body in spoke.values()
        if body["Type"] == "AWS::IAM::Role" and body["Properties"].get("RoleName")
    )  # fmt: skip
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    trust["Principal"] = {"AWS": "*"}
    other = next(
        body for body in spoke.values()
        if body["Type"] == "AWS::IAM::Role" and body["Properties"].get("RoleName")
        and body is not role
    )  # fmt: skip
    other["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].pop("Condition")
    managed = next(b for b in spoke.values() if b["Type"] == "AWS::IAM::ManagedPolicy")
    statement = managed["Properties"]["PolicyDocument"]["Statement"][-1]
    statement["Resource"] = [
        *listed(statement["Resource"]),
        "arn:aws:lambda:eu-west-1:999999999999:function:x",
    ]
    found = check(
        widened, playbook, account=config.account, region=config.region,
        alarm_prefix=config.prefix, spokes=spokes,
    ).findings  # fmt: skip
    assert any("trusts {'AWS': '*'}" in f for f in found), found
    assert any("its trust's condition is None" in f for f in found), found
    assert any("999999999999" in f for f in found), found


def test_the_check_catches_a_hub_remediator_granted_a_spokes_target(synthesized):
    """A hub's remediators reach spoke targets only through the spoke roles: a grant on a
    spoke's target in the hub's own role is found."""
    config, templates, playbook, spokes = synthesized["prod-example"]
    widened = copy.deepcopy(templates)
    core = widened[f"{config.prefix}-core"]["Resources"]
    managed = next(
        body for name, body in core.items()
        if body["Type"] == "AWS::IAM::ManagedPolicy" and "Rolerollback" in name
    )  # fmt: skip
    spoke_alias = next(
        r["target"] for r in playbook["alarms"].values()
        if r.get("account") and r["action"] == "rollback" and ":function:" in r["target"]
    )  # fmt: skip
    statement = managed["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Action"] = sorted({*listed(statement["Action"]), "lambda:UpdateAlias"})
    statement["Resource"] = [*listed(statement["Resource"]), spoke_alias]
    found = check(
        widened, playbook, account=config.account, region=config.region,
        alarm_prefix=config.prefix, spokes=spokes,
    ).findings  # fmt: skip
    assert any(spoke_alias in f for f in found), found
