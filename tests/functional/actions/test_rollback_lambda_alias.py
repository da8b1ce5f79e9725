"""rollback of a Lambda alias: the failure paths and canaries (weighted routing); the happy
path, dry-run and an old deploy are in tests/functional/test_pipeline_rollback.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.actions.base import ActionContext, Plan
from serverless_remediation.remediation.actions.rollback import Rollback, RollbackParams
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.models import Outcome
from tests.conftest import DEPLOYMENT
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"


def playbook(target: str) -> dict:
    return {"alarms": {ALARM: {"action": "rollback", "target": target}}}


def alarm(stack, target: str, served: set[str] | None = None):
    (result,) = stack.pipeline(playbook(target), actions=served).handle(
        stack.event("sns_alarm_single_metric.json")
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


# -- canaries: an alias with weighted routing --------------------------------------------------


def alias_routing(stack) -> tuple[str, dict[str, float]]:
    got = stack.clients("lambda").get_alias(FunctionName="orders", Name="live")
    weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return got["FunctionVersion"], weights


def make_canary(stack, primary: str = "2", weighted: dict[str, float] | None = None) -> str:
    """Versions 1-3, the alias on ``primary`` with ``weighted`` (default: 10 % on 3)."""
    target = make_alias(stack, versions=3)
    stack.clients("lambda").update_alias(
        FunctionName="orders",
        Name="live",
        FunctionVersion=primary,
        RoutingConfig={"AdditionalVersionWeights": weighted or {"3": 0.1}},
    )
    return target


def test_normal_canary_is_dropped_and_the_primary_kept(stack):
    target = make_canary(stack)
    result = alarm(stack, target)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert alias_routing(stack) == ("2", {})  # 100 % on the stable version, 3 not promoted
    assert "drop canary version 3 (10 % of traffic)" in result.reason
    (record,) = stack.audit_items()
    assert record["before_state"] == {"version": "2", "weights": {"3": 0.1}}
    assert record["after_state"] == {"version": "2", "weights": {}}


@pytest.mark.parametrize(
    ("primary", "weighted", "why"),
    [
        ("3", {"2": 0.25}, "weighted version 2 (25 %) is not newer than the primary 3"),
        ("2", {"3": 0.5}, "outside the 60 min window"),
    ],
    ids=["weighted-older-than-primary", "canary-published-long-ago"],
)
def test_ambiguous_or_old_canary_escalates_and_changes_nothing(stack, primary, weighted, why):
    target = make_canary(stack, primary, weighted)
    if why.startswith("outside"):
        stack.now += timedelta(hours=2)  # version 3 was published two hours before the alarm
    result = alarm(stack, target)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert why in result.reason
    assert alias_routing(stack) == (primary, weighted)
    assert "needs a human for rollback" in stack.notices()[0]["subject"]


def test_revert_of_a_canary_rollback_restores_the_exact_weights(stack):
    target = make_canary(stack, weighted={"3": 0.137})
    served = {"rollback", "revert"}
    rolled = alarm(stack, target, served)
    assert rolled.outcome is Outcome.EXECUTED, rolled.reason
    assert alias_routing(stack) == ("2", {})

    request = {
        "action": "revert",
        "target": rolled.audit_id,
        "reason": "the canary was fine: the errors came from a dependency",
        "requested_by": "alice@example.com",
    }
    (reverted,) = stack.pipeline(playbook(target), actions=served).handle(request)

    assert reverted.outcome is Outcome.EXECUTED, reverted.reason
    version, weights = alias_routing(stack)
    assert (version, weights) == ("2", {"3": 0.137})
    assert isinstance(weights["3"], float)
    assert reverted.after["state"] == {"version": "2", "weights": {"3": 0.137}}


def test_applying_a_canary_before_state_puts_the_weights_back(stack):
    """The contract ``revert`` relies on, for weights: apply makes the alias look like
    ``plan.after``, routing config included."""
    target = make_canary(stack, weighted={"3": 0.05})
    ctx = ActionContext(
        clients=stack.clients,
        audit=AuditLog(stack.clients("dynamodb"), stack.table),
        deployment=DEPLOYMENT,
        clock=lambda: stack.now,
    )
    action = Rollback(ctx.for_target(target))
    plan = action.plan(action.read(target, RollbackParams()), RollbackParams(), stack.now)
    action.apply(target, plan)
    assert alias_routing(stack) == ("2", {})

    undo = Plan.change("revert", plan.after, plan.before)
    action.apply(target, undo)
    assert action.verify(target, undo) == {"version": "2", "weights": {"3": 0.05}}
    assert alias_routing(stack) == ("2", {"3": 0.05})
