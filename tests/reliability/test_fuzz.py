"""Bad input, property-based: over 10,000 generated hostile events through intake and the
playbook (no AWS), and a sample through the whole pipeline against the moto server.

Properties: never an unhandled exception, never an action, always a clear error (a short,
printable reason); through the pipeline, every message also leaves a rejected audit record.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from serverless_remediation.remediation import intake
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import Outcome, RejectedError
from serverless_remediation.remediation.pipeline import Pipeline
from tests.conftest import Stack, load_event, sns_alarm
from tests.reliability.helpers import alias_version, rollback_target
from tests.reliability.strategies import (
    PLAYBOOK,
    any_event,
    budgets,
    direct_alarms,
    envelope,
    manual_requests,
    sns_alarms,
)

MAX_REASON = 1500
#: the sample events' state-change time (tests/events/*.json), plus half a minute
EVENT_TIME = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
FAST = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no slow "explain" on failure
    database=None,
    derandomize=True,  # the same cases on every run and in CI
    suppress_health_check=list(HealthCheck),
)
# Per strategy; the five together make more than 10,000 cases.
CASES = 2100
BATCH = 5


def offline_pipeline() -> Pipeline:
    """A pipeline whose clients are never called (intake and playbook need no AWS), its
    clock at the sample events' time: a fuzzed event is judged on what it holds, not
    refused early as stale."""
    clients = Clients(endpoint_url="http://127.0.0.1:9")
    return Pipeline(Stack(clients=clients).settings(PLAYBOOK), clients, clock=lambda: EVENT_TIME)


PIPELINE = offline_pipeline()


def clear(reason: object) -> bool:
    return isinstance(reason, str) and 10 <= len(reason) <= MAX_REASON and reason.isprintable()


def refusals(event) -> list[str]:
    """The reason each message in ``event`` is refused; fails if one would be acted on.

    Mirrors ``Pipeline.handle_message`` up to the first AWS call: split, parse, scope and
    freshness, resolve, the action's context (its target scope-checked).
    """
    try:
        messages = intake.split(event)
    except RejectedError as exc:
        return [exc.reason]
    reasons = []
    for message in messages:
        try:
            request = intake.parse(message)
            PIPELINE._check_scope(request)
            route, action_cls, _ = PIPELINE._resolve(request)
            PIPELINE._context(route, action_cls)
        except RejectedError as exc:
            reasons.append(exc.reason)
            continue
        raise AssertionError(f"bad input accepted: {request!r}"[:2000])
    return reasons


def check_offline(figures, events: list) -> None:
    for event in events:
        figures.add("fuzz_cases")
        try:
            reasons = refusals(event)
        except AssertionError:
            figures.add("wrong_actions")
            raise
        assert reasons
        for reason in reasons:
            assert clear(reason), f"unclear error: {reason[:300]!r} ({len(reason)} chars)"


def batches(strategy):
    """``BATCH`` events per hypothesis example: the engine's per-example cost is shared."""
    return st.lists(strategy, min_size=BATCH, max_size=BATCH)


@settings(FAST, max_examples=CASES // BATCH)
@given(events=batches(sns_alarms()))
def test_sns_alarms(figures, events):
    check_offline(figures, events)


@settings(FAST, max_examples=CASES // BATCH)
@given(events=batches(direct_alarms()))
def test_direct_alarm_payloads(figures, events):
    check_offline(figures, events)


@settings(FAST, max_examples=CASES // BATCH)
@given(events=batches(budgets()))
def test_budget_notices(figures, events):
    check_offline(figures, events)


@settings(FAST, max_examples=CASES // BATCH)
@given(events=batches(manual_requests()))
def test_manual_requests(figures, events):
    check_offline(figures, events)


@settings(FAST, max_examples=CASES // BATCH)
@given(events=batches(any_event))
def test_anything(figures, events):
    check_offline(figures, events)


PIPELINE_CASES = 150


@settings(FAST, max_examples=PIPELINE_CASES)
@given(event=any_event)
def test_through_the_pipeline(stack_with_target, figures, event):
    stack, _ = stack_with_target
    figures.add("fuzz_cases_pipeline")
    try:
        # Hostile events get no help: the emulated CloudWatch is not made to agree.
        results = stack.pipeline(PLAYBOOK, agree=False).handle(event)
    except Exception:
        figures.add("records_lost")  # an unhandled error: the delivery has no outcome
        raise
    audit = AuditLog(stack.clients("dynamodb"), stack.table)
    acted = sum(r.outcome is Outcome.EXECUTED for r in results)
    figures.add("wrong_actions", acted)
    missing = [r for r in results if (audit.get(r.audit_id) or {}).get("outcome") != "rejected"]
    figures.add("records_lost", len(missing))
    assert results
    assert not acted
    assert not missing
    assert all(r.outcome is Outcome.REJECTED and clear(r.reason) for r in results), results


@pytest.fixture
def stack_with_target(stack):
    """The playbook's alias exists and would roll back if anything got through."""
    stack.now = EVENT_TIME
    target = rollback_target(stack.clients, "orders")
    yield stack, target
    assert alias_version(stack.clients, target) == 3, "the fuzzed pipeline changed the target"


def _alarm_with(**fields) -> dict:
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    alarm.update(fields)
    return alarm


# What fuzzing found in the core; each crashed the delivery (no record, no clear error).
FOUND = {
    "unhashable state": {
        **load_event("lambda_alarm_action.json"),
        "alarmData": {
            "alarmName": "x",
            "state": {"value": [], "timestamp": "2026-11-23T10:29:36.557+0000"},
        },
    },
    "lone surrogate in an alarm name": sns_alarm(_alarm_with(AlarmName="evil\ud800")),
    "lone surrogate in a manual reason": {
        "action": "rollback",
        "target": "x",
        "reason": "why\udfff",
        "requested_by": "eve",
    },
    "lone surrogate in a budget notice": envelope(
        "Budget Name: x\ud800\n", "AWS Budgets: x\ud800 has exceeded your alert threshold"
    ),
    "unknown parameter with a 300,000-character name": {
        "action": "rollback",
        "target": PLAYBOOK["alarms"]["test-orders-error-rate"]["target"],
        "params": {"p" * 300_000: 1},
        "reason": "why not",
        "requested_by": "eve",
    },
    "alarm JSON nested 5,000 deep": envelope("[" * 5000, "ALARM"),
}


@pytest.mark.parametrize("event", FOUND.values(), ids=FOUND.keys())
def test_found_by_fuzzing_is_rejected_and_audited(stack_with_target, event):
    stack, _ = stack_with_target
    (result,) = stack.pipeline(PLAYBOOK, agree=False).handle(event)
    assert result.outcome is Outcome.REJECTED
    assert clear(result.reason), result.reason
    record = AuditLog(stack.clients("dynamodb"), stack.table).get(result.audit_id)
    assert record["outcome"] == "rejected"
    assert "rejected" in stack.notices()[0]["subject"]
