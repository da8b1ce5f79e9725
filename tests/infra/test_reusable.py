"""The construct library in another CDK app: a team adds the suite to its own stack, the
example in docs/config.md composes it into a foreign app (no cdk.json, none of this
repository's feature flags) and synthesizes it with cdk-nag, and this app's own stacks only
compose the same constructs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT
from tests.infra.test_config import env

DOC = ROOT / "docs" / "config.md"


def test_a_team_adds_the_suite_to_its_own_stack() -> None:
    from aws_cdk import App, Environment, Stack
    from aws_cdk.assertions import Match, Template

    from serverless_remediation.stacks import AutoRemediation, ServiceAlarms
    from serverless_remediation.stacks.config import parse_env

    config = parse_env("team", "dev", env())
    app = App()
    stack = Stack(app, "TeamStack", env=Environment(account=config.account, region=config.region))
    suite = AutoRemediation(stack, "Remediation", config=config)
    ServiceAlarms(stack, "Alarms", specs=suite.catalog.alarms, topic_arn=suite.topic_arn)
    template = Template.from_stack(stack)
    # the service's 3, and the suite's own: its dead-letter queue and each function's errors
    functions = len(suite.remediators.functions) + (suite.remediators.sweeper is not None)
    template.resource_count_is("AWS::CloudWatch::Alarm", 3 + 1 + functions)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "team-dev-orders-error-rate",
            "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:team-dev-rollback-alarms"],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "team-dev-rollback",
            "Environment": {"Variables": Match.object_like({"REMEDIATION_ACTIONS": "rollback"})},
        },
    )


def documented_example() -> str:
    """The python block of docs/config.md's "In your own CDK app" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## In your own CDK app", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "docs/config.md: no python example under 'In your own CDK app'"
    return found.group(1)


@pytest.fixture(scope="module")
def foreign() -> dict[str, Any]:
    """The documented example, run as a foreign app's own script."""
    namespace: dict[str, Any] = {"__name__": "foreign_app"}
    exec(compile(documented_example(), str(DOC), "exec"), namespace)  # noqa: S102
    return {"namespace": namespace, "out": Path(namespace["app"].outdir)}


def _templates(out: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    found = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            found[name] = json.loads((out / artifact["properties"]["templateFile"]).read_text())
    return found


def test_the_documented_example_synthesizes_in_a_foreign_app(foreign: dict[str, Any]) -> None:
    templates = _templates(foreign["out"])
    assert set(templates) == {"MyAppRemediation", "MyAppAlarms1"}
    # no flag of this repository's cdk.json reached the foreign app
    app = foreign["namespace"]["app"]
    assert app.node.try_get_context("@aws-cdk/core:enablePartitionLiterals") is None
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in templates["MyAppAlarms1"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) == {
        "myapp-prod-orders-error-rate",
        "myapp-prod-orders-latency",
        "myapp-prod-orders-throttles",
        "myapp-prod-orders-table-throttles",
    }
    topic = "arn:aws:sns:eu-west-1:111122223333:myapp-prod-capacity-bump-alarms"
    assert alarms["myapp-prod-orders-table-throttles"]["AlarmActions"] == [topic]
    functions = {
        r["Properties"]["FunctionName"]: r["Properties"]
        for r in templates["MyAppRemediation"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    # a remediator for each action the config routes to (and revert, which undoes them);
    # no budget, no webhook, no WAF: no cost-guard, flip-flag, waf-block or sweeper
    assert set(functions) == {
        "myapp-prod-rollback",
        "myapp-prod-capacity-bump",
        "myapp-prod-revert",
    }
    assert {f["Architectures"][0] for f in functions.values()} == {"arm64"}
    assert all(
        f["Environment"]["Variables"]["REMEDIATION_ENV"] == "prod" for f in functions.values()
    )


def test_this_apps_stacks_only_compose_the_constructs(context: dict[str, Any]) -> None:
    from aws_cdk import App

    from serverless_remediation.stacks.config import load
    from serverless_remediation.stacks.constructs.alarms import ServiceAlarms
    from serverless_remediation.stacks.constructs.spoke import SpokeAccess
    from serverless_remediation.stacks.constructs.suite import AutoRemediation
    from serverless_remediation.stacks.stacks import SpokeStack, add_environment

    stacks = add_environment(App(), load(context, "prod-example"))
    core, *others = stacks
    assert [type(c) for c in core.node.children] == [AutoRemediation]
    spokes = [s for s in others if isinstance(s, SpokeStack)]
    alarm_stacks = [s for s in others if not isinstance(s, SpokeStack)]
    assert alarm_stacks
    assert spokes  # prod-example is a hub
    for stack in alarm_stacks:
        assert [type(c) for c in stack.node.children] == [ServiceAlarms]
    for stack in spokes:
        assert [type(c) for c in stack.node.children] == [ServiceAlarms, SpokeAccess]
