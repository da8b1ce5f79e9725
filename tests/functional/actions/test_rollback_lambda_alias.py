"""rollback of a Lambda alias: the failure paths (the happy path, dry-run and an old deploy are
in tests/functional/test_pipeline_rollback.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from remediate.emulator import create_function
from remediation.models import Outcome
from tests.conftest import load_event
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"


def alarm(stack, target: str):
    route = {"action": "rollback", "target": target}
    (result,) = stack.pipeline({"alarms": {ALARM: route}}).handle(
        load_event("sns_alarm_single_metric.json")
    )
    return result


def alias_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def make_alias(stack, versions: int = 3) -> str:
    target = create_function(stack.clients, "orders", versions=versions)
    stack.now = datetime.now(UTC)  # moto stamps versions with the wall clock
    return target


def test_first_version_has_no_predecessor_and_escalates(stack):
    target = make_alias(stack, versions=1)
    result = alarm(stack, target)

    assert result.outcome is Outcome.ESCALATED
    assert "no predecessor" in result.reason
    assert alias_version(stack) == "1"


def test_update_that_does_not_show_fails_verify(stack):
    target = make_alias(stack)
    Wire(stack.clients("lambda")).queue("UpdateAlias", response(200, {}))
    result = alarm(stack, target)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert alias_version(stack) == "3"


def test_throttled_update_is_retried(stack, backoff):
    target = make_alias(stack)
    client = stack.clients("lambda")
    wire = Wire(client).queue("UpdateAlias", throttled(client), throttled(client), None)
    result = alarm(stack, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["UpdateAlias"] == 3
    assert len(backoff) == 2
    assert alias_version(stack) == "2"


def test_throttling_that_outlasts_the_retries_fails_with_a_notice(stack, backoff):
    target = make_alias(stack)
    client = stack.clients("lambda")
    attempts = client.meta.config.retries["total_max_attempts"]  # 6: first try + 5 retries
    wire = Wire(client).queue("UpdateAlias", *[throttled(client)] * attempts)
    result = alarm(stack, target)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("TooManyRequestsException")
    assert wire.attempts["UpdateAlias"] == attempts
    assert len(backoff) == attempts - 1
    assert alias_version(stack) == "3"
    assert "FAILED rollback" in stack.notices()[0]["subject"]


def test_access_denied_fails_with_a_notice(stack):
    target = make_alias(stack)
    wire = Wire(stack.clients("lambda")).queue("UpdateAlias", denied())
    result = alarm(stack, target)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert wire.attempts["UpdateAlias"] == 1
    assert alias_version(stack) == "3"
    (notice,) = stack.notices()
    assert "FAILED rollback" in notice["subject"]
