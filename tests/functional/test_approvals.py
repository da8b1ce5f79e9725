"""Approval mode through the real pipeline on the emulator: ask, approve, reject, expire,
re-plan when the target moved, used once, switch off, bad decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediate.emulator import agree_alarm, create_function
from serverless_remediation.remediation.approvals import Approvals, Status
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.store import Table, guard_key

ALARM = "test-orders-error-rate"
APPROVER = "arn:aws:sts::123456789012:assumed-role/OnCall/alice"
PEOPLE = {
    "approvers": ["arn:aws:sts::123456789012:assumed-role/OnCall/*"],
    "approval_seconds": 900,
}


@pytest.fixture
def orders(stack):
    """orders:live on version 3 of 3; its error-rate alarm's rollback waits for approval."""
    alias_arn = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC).replace(microsecond=0)
    route = {"action": "rollback", "target": alias_arn, "mode": "approve"}
    return {"alarms": {ALARM: route}, "people": PEOPLE}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def live_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def decision(verb: str, approval_id: str, who: str = APPROVER, **extra) -> dict:
    return {verb: approval_id, "requested_by": who, "reason": "looked at it", "via": "cli", **extra}


def ask(stack, playbook, clock=None):
    pipeline = stack.pipeline(playbook, clock=clock)
    (asked,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    assert asked.outcome is Outcome.AWAITING_APPROVAL, asked.reason
    (pending,) = Approvals(stack.clients("dynamodb"), stack.table).pending(stack.now)
    return pipeline, asked, pending


def test_approve_mode_asks_then_approval_applies_and_verifies(stack, orders):
    pipeline, asked, pending = ask(stack, orders)
    assert live_version(stack) == "3"  # asking changes nothing
    assert pending.approval_id in asked.reason
    assert pending.before["version"] == "3"
    assert pending.after["version"] == "2"
    assert pending.origin_audit_id == asked.audit_id
    (notice,) = stack.notices()
    assert "approval needed" in notice["subject"]
    assert f"remediate approve {pending.approval_id} --env test" in notice["message"]
    assert f"remediate reject {pending.approval_id} --env test" in notice["message"]

    (done,) = pipeline.handle(decision("approve", pending.approval_id))
    assert done.outcome is Outcome.EXECUTED, done.reason
    assert live_version(stack) == "2"
    assert f"approved by {APPROVER} via cli" in done.reason
    record = next(r for r in stack.audit_items() if r["audit_id"] == done.audit_id)
    assert (record["source"], record["requested_by"]) == ("approval", APPROVER)
    assert record["reason"] == "looked at it (via cli)"
    assert record["key"] == pending.approval_id
    assert record["after_state"]["version"] == "2"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert (stored.status, stored.decided_by, stored.decided_via) == (
        Status.APPROVED,
        APPROVER,
        "cli",
    )


def test_an_approved_change_takes_the_targets_cooldown_like_any_alarm(stack, orders):
    """An approval is an alarm's change, decided by a person: it claims the cooldown and a
    breaker slot as the automatic change would, so the next alarm in the cooldown
    escalates instead of asking again."""
    pipeline, _, pending = ask(stack, orders)
    (done,) = pipeline.handle(decision("approve", pending.approval_id))
    assert done.outcome is Outcome.EXECUTED, done.reason
    guard = Table(stack.clients("dynamodb"), stack.table).get(guard_key(orders_target(orders)))
    assert guard is not None
    assert (guard["audit_id"], guard["executed"]) == (done.audit_id, True)
    assert guard["until"] > int(stack.now.timestamp())
    stack.now += timedelta(minutes=1)
    (again,) = stack.pipeline(orders).handle(stack.event("lambda_alarm_action.json"))
    assert again.outcome is Outcome.ESCALATED, again.reason
    assert "still alarming after rollback at" in again.reason
    assert done.audit_id in again.reason
    assert live_version(stack) == "2"


def orders_target(playbook: dict) -> str:
    return playbook["alarms"][ALARM]["target"]


def test_approval_is_used_once(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    first = pipeline.handle(decision("approve", pending.approval_id))[0]
    again = pipeline.handle(decision("approve", pending.approval_id))[0]
    assert first.outcome is Outcome.EXECUTED
    assert again.outcome is Outcome.REJECTED
    assert "used once" in again.reason
    assert live_version(stack) == "2"
    assert sorted(r["outcome"] for r in stack.audit_items()) == [
        "awaiting-approval",
        "executed",
        "rejected",
    ]


def test_reject_changes_nothing_and_is_recorded(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    stack.notices()
    (rejected,) = pipeline.handle(decision("reject", pending.approval_id))
    assert rejected.outcome is Outcome.SKIPPED
    assert f"rejected by {APPROVER}" in rejected.reason
    assert live_version(stack) == "3"
    (notice,) = stack.notices()
    assert "rejected rollback" in notice["subject"]
    (late,) = pipeline.handle(decision("approve", pending.approval_id))
    assert late.outcome is Outcome.REJECTED
    assert "already rejected" in late.reason
    assert live_version(stack) == "3"


def test_expired_approval_changes_nothing(stack, orders):
    clock = Clock(stack.now)
    pipeline, _, pending = ask(stack, orders, clock)
    clock.now = stack.now + timedelta(minutes=15, seconds=1)
    (late,) = pipeline.handle(decision("approve", pending.approval_id))
    assert late.outcome is Outcome.REJECTED
    assert "expired" in late.reason
    assert live_version(stack) == "3"
    record = next(r for r in stack.audit_items() if r["audit_id"] == late.audit_id)
    assert record["outcome"] == "rejected"
    assert record["source"] == "approval"


def test_target_changed_since_asked_asks_again(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    # Someone moved the alias by hand meanwhile: the approved plan no longer fits.
    stack.clients("lambda").update_alias(FunctionName="orders", Name="live", FunctionVersion="2")
    (again,) = pipeline.handle(decision("approve", pending.approval_id))
    assert again.outcome is Outcome.AWAITING_APPROVAL, again.reason
    assert "target changed" in again.reason
    assert live_version(stack) == "2"  # not rolled further without a new approval
    approvals = Approvals(stack.clients("dynamodb"), stack.table)
    (new,) = approvals.pending(stack.now)
    assert new.approval_id != pending.approval_id
    assert new.replaces == pending.approval_id
    assert new.before["version"] == "2"


def test_approval_while_switch_off_does_nothing(stack, orders):
    _, _, pending = ask(stack, orders)
    stack.set_switch("off")
    # a new container: the gate keeps the switch it read for a few seconds
    (held,) = stack.pipeline(orders).handle(decision("approve", pending.approval_id))
    assert held.outcome is Outcome.SKIPPED
    assert "off" in held.reason
    assert live_version(stack) == "3"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert stored.status is Status.APPROVED  # used: a later approval needs a new alarm


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (lambda a: decision("approve", a, who="arn:aws:iam::123456789012:user/mallory"), "may not"),
        (lambda a: decision("approve", "0" * 32), "unknown id"),
        (lambda a: decision("approve", a, action="rollback"), "plan comes from the stored"),
        (lambda a: decision("approve", a, target="x"), "plan comes from the stored"),
        (lambda a: {**decision("approve", a), "reject": a}, "either approve or reject"),
        (lambda a: decision("approve", a.upper()), "plan comes from the stored"),
    ],
)
def test_bad_decisions_are_refused_audited_and_change_nothing(stack, orders, payload, says):
    pipeline, _, pending = ask(stack, orders)
    (refused,) = pipeline.handle(payload(pending.approval_id))
    assert refused.outcome is Outcome.REJECTED
    assert says in refused.reason
    assert live_version(stack) == "3"
    record = next(r for r in stack.audit_items() if r["audit_id"] == refused.audit_id)
    assert record["outcome"] == "rejected"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert stored.status is Status.PENDING  # still open to the right person


def test_notify_mode_plans_and_tells_never_acts(stack, orders):
    orders["alarms"][ALARM]["mode"] = "notify"
    (result,) = stack.pipeline(orders).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.DRY_RUN
    assert "route mode notify" in result.reason
    assert live_version(stack) == "3"
    (notice,) = stack.notices()
    assert "rollback" in notice["subject"]


def test_approve_mode_during_cooldown_escalates_without_asking(stack, orders):
    orders["alarms"][ALARM]["mode"] = "auto"
    pipeline = stack.pipeline(orders)
    assert pipeline.handle(stack.event("sns_alarm_single_metric.json"))[0].outcome is (
        Outcome.EXECUTED
    )
    orders["alarms"][ALARM]["mode"] = "approve"
    stack.now += timedelta(minutes=1)
    (result,) = stack.pipeline(orders).handle(stack.event("lambda_alarm_action.json"))
    assert result.outcome is Outcome.ESCALATED
    assert "cooldown" in result.reason, result.reason
    assert Approvals(stack.clients("dynamodb"), stack.table).pending(stack.now) == []


def test_a_route_changed_by_a_redeploy_since_asked_is_refused(stack, orders):
    _, _, pending = ask(stack, orders)
    orders["alarms"][ALARM]["params"] = {"window_minutes": 30}  # the config moved on
    (refused,) = stack.pipeline(orders).handle(decision("approve", pending.approval_id))
    assert refused.outcome is Outcome.REJECTED
    assert "no longer configured" in refused.reason
    assert live_version(stack) == "3"


def test_an_approval_after_the_alarm_cleared_changes_nothing(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    assert pending.origin_alarm.endswith(f":alarm:{ALARM}")
    # The alarm went back to OK before anyone answered: the change is no longer needed.
    agree_alarm(stack.clients, pending.origin_alarm, "OK", stack.now + timedelta(minutes=2))
    (late,) = pipeline.handle(decision("approve", pending.approval_id))
    assert late.outcome is Outcome.SKIPPED, late.reason
    assert "no longer ALARM" in late.reason
    assert live_version(stack) == "3"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert stored.status is Status.APPROVED  # used: the next ALARM asks again


def test_a_replacing_approval_answers_the_same_alarm(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    stack.clients("lambda").update_alias(FunctionName="orders", Name="live", FunctionVersion="2")
    pipeline.handle(decision("approve", pending.approval_id))
    (new,) = Approvals(stack.clients("dynamodb"), stack.table).pending(stack.now)
    assert (new.origin_alarm, new.origin_key) == (pending.origin_alarm, pending.origin_key)


def test_an_unreadable_stored_approval_is_refused_with_a_record(stack, orders):
    pipeline, _, pending = ask(stack, orders)
    dynamodb = stack.clients("dynamodb")
    dynamodb.update_item(  # a damaged record: its deadline is no number
        TableName=stack.table,
        Key=approval_key_attrs(pending.approval_id),
        UpdateExpression="SET deadline = :d",
        ExpressionAttributeValues={":d": {"S": "soon"}},
    )
    (refused,) = pipeline.handle(decision("approve", pending.approval_id))
    assert refused.outcome is Outcome.REJECTED
    assert "cannot be read" in refused.reason
    assert live_version(stack) == "3"
    record = next(r for r in stack.audit_items() if r["audit_id"] == refused.audit_id)
    assert (record["outcome"], record["source"]) == ("rejected", "approval")


def approval_key_attrs(approval_id: str) -> dict:
    from serverless_remediation.remediation.store import approval_key, to_wire

    return to_wire(approval_key(approval_id))


def test_an_approval_on_a_silenced_target_applies_and_says_so(stack, orders):
    from tests.functional.test_silences import silence

    pipeline, _, pending = ask(stack, orders)
    silence(stack, pending.route.target)
    (done,) = pipeline.handle(decision("approve", pending.approval_id))
    assert done.outcome is Outcome.EXECUTED, done.reason
    assert "target silenced: " in done.reason
    assert "planned migration" in done.reason
