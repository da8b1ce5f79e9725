"""The ``remediate`` CLI against the drill environment's synthesized template and the emulator."""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.drill import template
from serverless_remediation.remediation.audit import parse_item
from tests.functional.test_drill import ALIAS, ROOT

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def drill_assembly():
    """The drill env's assembly (synthesized once; reused while newer than the sources)."""
    return template.synth(ROOT, "drill")


@pytest.fixture
def deployment(drill_assembly):
    return template.load(drill_assembly, "drill")


def audit_records(emulator, deployment) -> list[dict]:
    db = emulator.clients()("dynamodb")
    items = db.scan(TableName=deployment.setting("AUDIT_TABLE"))["Items"]
    return [parse_item(i) for i in items if i["pk"]["S"].startswith("audit#")]


def test_plan_lists_every_alarm_with_its_action_target_and_remediator(drill_assembly, deployment):
    code, output = run("plan", "--env", "drill", "--json", "--cdk-out", str(drill_assembly))
    assert code == 0, output
    lines = [json.loads(line) for line in output.splitlines()]
    alarms = {line["alarm"]: line for line in lines if "alarm" in line}
    assert set(alarms) == set(deployment.playbook()["alarms"])
    assert set(alarms) <= set(deployment.alarms)
    rollback = next(v for k, v in alarms.items() if k.endswith("orders-api-error-rate"))
    assert rollback["action"] == "rollback"
    assert rollback["target"] == ALIAS
    assert rollback["remediator"] == deployment.remediator_for("rollback").name
    assert any("budget" in line for line in lines)


def test_invoke_local_dry_run_prints_the_plan_and_changes_nothing(
    emulator,
    drill_assembly,
    deployment,
):
    code, output = run(
        "invoke",
        "rollback",
        ALIAS,
        "--dry-run",
        "--local",
        "--reason",
        "check the plan",
        "--env",
        "drill",
        "--cdk-out",
        str(drill_assembly),
        "--endpoint-url",
        emulator.endpoint_url,
    )
    assert code == 0, output
    assert "dry-run" in output
    # the plan: before / after
    assert '"version": "2"' in output
    assert '"version": "1"' in output
    assert "changed: nothing" in output
    # The emulator the command ran against: the alias is where it was, the audit says dry-run.
    lam = emulator.clients()("lambda")
    assert lam.get_alias(FunctionName="orders-api", Name="live")["FunctionVersion"] == "2"
    (record,) = audit_records(emulator, deployment)
    assert record["outcome"] == "dry-run"
    assert record["reason"] == "check the plan"


def test_invoke_local_for_real_changes_the_target_and_history_shows_it(
    emulator,
    drill_assembly,
):
    common = [
        "--env",
        "drill",
        "--cdk-out",
        str(drill_assembly),
        "--endpoint-url",
        emulator.endpoint_url,
    ]
    code, output = run("invoke", "rollback", ALIAS, "--local", *common)
    assert code == 0, output
    assert 'functions.orders-api.alias: "2" -> "1"' in output
    code, output = run("history", "--local", "--target", ALIAS, "--json", *common)
    assert code == 0, output
    (record,) = [json.loads(line) for line in output.splitlines()]
    assert record["outcome"] == "executed"
    assert record["after_state"] == {"version": "1", "weights": {}}
    # --account: a record naming no account is the deployment's own
    code, output = run("history", "--local", "--account", "123456789012", "--json", *common)
    assert code == 0, output
    assert [json.loads(line)["audit_id"] for line in output.splitlines()] == [record["audit_id"]]
    code, output = run("history", "--local", "--account", "222222222222", "--json", *common)
    assert code == 0, output
    assert output.strip() == ""
    code, output = run("history", "--local", "--account", "12", *common)
    assert code != 0
    assert "12-digit" in output


def test_invoke_rejects_a_malformed_param(drill_assembly):
    code, output = run(
        "invoke",
        "rollback",
        ALIAS,
        "--param",
        "window",
        "--env",
        "drill",
        "--cdk-out",
        str(drill_assembly),
    )
    assert code == cli.Code.USAGE
    assert "KEY=VALUE" in output


def test_gate_sets_and_shows_the_switch(emulator, drill_assembly, deployment):
    emulator.reset()
    common = [
        "--env",
        "drill",
        "--cdk-out",
        str(drill_assembly),
        "--endpoint-url",
        emulator.endpoint_url,
    ]
    code, output = run("gate", "show", *common)
    assert code == 0
    assert "missing" in output
    ssm = emulator.clients()("ssm")
    parameter = deployment.setting("SWITCH_PARAMETER")
    for mode in ("off", "dry-run", "on"):
        code, output = run("gate", mode, "--yes", *common)
        assert code == 0, output
        assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == mode
    prefix = deployment.setting("SWITCH_OVERRIDE_PREFIX")
    ssm.put_parameter(Name=f"{prefix}rollback", Value="off", Type="String")
    code, output = run("gate", "show", *common)
    assert f"{parameter} = on" in output
    assert f"override {prefix}rollback = off" in output


def invoke_stub(monkeypatch, expected_payload: dict, response: dict, function: str) -> Stubber:
    """Replace the CLI's Lambda client with a Stubber-checked one expecting one Invoke."""
    import boto3

    client = boto3.client("lambda", region_name="eu-west-1")
    stubber = Stubber(client)
    body = json.dumps(response).encode()
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))},
        {
            "FunctionName": function,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(expected_payload).encode(),
        },
    )
    stubber.activate()
    monkeypatch.setattr(cli, "_client", lambda *a, **k: client)
    monkeypatch.setattr(cli, "_physical", lambda d, logical, name, *a: name)
    monkeypatch.setattr(cli, "caller", lambda *a: CALLER)
    return stubber


#: who the shell's credentials are (``sts:GetCallerIdentity``): the drill env's account
CALLER = {
    "account": "123456789012",
    "arn": "arn:aws:sts::123456789012:assumed-role/oncall/alice",
    "region": "eu-west-1",
}


def test_revert_invokes_the_revert_remediator_with_the_audit_id(
    monkeypatch,
    drill_assembly,
    deployment,
):
    function = deployment.remediator_for("revert").name
    request = {
        "action": "revert",
        "target": "0123abcd",
        "params": {},
        "dry_run": True,
        "reason": "manual revert from the remediate CLI",
        "requested_by": CALLER["arn"],
    }
    result = {"outcome": "dry-run", "reason": "would restore", "audit_id": "ffff"}
    stubber = invoke_stub(monkeypatch, request, {"results": [result]}, function)
    code, output = run(
        "revert", "0123abcd", "--dry-run", "--env", "drill", "--cdk-out", str(drill_assembly)
    )
    assert code == 0, output
    assert "would restore" in output
    stubber.assert_no_pending_responses()


def test_invoke_reports_a_function_error(monkeypatch, drill_assembly, deployment):
    import boto3

    client = boto3.client("lambda", region_name="eu-west-1")
    stubber = Stubber(client)
    body = b'{"errorMessage": "RemediationFailed: abc: AccessDenied"}'
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
        },
    )
    stubber.activate()
    monkeypatch.setattr(cli, "_client", lambda *a, **k: client)
    monkeypatch.setattr(cli, "_physical", lambda d, logical, name, *a: name)
    monkeypatch.setattr(cli, "caller", lambda *a: CALLER)
    code, output = run(
        "invoke", "rollback", ALIAS, "--env", "drill", "--yes", "--cdk-out", str(drill_assembly)
    )
    assert code == cli.Code.FAILED
    assert "AccessDenied" in output


def test_config_schema_prints_the_json_schema_cdk_json_satisfies():
    from pathlib import Path

    import jsonschema  # comes with cfn-lint (constraints.txt)

    result = runner.invoke(cli.app, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    environments = json.loads(Path("cdk.json").read_text())["context"]["environments"]
    jsonschema.validate(environments, schema)
    misspelt = {**environments, "drill": {**environments["drill"], "acount": "1"}}
    with pytest.raises(jsonschema.ValidationError, match="acount"):
        jsonschema.validate(misspelt, schema)
