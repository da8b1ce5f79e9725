"""Manual invokes as an engineer needs them: a capacity bump names its kind (one the inventory
configures for the target, from every route to it), and ``--local --keep`` keeps the emulator
between commands so invoke -> history -> revert can be tried locally."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.drill import template
from tests.functional.test_drill import ALIAS, ROOT

WORKER = "arn:aws:lambda:eu-west-1:123456789012:function:reports-worker"
runner = CliRunner()


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


# -- --kind ----------------------------------------------------------------------------------


def test_a_target_with_several_kinds_needs_one_named(drill_assembly):
    # reports-worker: latency -> memory, throttles -> reserved concurrency (two routes)
    code, output = run(
        "invoke", "capacity-bump", WORKER, "--local", "--cdk-out", str(drill_assembly)
    )
    assert code == cli.Code.USAGE
    assert f"{WORKER} takes capacity-bump kinds memory, reserved: name one with --kind" in (
        " ".join(output.split())
    )


def test_a_kind_the_inventory_does_not_configure_is_refused_listing_those_it_does(
    drill_assembly,
):
    code, output = run(
        "invoke", "capacity-bump", WORKER, "--kind", "provisioned", "--local",
        "--cdk-out", str(drill_assembly),
    )  # fmt: skip
    assert code == cli.Code.REJECTED
    flat = " ".join(output.split())
    assert f"capacity-bump provisioned is not configured for {WORKER}" in flat
    assert "accepted kinds: memory, reserved" in flat


def test_a_named_kind_runs_on_the_emulator(emulator, drill_assembly):
    code, output = run(
        "invoke", "capacity-bump", WORKER, "--kind", "memory", "--local", "--output", "json",
        "--cdk-out", str(drill_assembly), "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == 0, output
    (result,) = [json.loads(line) for line in output.splitlines()]
    assert result["outcome"] == "executed"
    assert result["before"] == {"dimension": "lambda-memory", "memory_mb": 512}
    assert result["after"]["memory_mb"] == 768
    lam = emulator.clients()("lambda")
    assert lam.get_function_configuration(FunctionName="reports-worker")["MemorySize"] == 768


@pytest.mark.parametrize(
    ("kind", "sent"),
    [("reserved", "lambda-reserved-concurrency"), ("memory", "lambda-memory")],
)
def test_the_named_kind_is_what_the_remediator_is_asked_for(
    monkeypatch, drill_assembly, kind, sent
):
    """Every kind configured for the target, not only its first route's."""
    lam = boto3.client("lambda", region_name="eu-west-1")
    stubber = Stubber(lam)
    body = json.dumps({"results": [{"outcome": "executed", "audit_id": "a1"}]}).encode()
    caller = "arn:aws:sts::123456789012:assumed-role/oncall/alice"
    request = cli.manual_request(
        "capacity-bump", WORKER, {"kind": sent}, False, "throttled at 09:10", caller
    )
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))},
        {
            "FunctionName": "autorem-drill-capacity-bump",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(request).encode(),
        },
    )
    stubber.activate()
    monkeypatch.setattr(cli, "_client", lambda *a, **k: lam)
    monkeypatch.setattr(
        cli,
        "caller",
        lambda *a: {"account": "123456789012", "arn": caller, "region": "eu-west-1"},
    )
    code, output = run(
        "invoke", "capacity-bump", WORKER, "--kind", kind, "--reason", "throttled at 09:10",
        "--env", "drill", "--yes", "--cdk-out", str(drill_assembly),
    )  # fmt: skip
    assert code == 0, output
    stubber.assert_no_pending_responses()


# -- --local --keep: invoke -> history -> revert, each its own process ------------------------


def remediate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command, in a new process each time (as a person would type it)."""
    command = [str(Path(sys.executable).with_name("remediate")), *args]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return subprocess.run(  # noqa: S603 (the project's own command)
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def state_dir(tmp_path):
    state = tmp_path / "state"
    yield state
    remediate("emulator", "stop", "--state-dir", str(state), cwd=tmp_path)


def test_keep_lets_invoke_history_and_revert_run_on_one_emulator(
    tmp_path, state_dir, drill_assembly
):
    common = ["--cdk-out", str(drill_assembly), "--state-dir", str(state_dir)]
    done = remediate(
        "invoke", "capacity-bump", ALIAS, "--kind", "provisioned", "--local", "--keep",
        "--output", "json", *common, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (bump,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert bump["outcome"] == "executed"
    assert bump["after"]["provisioned_concurrency"] == 5
    status = remediate("emulator", "status", "--state-dir", str(state_dir), cwd=tmp_path)
    assert status.returncode == 0
    assert "kept emulator at http://127.0.0.1:" in status.stdout

    done = remediate("history", "--local", "--output", "json", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["audit_id"] == bump["audit_id"]
    assert record["outcome"] == "executed"
    assert record["requested_by"].startswith("arn:aws:")  # the caller's ARN, not a user name

    done = remediate(
        "revert", bump["audit_id"], "--local", "--output", "json", *common, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (undone,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert undone["outcome"] == "executed"
    assert undone["after"]["state"]["provisioned_concurrency"] == 0  # back to none, read back

    done = remediate("history", "--local", "--output", "json", *common, cwd=tmp_path)
    assert [json.loads(line)["action"] for line in done.stdout.splitlines()] == [
        "revert",
        "capacity-bump",
    ]
    stop = remediate("emulator", "stop", "--state-dir", str(state_dir), cwd=tmp_path)
    assert "stopped the kept emulator" in stop.stdout
    gone = remediate("emulator", "status", "--state-dir", str(state_dir), cwd=tmp_path)
    assert gone.returncode == cli.Code.NOT_DONE


def test_revert_local_without_a_kept_emulator_says_how_to_get_one(tmp_path, drill_assembly):
    code, output = run(
        "revert", "0123abcd", "--local", "--cdk-out", str(drill_assembly),
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert code == cli.Code.USAGE
    assert "needs the emulator an earlier `invoke --local --keep` kept" in output
