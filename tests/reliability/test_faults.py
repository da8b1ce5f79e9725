"""Faults injected into each AWS call of the pipeline in turn.

The calls are traced from a healthy rollback delivery (not listed by hand), so a new call in
the pipeline is covered without editing this file; flip-flag's own calls get the same.
For each call: every fault kind (throttling, 5xx, access denied, timeout) on every attempt,
and one transient fault (first attempt only; the retryable kinds take turns across the
calls). Expected:

- transient throttling/5xx/timeout: retried by the client, same outcome as a healthy run;
- audit table write fails before acting: the event fails, nothing changes (never act
  without a record);
- switch unreadable: off and escalated (a notice names it), nothing changes;
- any other call: outcome failed, audited and notified; if the target did change, the
  record (or, when the audit update itself is what failed, the notice) says how;
- the notice topic itself failing: the record is complete, the event fails for a retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import ExponentialBackoff

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, agree_alarms
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.guards import GuardSettings
from tests.reliability.faults import KINDS, RETRYABLE, Fault, Injector, TracedClients
from tests.reliability.helpers import alias_version, delivery, rollback_target, transition

TRANSIENT_TURNS = ("throttling", "5xx", "timeout")
# One target for every trial, reset between trials: the guards must not hold it back.
# no cooldown and a breaker window of 0 s: every action passes the guards
OPEN_GUARDS = GuardSettings(cooldown_seconds=0, breaker_max=1, breaker_window_seconds=0)
_serial = count()


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch):
    """Keep every retry decision real; only skip the waiting between attempts."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@dataclass
class Trial:
    fault: Fault | None
    action: str
    initial: str
    call: str = ""
    outcome: str = ""
    raised: str = ""
    state: str = ""
    records: list[dict] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.state != self.initial

    def __str__(self) -> str:
        what = self.fault.describe() if self.fault else "no fault"
        return (
            f"{self.action}: {what} on {self.call or '-'}: outcome={self.outcome or '-'} "
            f"raised={self.raised[:80] or '-'} state={self.state} "
            f"records={[r.get('outcome') for r in self.records]} notices={len(self.notices)}"
        )


class Scenario:
    """One target of ``action``; each trial is a new alarm transition on it, after which
    the target is put back. ``state()`` is what the action changes, as text."""

    action: str
    initial: str

    def __init__(self, stack, emulator) -> None:
        self.stack, self.emulator = stack, emulator
        stack.now = datetime.now(UTC)
        self.session = boto3.session.Session()  # loads the service models once
        self.target = self.setup()

    def setup(self) -> str:
        raise NotImplementedError

    def state(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def run(self, fault: Fault | None) -> Trial:
        stack = self.stack
        alarm_name = f"flt-{next(_serial)}"
        route = {"action": self.action, "target": self.target, "params": self.params()}
        playbook = {"alarms": {alarm_name: route}}
        injector = Injector(fault)
        # Fresh clients per trial: a fresh retry quota, as a fresh Lambda container has.
        clients = TracedClients(
            injector, session=self.session, endpoint_url=self.emulator.endpoint_url
        )
        trial = Trial(fault, self.action, self.initial)
        event = delivery(transition(alarm_name))
        # CloudWatch shows the alarm as the event says (as AWS does for a real alarm), set
        # through untraced clients: only the pipeline's own calls are traced and faulted.
        agree_alarms(stack.clients, event)
        try:
            pipeline = stack.pipeline(playbook, clients=clients, guards=OPEN_GUARDS, agree=False)
            results = pipeline.handle(event)
            trial.outcome = ",".join(str(r.outcome) for r in results)
        except (ClientError, BotoCoreError) as exc:  # an AWS error: the event fails, is retried
            trial.raised = f"{type(exc).__name__}: {exc}"
        trial.calls = [c.label for c in injector.calls]
        if fault is not None and fault.index < len(injector.calls):
            trial.call = injector.calls[fault.index].label
        trial.state = self.state()
        history = AuditLog(stack.clients("dynamodb"), stack.table).history(self.target)
        trial.records = [r for r in history if r.get("key") == alarm_name]
        trial.notices = stack.notices()
        if trial.changed:
            self.reset()
        return trial


class Rollback(Scenario):
    """A Lambda alias on version 3 of 3; the rollback moves it to 2."""

    action, initial = "rollback", "3"

    def setup(self) -> str:
        return rollback_target(self.stack.clients, "faulty")

    def state(self) -> str:
        return str(alias_version(self.stack.clients, self.target))

    def reset(self) -> None:
        name = self.target.split(":")[6]
        self.stack.clients("lambda").update_alias(
            FunctionName=name, Name="live", FunctionVersion="3"
        )


class FlipFlag(Scenario):
    """An SSM parameter flag ``true``; the alarm flips it to ``false``."""

    action, initial = "flip-flag", "true"
    NAME = "/orders/webhook-enabled"

    def setup(self) -> str:
        self.reset()
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{self.NAME}"

    def state(self) -> str:
        return self.stack.clients("ssm").get_parameter(Name=self.NAME)["Parameter"]["Value"]

    def reset(self) -> None:
        self.stack.clients("ssm").put_parameter(
            Name=self.NAME, Value="true", Type="String", Overwrite=True
        )


#: the record's intent, and its outcome, each written in a transaction (with the alarm
#: transition and the guards)
OPENS, CLOSES = "TransactWriteItems[Put audit", "TransactWriteItems[Update audit"


def check(trial: Trial) -> tuple[list[str], int, int]:
    """(problems, wrong actions, records lost) for one faulted trial."""
    fault, call = trial.fault, trial.call
    assert fault is not None
    problems: list[str] = []
    wrong = lost = 0
    (record,) = trial.records or [None]
    shown = f'"{trial.state}"'
    recorded_change = bool(
        record
        and record.get("action") == trial.action
        and shown in json.dumps(record.get("after_state"))
    )
    noticed_change = any(shown in n["message"].split("After:", 1)[-1] for n in trial.notices)
    if trial.changed and not (recorded_change or noticed_change):
        lost += 1
        problems.append("target changed but neither the record nor a notice says so")

    if fault.kind in RETRYABLE and not fault.persistent:
        if trial.outcome != "executed" or not recorded_change or len(trial.notices) != 1:
            problems.append("transient fault not absorbed by a retry")
    elif OPENS in call:
        # the intent (with the transition and the guards) not written: nothing is done;
        # the record alone says so, and the event fails (to the dead-letter queue)
        if trial.changed:
            wrong += 1
            problems.append("acted although the audit record could not be written")
        if trial.outcome != "failed" or not record or record["outcome"] != "failed":
            problems.append("intent not written: expected a failed record, nothing else")
        if not any("FAILED" in (n["subject"] or "") for n in trial.notices):
            problems.append("intent not written: expected a FAILED notice")
    elif call.startswith("ssm.GetParameter[switch]"):
        # The switch or its override unreadable: off, and a human hears why (not a quiet
        # skip that would leave automation off unnoticed).
        if trial.changed:
            wrong += 1
            problems.append("acted although the switch was unreadable")
        if trial.outcome != "escalated" or not record or record["outcome"] != "escalated":
            problems.append("switch unreadable: expected an escalated, audited delivery")
        if not any("needs a human" in (n["subject"] or "") for n in trial.notices):
            problems.append("switch unreadable: expected a notice")
    elif CLOSES in call:
        if not trial.raised or not record:
            problems.append("audit update failed: expected the event to fail, intent kept")
        if trial.changed and not noticed_change:
            problems.append("audit update failed: the notice must carry the change")
    elif call == "sns.Publish":
        if not trial.raised or not record or record["outcome"] == "pending":
            problems.append("notice failed: expected a complete record and a failed event")
    else:
        if trial.outcome != "failed" or not record or record["outcome"] != "failed":
            problems.append("expected outcome failed, audited")
        if not any("FAILED" in (n["subject"] or "") for n in trial.notices):
            problems.append("expected a FAILED notice")
    return problems, wrong, lost


PIPELINE_SERVICES = ("dynamodb.", "sns.", "ssm.GetParameter[switch]")


def run_matrix(scenario: Scenario, figures, kind: str, *, action_calls_only: bool) -> None:
    healthy = scenario.run(None)
    assert healthy.outcome == "executed", healthy
    assert healthy.changed
    # the pipeline's writes (intent, outcome), its confirmation and notice, and the action's
    assert any(OPENS in c for c in healthy.calls), healthy.calls
    assert any(CLOSES in c for c in healthy.calls), healthy.calls
    assert {"cloudwatch.DescribeAlarms", "sns.Publish"} <= set(healthy.calls), healthy.calls
    assert len(healthy.calls) >= 8, healthy.calls

    failures, wrong, lost, injected = [], 0, 0, 0
    for index, label in enumerate(healthy.calls):
        if action_calls_only and label.startswith(PIPELINE_SERVICES):
            continue
        faults = [Fault(index, kind, persistent=True)]
        if kind == TRANSIENT_TURNS[index % len(TRANSIENT_TURNS)]:
            faults.append(Fault(index, kind, persistent=False))
        for fault in faults:
            trial = scenario.run(fault)
            assert trial.call == label, "the call sequence changed under a fault"
            problems, w, lost_here = check(trial)
            injected += 1
            wrong += w
            lost += lost_here
            if problems:
                failures.append(f"{trial}: {'; '.join(problems)}")
    figures.add("faults_injected", injected)
    figures.add("faults_survived", injected - len(failures))
    figures.add("wrong_actions", wrong)
    figures.add("records_lost", lost)
    figures.note(f"fault_calls_{scenario.action}", ", ".join(healthy.calls))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kind", KINDS)
def test_each_call_faulted_in_turn(stack, emulator, figures, kind):
    """Every call of a rollback delivery, pipeline and action."""
    run_matrix(Rollback(stack, emulator), figures, kind, action_calls_only=False)


@pytest.mark.parametrize("kind", KINDS)
def test_each_flip_flag_call_faulted_in_turn(stack, emulator, figures, kind):
    """The flip-flag action's own calls (the pipeline's are the same as rollback's)."""
    run_matrix(FlipFlag(stack, emulator), figures, kind, action_calls_only=True)


def test_record_closing_failing_still_tells_a_human_what_changed(stack, emulator):
    """The outcome, the transition handled and the guards are one write: when it fails, the
    notice carries the change and the event fails; the intent written before acting stays."""
    scenario = Rollback(stack, emulator)
    healthy = scenario.run(None)
    (closing,) = [c for c in healthy.calls if CLOSES in c]
    assert "Update once" in closing  # the transition is marked handled in the same write
    trial = scenario.run(Fault(healthy.calls.index(closing), "5xx", persistent=True))
    assert trial.raised  # the event fails, so it is retried or reaches the dead-letter queue
    assert trial.changed
    (record,) = trial.records
    assert record["outcome"] == "pending"  # the intent written before acting survives
    (notice,) = trial.notices
    assert "audit record not completed" in notice["message"]
    assert '"version": "2"' in notice["message"]


def test_switch_parameter_gone_means_no_action(stack, emulator, figures):
    """A real fault, not an injected one: the switch parameter deleted."""
    scenario = Rollback(stack, emulator)
    stack.clients("ssm").delete_parameter(Name=stack.switch)
    trial = scenario.run(None)
    figures.add("faults_injected")
    survived = trial.outcome == "escalated" and not trial.changed and len(trial.records) == 1
    figures.add("faults_survived", int(survived))
    figures.add("wrong_actions", int(trial.changed))
    assert survived, trial
    assert "missing" in trial.records[0]["detail"]
    assert "needs a human" in trial.notices[0]["subject"]


def test_audit_table_gone_means_no_action(stack, emulator, figures):
    """A real fault: the audit table deleted. The event fails (for a retry or the DLQ)."""
    scenario = Rollback(stack, emulator)
    stack.clients("dynamodb").delete_table(TableName=stack.table)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        stack.pipeline(
            {"alarms": {"gone": {"action": "rollback", "target": scenario.target}}}
        ).handle(delivery(transition("gone")))
    changed = scenario.state() != scenario.initial
    figures.add("faults_injected")
    figures.add("faults_survived", int(not changed))
    figures.add("wrong_actions", int(changed))
    assert not changed
