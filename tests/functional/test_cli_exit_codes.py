"""Exit codes a script can trust, and one line (no traceback) for the common mistakes.

0 only when the request did what was asked; distinct codes for failed, usage, rejected,
escalated, not done and setup (``remediate.cli.Code``, listed in ``remediate --help``).
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
import typer
from botocore.response import StreamingBody
from botocore.stub import Stubber
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.drill import template
from tests.functional.test_drill import ALIAS, ROOT

Code = cli.Code
CALLER = {
    "account": "123456789012",
    "arn": "arn:aws:sts::123456789012:assumed-role/oncall/alice",
    "region": "eu-west-1",
}
FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:reports-worker"
runner = CliRunner()


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return result.exit_code, result.output


def stub_invoke(monkeypatch, payload: Any, function_error: str | None = None) -> Stubber:
    """The deployed remediator answers ``payload`` (checked against Lambda's model)."""
    lam = boto3.client("lambda", region_name="eu-west-1")
    stubber = Stubber(lam)
    body = json.dumps(payload).encode()
    response: dict[str, Any] = {
        "StatusCode": 200,
        "Payload": StreamingBody(io.BytesIO(body), len(body)),
    }
    if function_error:
        response["FunctionError"] = function_error
    stubber.add_response("invoke", response)
    stubber.activate()
    monkeypatch.setattr(cli, "_client", lambda *a, **k: lam)
    monkeypatch.setattr(cli, "caller", lambda *a: CALLER)
    return stubber


def result(outcome: str, reason: str = "because") -> dict[str, Any]:
    return {"outcome": outcome, "reason": reason, "audit_id": "a1", "action": "rollback"}


# -- what the remediator answered -> the exit code -------------------------------------------


@pytest.mark.parametrize(
    ("payload", "function_error", "dry_run", "expected"),
    [
        ({"results": [result("executed")]}, None, False, Code.OK),
        ({"results": [result("dry-run")]}, None, True, Code.OK),
        # the switch's dry-run, not asked for: nothing done that was asked
        ({"results": [result("dry-run")]}, None, False, Code.NOT_DONE),
        ({"results": [result("skipped", "switch is off")]}, None, False, Code.NOT_DONE),
        ({"results": [result("escalated", "at the cap")]}, None, False, Code.ESCALATED),
        ({"results": [result("rejected", "beyond the limit")]}, None, False, Code.REJECTED),
        ({"results": [result("failed", "AccessDenied")]}, None, False, Code.FAILED),
        # the worst of several results
        ({"results": [result("executed"), result("escalated")]}, None, False, Code.ESCALATED),
        ({"results": [result("rejected"), result("failed")]}, None, False, Code.FAILED),
        ({"results": []}, None, False, Code.FAILED),  # no answer is no success
        ({"errorMessage": "RemediationFailed: a1: AccessDenied"}, "Unhandled", False, Code.FAILED),
    ],
)
def test_exit_codes_of_a_manual_invoke(
    monkeypatch, drill_assembly, payload, function_error, dry_run, expected
):
    stubber = stub_invoke(monkeypatch, payload, function_error)
    args = ["invoke", "rollback", ALIAS, "--env", "drill", "--yes"]
    args += ["--cdk-out", str(drill_assembly)]
    code, output = run(*args, *(["--dry-run"] if dry_run else []))
    assert code == expected, output
    stubber.assert_no_pending_responses()


# -- what the CLI refuses before calling anything --------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected", "says"),
    [
        (["invoke", "rollback", ALIAS], Code.USAGE, "name the environment with --env"),
        (["plan", "--env", "nope"], Code.USAGE, "was synthesized for drill, not nope"),
        (
            ["invoke", "rollback", ALIAS, "--env", "drill", "-p", "x"],
            Code.USAGE,
            "--param takes KEY=VALUE",
        ),
        (
            ["invoke", "reboot", ALIAS, "--env", "drill"],
            Code.USAGE,
            "no remediator runs 'reboot'",
        ),
        (
            ["invoke", "rollback", ALIAS, "--env", "drill", "--kind", "memory"],
            Code.USAGE,
            "--kind is for capacity-bump",
        ),
        (
            ["invoke", "capacity-bump", FUNCTION, "--env", "drill", "--kind", "disk"],
            Code.USAGE,
            "--kind disk: expected one of memory, timeout",
        ),
        (
            ["invoke", "rollback", FUNCTION + ":nope", "--env", "drill"],
            Code.REJECTED,
            # what would be accepted: the inventory's rollback targets
            f"{FUNCTION}:nope is not in drill's inventory for rollback; accepted: "
            "arn:aws:apigateway:eu-west-1::/apis/f6g7h8i9j0/stages/prod "
            "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod "
            "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod "
            "arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live",
        ),
        (["invoke", "rollback", ALIAS, "--keep"], Code.USAGE, "--keep is for --local"),
    ],
)
def test_refusals_before_any_aws_call(monkeypatch, drill_assembly, args, expected, says):
    def no_aws(*a, **k):
        raise AssertionError("no AWS call for a refused command")

    monkeypatch.setattr(cli, "_client", no_aws)
    code, output = run(*args, "--cdk-out", str(drill_assembly))
    assert code == expected, output
    assert says in " ".join(output.split())


# -- the common mistakes: one line, what to do, no traceback ---------------------------------


def one_error_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("error:")]
    return line


def test_no_credentials(monkeypatch, tmp_path, drill_assembly, emulator):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, output = run(
        "gate", "off", "--env", "drill", "--yes", "--cdk-out", str(drill_assembly),
        "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == Code.SETUP
    line = one_error_line(output)
    assert "no AWS credentials to identify the caller" in line
    assert "set AWS_PROFILE" in line


def test_function_not_found(monkeypatch, drill_assembly, emulator):
    emulator.reset()  # nothing deployed: the remediator function does not exist
    monkeypatch.setattr(cli, "caller", lambda *a: CALLER)
    code, output = run(
        "invoke", "rollback", ALIAS, "--env", "drill", "--yes", "--cdk-out", str(drill_assembly),
        "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == Code.SETUP
    line = one_error_line(output)
    assert "function autorem-drill-rollback not found in account 123456789012 eu-west-1" in line
    assert "npx cdk deploy --all -c env=drill" in line


@pytest.mark.parametrize("region", [None, "us-east-1"])
def test_no_such_stack_here(drill_assembly, emulator, region):
    """The audit table's name is CloudFormation's: asked of a stack that is not there."""
    emulator.reset()
    code, output = run(
        "history", "--env", "drill", "--cdk-out", str(drill_assembly),
        "--endpoint-url", emulator.endpoint_url, *(["--region", region] if region else []),
    )  # fmt: skip
    assert code == Code.SETUP
    line = one_error_line(output)
    where = region or "eu-west-1"
    assert f"stack autorem-drill-core is not deployed in account 123456789012 {where}" in line
    assert "deploy it (npx cdk deploy --all -c env=drill) or check --region" in line


def test_no_audit_table(drill_assembly, emulator):
    emulator.reset()
    table = template.load(drill_assembly, "drill").setting("AUDIT_TABLE")
    code, output = run(
        "history", "--local", "--env", "drill", "--cdk-out", str(drill_assembly),
        "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == Code.SETUP
    line = one_error_line(output)
    assert f"audit table {table} not found in account 123456789012 eu-west-1" in line


def test_no_such_stack(capsys, drill_assembly, emulator):
    """A name CloudFormation generates is asked of the stack: not deployed -> one line."""
    emulator.reset()
    deployment = template.load(drill_assembly, "drill")
    table = next(r for r in deployment.by_type("AWS::DynamoDB::Table"))
    table.named = False  # as if the template let CloudFormation name it
    with pytest.raises(typer.Exit) as exited:
        cli._table_name(deployment, emulator.endpoint_url, None)
    assert exited.value.exit_code == Code.SETUP
    line = one_error_line(capsys.readouterr().err)
    assert f"stack {table.stack} is not deployed in account 123456789012 eu-west-1" in line
    assert "deploy it (npx cdk deploy --all -c env=drill) or check --region" in line


def test_credentials_aws_refuses_and_access_denied(monkeypatch):
    """Codes AWS answers with: expired or unknown keys -> setup; access denied -> setup."""
    from botocore.exceptions import ClientError

    def raising(code: str) -> None:
        with cli.aws("set the switch /x"):
            raise ClientError({"Error": {"Code": code, "Message": "m"}}, "PutParameter")

    for code, expected in (
        ("ExpiredToken", Code.SETUP),
        ("AccessDeniedException", Code.SETUP),
        ("ThrottlingException", Code.FAILED),
    ):
        with pytest.raises(typer.Exit) as exited:
            raising(code)
        assert exited.value.exit_code == expected, code


def test_help_documents_the_exit_codes():
    code, output = run("--help")
    assert code == 0
    flat = " ".join(output.replace("│", " ").split())
    for text in (
        "0 done as asked",
        "1 failed",
        "2 usage error",
        "3 rejected",
        "4 escalated",
        "5 not done",
        "6 setup",
    ):
        assert text in flat
    assert [c.value for c in Code] == [0, 1, 2, 3, 4, 5, 6]


def test_an_unknown_environment_lists_the_known_ones():
    code, output = run("plan", "--env", "nope")  # refused before any synth
    assert code == Code.USAGE
    listed = "environments: drill, drill-org, prod-example"
    assert f"no environment 'nope' in cdk.json; {listed}" in output
