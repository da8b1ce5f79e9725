"""The handler path end to end against the moto server, with the rollback action."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.models import Outcome
from tests.conftest import load_event, sns_alarm

ALARM = "test-orders-error-rate"


@pytest.fixture
def orders(stack):
    """orders:live on version 3 of 3, published just now; the playbook routes ALARM to it."""
    alias_arn = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC)
    playbook = {"alarms": {ALARM: {"action": "rollback", "target": alias_arn}}}
    return alias_arn, playbook


def alias_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def test_alarm_rolls_alias_back_audits_and_notifies(stack, orders):
    _, playbook = orders
    results = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))

    assert [r.outcome for r in results] == [Outcome.EXECUTED]
    assert alias_version(stack) == "2"
    (record,) = stack.audit_items()
    assert record["outcome"] == "executed"
    assert record["before_state"]["version"] == "3"
    assert record["after_state"]["version"] == "2"
    assert record["source"] == "alarm"
    assert record["requested_by"].endswith(f":alarm:{ALARM}")
    (notice,) = stack.notices()
    assert "did rollback" in notice["subject"]
    assert results[0].audit_id in notice["message"]


def test_metric_math_and_direct_payloads_act_like_single_metric(stack, orders):
    _, playbook = orders
    playbook["alarms"]["test-orders-error-rate-pct"] = playbook["alarms"][ALARM]
    pipeline = stack.pipeline(playbook)
    first = pipeline.handle(stack.event("sns_alarm_metric_math.json"))
    assert first[0].outcome is Outcome.EXECUTED
    # The direct payload is another transition on the same target: cooldown holds it, and
    # an alarm still firing after the rollback needs a human.
    second = pipeline.handle(stack.event("lambda_alarm_action.json"))
    assert second[0].outcome is Outcome.ESCALATED
    assert "still alarming after rollback at" in second[0].reason
    assert first[0].audit_id in second[0].reason
    assert alias_version(stack) == "2"


def test_same_transition_twice_acts_once(stack, orders):
    _, playbook = orders
    pipeline = stack.pipeline(playbook)
    event = stack.event("sns_alarm_single_metric.json")
    first, second = pipeline.handle(event)[0], pipeline.handle(event)[0]

    assert first.outcome is Outcome.EXECUTED
    assert second.outcome is Outcome.SKIPPED
    assert "duplicate" in second.reason
    assert alias_version(stack) == "2"
    outcomes = sorted(r["outcome"] for r in stack.audit_items())
    assert outcomes == ["executed", "skipped"]


def test_same_transition_concurrently_acts_once(stack, orders):
    _, playbook = orders
    event = stack.event("sns_alarm_single_metric.json")
    pipelines = [stack.pipeline(playbook) for _ in range(4)]
    barrier = threading.Barrier(len(pipelines))
    results = []

    def deliver(pipeline):
        barrier.wait()
        results.extend(pipeline.handle(event))

    threads = [threading.Thread(target=deliver, args=(p,)) for p in pipelines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    outcomes = sorted(str(r.outcome) for r in results)
    assert outcomes == ["executed", "skipped", "skipped", "skipped"]
    assert alias_version(stack) == "2"
    assert len(stack.audit_items()) == 4


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_recovery_transitions_never_roll_back(stack, orders, state):
    _, playbook = orders
    alarm = stack.alarm_message()
    alarm["NewStateValue"], alarm["OldStateValue"] = state, "ALARM"
    (result,) = stack.pipeline(playbook).handle(sns_alarm(alarm))
    assert result.outcome is Outcome.SKIPPED
    assert alias_version(stack) == "3"
    assert stack.audit_items()[0]["outcome"] == "skipped"


def test_dry_run_switch_plans_and_changes_nothing(stack, orders):
    _, playbook = orders
    stack.set_switch("dry-run")
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.DRY_RUN
    assert result.after == {"version": "2", "weights": {}}
    assert alias_version(stack) == "3"
    assert "(dry-run) rollback" in stack.notices()[0]["subject"]


def test_old_deploy_escalates_and_changes_nothing(stack, orders):
    _, playbook = orders
    stack.now = datetime(2030, 1, 1, tzinfo=UTC)
    (result,) = stack.pipeline(playbook).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.ESCALATED
    assert "outside the 60 min window" in result.reason
    assert alias_version(stack) == "3"


def test_manual_dry_run_request(stack, orders):
    _, playbook = orders
    request = load_event("manual_request.json")
    (result,) = stack.pipeline(playbook).handle(request)
    assert result.outcome is Outcome.DRY_RUN
    assert alias_version(stack) == "3"
    (record,) = stack.audit_items()
    assert record["requested_by"] == "alice@example.com"
    assert record["source"] == "manual"
    assert json.dumps(record["params"]) == json.dumps({"window_minutes": 30})
