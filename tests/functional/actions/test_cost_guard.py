"""cost-guard through the whole pipeline. Reserved concurrency lives in the moto server;
provisioned concurrency (which moto 5.2 does not implement) is answered by a Stubber, or on
the wire (``Wire``) where a test needs moto and botocore's retry loop as well."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_function
from serverless_remediation.remediation.actions.cost_guard import CostGuard
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome
from tests.conftest import DEPLOYMENT, sns_alarm
from tests.functional.actions.wire import Wire, denied, response, throttled

BUDGET = "test-monthly"  # the budget in tests/events/sns_budget_notice.json
BILLING_ALARM = "test-estimated-charges"
PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
TARGET = PREFIX + "*"
REPORTS, THUMBNAILS, CHECKOUT = (PREFIX + n for n in ("reports", "thumbnails", "checkout"))
PARAMS = {"sheddable": ["reports", "thumbnails"], "max_reserved": 1}


def playbook(params: dict | None = None) -> dict:
    route = {"action": "cost-guard", "target": TARGET, "params": params or PARAMS}
    return {"budgets": {BUDGET: route}, "alarms": {BILLING_ALARM: route}}


def budget_notice(stack, clients=None, params: dict | None = None) -> Any:
    pipeline = stack.pipeline(playbook(params), clients=clients)
    (result,) = pipeline.handle(stack.event("sns_budget_notice.json"))
    return result


#: AWS/Billing exists only in us-east-1: the environment serves that region explicitly
BILLING_DEPLOYMENT = replace(DEPLOYMENT, extra_regions=frozenset({"us-east-1"}))


def billing_alarm(stack, state: str = "ALARM") -> dict:
    alarm = stack.alarm_message()
    alarm.update(
        AlarmName=BILLING_ALARM,
        AlarmArn=f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{BILLING_ALARM}",
        NewStateValue=state,
        OldStateValue="OK" if state == "ALARM" else "ALARM",
        Region="US East (N. Virginia)",
    )
    alarm["Trigger"].update(
        MetricName="EstimatedCharges",
        Namespace="AWS/Billing",
        Dimensions=[{"name": "Currency", "value": "USD"}],
        Period=21600,
        EvaluationPeriods=1,
        Threshold=800.0,
    )
    return sns_alarm(alarm)


def config(function_arn: str, requested: int) -> dict:
    return {
        "FunctionArn": function_arn,
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": requested,
        "AllocatedProvisionedConcurrentExecutions": requested,
        "Status": "READY",
        "LastModified": "2026-11-23T10:00:00+0000",
    }


def listing(*configs: dict) -> Any:
    return response(200, {"ProvisionedConcurrencyConfigs": list(configs)})


# -- the emulator, with provisioned concurrency on the wire --------------------------------


@pytest.fixture
def account(stack) -> Any:
    """reports (reserved 50, 10 provisioned on live) and thumbnails (unreserved) are
    sheddable; checkout (reserved 100) is not. Returns the Lambda client's ``Wire``."""
    lam = stack.clients("lambda")
    for name in ("reports", "thumbnails", "checkout"):
        create_function(stack.clients, name, versions=1)
    lam.put_function_concurrency(FunctionName="reports", ReservedConcurrentExecutions=50)
    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=100)
    return Wire(lam)


def reserved(stack, name: str) -> int | None:
    found = stack.clients("lambda").get_function_concurrency(FunctionName=name)
    return found.get("ReservedConcurrentExecutions")


def shed_answers(wire: Wire, *, verified: bool = True) -> None:
    """Provisioned answers for read (reports has 10 on live) and, if ``verified``, verify."""
    wire.queue("ListProvisionedConcurrencyConfigs", listing(config(f"{REPORTS}:live", 10)))
    wire.queue("ListProvisionedConcurrencyConfigs", listing())
    wire.queue("DeleteProvisionedConcurrencyConfig", response(204))
    if verified:
        wire.queue("ListProvisionedConcurrencyConfigs", listing(), listing())


def test_cost_alarm_sheds_sheddable_functions_and_leaves_the_rest(stack, account):
    shed_answers(account)
    (result,) = stack.pipeline(playbook(), deployment=BILLING_DEPLOYMENT).handle(
        billing_alarm(stack)
    )

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert (reserved(stack, "reports"), reserved(stack, "thumbnails")) == (1, 1)
    assert reserved(stack, "checkout") == 100
    assert account.attempts["DeleteProvisionedConcurrencyConfig"] == 1
    assert result.before["functions"]["reports"] == {"reserved": 50, "provisioned": {"live": 10}}
    assert result.after["functions"] == {
        "reports": {"reserved": 1, "provisioned": {}},
        "thumbnails": {"reserved": 1, "provisioned": {}},
    }
    assert "did cost-guard" in stack.notices()[0]["subject"]
    assert stack.audit_items()[0]["requested_by"].endswith(f":alarm:{BILLING_ALARM}")


def test_manual_request_cannot_add_a_function(stack, account):
    request = {
        "action": "cost-guard",
        "target": TARGET,
        "params": {"sheddable": ["reports", "checkout"]},
        "reason": "checkout is expensive too",
        "requested_by": "mallory@example.com",
    }
    (result,) = stack.pipeline(playbook()).handle(request)

    assert result.outcome is Outcome.REJECTED
    assert "may set it to a subset of" in result.reason
    assert account.attempts == {}
    assert reserved(stack, "checkout") == 100


def test_already_shed_is_skipped(stack, account):
    stack.clients("lambda").put_function_concurrency(
        FunctionName="reports", ReservedConcurrentExecutions=0
    )
    stack.clients("lambda").put_function_concurrency(
        FunctionName="thumbnails", ReservedConcurrentExecutions=1
    )
    account.queue("ListProvisionedConcurrencyConfigs", listing(), listing())
    result = budget_notice(stack)

    assert result.outcome is Outcome.SKIPPED
    assert "already shed" in result.reason
    assert reserved(stack, "reports") == 0  # below the cap: kept, never raised
    assert stack.notices() == []


def test_no_sheddable_function_exists_escalates(stack):
    result = budget_notice(stack, params={"sheddable": ["gone"]})

    assert result.outcome is Outcome.ESCALATED
    assert "none of the sheddable functions exist" in result.reason
    assert "needs a human" in stack.notices()[0]["subject"]


def test_nothing_marked_sheddable_escalates(stack, account):
    result = budget_notice(stack, params={"sheddable": []})

    assert result.outcome is Outcome.ESCALATED
    assert "no function is marked sheddable" in result.reason
    assert account.attempts == {}


def test_dry_run_switch_plans_and_changes_nothing(stack, account):
    stack.set_switch("dry-run")
    shed_answers(account, verified=False)
    result = budget_notice(stack)

    assert result.outcome is Outcome.DRY_RUN
    assert result.after["functions"]["reports"]["reserved"] == 1
    assert reserved(stack, "reports") == 50
    assert "DeleteProvisionedConcurrencyConfig" not in account.attempts
    assert "(dry-run) cost-guard" in stack.notices()[0]["subject"]


def test_change_that_does_not_show_fails_verify(stack, account):
    shed_answers(account)
    # moto never sees the writes: verify reads the old reserved concurrency back.
    account.queue(
        "PutFunctionConcurrency",
        response(200, {"ReservedConcurrentExecutions": 1}),
        response(200, {"ReservedConcurrentExecutions": 1}),
    )
    result = budget_notice(stack)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert reserved(stack, "reports") == 50
    assert "FAILED cost-guard" in stack.notices()[0]["subject"]


def test_throttled_cap_is_retried_by_the_client(stack, account, backoff):
    shed_answers(account)
    account.queue("PutFunctionConcurrency", throttled(stack.clients("lambda")), None, None)
    result = budget_notice(stack)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert account.attempts["PutFunctionConcurrency"] == 3  # reports twice, thumbnails once
    assert len(backoff) == 1
    assert (reserved(stack, "reports"), reserved(stack, "thumbnails")) == (1, 1)


def test_access_denied_fails_with_a_notice_before_touching_reserved(stack, account):
    account.queue("ListProvisionedConcurrencyConfigs", listing(config(f"{REPORTS}:live", 10)))
    account.queue("ListProvisionedConcurrencyConfigs", listing())
    account.queue("DeleteProvisionedConcurrencyConfig", denied())
    result = budget_notice(stack)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert account.attempts["DeleteProvisionedConcurrencyConfig"] == 1
    assert reserved(stack, "reports") == 50
    (notice,) = stack.notices()
    assert "FAILED cost-guard" in notice["subject"]
    assert "AccessDeniedException" in notice["message"]


def test_ok_never_brings_spend_back(stack, account):
    (result,) = stack.pipeline(playbook(), deployment=BILLING_DEPLOYMENT).handle(
        billing_alarm(stack, "OK")
    )

    assert result.outcome is Outcome.SKIPPED
    assert account.attempts == {}


# -- every call checked against the Lambda API model (Stubber) ----------------------------


@pytest.fixture
def stubbed(emulator) -> tuple[Stubber, Any]:
    client = boto3.client("lambda", region_name=REGION, config=DEFAULT_CONFIG)
    return Stubber(client), emulator.clients(overrides={"lambda": client})


def test_budget_notice_makes_exactly_the_shedding_calls(stack, stubbed):
    stubber, clients = stubbed
    reports, thumbnails = {"FunctionName": REPORTS}, {"FunctionName": THUMBNAILS}
    live = {"FunctionName": REPORTS, "Qualifier": "live"}
    prov = {"ProvisionedConcurrencyConfigs": [config(f"{REPORTS}:live", 10)]}
    none: dict = {"ProvisionedConcurrencyConfigs": []}
    # read
    stubber.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 50}, reports)
    stubber.add_response("list_provisioned_concurrency_configs", prov, reports)
    stubber.add_response("get_function_concurrency", {}, thumbnails)
    stubber.add_response("list_provisioned_concurrency_configs", none, thumbnails)
    # apply: provisioned first, then the reserved caps
    stubber.add_response("delete_provisioned_concurrency_config", {}, live)
    capped = {"ReservedConcurrentExecutions": 1}
    stubber.add_response("put_function_concurrency", capped, {**reports, **capped})
    stubber.add_response("put_function_concurrency", capped, {**thumbnails, **capped})
    # verify reads back what changed: both parts of reports, the reserved cap of thumbnails
    # (its provisioned concurrency, none, was not changed)
    stubber.add_response("get_function_concurrency", capped, reports)
    stubber.add_response("list_provisioned_concurrency_configs", none, reports)
    stubber.add_response("get_function_concurrency", capped, thumbnails)
    with stubber:
        result = budget_notice(stack, clients)

    assert result.outcome is Outcome.EXECUTED, result.reason
    stubber.assert_no_pending_responses()  # and nothing for checkout: it is not sheddable
    record = stack.audit_items()[0]
    assert record["source"] == "budget"
    assert json.dumps(record["params"], sort_keys=True) == json.dumps(PARAMS, sort_keys=True)


def test_resources_are_scoped_to_the_sheddable_functions():
    assert CostGuard.resources(TARGET, PARAMS) == [
        REPORTS,
        f"{REPORTS}:*",
        THUMBNAILS,
        f"{THUMBNAILS}:*",
    ]
    assert CostGuard.resources(TARGET) == [TARGET]
