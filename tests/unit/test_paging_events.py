"""Pages: which outcomes put an outcome event on the bus, with which action and dedup key;
``PutEvents`` requests checked against the EventBridge API model (Stubber)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from serverless_remediation.remediation.audit import Entry
from serverless_remediation.remediation.models import Outcome, Result, Source
from serverless_remediation.remediation.notify import (
    OUTCOME_DETAIL_TYPE,
    OUTCOME_SOURCE,
    Notifier,
    OutcomeEvents,
    approval_page,
    build_outcome_event,
    incident_id,
)
from serverless_remediation.remediation.recorder import Recorder

ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
BREAKER = (
    "circuit breaker open: 3 automatic actions on this target in the last 60 min (limit 3); "
    "a human must decide"
)


def res(outcome: Outcome, reason: str = "why", resolves: bool = False) -> Result:
    return Result(
        "a1", outcome, reason, "rollback", ALIAS, {"v": "3"}, {"v": "2"}, resolves=resolves
    )


def event(
    outcome: Outcome,
    *,
    source: str = "alarm",
    state: str = "ALARM",
    reason: str = "why",
    resolves: bool | None = None,
):
    confirmed = state == "OK" if resolves is None else resolves  # the pipeline's confirmation
    return build_outcome_event(
        "prod", res(outcome, reason, confirmed), key="orders-errors", source=source, state=state
    )


@pytest.mark.parametrize("outcome", [Outcome.ESCALATED, Outcome.FAILED])
@pytest.mark.parametrize("source", ["alarm", "budget", "schedule"])
def test_escalated_and_failed_automatic_outcomes_trigger(outcome, source):
    detail = event(outcome, source=source)
    assert detail is not None
    assert detail["eventAction"] == "trigger"
    assert detail["dedupKey"] == incident_id("prod", "orders-errors", ALIAS)
    assert detail["severity"] == ("critical" if outcome is Outcome.FAILED else "error")
    assert detail["breaker"] is False


@pytest.mark.parametrize(
    "outcome", [Outcome.EXECUTED, Outcome.DRY_RUN, Outcome.SKIPPED, Outcome.REJECTED]
)
def test_other_alarm_outcomes_do_not_page(outcome):
    assert event(outcome) is None


@pytest.mark.parametrize("outcome", [Outcome.ESCALATED, Outcome.FAILED])
def test_a_manual_request_answers_its_caller_and_does_not_page(outcome):
    assert event(outcome, source="manual") is None


def test_a_plan_waiting_for_approval_pages_at_warning_on_its_own_key():
    """It expires unanswered otherwise: the person who may approve is paged. Not under the
    incident's key: a later failure there would be folded into this warning alert."""
    detail = event(Outcome.AWAITING_APPROVAL)
    assert detail is not None
    assert (detail["eventAction"], detail["severity"]) == ("trigger", "warning")
    assert detail["dedupKey"] == approval_page("prod", ALIAS)
    assert detail["dedupKey"] != incident_id("prod", "orders-errors", ALIAS)
    # a re-plan asked by a decision (the target changed) pages the same way
    assert event(Outcome.AWAITING_APPROVAL, source="approval")["dedupKey"] == detail["dedupKey"]


@pytest.mark.parametrize("outcome", [Outcome.EXECUTED, Outcome.SKIPPED])
def test_an_answered_approval_resolves_its_page(outcome):
    detail = event(outcome, source="approval")
    assert detail is not None
    assert (detail["eventAction"], detail["dedupKey"]) == ("resolve", approval_page("prod", ALIAS))


def test_a_refused_answer_leaves_the_approval_page_open_and_a_failure_pages_the_incident():
    assert event(Outcome.REJECTED, source="approval") is None  # unknown, expired, not allowed
    failed = event(Outcome.FAILED, source="approval")
    assert failed is not None
    assert (failed["eventAction"], failed["severity"]) == ("trigger", "critical")
    assert failed["dedupKey"] == incident_id("prod", "orders-errors", ALIAS)


def test_a_breaker_opening_pages_critical_and_says_so():
    detail = event(Outcome.ESCALATED, reason=BREAKER)
    assert detail is not None
    assert detail["breaker"] is True
    assert detail["severity"] == "critical"


@pytest.mark.parametrize("outcome", [Outcome.SKIPPED, Outcome.EXECUTED])
def test_the_alarm_back_to_ok_resolves_the_same_incident(outcome):
    trigger = event(Outcome.ESCALATED)
    resolve = event(outcome, state="OK")
    assert trigger is not None
    assert resolve is not None
    assert resolve["eventAction"] == "resolve"
    assert resolve["dedupKey"] == trigger["dedupKey"]


@pytest.mark.parametrize("outcome", [Outcome.SKIPPED, Outcome.EXECUTED, Outcome.REJECTED])
def test_an_ok_cloudwatch_did_not_confirm_resolves_nothing(outcome):
    assert event(outcome, state="OK", resolves=False) is None


def test_a_refused_ok_resolves_nothing_even_if_marked():
    assert event(Outcome.REJECTED, state="OK", resolves=True) is None


def test_a_failed_recovery_on_ok_triggers_rather_than_resolves():
    detail = event(Outcome.FAILED, state="OK")
    assert detail is not None
    assert detail["eventAction"] == "trigger"


def test_the_summary_is_bounded_and_one_line():
    detail = event(Outcome.FAILED, reason="x\n" * 5000)
    assert detail is not None
    assert len(detail["summary"]) <= 1024
    assert "\n" not in detail["summary"]


def entry(state: str = "ALARM", source: Source = Source.ALARM) -> Entry:
    return Entry(
        audit_id="a1",
        correlation_id="c",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=source,
        key="orders-errors",
        state=state,
        requested_by="cloudwatch",
        reason="spike",
        target=ALIAS,
        action="rollback",
    )


def recorder(events, *, sns_fails: bool = False) -> Recorder:
    sns = boto3.client("sns", region_name="eu-west-1")
    sns_stub = Stubber(sns)
    if sns_fails:
        sns_stub.add_client_error("publish", "KMSAccessDeniedException")
    else:
        sns_stub.add_response("publish", {"MessageId": "m"})
    sns_stub.activate()
    return Recorder(
        None,  # type: ignore[arg-type]
        Notifier(sns, "arn:aws:sns:eu-west-1:123456789012:n"),
        env="prod",
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        outcomes=OutcomeEvents(events),
    )


def test_the_recorder_puts_one_outcome_event_on_the_default_bus():
    events = boto3.client("events", region_name="eu-west-1")
    sent: list[dict] = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: sent.append(params)
    )
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]})
        recorder(events).announce(res(Outcome.ESCALATED, BREAKER), entry())
        stub.assert_no_pending_responses()
    ((one,),) = [call["Entries"] for call in sent]
    assert one["Source"] == OUTCOME_SOURCE
    assert one["DetailType"] == OUTCOME_DETAIL_TYPE
    assert "EventBusName" not in one  # the default bus
    detail = json.loads(one["Detail"])
    assert detail["eventAction"] == "trigger"
    assert detail["breaker"] is True


def test_a_notice_that_cannot_be_sent_still_pages_then_fails_the_delivery():
    events = boto3.client("events", region_name="eu-west-1")
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]})
        with pytest.raises(ClientError, match="KMSAccessDenied"):
            recorder(events, sns_fails=True).announce(res(Outcome.FAILED), entry())
        stub.assert_no_pending_responses()  # the page went out


def test_a_page_that_cannot_be_sent_does_not_fail_the_delivery(caplog):
    events = boto3.client("events", region_name="eu-west-1")
    with Stubber(events) as stub:
        stub.add_client_error("put_events", "AccessDeniedException")
        recorder(events).announce(res(Outcome.FAILED), entry())
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
        )
        recorder(events).announce(res(Outcome.FAILED), entry())
        stub.assert_no_pending_responses()


def test_nothing_is_put_when_nothing_pages():
    events = boto3.client("events", region_name="eu-west-1")
    with Stubber(events) as stub:  # nothing queued: any call would raise
        recorder(events).announce(res(Outcome.EXECUTED), entry())
        stub.assert_no_pending_responses()
