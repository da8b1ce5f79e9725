"""revert through the whole pipeline against the moto server: a manual request names an audit
id; the original action's apply/verify put the record's before-state back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_function
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_cost_guard import PARAMS as SHED
from tests.functional.actions.test_cost_guard import REPORTS, TARGET, config, listing
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:leads"
WEBHOOK = f"{FUNCTION}#WEBHOOK_ENABLED"
ENVIRONMENT = {"WEBHOOK_ENABLED": "true", "WEBHOOK_URL": "https://x.example/a?b=c", "EMPTY": ""}
PLAYBOOK = {"alarms": {ALARM: {"action": "flip-flag", "target": WEBHOOK}}}
SERVED = {"flip-flag", "revert"}


def revert(stack, audit_id: str, playbook: dict = PLAYBOOK, served=SERVED, **extra: Any):
    request = {
        "action": "revert",
        "target": audit_id,
        "reason": "the webhook endpoint is fixed",
        "requested_by": "alice@example.com",
        **extra,
    }
    (result,) = stack.pipeline(playbook, actions=served).handle(request)
    return result


@pytest.fixture
def flipped(stack) -> str:
    """WEBHOOK_ENABLED flipped to false by an alarm; returns that audit id."""
    create_function(stack.clients, "leads", versions=0, alias=None, environment=ENVIRONMENT)
    (result,) = stack.pipeline(PLAYBOOK, actions=SERVED).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert result.outcome is Outcome.EXECUTED, result.reason
    stack.notices()  # drain the flip's notice
    return result.audit_id


def variables(stack) -> dict[str, str]:
    config = stack.clients("lambda").get_function_configuration(FunctionName="leads")
    return config["Environment"]["Variables"]


def record(stack, audit_id: str) -> dict:
    return next(r for r in stack.audit_items() if r["audit_id"] == audit_id)


def test_revert_puts_the_before_state_back_and_is_recorded(stack, flipped):
    result = revert(stack, flipped)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert variables(stack) == ENVIRONMENT
    done = record(stack, result.audit_id)
    assert (done["action"], done["target"], done["source"]) == ("revert", flipped, "manual")
    assert done["before_state"] == {
        "action": "flip-flag",
        "target": WEBHOOK,
        "state": {"value": "false"},
    }
    assert done["after_state"]["state"] == {"value": "true"}
    (notice,) = stack.notices()
    assert "did revert" in notice["subject"]
    assert flipped in notice["message"]


def test_revert_refuses_when_the_target_changed_since(stack, flipped):
    stack.clients("lambda").update_function_configuration(
        FunctionName="leads",
        Environment={"Variables": {**ENVIRONMENT, "WEBHOOK_ENABLED": "maintenance"}},
    )
    result = revert(stack, flipped)

    assert result.outcome is Outcome.ESCALATED
    assert "changed since" in result.reason
    assert variables(stack)["WEBHOOK_ENABLED"] == "maintenance"
    assert "needs a human for revert" in stack.notices()[0]["subject"]


def test_revert_refuses_a_record_that_is_not_executed(stack):
    create_function(stack.clients, "leads", versions=0, alias=None, environment=ENVIRONMENT)
    stack.set_switch("dry-run")
    (planned,) = stack.pipeline(PLAYBOOK, actions=SERVED).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert planned.outcome is Outcome.DRY_RUN
    stack.set_switch("on")
    result = revert(stack, planned.audit_id)

    assert result.outcome is Outcome.ESCALATED
    assert "is dry-run, not executed" in result.reason
    assert variables(stack) == ENVIRONMENT


def test_revert_refuses_a_record_outside_its_inventory(stack, flipped):
    elsewhere = {"alarms": {ALARM: {"action": "flip-flag", "target": f"{FUNCTION}#OTHER"}}}
    result = revert(stack, flipped, playbook=elsewhere)

    assert result.outcome is Outcome.ESCALATED
    assert "not in this remediator's inventory" in result.reason
    assert variables(stack)["WEBHOOK_ENABLED"] == "false"


def test_revert_of_an_unknown_audit_id_escalates(stack):
    result = revert(stack, "0" * 32)

    assert result.outcome is Outcome.ESCALATED
    assert f"no audit record {'0' * 32}" in result.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"target": "arn:aws:lambda:eu-west-1:123456789012:function:leads"}, "audit id"),
        ({"params": {"to": "anything"}}, "unknown parameter"),
    ],
)
def test_malformed_revert_requests_are_rejected(stack, change, why):
    target = change.pop("target", "f" * 32)
    result = revert(stack, target, **change)

    assert result.outcome is Outcome.REJECTED
    assert why in result.reason


def test_remediator_not_serving_revert_rejects_it(stack, flipped):
    result = revert(stack, flipped, served={"flip-flag"})

    assert result.outcome is Outcome.REJECTED
    assert "not 'revert'" in result.reason


def test_a_revert_cannot_be_reverted_and_a_second_revert_is_skipped(stack, flipped):
    first = revert(stack, flipped)
    assert first.outcome is Outcome.EXECUTED

    again = revert(stack, flipped)
    assert again.outcome is Outcome.SKIPPED
    assert "already as it was before" in again.reason

    undo = revert(stack, first.audit_id)
    assert undo.outcome is Outcome.ESCALATED
    assert "itself a revert" in undo.reason
    assert variables(stack) == ENVIRONMENT


def test_dry_run_revert_plans_and_changes_nothing(stack, flipped):
    result = revert(stack, flipped, dry_run=True)

    assert result.outcome is Outcome.DRY_RUN
    assert result.after["state"] == {"value": "true"}
    assert variables(stack)["WEBHOOK_ENABLED"] == "false"


def test_revert_that_does_not_show_fails_verify(stack, flipped):
    Wire(stack.clients("lambda")).queue("UpdateFunctionConfiguration", response(200, {}))
    result = revert(stack, flipped)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert variables(stack)["WEBHOOK_ENABLED"] == "false"
    assert "FAILED revert" in stack.notices()[0]["subject"]


def test_throttled_revert_is_retried_by_the_client(stack, flipped, backoff):
    client = stack.clients("lambda")
    wire = Wire(client).queue("UpdateFunctionConfiguration", throttled(client), None)
    result = revert(stack, flipped)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["UpdateFunctionConfiguration"] == 2
    assert len(backoff) == 1
    assert variables(stack) == ENVIRONMENT


def test_revert_without_the_original_permissions_fails_with_a_notice(stack, flipped):
    Wire(stack.clients("lambda")).queue("UpdateFunctionConfiguration", denied())
    result = revert(stack, flipped)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert variables(stack)["WEBHOOK_ENABLED"] == "false"
    (notice,) = stack.notices()
    assert "FAILED revert" in notice["subject"]
    assert "AccessDeniedException" in notice["message"]


def test_revert_undoes_a_cost_guard_shed(stack):
    """Provisioned concurrency comes back after reserved concurrency is raised."""
    lam = stack.clients("lambda")
    for name in ("reports", "thumbnails"):
        create_function(stack.clients, name, versions=1)
    lam.put_function_concurrency(FunctionName="reports", ReservedConcurrentExecutions=50)
    wire = Wire(lam)
    wire.queue("ListProvisionedConcurrencyConfigs", listing(config(f"{REPORTS}:live", 10)))
    # thumbnails' read, reports' verify (thumbnails' provisioned is not changed: not read back)
    wire.queue("ListProvisionedConcurrencyConfigs", listing(), listing())
    wire.queue("DeleteProvisionedConcurrencyConfig", response(204))
    route = {"action": "cost-guard", "target": TARGET, "params": SHED}
    playbook = {"budgets": {"test-monthly": route}}
    (shed,) = stack.pipeline(playbook, actions={"cost-guard", "revert"}).handle(
        stack.event("sns_budget_notice.json")
    )
    assert shed.outcome is Outcome.EXECUTED, shed.reason

    # revert: read (both empty), restore reports' 10 on live, verify shows them again
    wire.queue("ListProvisionedConcurrencyConfigs", listing(), listing())
    wire.queue("PutProvisionedConcurrencyConfig", response(202, {"Status": "IN_PROGRESS"}))
    wire.queue("ListProvisionedConcurrencyConfigs", listing(config(f"{REPORTS}:live", 10)))
    result = revert(stack, shed.audit_id, playbook=playbook, served={"cost-guard", "revert"})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["PutProvisionedConcurrencyConfig"] == 1
    assert not any(wire._queued.values())  # every queued answer was asked for
    assert (
        lam.get_function_concurrency(FunctionName="reports")["ReservedConcurrentExecutions"] == 50
    )
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName="thumbnails"
    )


def test_revert_undoes_a_rollback(stack):
    alias = create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC)
    playbook = {"alarms": {ALARM: {"action": "rollback", "target": alias}}}
    served = {"rollback", "revert"}
    (rolled,) = stack.pipeline(playbook, actions=served).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert rolled.outcome is Outcome.EXECUTED, rolled.reason

    result = revert(stack, rolled.audit_id, playbook=playbook, served=served)

    assert result.outcome is Outcome.EXECUTED, result.reason
    got = stack.clients("lambda").get_alias(FunctionName="orders", Name="live")
    assert got["FunctionVersion"] == "3"


def test_revert_undoes_a_capacity_bump(stack):
    function = create_function(stack.clients, "orders", versions=1, alias=None)
    lam = stack.clients("lambda")
    lam.put_function_concurrency(FunctionName="orders", ReservedConcurrentExecutions=10)
    route = {
        "action": "capacity-bump",
        "target": function,
        "params": {"kind": "lambda-reserved-concurrency"},
    }
    playbook = {"alarms": {ALARM: route}}
    served = {"capacity-bump", "revert"}
    (bumped,) = stack.pipeline(playbook, actions=served).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert bumped.outcome is Outcome.EXECUTED, bumped.reason
    assert lam.get_function_concurrency(FunctionName="orders")["ReservedConcurrentExecutions"] == 15

    result = revert(stack, bumped.audit_id, playbook=playbook, served=served)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert lam.get_function_concurrency(FunctionName="orders")["ReservedConcurrentExecutions"] == 10


def test_revert_undoes_a_waf_block(stack, emulator, monkeypatch):
    """The revert builds waf-block like the pipeline does: with the audit table for its
    expiry records (it used to fail with "no audit table")."""
    from serverless_remediation.remediate.emulator import create_ip_set
    from serverless_remediation.remediation.actions import waf_block
    from serverless_remediation.remediation.clients import Clients
    from tests.functional.actions.test_waf_block import LOG_GROUP, Insights

    monkeypatch.setattr(waf_block, "_sleep", lambda _: None)
    ip_set = create_ip_set(stack.clients, "blocked-v4", addresses=["192.0.2.0/28"])
    insights = Insights().answer({"203.0.113.9": 812})
    clients = Clients(endpoint_url=emulator.endpoint_url, overrides={"logs": insights.client})
    route = {"action": "waf-block", "target": ip_set["ARN"], "params": {"log_group": LOG_GROUP}}
    playbook = {"alarms": {ALARM: route}}
    served = {"waf-block", "revert"}
    (blocked,) = stack.pipeline(playbook, actions=served, clients=clients).handle(
        stack.event("sns_alarm_single_metric.json")
    )
    assert blocked.outcome is Outcome.EXECUTED, blocked.reason

    def entries() -> list[str]:
        got = stack.clients("wafv2").get_ip_set(
            Name="blocked-v4", Scope="REGIONAL", Id=ip_set["Id"]
        )
        return got["IPSet"]["Addresses"]

    assert "203.0.113.9/32" in entries()

    # The revert reads the offenders again (the original action's read): answer it.
    insights.answer({"203.0.113.9": 812})
    request = {
        "action": "revert",
        "target": blocked.audit_id,
        "reason": "a partner's office, not an attacker",
        "requested_by": "alice@example.com",
    }
    (result,) = stack.pipeline(playbook, actions=served, clients=clients).handle(request)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert entries() == ["192.0.2.0/28"]
    items = stack.clients("dynamodb").scan(TableName=stack.table)["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("block#")]


def test_revert_of_a_record_whose_target_is_outside_the_deployment_is_refused(stack):
    """A planted or stale record naming another account: the scope check holds on revert."""
    from serverless_remediation.remediation.audit import AuditLog, Entry

    elsewhere = WEBHOOK.replace(ACCOUNT, "210987654321")
    audit = AuditLog(stack.clients("dynamodb"), stack.table)
    audit_id = "f" * 32
    audit.open(
        Entry(
            audit_id=audit_id,
            correlation_id="c",
            created_at=stack.now,
            source="alarm",
            key=ALARM,
            state="ALARM",
            requested_by="x",
            reason="planted",
            action="flip-flag",
            target=elsewhere,
        )
    )
    audit.close(
        audit_id,
        Outcome.EXECUTED,
        "d",
        stack.now,
        before={"value": "true"},
        after={"value": "false"},
    )
    playbook = {"alarms": {ALARM: {"action": "flip-flag", "target": elsewhere}}}

    result = revert(stack, audit_id, playbook=playbook)

    assert result.outcome is Outcome.ESCALATED
    assert "outside this deployment: account 210987654321" in result.reason
