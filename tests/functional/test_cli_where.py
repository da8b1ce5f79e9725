"""The CLI works where the user stands (issue: from clone to production, item 4).

- the project is found from any subdirectory (or named by REMEDIATE_PROJECT);
- ``history``, ``gate`` and ``revert`` read a deployed environment's names from its core
  stack's outputs (``--from-stack``, DescribeStacks on the emulator's CloudFormation): no
  synth, no Node, no checkout;
- ``--version``.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from serverless_remediation.remediate import cli, deployed
from serverless_remediation.remediate.drill import template as tpl
from serverless_remediation.remediate.emulator import create_audit_table
from serverless_remediation.stacks.constructs import outputs as keys

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "eu-west-1"
ENV = "staging"
runner = CliRunner()


def test_the_project_is_found_from_a_subdirectory(monkeypatch, tmp_path):
    monkeypatch.delenv("REMEDIATE_PROJECT", raising=False)
    assert cli.find_project(ROOT / "docs") == ROOT
    assert cli.find_project(ROOT / "functions" / "remediation" / "actions") == ROOT
    assert cli.find_project(tmp_path) is None
    monkeypatch.setenv("REMEDIATE_PROJECT", str(ROOT))
    assert cli.find_project(tmp_path) == ROOT


def test_version_prints_the_installed_distribution_version():
    from importlib.metadata import version

    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"remediate {version('serverless-remediation')}"


def outputs_template(table: str, switch: str, functions: dict[str, str]) -> str:
    """A stand-in core stack: the suite's outputs (values as deployed) on one resource."""
    values = {
        keys.ENVIRONMENT: ENV,
        keys.SWITCH: switch,
        keys.OVERRIDES: f"/autorem/{ENV}/switch-override/",
        keys.TABLE: table,
        keys.NOTICES: f"arn:aws:sns:{REGION}:{ACCOUNT}:autorem-{ENV}-notices",
        keys.REMEDIATORS: json.dumps(functions),
    }
    return json.dumps(
        {
            "Resources": {
                "Marker": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Type": "String", "Value": "x", "Name": f"/{ENV}/marker"},
                }
            },
            "Outputs": {k: {"Value": v} for k, v in values.items()},
        }
    )


@pytest.fixture
def deployed_stack(emulator, monkeypatch, tmp_path):
    """A core stack with outputs in the emulator's CloudFormation, and a shell outside any
    checkout (so the CLI cannot synthesize)."""
    emulator.reset()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    monkeypatch.setattr(cli, "ROOT", None)  # as from a directory outside the checkout
    monkeypatch.chdir(tmp_path)

    def client(service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=emulator.endpoint_url)

    table, switch = "autorem-staging-core-AuditTable1A2B3C-XYZ", f"/autorem/{ENV}/switch"
    create_audit_table(client("dynamodb"), table)
    client("ssm").put_parameter(Name=switch, Value="dry-run", Type="String")
    functions = {"revert": "autorem-staging-revert", "rollback": "autorem-staging-rollback"}
    client("cloudformation").create_stack(
        StackName=deployed.core_stack_name(ENV),
        TemplateBody=outputs_template(table, switch, functions),
    )
    return client, table, switch


def test_a_deployment_from_the_stack_names_what_the_cli_needs(deployed_stack, emulator):
    client, table, switch = deployed_stack
    (stack,) = client("cloudformation").describe_stacks(StackName="autorem-staging-core")["Stacks"]
    found = deployed.from_stack(ENV, stack)
    assert (found.account, found.region) == (ACCOUNT, REGION)
    assert found.setting("AUDIT_TABLE") == table
    assert found.setting("SWITCH_PARAMETER") == switch
    assert found.remediator_for("revert").name == "autorem-staging-revert"
    with pytest.raises(tpl.TemplateError, match="is environment 'staging', not 'prod'"):
        deployed.from_stack("prod", stack)
    with pytest.raises(tpl.TemplateError, match="no output"):
        deployed.from_stack(ENV, {**stack, "Outputs": []})


def test_gate_and_history_work_from_the_stack_outside_a_checkout(deployed_stack, emulator):
    client, _, switch = deployed_stack
    url = emulator.endpoint_url

    shown = runner.invoke(cli.app, ["gate", "show", "--env", ENV, "--endpoint-url", url])
    assert shown.exit_code == 0, shown.output
    assert "dry-run" in shown.output

    set_on = runner.invoke(
        cli.app, ["gate", "on", "--env", ENV, "--from-stack", "--yes", "--endpoint-url", url]
    )
    assert set_on.exit_code == 0, set_on.output
    assert client("ssm").get_parameter(Name=switch)["Parameter"]["Value"] == "on"

    history = runner.invoke(cli.app, ["history", "--env", ENV, "--json", "--endpoint-url", url])
    assert history.exit_code == 0, history.output


def test_no_such_stack_is_one_line_and_a_setup_exit(deployed_stack, emulator):
    result = runner.invoke(
        cli.app, ["history", "--env", "prod", "--endpoint-url", emulator.endpoint_url]
    )
    assert result.exit_code == cli.Code.SETUP, result.output
    assert "stack autorem-prod-core is not deployed" in result.output
    assert "Traceback" not in result.output


def test_invoke_other_than_revert_needs_the_checkout(deployed_stack, emulator):
    result = runner.invoke(
        cli.app,
        [
            *("invoke", "rollback", "arn:aws:lambda:eu-west-1:123456789012:function:f:live"),
            *("--env", ENV, "--yes", "--endpoint-url", emulator.endpoint_url),
        ],
    )
    assert result.exit_code == cli.Code.USAGE, result.output
    assert "run it in the checkout" in result.output


def test_plan_outside_a_checkout_says_where_to_run_it(deployed_stack):
    result = runner.invoke(cli.app, ["plan", "--env", "drill"])
    assert result.exit_code == cli.Code.SETUP, result.output
    assert "REMEDIATE_PROJECT" in result.output
