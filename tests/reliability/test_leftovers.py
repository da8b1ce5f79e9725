"""Temporary changes: none is left in place without a human being told.

flip-flag: hypothesis (derandomized) draws what stands between an executed flip and its
restore when the alarm recovers: the switch (on, off, dry-run, a typo, missing), when the OK
comes (inside the cooldown, inside the flag's hold, later), what happened to the flag (as we
left it, changed by a person, deleted), how the OK arrives (fresh, twice, while the restore
call fails) and how many later audit records sit on top of the flip; an OK arriving late
(from a queue) is its own test. After the OK, the flag is back, or the OK's result is
ESCALATED or FAILED with a notice saying so: a "rejected" notice does not say a change stays.

waf-block: a block made by an ALARM, then the sweeper at and after its expiry, with the
switch off or mistyped, the IP set deleted, the removal call failing once, or the entry
already taken out by a person. After each sweep past the expiry, the address is gone from
the IP set, or that sweep escalated or failed with a notice.

Counted: temporary changes made, paths tried, changes left with a notice, and changes left
without one (must be 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serverless_remediation.remediate.emulator import (
    ACCOUNT,
    REGION,
    agree_alarm,
    create_function,
    create_ip_set,
    create_log_group,
    put_parameter,
)
from serverless_remediation.remediation.actions import waf_block
from serverless_remediation.remediation.audit import AuditLog, Entry
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import Outcome, Result
from serverless_remediation.remediation.sweeper import Sweeper, SweeperSettings
from tests.conftest import DEPLOYMENT, sns_alarm
from tests.functional.actions.wire import Wire, denied
from tests.reliability.helpers import alarm_arn, transition
from tests.reliability.test_fuzz import FAST

ORIGINAL, SAFE = "true", "false"
#: results that tell a human a change was left in place
TELLS = {Outcome.ESCALATED, Outcome.FAILED}
_serial = count()


def count_path(figures, *, made: bool, left: bool, noticed: bool) -> bool:
    """Count one path; True when a change was left without a notice."""
    figures.add("leftover_paths_tried")
    figures.add("temporary_changes_made", int(made))
    figures.add("temporary_changes_left_noticed", int(left and noticed))
    unnoticed = left and not noticed
    figures.add("temporary_changes_left_unnoticed", int(unnoticed))
    return unnoticed


def told(result: Result, notices: list[dict]) -> bool:
    """``result`` is an escalation or failure and a notice for it was published."""
    return result.outcome in TELLS and any(result.audit_id in n["message"] for n in notices)


# -- flip-flag ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagPath:
    kind: str  # ssm | lambda
    switch: str  # the switch's value when the OK comes (None: deleted)
    hold_minutes: int
    ok_after_minutes: int
    flag: str  # as-left | changed | deleted
    delivery: str  # fresh | twice | late | restore-fails
    noise: int  # later audit records on the same target

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items())


FLAG_PATHS = st.builds(
    FlagPath,
    kind=st.sampled_from(["ssm", "lambda"]),
    switch=st.sampled_from(["on", "off", "dry-run", "On ", "ON", "true", "missing"]),
    hold_minutes=st.sampled_from([0, 30]),
    ok_after_minutes=st.sampled_from([2, 5, 45]),  # cooldown is 15 min, the hold 30
    flag=st.sampled_from(["as-left", "as-left", "changed", "deleted"]),
    delivery=st.sampled_from(["fresh", "fresh", "twice", "restore-fails"]),
    noise=st.sampled_from([0, 0, 60]),  # 60: past the first page of history (50)
)


class FlagWorld:
    """One flag per path (its own target, so guards and history do not mix)."""

    def __init__(self, stack, emulator, path: FlagPath) -> None:
        self.stack, self.emulator, self.path = stack, emulator, path
        n = next(_serial)
        self.alarm = f"leftover-flag-{n}"
        if path.kind == "ssm":
            self.name = f"/leftover/{n}/webhook"
            put_parameter(stack.clients, self.name, ORIGINAL)
            self.target = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{self.name}"
        else:
            self.name = f"leftover-{n}"
            function = create_function(
                stack.clients,
                self.name,
                versions=0,
                alias=None,
                environment={"WEBHOOK_ENABLED": ORIGINAL, "OTHER": "kept"},
            )
            self.target = f"{function}#WEBHOOK_ENABLED"
        route = {
            "action": "flip-flag",
            "target": self.target,
            "params": {"value": SAFE, "hold_minutes": path.hold_minutes},
        }
        self.playbook = {"alarms": {self.alarm: route}}

    def value(self) -> str | None:
        if self.path.kind == "ssm":
            try:
                got = self.stack.clients("ssm").get_parameter(Name=self.name)
            except self.stack.clients("ssm").exceptions.ParameterNotFound:
                return None
            return got["Parameter"]["Value"]
        config = self.stack.clients("lambda").get_function_configuration(FunctionName=self.name)
        return config["Environment"]["Variables"].get("WEBHOOK_ENABLED")

    def set_value(self, value: str | None) -> None:
        if self.path.kind == "ssm":
            ssm = self.stack.clients("ssm")
            if value is None:
                ssm.delete_parameter(Name=self.name)
            else:
                ssm.put_parameter(Name=self.name, Value=value, Overwrite=True)
            return
        lam = self.stack.clients("lambda")
        variables = lam.get_function_configuration(FunctionName=self.name)["Environment"][
            "Variables"
        ]
        if value is None:
            variables.pop("WEBHOOK_ENABLED")
        else:
            variables["WEBHOOK_ENABLED"] = value
        lam.update_function_configuration(
            FunctionName=self.name, Environment={"Variables": variables}
        )

    def deliver(self, state: str, at: datetime, clock: datetime, clients=None) -> Result:
        """One transition at ``at`` (CloudWatch agrees), handled with the clock at ``clock``."""
        agree_alarm(self.stack.clients, alarm_arn(self.alarm), state, at)
        event = sns_alarm(transition(self.alarm, state, at=at))
        pipeline = self.stack.pipeline(
            self.playbook, clients=clients, clock=lambda: clock, agree=False
        )
        (result,) = pipeline.handle(event)
        return result

    def add_noise(self, records: int, after: datetime) -> None:
        """Later records for the same action and target (escalations, rejections, skips)."""
        audit = AuditLog(self.stack.clients("dynamodb"), self.stack.table)
        outcomes = [Outcome.SKIPPED, Outcome.ESCALATED, Outcome.REJECTED, Outcome.DRY_RUN]
        for i in range(records):
            audit.open(
                Entry(
                    audit_id=f"noise{next(_serial):027x}",
                    correlation_id="noise",
                    created_at=after + timedelta(seconds=i + 1),
                    source="alarm",
                    key=self.alarm,
                    state="ALARM",
                    requested_by=alarm_arn(self.alarm),
                    reason="noise",
                    action="flip-flag",
                    target=self.target,
                ),
                outcomes[i % len(outcomes)],
            )

    def restore_failing_clients(self) -> Clients:
        clients = Clients(endpoint_url=self.emulator.endpoint_url)
        if self.path.kind == "ssm":
            Wire(clients("ssm")).queue("PutParameter", *[denied()] * 10)
        else:
            Wire(clients("lambda")).queue("UpdateFunctionConfiguration", *[denied()] * 10)
        return clients


def run_flag_path(stack, emulator, figures, path: FlagPath) -> list[str]:
    """Flip, then the path's conditions, then OK. Returns problems (empty: fine)."""
    world = FlagWorld(stack, emulator, path)
    t0 = datetime.now(UTC)
    stack.set_switch("on")
    flip = world.deliver("ALARM", t0 - timedelta(seconds=30), t0)
    if flip.outcome is not Outcome.EXECUTED or world.value() != SAFE:
        return [f"the flip did not happen: {flip.outcome} {flip.reason}"]
    stack.notices()  # the flip's own notice

    if path.noise:
        world.add_noise(path.noise, t0)
    if path.flag == "changed":
        world.set_value("maybe")
    elif path.flag == "deleted":
        world.set_value(None)
    if path.switch == "missing":
        stack.clients("ssm").delete_parameter(Name=stack.switch)
    else:
        stack.set_switch(path.switch)

    ok_at = t0 + timedelta(minutes=path.ok_after_minutes)
    clock = ok_at + (timedelta(minutes=20) if path.delivery == "late" else timedelta(seconds=30))
    clients = world.restore_failing_clients() if path.delivery == "restore-fails" else None
    result = world.deliver("OK", ok_at, clock, clients)
    results = [result]
    if path.delivery == "twice":
        results.append(world.deliver("OK", ok_at, clock + timedelta(seconds=5)))
    notices = stack.notices()
    stack.set_switch("on")

    now = world.value()
    left = now is not None and now != ORIGINAL
    noticed = told(result, notices)
    problems = []
    if count_path(figures, made=True, left=left, noticed=noticed):
        problems.append(
            f"flag left at {now!r} after OK: {result.outcome} {result.reason[:300]!r} "
            f"(notices: {[n['subject'] for n in notices]})"
        )
    if not left and now == ORIGINAL and path.flag == "as-left":
        restored = [r for r in results if r.outcome is Outcome.EXECUTED]
        if len(restored) != 1 or not any(restored[0].audit_id in n["message"] for n in notices):
            problems.append(
                f"restored without exactly one executed result with a notice: {results}"
            )
    return problems


@settings(FAST, max_examples=100)
@given(path=FLAG_PATHS)
def test_a_flipped_flag_is_restored_or_a_human_is_told(stack, emulator, figures, path):
    problems = run_flag_path(stack, emulator, figures, path)
    assert not problems, f"{path.describe()}: {'; '.join(problems)}"


@pytest.mark.parametrize("kind", ["ssm", "lambda"])
def test_an_ok_delivered_late_restores_the_flag_or_tells_a_human(stack, emulator, figures, kind):
    """The OK reaches the remediator 20 min after the alarm recovered (Lambda keeps
    retrying an async event for up to 6 h, e.g. while the remediator is throttled): too old
    to act on, but the flag must not stay flipped with only a "rejected" notice that does
    not say so."""
    path = FlagPath(kind, "on", 0, 5, "as-left", "late", 0)
    problems = run_flag_path(stack, emulator, figures, path)
    assert not problems, f"{path.describe()}: {'; '.join(problems)}"


@pytest.mark.parametrize("switch", ["on", "off", "dry-run", "On ", "missing"])
@pytest.mark.parametrize("timing", [(0, 2), (30, 5), (30, 45)], ids=["cooldown", "hold", "after"])
def test_every_switch_and_timing_for_an_ssm_flag(stack, emulator, figures, switch, timing):
    """The brief's own cases, each once, whatever hypothesis drew."""
    hold, after = timing
    path = FlagPath("ssm", switch, hold, after, "as-left", "fresh", 0)
    problems = run_flag_path(stack, emulator, figures, path)
    assert not problems, f"{path.describe()}: {'; '.join(problems)}"


# -- waf-block and the sweeper ---------------------------------------------------------------

OFFENDER = "203.0.113.9/32"
LOG_GROUP = "/aws/apigateway/leftovers"


@dataclass
class Block:
    stack: Any
    ip_set: dict
    expires: datetime

    def entries(self) -> list[str]:
        waf = self.stack.clients("wafv2")
        key = {"Name": self.ip_set["Name"], "Scope": "REGIONAL", "Id": self.ip_set["Id"]}
        try:
            return waf.get_ip_set(**key)["IPSet"]["Addresses"]
        except waf.exceptions.WAFNonexistentItemException:
            return []

    def sweeper(self, clients: Clients | None = None) -> Sweeper:
        settings = SweeperSettings(
            env="test",
            table=self.stack.table,
            notice_topic=self.stack.topic_arn,
            deployment=DEPLOYMENT,
        )
        return Sweeper(settings, clients or self.stack.clients)


@pytest.fixture
def block(stack, monkeypatch) -> Block:
    """An ALARM blocked the offender in the access logs for 60 min."""
    monkeypatch.setattr(waf_block, "_sleep", lambda seconds: None)
    stack.now = datetime.now(UTC)
    ip_set = create_ip_set(stack.clients, "leftovers")
    line = json.dumps({"ip": OFFENDER.split("/")[0], "status": 403})
    at_ms = int(stack.now.timestamp() * 1000) - 60_000
    create_log_group(stack.clients, LOG_GROUP, [line] * 3, at_ms=at_ms)
    params = {"log_group": LOG_GROUP, "threshold": 1, "query": "fields @message", "ttl_minutes": 60}
    playbook = {
        "alarms": {
            "leftover-waf": {"action": "waf-block", "target": ip_set["ARN"], "params": params}
        }
    }
    (result,) = stack.pipeline(playbook).handle(sns_alarm(transition("leftover-waf")))
    assert result.outcome is Outcome.EXECUTED, result.reason
    made = Block(stack, ip_set, stack.now + timedelta(minutes=60))
    assert OFFENDER in made.entries()
    stack.notices()
    return made


def sweep(block: Block, at: datetime, clients: Clients | None = None) -> tuple[list[Result], list]:
    results = block.sweeper(clients).sweep(at)
    return results, block.stack.notices()


def judge_sweep(figures, block: Block, results: list[Result], notices: list) -> list[str]:
    left = OFFENDER in block.entries()
    noticed = any(told(r, notices) for r in results)
    if count_path(figures, made=False, left=left, noticed=noticed):
        return [f"{OFFENDER} left in the IP set after its expiry: {results}"]
    return []


WAF_CASES = ["switch on", "switch off", "switch typo", "switch missing"]


@pytest.mark.parametrize("case", WAF_CASES)
def test_an_expired_block_leaves_the_ip_set_whatever_the_switch_says(block, figures, case):
    stack = block.stack
    figures.add("temporary_changes_made")
    if case == "switch missing":
        stack.clients("ssm").delete_parameter(Name=stack.switch)
    else:
        stack.set_switch({"switch on": "on", "switch off": "off", "switch typo": "Off "}[case])
    early, _ = sweep(block, block.expires - timedelta(minutes=1))
    assert early == []  # not expired yet: nothing to do, nothing to say
    results, notices = sweep(block, block.expires + timedelta(minutes=1))
    assert not judge_sweep(figures, block, results, notices)
    (done,) = results
    assert done.outcome is Outcome.EXECUTED
    assert any(done.audit_id in n["message"] for n in notices)


def test_a_failing_sweep_says_so_and_the_next_one_removes_the_block(block, emulator, figures):
    figures.add("temporary_changes_made")
    clients = Clients(endpoint_url=emulator.endpoint_url)
    Wire(clients("wafv2")).queue("UpdateIPSet", *[denied()] * 10)
    results, notices = sweep(block, block.expires + timedelta(minutes=1), clients)
    assert [r.outcome for r in results] == [Outcome.FAILED]
    assert not judge_sweep(figures, block, results, notices)  # left, with a FAILED notice
    assert OFFENDER in block.entries()
    results, notices = sweep(block, block.expires + timedelta(minutes=6))
    assert not judge_sweep(figures, block, results, notices)
    assert OFFENDER not in block.entries()


def test_a_deleted_ip_set_escalates_once(block, figures):
    figures.add("temporary_changes_made")
    waf = block.stack.clients("wafv2")
    lock = waf.get_ip_set(Name=block.ip_set["Name"], Scope="REGIONAL", Id=block.ip_set["Id"])
    waf.delete_ip_set(
        Name=block.ip_set["Name"],
        Scope="REGIONAL",
        Id=block.ip_set["Id"],
        LockToken=lock["LockToken"],
    )
    results, notices = sweep(block, block.expires + timedelta(minutes=1))
    assert [r.outcome for r in results] == [Outcome.ESCALATED]
    assert not judge_sweep(figures, block, results, notices)
    assert any(results[0].audit_id in n["message"] for n in notices)
    again, _ = sweep(block, block.expires + timedelta(minutes=6))
    assert again == []  # forgotten: not an escalation every five minutes forever


def test_an_entry_a_person_removed_is_not_a_leftover(block, figures):
    figures.add("temporary_changes_made")
    waf = block.stack.clients("wafv2")
    key = {"Name": block.ip_set["Name"], "Scope": "REGIONAL", "Id": block.ip_set["Id"]}
    got = waf.get_ip_set(**key)
    waf.update_ip_set(**key, Addresses=[], LockToken=got["LockToken"])
    results, notices = sweep(block, block.expires + timedelta(minutes=1))
    assert not judge_sweep(figures, block, results, notices)
    assert [r.outcome for r in results] == [Outcome.SKIPPED]
