"""Silences and maintenance windows through the real pipeline on the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.errors import RejectedError
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.silences import Silences, build_silence, silence_item
from serverless_remediation.remediation.store import Table

ALARM = "test-orders-error-rate"
ONCALL = "arn:aws:sts::123456789012:assumed-role/OnCall/alice"


@pytest.fixture
def orders(stack):
    alias_arn = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC).replace(microsecond=0)
    return alias_arn, {"alarms": {ALARM: {"action": "rollback", "target": alias_arn}}}


def silences(stack) -> Silences:
    return Silences(stack.clients("dynamodb"), stack.table, timedelta(hours=24))


def silence(stack, target: str, length: timedelta = timedelta(hours=2)):
    made = build_silence(
        target,
        length=length,
        reason="planned migration",
        created_by=ONCALL,
        now=stack.now - timedelta(minutes=1),
        max_length=timedelta(hours=24),
    )
    silences(stack).add(made)
    return made


def live_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def test_alarm_during_silence_is_audited_noticed_and_changes_nothing(stack, orders):
    target, playbook = orders
    made = silence(stack, target)
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.SILENCED
    assert made.silence_id in result.reason
    assert "planned migration" in result.reason
    assert "would alias 3 -> 2" in result.reason
    assert live_version(stack) == "3"
    (record,) = stack.audit_items()
    assert record["outcome"] == "silenced"
    (notice,) = stack.notices()
    assert "silenced rollback" in notice["subject"]


def test_next_alarm_after_the_silence_expired_acts(stack, orders):
    target, playbook = orders
    silence(stack, target, timedelta(minutes=30))
    stack.now += timedelta(minutes=30)  # the item is still there: TTL is lazy
    assert len(list(silences(stack).all())) == 1
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live_version(stack) == "2"


def test_a_lifted_silence_holds_nothing(stack, orders):
    target, playbook = orders
    made = silence(stack, target)
    silences(stack).lift(made.silence_id, ONCALL, stack.now)
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.EXECUTED
    with pytest.raises(RejectedError, match="already ended"):
        silences(stack).lift(made.silence_id, ONCALL, stack.now)


def test_a_silence_on_another_target_holds_nothing(stack, orders):
    target, playbook = orders
    silence(stack, target + "-other")
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.EXECUTED


def test_a_silence_written_longer_than_the_maximum_ends_at_the_maximum(stack, orders):
    target, playbook = orders
    made = build_silence(
        target,
        length=timedelta(hours=1),
        reason="written by hand",
        created_by=ONCALL,
        now=stack.now - timedelta(hours=25),
        max_length=timedelta(hours=24),
    )
    item = silence_item(made)
    item["until"] = (stack.now + timedelta(days=30)).isoformat()  # past the maximum
    Table(stack.clients("dynamodb"), stack.table).put(item)
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.EXECUTED


def test_maintenance_window_holds_inside_and_not_outside(stack, orders):
    _target, playbook = orders
    now = stack.now
    inside = f"daily {now:%H}:00-{now.hour + 1:02d}:00" if now.hour < 23 else "daily 23:00-24:00"
    playbook["alarms"][ALARM]["maintenance"] = [inside]
    (held,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert held.outcome is Outcome.SILENCED
    assert "maintenance window" in held.reason
    assert live_version(stack) == "3"
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(now.weekday() + 1) % 7]
    playbook["alarms"][ALARM]["maintenance"] = [f"{weekday} 00:00-24:00"]
    stack.now += timedelta(seconds=30)
    (acted,) = stack.pipeline(playbook).handle(stack.event("lambda_alarm_action.json"))
    assert acted.outcome is Outcome.EXECUTED, acted.reason


def test_manual_request_is_not_held_but_says_the_target_is_silenced(stack, orders):
    target, playbook = orders
    silence(stack, target)
    request = {
        "action": "rollback",
        "target": target,
        "reason": "on purpose",
        "requested_by": ONCALL,
    }
    (result,) = stack.pipeline(playbook).handle(request)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert "target silenced" in result.reason
    assert live_version(stack) == "2"


def test_a_silence_added_while_another_is_lifted_stays_marked(stack, orders):
    """Two people at once: one lifts a silence while another silences the same target.
    The marker the remediators read is written on condition of the version read, so the
    lift reads again and the new silence still holds the target."""
    target, playbook = orders
    lifted = silence(stack, target, timedelta(hours=8))
    store = silences(stack)
    real_active, added = store.active, []

    def active(at, of=None):
        found = real_active(at, of)  # the lift's view of the silences left
        if not added:
            added.append(silence(stack, target))  # meanwhile, someone silences it again
        return found

    store.active = active
    store.lift(lifted.silence_id, ONCALL, stack.now)
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.SILENCED, result.reason
    assert added[0].silence_id in result.reason
    assert live_version(stack) == "3"


def test_a_silence_and_its_marker_are_written_together(stack, orders, emulator):
    """If the marker cannot be written, the silence is not stored either: a silence is
    never listed without holding the target."""
    from serverless_remediation.remediation.clients import Clients
    from tests.functional.actions.wire import Wire, denied

    target, _ = orders
    clients = Clients(endpoint_url=emulator.endpoint_url)
    Wire(clients("dynamodb")).queue("TransactWriteItems", denied())
    made = build_silence(
        target,
        length=timedelta(hours=1),
        reason="planned migration",
        created_by=ONCALL,
        now=stack.now,
        max_length=timedelta(hours=24),
    )
    with pytest.raises(Exception, match="AccessDenied"):
        Silences(clients("dynamodb"), stack.table, timedelta(hours=24)).add(made)
    assert silences(stack).active(stack.now) == []
