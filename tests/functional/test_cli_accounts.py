"""The CLI cannot write to the wrong account by accident: commands that write name their
environment, check the caller (``sts:GetCallerIdentity``) against its account and region
before anything is sent, ask on a terminal, and record the caller's ARN as ``requested_by``.

On the emulator with two accounts: moto keeps resources per account, and credentials from
``sts:AssumeRole`` into another account's role act in that account (moto maps the access key
to the account; MOTO_ACCOUNT_ID, when set, would override it for every request).
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.drill import template
from serverless_remediation.remediation.accounts import client_keys
from tests.functional.test_drill import ALIAS, ROOT

OTHER_ACCOUNT = "210987654321"
ACCOUNT = "123456789012"  # the drill env's
REGION = "eu-west-1"
REASON = "manual remediation from the remediate CLI"  # invoke's default --reason

runner = CliRunner()


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


@pytest.fixture
def deployment(drill_assembly):
    return template.load(drill_assembly, "drill")


@pytest.fixture
def fresh(emulator, monkeypatch):
    """An empty emulator; the shell's credentials are the default account's."""
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    emulator.reset()
    return emulator


def as_other_account(emulator, monkeypatch) -> tuple[str, dict[str, str]]:
    """The shell's credentials become a role's in OTHER_ACCOUNT: (caller ARN, credentials)."""
    sts = client(emulator, "sts")
    found = sts.assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/oncall", RoleSessionName="mallory"
    )["Credentials"]
    credentials = client_keys(found)
    for name, value in credentials.items():
        monkeypatch.setenv(name.upper(), value)
    return f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/oncall/mallory", credentials


def client(emulator, service: str, **credentials):
    """A client of the default account (or of ``credentials``), whatever the shell has."""
    keys = credentials or {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_session_token": "testing",
    }
    return boto3.client(service, region_name=REGION, endpoint_url=emulator.endpoint_url, **keys)


def switch_value(emulator, parameter: str, **credentials) -> str | None:
    ssm = client(emulator, "ssm", **credentials)
    try:
        return ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args), input=stdin)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_account_is_checked_before_writing_on_an_emulator_with_two_accounts(
    fresh, monkeypatch, drill_assembly, deployment
):
    parameter = deployment.setting("SWITCH_PARAMETER")
    common = ["--env", "drill", "--yes", "--cdk-out", str(drill_assembly)]
    common += ["--endpoint-url", fresh.endpoint_url]
    # The drill env's own account: the switch is written there.
    code, output = run("gate", "off", *common)
    assert code == 0, output
    assert switch_value(fresh, parameter) == "off"
    # Credentials of another account: refused, naming both accounts; nothing written anywhere.
    caller, other = as_other_account(fresh, monkeypatch)
    code, output = run("gate", "on", *common)
    assert code == cli.Code.SETUP, output
    flat = " ".join(output.split())
    assert f"the credentials ({caller}) are for account {OTHER_ACCOUNT} in {REGION}" in flat
    assert f"but drill is account {ACCOUNT} in {REGION}" in flat
    assert switch_value(fresh, parameter) == "off"  # the drill account's: untouched
    assert client(fresh, "sts", **other).get_caller_identity()["Account"] == OTHER_ACCOUNT
    assert switch_value(fresh, parameter, **other) is None  # and none made in the other
    # The same refusal before a manual invoke: the Lambda function is never called.
    code, output = run("invoke", "rollback", ALIAS, *common)
    assert code == cli.Code.SETUP
    assert f"account {OTHER_ACCOUNT}" in output


def test_a_region_other_than_the_environments_is_refused(fresh, drill_assembly, deployment):
    code, output = run(
        "gate",
        "on",
        "--env",
        "drill",
        "--yes",
        "--region",
        "us-east-1",
        "--cdk-out",
        str(drill_assembly),
        "--endpoint-url",
        fresh.endpoint_url,
    )
    assert code == cli.Code.SETUP
    flat = " ".join(output.split())
    assert f"are for account {ACCOUNT} in us-east-1, but drill is account {ACCOUNT} in" in flat
    assert switch_value(fresh, deployment.setting("SWITCH_PARAMETER")) is None


@pytest.mark.parametrize(
    "args",
    [
        ["gate", "on"],
        ["gate", "off"],
        ["gate", "dry-run"],
        ["invoke", "rollback", ALIAS],
        ["revert", "0123abcd"],
    ],
)
def test_commands_that_write_have_no_default_environment(drill_assembly, args):
    code, output = run(*args, "--cdk-out", str(drill_assembly), "--yes")
    assert code == cli.Code.USAGE
    said = " ".join(output.split())
    assert "writes to AWS: name the environment with --env (drill, drill-org, prod-example)" in said


def test_a_terminal_is_asked_and_no_means_nothing_written(
    fresh, monkeypatch, drill_assembly, deployment
):
    parameter = deployment.setting("SWITCH_PARAMETER")
    common = ["--env", "drill", "--cdk-out", str(drill_assembly)]
    common += ["--endpoint-url", fresh.endpoint_url]
    # No terminal and no --yes: a script must say so.
    code, output = run("gate", "off", *common)
    assert code == cli.Code.USAGE
    assert "pass --yes" in output
    monkeypatch.setattr(cli, "_terminal", lambda: True)
    code, output = run("gate", "off", *common, stdin="n\n")
    assert code == cli.Code.NOT_DONE
    assert f"switch {parameter} to off in drill (account {ACCOUNT}, {REGION}) as " in output
    assert "nothing done" in output
    assert switch_value(fresh, parameter) is None
    code, output = run("gate", "off", *common, stdin="y\n")
    assert code == 0, output
    assert switch_value(fresh, parameter) == "off"


def test_requested_by_is_the_callers_arn(fresh, monkeypatch, drill_assembly, deployment):
    """Against the emulator's STS, with the Lambda call checked by a Stubber (moto would need
    Docker to run the function)."""
    caller = client(fresh, "sts").get_caller_identity()["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    stubber = Stubber(lam)
    body = json.dumps({"results": [{"outcome": "executed", "audit_id": "a1"}]}).encode()
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))},
        {
            "FunctionName": deployment.remediator_for("rollback").name,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(
                cli.manual_request(
                    "rollback",
                    ALIAS,
                    {},
                    False,
                    "manual remediation from the remediate CLI",
                    caller,
                )
            ).encode(),
        },
    )
    stubber.activate()
    real = cli._client
    monkeypatch.setattr(
        cli, "_client", lambda d, service, *a: lam if service == "lambda" else real(d, service, *a)
    )
    code, output = run(
        "invoke",
        "rollback",
        ALIAS,
        "--env",
        "drill",
        "--yes",
        "--cdk-out",
        str(drill_assembly),
        "--endpoint-url",
        fresh.endpoint_url,
    )
    assert code == 0, output
    stubber.assert_no_pending_responses()
    assert caller.startswith(f"arn:aws:sts::{ACCOUNT}:")
