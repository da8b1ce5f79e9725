"""``remediate approve`` / ``reject`` / ``silence`` against the emulator: the write-command
checks (--env, identity, --yes), what is sent to which remediator, the exit codes, and the
silence items and audit records written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from serverless_remediation.remediate import cli, people
from serverless_remediation.remediate.drill import template
from serverless_remediation.remediation.approvals import Approvals, build_approval
from serverless_remediation.remediation.models import Route, RouteMode
from serverless_remediation.remediation.silences import Silences
from tests.functional.test_drill import ALIAS, ROOT

WORKER = "arn:aws:lambda:eu-west-1:123456789012:function:reports-worker"
runner = CliRunner()


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


@pytest.fixture
def env(stack, emulator, drill_assembly, monkeypatch):
    """The drill environment's commands pointed at the emulator's table."""
    monkeypatch.setattr(cli, "_table_name", lambda *a: stack.table)
    sent: list[tuple[str, dict]] = []
    answers: list[list[dict[str, Any]]] = []

    def send(deployment, remediator, payload, endpoint_url, region):
        sent.append((remediator.name, payload))
        return answers.pop(0) if answers else []

    monkeypatch.setattr(people, "_send", send)
    common = ["--env", "drill", "--yes", "--cdk-out", str(drill_assembly)]
    common += ["--endpoint-url", emulator.endpoint_url]
    return {"args": common, "sent": sent, "answers": answers}


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return result.exit_code, " ".join(result.output.split())


def pending(stack) -> str:
    asked = build_approval(
        Route("capacity-bump", WORKER, {"kind": "lambda-reserved-concurrency"}, RouteMode.APPROVE),
        before={"reserved_concurrency": 10},
        after={"reserved_concurrency": 15},
        summary="reserved concurrency 10 -> 15",
        now=datetime.now(UTC),
        expiry=timedelta(minutes=15),
        origin_audit_id="a" * 32,
        origin_key="autorem-drill-reports-worker-throttles",
    )
    Approvals(stack.clients("dynamodb"), stack.table).ask(asked)
    return asked.approval_id


def outcome(name: str) -> list[dict[str, Any]]:
    return [{"outcome": name, "reason": "r", "audit_id": "b" * 32, "action": "capacity-bump"}]


def test_approve_sends_the_decision_to_the_remediator_that_runs_the_action(stack, env):
    approval_id = pending(stack)
    env["answers"].append(outcome("executed"))
    code, output = run("approve", approval_id, "--reason", "throttling confirmed", *env["args"])
    assert code == cli.Code.OK, output
    ((function, payload),) = env["sent"]
    assert function.endswith("capacity-bump")
    assert payload == {
        "approve": approval_id,
        "requested_by": "arn:aws:sts::123456789012:user/moto",
        "reason": "throttling confirmed",
        "via": "cli",
    }


@pytest.mark.parametrize(
    ("verb", "answer", "code"),
    [
        ("reject", "skipped", cli.Code.OK),  # rejected as asked
        ("approve", "awaiting-approval", cli.Code.NOT_DONE),  # the target changed: ask again
        ("approve", "skipped", cli.Code.NOT_DONE),  # the switch is off
        ("approve", "rejected", cli.Code.REJECTED),  # expired, used, not an approver
    ],
)
def test_decision_exit_codes(stack, env, verb, answer, code):
    env["answers"].append(outcome(answer))
    got, output = run(verb, pending(stack), *env["args"])
    assert got == code, output


def test_an_unknown_id_is_still_sent_so_the_refusal_is_audited(stack, env):
    env["answers"].append(outcome("rejected"))
    code, output = run("approve", "0" * 32, *env["args"])
    assert code == cli.Code.REJECTED
    assert "not found" in output
    assert [payload["approve"] for _, payload in env["sent"]] == ["0" * 32]


def test_approve_needs_an_environment(stack, env):
    code, output = run("approve", pending(stack))
    assert code == cli.Code.USAGE
    assert "name the environment with --env" in output
    assert env["sent"] == []


def test_silence_writes_one_silence_and_its_audit_record_then_lift_ends_it(stack, env):
    code, output = run(
        "silence", ALIAS, "--for", "2h", "--reason", "planned migration", *env["args"]
    )
    assert code == cli.Code.OK, output
    silences = Silences(stack.clients("dynamodb"), stack.table)
    (made,) = silences.active(datetime.now(UTC))
    assert (made.target, made.reason) == (ALIAS, "planned migration")
    assert made.created_by == "arn:aws:sts::123456789012:user/moto"
    assert timedelta(hours=1, minutes=59) < made.until - datetime.now(UTC) <= timedelta(hours=2)
    assert f"remediate silence --lift {made.silence_id} --env drill" in output

    code, output = run("silence", "--lift", made.silence_id, *env["args"])
    assert code == cli.Code.OK, output
    assert silences.active(datetime.now(UTC)) == []
    records = sorted(stack.audit_items(), key=lambda r: r["created_at"])
    assert [(r["action"], r["target"]) for r in records] == [
        ("silence", ALIAS),
        ("lift-silence", ALIAS),
    ]
    code, output = run("silence", "--lift", made.silence_id, *env["args"])
    assert code == cli.Code.REJECTED
    assert "already ended" in output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ([ALIAS, "--for", "25h", "--reason", "too long"], cli.Code.REJECTED, "at most 1 day"),
        ([ALIAS, "--for", "soon", "--reason", "x y z"], cli.Code.USAGE, "expected a length"),
        ([WORKER + "-nope", "--for", "1h", "--reason", "abc"], cli.Code.REJECTED, "not a target"),
        ([ALIAS, "--for", "1h"], cli.Code.USAGE, "needs --for"),
    ],
)
def test_silence_refuses_what_it_cannot_hold(stack, env, args, code, says):
    got, output = run("silence", *args, *env["args"])
    assert got == code, output
    assert says in output
    assert list(Silences(stack.clients("dynamodb"), stack.table).all()) == []


def test_parse_length():
    assert people.parse_length("1h30m") == timedelta(minutes=90)
    assert people.parse_length("1d") == timedelta(days=1)
    for bad in ("", "h", "2 hours", "-1h"):
        with pytest.raises(ValueError, match="expected a length"):
            people.parse_length(bad)


def test_status_lists_pending_approvals_with_time_left_and_active_silences(stack):
    from serverless_remediation.remediate import status as status_
    from serverless_remediation.remediation.silences import build_silence

    approval_id = pending(stack)
    silences = Silences(stack.clients("dynamodb"), stack.table)
    now = datetime.now(UTC)
    held = build_silence(
        ALIAS, length=timedelta(hours=1), reason="migration", created_by="me", now=now,
        max_length=timedelta(hours=24),
    )  # fmt: skip
    ended = build_silence(
        WORKER, length=timedelta(minutes=5), reason="old", created_by="me",
        now=now - timedelta(hours=1), max_length=timedelta(hours=24),
    )  # fmt: skip
    silences.add(held)
    silences.add(ended)
    items = status_.scan(stack.clients("dynamodb"), stack.table)
    found = status_.build(
        "drill", items, now + timedelta(minutes=5), switch={}, dead_letters={}, breaker_max=3
    )
    (approval,) = found.sections["approvals"]
    assert approval["approval"] == approval_id
    assert approval["minutes_left"] == 9  # 15 minutes, 5 gone (and a few seconds)
    assert [s["silence_id"] for s in found.sections["silences"]] == [held.silence_id]
    later = status_.build(
        "drill", items, now + timedelta(minutes=16), switch={}, dead_letters={}, breaker_max=3
    )
    assert later.sections["approvals"] == []  # expired: gone from status though still stored
