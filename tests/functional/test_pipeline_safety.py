"""Issue 11 through the whole pipeline against the moto server: a trigger is confirmed at its
source and fresh; a failed action gives its guards back; a temporary change is never left
behind unnoticed; the idempotency record expires."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, agree_alarm, create_function
from serverless_remediation.remediate.replay import retime
from serverless_remediation.remediation.audit import AuditLog, Entry
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.errors import SkippedError
from serverless_remediation.remediation.models import Outcome
from tests.conftest import sns_alarm
from tests.functional.actions.wire import Wire, denied

ALARM = "test-orders-error-rate"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM}"


@pytest.fixture
def orders(stack):
    """orders:live on version 3 of 3, published just now; ALARM routes to a rollback."""
    alias_arn = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC)
    return {"alarms": {ALARM: {"action": "rollback", "target": alias_arn}}}


def live_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def assert_refused(stack, result, why: str) -> None:
    """Rejected, recorded, a human told, and the alias untouched."""
    assert result.outcome is Outcome.REJECTED, result.reason
    assert why in result.reason
    assert live_version(stack) == "3"
    assert [r["outcome"] for r in stack.audit_items()] == ["rejected"]
    (notice,) = stack.notices()
    assert "rejected" in notice["subject"]


# -- confirm the trigger at its source ---------------------------------------------------


def test_forged_publish_for_an_alarm_cloudwatch_does_not_have_is_refused(stack, orders):
    pipeline = stack.pipeline(orders, agree=False)
    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    assert_refused(stack, result, "does not exist in this account and region")


def test_alarm_no_longer_in_alarm_is_refused(stack, orders):
    agree_alarm(stack.clients, ALARM_ARN, "OK", stack.now)
    (result,) = stack.pipeline(orders, agree=False).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert_refused(stack, result, "is OK now, not ALARM")


def test_forged_state_time_is_refused(stack, orders):
    """The alarm is in ALARM, but has been since long before the transition claimed."""
    agree_alarm(stack.clients, ALARM_ARN, "ALARM", stack.now - timedelta(hours=3))
    (result,) = stack.pipeline(orders, agree=False).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert_refused(stack, result, "the event is not CloudWatch's")


def test_forged_direct_invoke_is_refused(stack, orders):
    """A Lambda-invoke payload shaped like CloudWatch's, for a real alarm that is OK."""
    agree_alarm(stack.clients, ALARM_ARN, "OK", stack.now)
    payload = stack.event("lambda_alarm_action.json")
    payload["alarmArn"] = ALARM_ARN
    payload["alarmData"]["alarmName"] = ALARM
    (result,) = stack.pipeline(orders, agree=False).handle(payload)
    assert_refused(stack, result, "is OK now, not ALARM")


def test_stale_transition_is_refused(stack, orders):
    event = stack.event("sns_alarm_single_metric.json")
    stack.now += timedelta(minutes=16)
    (result,) = stack.pipeline(orders).handle(event)
    assert_refused(stack, result, "older than the 15 min")


def test_redelivery_after_the_idempotency_record_expired_does_not_act_again(stack, orders):
    pipeline = stack.pipeline(orders)
    event = stack.event("sns_alarm_single_metric.json")
    (first,) = pipeline.handle(event)
    assert first.outcome is Outcome.EXECUTED, first.reason
    stack.clients("lambda").update_alias(FunctionName="orders", Name="live", FunctionVersion="3")
    stack.notices()
    stack.now += timedelta(hours=25)  # the idempotency record's lifetime is 24 h:
    db = stack.clients("dynamodb")  # DynamoDB's TTL has removed it by now
    for item in db.scan(TableName=stack.table)["Items"]:
        if item["pk"]["S"].startswith("idempotency#"):
            db.delete_item(TableName=stack.table, Key={"pk": item["pk"], "sk": item["sk"]})

    (again,) = pipeline.handle(event)

    assert again.outcome is Outcome.REJECTED
    assert "older than the 15 min" in again.reason
    assert live_version(stack) == "3"


def test_transition_record_carries_the_tables_ttl_attribute(stack, orders):
    (result,) = stack.pipeline(orders).handle(stack.event("sns_alarm_single_metric.json"))
    assert result.outcome is Outcome.EXECUTED
    items = stack.clients("dynamodb").scan(TableName=stack.table)["Items"]
    (record,) = [i for i in items if i["pk"]["S"].startswith("once#")]
    assert record["status"]["S"] == "done"
    assert record["outcome"]["S"] == "executed"
    assert record["audit_id"]["S"] == result.audit_id
    assert "running_until" not in record  # handled: no longer held by a running delivery
    expires = int(record["expires_at"]["N"])
    assert 23 * 3600 < expires - datetime.now(UTC).timestamp() <= 24 * 3600 + 60


# -- a failed action gives its guards back ------------------------------------------------


def test_a_failed_action_releases_its_cooldown_so_a_redrive_acts(stack, orders, emulator):
    clients = Clients(endpoint_url=emulator.endpoint_url)
    Wire(clients("lambda")).queue("UpdateAlias", denied())
    event = stack.event("sns_alarm_single_metric.json")

    (failed,) = stack.pipeline(orders, clients=clients).handle(event)
    assert failed.outcome is Outcome.FAILED
    assert live_version(stack) == "3"

    # The same event again, from the dead-letter queue: no cooldown, no duplicate.
    (redriven,) = stack.pipeline(orders, clients=clients).handle(event)
    assert redriven.outcome is Outcome.EXECUTED, redriven.reason
    assert live_version(stack) == "2"


def test_a_refire_in_the_cooldown_escalates_without_reading_the_target(stack, orders, emulator):
    """The guards are claimed with the record: a refused claim escalates before the plan,
    so a storm of refires costs the target's control plane nothing."""
    (acted,) = stack.pipeline(orders).handle(stack.event("sns_alarm_single_metric.json"))
    assert acted.outcome is Outcome.EXECUTED, acted.reason
    clients = Clients(endpoint_url=emulator.endpoint_url)
    read: list[str] = []
    clients("lambda").meta.events.register(
        "provide-client-params.lambda", lambda model, **_: read.append(model.name)
    )
    stack.now += timedelta(minutes=1)
    (refire,) = stack.pipeline(orders, clients=clients).handle(
        stack.event("lambda_alarm_action.json")
    )
    assert refire.outcome is Outcome.ESCALATED, refire.reason
    assert "still alarming after rollback at" in refire.reason
    assert read == []
    assert live_version(stack) == "2"


def test_an_alarm_on_a_target_another_delivery_holds_escalates_as_in_flight(stack, orders):
    """The guards are claimed with the record: a second alarm on the same target while the
    first delivery runs escalates, naming that delivery as not finished (not "still
    alarming after" a change nobody made); once the first gives the target back (it did
    not act), the next alarm acts."""
    target = orders["alarms"][ALARM]["target"]
    other = "test-orders-latency"
    orders["alarms"][other] = {"action": "rollback", "target": target}

    def other_alarm(n: int) -> dict:
        arn = f"{ALARM_ARN.rsplit(':', 1)[0]}:{other}"
        message = stack.alarm_message(AlarmName=other, AlarmArn=arn)
        return sns_alarm(message, message_id=f"7a6c0f7e-0000-4000-8000-00000000000{n}")

    second = other_alarm(2)
    first, seen = stack.pipeline(orders), {}

    def in_flight(run):  # between the first delivery's record and its change
        (seen["second"],) = stack.pipeline(orders).handle(second)
        raise SkippedError("CloudWatch no longer shows ALARM")

    first._confirm = in_flight
    (skipped,) = first.handle(stack.event("sns_alarm_single_metric.json"))
    assert skipped.outcome is Outcome.SKIPPED
    held = seen["second"]
    assert held.outcome is Outcome.ESCALATED, held.reason
    assert f"rollback (audit {skipped.audit_id}) took this target" in held.reason
    assert "has not finished" in held.reason
    assert live_version(stack) == "3"
    stack.now += timedelta(minutes=1)  # the alarm's next transition
    (acted,) = stack.pipeline(orders).handle(other_alarm(3))
    assert acted.outcome is Outcome.EXECUTED, acted.reason
    assert live_version(stack) == "2"


def test_an_outcome_not_written_gives_the_transition_back_so_the_retry_escalates(
    stack, orders, emulator
):
    """The outcome's transaction fails after the change: the notice says what changed and
    the event fails; the transition is given back first, so Lambda's retry is not taken
    for a duplicate of a running delivery (and lost): it escalates, held by the cooldown
    the change took."""
    clients = Clients(endpoint_url=emulator.endpoint_url)
    Wire(clients("dynamodb")).queue("TransactWriteItems", None, denied())  # the outcome's
    event = stack.event("sns_alarm_single_metric.json")
    with pytest.raises(Exception, match="AccessDenied"):
        stack.pipeline(orders, clients=clients).handle(event)
    assert live_version(stack) == "2"
    (pending,) = stack.audit_items()
    assert pending["outcome"] == "pending"
    (notice,) = stack.notices()
    assert "audit record not completed" in notice["message"]

    (retried,) = stack.pipeline(orders).handle(event)
    assert retried.outcome is Outcome.ESCALATED, retried.reason
    assert pending["audit_id"] in retried.reason
    assert live_version(stack) == "2"


# -- a temporary change is never left behind unnoticed ------------------------------------

FLAG = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/webhook"
FLAG_BOOK = {"alarms": {ALARM: {"action": "flip-flag", "target": FLAG}}}


@pytest.fixture
def flipped(stack):
    """The webhook flag flipped off by an executed ALARM."""
    stack.clients("ssm").put_parameter(Name="/app/webhook", Value="true", Type="String")
    (result,) = stack.pipeline(FLAG_BOOK).handle(transition(stack, "ALARM"))
    assert result.outcome is Outcome.EXECUTED, result.reason
    stack.notices()
    return result


def transition(stack, state: str) -> dict:
    return sns_alarm(stack.alarm_message(NewStateValue=state))


def flag(stack) -> str:
    return stack.clients("ssm").get_parameter(Name="/app/webhook")["Parameter"]["Value"]


@pytest.mark.parametrize("switch", ["off", "dry-run", "On "])
def test_ok_restores_a_flipped_flag_whatever_the_switch_says(stack, flipped, switch):
    stack.set_switch(switch)
    stack.now += timedelta(minutes=5)
    (result,) = stack.pipeline(FLAG_BOOK).handle(transition(stack, "OK"))
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert "a restore proceeds although" in result.reason
    assert flag(stack) == "true"
    assert "did flip-flag" in stack.notices()[0]["subject"]


def test_alarm_refiring_in_the_cooldown_escalates_naming_the_action(stack, flipped):
    stack.clients("ssm").put_parameter(Name="/app/webhook", Value="true", Overwrite=True)
    stack.now += timedelta(minutes=2)
    (result,) = stack.pipeline(FLAG_BOOK).handle(transition(stack, "ALARM"))
    assert result.outcome is Outcome.ESCALATED
    assert "still alarming after flip-flag at" in result.reason
    assert flipped.audit_id in result.reason
    assert "needs a human" in stack.notices()[0]["message"]


def test_ok_restore_finds_the_flip_behind_many_later_records(stack, flipped):
    """No first-page-only lookup: 120 later records for the same target come first."""
    audit = AuditLog(stack.clients("dynamodb"), stack.table)
    for minute in range(120):
        audit.open(
            Entry(
                audit_id=f"{minute:032x}",
                correlation_id="c",
                created_at=stack.now + timedelta(seconds=minute + 1),
                source="alarm",
                key=ALARM,
                state="ALARM",
                requested_by=ALARM_ARN,
                reason="noise",
                action="flip-flag",
                target=FLAG,
            ),
            Outcome.SKIPPED,
        )
    stack.now += timedelta(minutes=5)
    (result,) = stack.pipeline(FLAG_BOOK).handle(transition(stack, "OK"))
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert flipped.audit_id in result.reason
    assert flag(stack) == "true"


def test_a_captured_event_replays_at_another_time(stack, orders):
    """``retime`` moves an old capture's state time, and so its idempotency key."""
    captured = stack.event("sns_alarm_single_metric.json")
    later = stack.now + timedelta(hours=2)
    moved = retime(captured, later)
    message = json.loads(moved["Records"][0]["Sns"]["Message"])
    assert message["StateChangeTime"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))
    stack.now = later
    (result,) = stack.pipeline(orders).handle(moved)
    assert result.outcome is Outcome.ESCALATED  # v3 went live two hours "ago": no blame
    assert "outside the 60 min window" in result.reason


# -- a manual request is measured against the route it names -------------------------------


def test_a_manual_request_can_name_any_kind_the_configuration_allows(stack):
    """A function configured for memory (latency) and reserved concurrency (throttles): a
    manual request naming either kind is measured against that route; another is refused."""
    function = create_function(stack.clients, "worker", versions=1, alias=None)
    stack.clients("lambda").put_function_concurrency(
        FunctionName="worker", ReservedConcurrentExecutions=10
    )
    route = {"action": "capacity-bump", "target": function}
    playbook = {
        "alarms": {
            "worker-latency": {**route, "params": {"kind": "lambda-memory"}},
            "worker-throttles": {**route, "params": {"kind": "lambda-reserved-concurrency"}},
        }
    }

    def request(kind: str) -> dict:
        return {
            "action": "capacity-bump",
            "target": function,
            "params": {"kind": kind},
            "reason": "throttled at peak",
            "requested_by": "alice@example.com",
        }

    (reserved,) = stack.pipeline(playbook).handle(request("lambda-reserved-concurrency"))
    assert reserved.outcome is Outcome.EXECUTED, reserved.reason
    assert reserved.after["reserved_concurrency"] == 15

    (timeout,) = stack.pipeline(playbook).handle(request("lambda-timeout"))
    assert timeout.outcome is Outcome.REJECTED
    assert "fixed by configuration" in timeout.reason
