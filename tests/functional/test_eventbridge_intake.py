"""EventBridge alarm events through the real pipeline against the moto server: the same
action as the SNS message, one action when both deliver the same transition, and nothing
(but an audit record and a notice) for an event from elsewhere, disagreeing or composite."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediate.replay import retime
from serverless_remediation.remediation.models import Outcome
from tests.conftest import load_event

ALARM = "test-orders-error-rate"
OTHER_ACCOUNT = "111122223333"


@pytest.fixture
def orders(stack):
    """orders:live on version 3 of 3, published just now; the playbook routes ALARM to it."""
    alias_arn = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC)
    playbook = {"alarms": {ALARM: {"action": "rollback", "target": alias_arn}}}
    return alias_arn, playbook


def alias_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def test_an_eventbridge_alarm_rolls_back_audits_and_notifies(stack, orders):
    _, playbook = orders
    results = stack.pipeline(playbook).handle(stack.event("eventbridge_alarm_single_metric.json"))

    assert [r.outcome for r in results] == [Outcome.EXECUTED]
    assert alias_version(stack) == "2"
    (record,) = stack.audit_items()
    assert record["outcome"] == "executed"
    assert record["source"] == "alarm"
    assert record["requested_by"].endswith(f":alarm:{ALARM}")
    assert record["idempotency_key"].endswith("|ALARM")
    (notice,) = stack.notices()
    assert "did rollback" in notice["subject"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("sns_alarm_single_metric.json", "eventbridge_alarm_single_metric.json"),
        ("eventbridge_alarm_single_metric.json", "sns_alarm_single_metric.json"),
        ("eventbridge_alarm_single_metric.json", "eventbridge_alarm_single_metric.json"),
    ],
)
def test_one_transition_by_sns_and_by_eventbridge_acts_once(stack, orders, first, second):
    _, playbook = orders
    pipeline = stack.pipeline(playbook)
    done = pipeline.handle(stack.event(first))[0]
    again = pipeline.handle(stack.event(second))[0]

    assert done.outcome is Outcome.EXECUTED
    assert again.outcome is Outcome.SKIPPED
    assert "duplicate" in again.reason
    assert alias_version(stack) == "2"
    assert sorted(r["outcome"] for r in stack.audit_items()) == ["executed", "skipped"]
    keys = {r["idempotency_key"] for r in stack.audit_items()}
    assert len(keys) == 1


def test_an_ok_transition_by_eventbridge_changes_nothing(stack, orders):
    _, playbook = orders
    event = retime(load_event("eventbridge_alarm_ok_transition.json"), stack.now)
    (result,) = stack.pipeline(playbook).handle(event)
    assert result.outcome is Outcome.SKIPPED
    assert alias_version(stack) == "3"


def forged(stack, change) -> dict:
    event = stack.event("eventbridge_alarm_single_metric.json")
    change(event)
    return event


def other_account(event: dict) -> None:
    event["account"] = OTHER_ACCOUNT
    event["resources"] = [event["resources"][0].replace("123456789012", OTHER_ACCOUNT)]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (other_account, f"account {OTHER_ACCOUNT}, not 123456789012"),
        (
            lambda e: e.update({"account": OTHER_ACCOUNT}),
            "EventBridge account id .* disagrees with its ARN",
        ),
        (
            lambda e: e.update({"region": "us-west-2"}),
            "EventBridge region 'us-west-2' disagrees with its ARN",
        ),
        (
            lambda e: e["detail"]["configuration"].update({"alarmRule": f'ALARM("{ALARM}")'}),
            "composite alarm",
        ),
        (
            lambda e: e.update({"detail-type": "CloudWatch Alarm Configuration Change"}),
            "only 'CloudWatch Alarm State Change' is acted on",
        ),
    ],
)
def test_an_event_from_elsewhere_disagreeing_or_composite_changes_nothing(
    stack, orders, change, why
):
    _, playbook = orders
    # The emulated CloudWatch agrees with everything it can read: only intake and scope stop it.
    (result,) = stack.pipeline(playbook).handle(forged(stack, change))

    assert result.outcome is Outcome.REJECTED
    assert re.search(why, result.reason), result.reason
    assert alias_version(stack) == "3"
    (record,) = stack.audit_items()
    assert record["outcome"] == "rejected"
    assert ALARM in record["raw"]  # what arrived is kept for a human
    (notice,) = stack.notices()
    assert "rejected" in notice["subject"].lower()


def test_a_stale_eventbridge_alarm_is_refused(stack, orders):
    _, playbook = orders
    event = retime(
        load_event("eventbridge_alarm_single_metric.json"), stack.now - timedelta(hours=2)
    )
    (result,) = stack.pipeline(playbook).handle(event)
    assert result.outcome is Outcome.REJECTED
    assert "older than" in result.reason
    assert alias_version(stack) == "3"
