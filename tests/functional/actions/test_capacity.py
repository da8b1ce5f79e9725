"""capacity-bump through the whole pipeline: against the moto server where moto implements the
API (Lambda memory, timeout, reserved concurrency; DynamoDB; REST stage throttling), with
Stubber for provisioned concurrency (moto 5.2 has no PutProvisionedConcurrencyConfig)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import REGION, create_function
from serverless_remediation.remediation.actions.base import ActionContext, Plan
from serverless_remediation.remediation.actions.capacity import CapacityBump, CapacityParams
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.clients import DEFAULT_CONFIG, Clients
from serverless_remediation.remediation.models import Outcome
from tests.conftest import DEPLOYMENT, load_event
from tests.functional.actions.wire import Wire, denied, response, throttled

ALARM = "test-orders-error-rate"  # the alarm in tests/events/sns_alarm_single_metric.json
FUNCTION = f"arn:aws:lambda:{REGION}:123456789012:function:orders"
ALIAS = f"{FUNCTION}:live"


def playbook(target: str, params: dict) -> dict:
    return {"alarms": {ALARM: {"action": "capacity-bump", "target": target, "params": params}}}


def alarm(stack, target: str, params: dict, clients=None, served=None) -> Any:
    pipeline = stack.pipeline(playbook(target, params), clients=clients, actions=served)
    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    return result


def action_for(stack, target: str, clients: Clients | None = None) -> CapacityBump:
    """The action built as every path builds it: a context scoped to ``target``."""
    clients = clients or stack.clients
    ctx = ActionContext(
        clients=clients,
        audit=AuditLog(stack.clients("dynamodb"), stack.table),
        deployment=DEPLOYMENT,
        clock=lambda: stack.now,
    )
    return CapacityBump(ctx.for_target(target))


# -- the resources, in the emulator ------------------------------------------------------


def make_function(stack) -> str:
    return create_function(stack.clients, "orders", versions=0, alias=None, memory=512, timeout=30)


def make_reserved(stack, reserved: int | None = 10) -> str:
    target = make_function(stack)
    if reserved is not None:
        stack.clients("lambda").put_function_concurrency(
            FunctionName="orders", ReservedConcurrentExecutions=reserved
        )
    return target


def make_table(stack, billing: str = "PROVISIONED") -> str:
    extra: dict = {"BillingMode": billing}
    if billing == "PROVISIONED":
        extra["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    return stack.clients("dynamodb").create_table(
        TableName="orders",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        **extra,
    )["TableDescription"]["TableArn"]


def make_stage(stack, throttle: bool = True) -> str:
    gateway = stack.clients("apigateway")
    api = gateway.create_rest_api(name="orders")["id"]
    root = gateway.get_resources(restApiId=api)["items"][0]["id"]
    gateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    gateway.create_deployment(restApiId=api, stageName="prod")
    if throttle:
        gateway.update_stage(
            restApiId=api,
            stageName="prod",
            patchOperations=[
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
            ],
        )
    return f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/prod"


def memory(stack, _target) -> int:
    return stack.clients("lambda").get_function_configuration(FunctionName="orders")["MemorySize"]


def timeout(stack, _target) -> int:
    return stack.clients("lambda").get_function_configuration(FunctionName="orders")["Timeout"]


def reserved(stack, _target) -> int | None:
    found = stack.clients("lambda").get_function_concurrency(FunctionName="orders")
    return found.get("ReservedConcurrentExecutions")


def throughput(stack, _target) -> tuple[int, int]:
    table = stack.clients("dynamodb").describe_table(TableName="orders")["Table"]
    units = table["ProvisionedThroughput"]
    return units["ReadCapacityUnits"], units["WriteCapacityUnits"]


def billing(stack, _target) -> str:
    table = stack.clients("dynamodb").describe_table(TableName="orders")["Table"]
    return table["BillingModeSummary"]["BillingMode"]


def throttle(stack, target) -> tuple[float, int]:
    api = target.split("/")[2]
    found = stack.clients("apigateway").get_stage(restApiId=api, stageName="prod")
    settings = found["methodSettings"]["*/*"]
    return settings["throttlingRateLimit"], settings["throttlingBurstLimit"]


@dataclass(frozen=True)
class Case:
    kind: str
    make: Callable[[Any], str]
    value: Callable[[Any, str], Any]
    start: Any
    bumped: Any
    #: the client and operation that makes the change
    service: str
    operation: str
    #: params that put the start value at the cap (None: this kind has no cap)
    at_cap: dict | None = field(default=None)


CASES = [
    Case(
        "lambda-memory",
        make_function,
        memory,
        512,
        768,
        "lambda",
        "UpdateFunctionConfiguration",
        {"max_memory_mb": 512},
    ),
    Case(
        "lambda-timeout",
        make_function,
        timeout,
        30,
        45,
        "lambda",
        "UpdateFunctionConfiguration",
        {"max_timeout_seconds": 30},
    ),
    Case(
        "lambda-reserved-concurrency",
        make_reserved,
        reserved,
        10,
        15,
        "lambda",
        "PutFunctionConcurrency",
        {"max_reserved_concurrency": 10},
    ),
    Case(
        "dynamodb-throughput",
        make_table,
        throughput,
        (5, 5),
        (8, 8),
        "dynamodb",
        "UpdateTable",
        {"max_write_units": 5},
    ),
    Case(
        "dynamodb-on-demand",
        make_table,
        billing,
        "PROVISIONED",
        "PAY_PER_REQUEST",
        "dynamodb",
        "UpdateTable",
    ),
    Case(
        "apigateway-throttle",
        make_stage,
        throttle,
        (100.0, 200),
        (150.0, 300),
        "apigateway",
        "UpdateStage",
        {"max_rate_limit": 100.0},
    ),
]
CAPPED = [c for c in CASES if c.at_cap is not None]


def ids(case: Case) -> str:
    return case.kind


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bump_executes_verifies_audits_and_notifies(stack, case):
    target = case.make(stack)
    result = alarm(stack, target, {"kind": case.kind})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert case.value(stack, target) == case.bumped
    (record,) = stack.audit_items()
    assert record["outcome"] == "executed"
    assert record["before_state"]["dimension"] == record["after_state"]["dimension"]
    assert record["before_state"] != record["after_state"]
    (notice,) = stack.notices()
    assert "did capacity-bump" in notice["subject"]


@pytest.mark.parametrize("case", CAPPED, ids=ids)
def test_at_cap_escalates_and_changes_nothing(stack, case):
    target = case.make(stack)
    result = alarm(stack, target, {"kind": case.kind, **case.at_cap})

    assert result.outcome is Outcome.ESCALATED
    assert "at the cap" in result.reason
    assert case.value(stack, target) == case.start
    assert "needs a human" in stack.notices()[0]["subject"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_dry_run_switch_plans_and_changes_nothing(stack, case):
    target = case.make(stack)
    stack.set_switch("dry-run")
    result = alarm(stack, target, {"kind": case.kind})

    assert result.outcome is Outcome.DRY_RUN
    assert result.after != result.before
    assert case.value(stack, target) == case.start
    assert stack.audit_items()[0]["outcome"] == "dry-run"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_change_that_does_not_show_fails_verify(stack, case):
    target = case.make(stack)
    # The call "succeeds" but nothing changes: verify must catch it.
    Wire(stack.clients(case.service)).queue(case.operation, response(200, {}))
    result = alarm(stack, target, {"kind": case.kind})

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert case.value(stack, target) == case.start
    assert "FAILED" in stack.notices()[0]["subject"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_throttled_change_is_retried_by_the_client(stack, case, backoff):
    target = case.make(stack)
    client = stack.clients(case.service)
    wire = Wire(client).queue(case.operation, throttled(client), None)
    result = alarm(stack, target, {"kind": case.kind})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts[case.operation] == 2
    assert len(backoff) == 1  # one backoff between the throttled attempt and the retry
    assert case.value(stack, target) == case.bumped


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_access_denied_fails_with_a_notice(stack, case):
    target = case.make(stack)
    wire = Wire(stack.clients(case.service)).queue(case.operation, denied())
    result = alarm(stack, target, {"kind": case.kind})

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert wire.attempts[case.operation] == 1  # not retried
    assert case.value(stack, target) == case.start
    (notice,) = stack.notices()
    assert "FAILED capacity-bump" in notice["subject"]
    assert "AccessDeniedException" in notice["message"]


# -- preconditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reserved_now", "why"),
    [(None, "unreserved pool"), (0, "switched off")],
)
def test_reserved_concurrency_unset_or_zero_escalates(stack, reserved_now, why):
    target = make_reserved(stack, reserved_now)
    result = alarm(stack, target, {"kind": "lambda-reserved-concurrency"})

    assert result.outcome is Outcome.ESCALATED
    assert why in result.reason
    assert reserved(stack, target) == reserved_now


@pytest.mark.parametrize("kind", ["dynamodb-throughput", "dynamodb-on-demand"])
def test_on_demand_table_escalates(stack, kind):
    target = make_table(stack, billing="PAY_PER_REQUEST")
    result = alarm(stack, target, {"kind": kind})

    assert result.outcome is Outcome.ESCALATED
    assert "on-demand already" in result.reason
    assert billing(stack, target) == "PAY_PER_REQUEST"


def test_stage_without_its_own_throttle_escalates(stack):
    target = make_stage(stack, throttle=False)
    result = alarm(stack, target, {"kind": "apigateway-throttle"})

    assert result.outcome is Outcome.ESCALATED
    assert "no throttle of its own" in result.reason


def test_memory_on_an_alias_fails_and_changes_nothing(stack):
    alias = create_function(stack.clients, "orders", versions=1, memory=512)
    result = alarm(stack, alias, {"kind": "lambda-memory"})

    assert result.outcome is Outcome.FAILED
    assert "without a qualifier" in result.reason
    assert memory(stack, alias) == 512


def test_manual_request_cannot_raise_a_cap(stack):
    target = make_function(stack)
    request = load_event("manual_request.json")
    request.update(
        action="capacity-bump",
        target=target,
        params={"max_memory_mb": 10240},
        dry_run=False,
    )
    playbook = {
        "inventory": [
            {"action": "capacity-bump", "target": target, "params": {"kind": "lambda-memory"}}
        ]
    }
    (result,) = stack.pipeline(playbook).handle(request)

    assert result.outcome is Outcome.REJECTED
    assert "'max_memory_mb' = 10240 is beyond the configured limit" in result.reason
    assert memory(stack, target) == 512


# -- provisioned concurrency (Stubber: moto 5.2 does not implement it) ---------------------


@pytest.fixture
def stubbed(emulator) -> tuple[Stubber, Clients]:
    """A Lambda client answered by a Stubber; the rest of the pipeline on the emulator."""
    client = boto3.client("lambda", region_name=REGION, config=DEFAULT_CONFIG)
    return Stubber(client), emulator.clients(overrides={"lambda": client})


KEY = {"FunctionName": FUNCTION, "Qualifier": "live"}


def provisioned(requested: int, status: str = "READY", reason: str | None = None) -> dict:
    found = {
        "RequestedProvisionedConcurrentExecutions": requested,
        "AllocatedProvisionedConcurrentExecutions": requested if status == "READY" else 0,
        "AvailableProvisionedConcurrentExecutions": requested if status == "READY" else 0,
        "Status": status,
        "LastModified": "2026-11-23T10:00:00+0000",
    }
    if reason:
        found["StatusReason"] = reason
    return found


PROVISIONED = {"kind": "lambda-provisioned-concurrency"}


def test_provisioned_concurrency_steps_up_and_verifies(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_provisioned_concurrency_config", provisioned(10), KEY)
    stubber.add_response(
        "put_provisioned_concurrency_config",
        provisioned(15, "IN_PROGRESS"),
        {**KEY, "ProvisionedConcurrentExecutions": 15},
    )
    stubber.add_response("get_provisioned_concurrency_config", provisioned(15, "IN_PROGRESS"), KEY)
    with stubber:
        result = alarm(stack, ALIAS, PROVISIONED, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert result.before["provisioned_concurrency"] == 10
    assert result.after["provisioned_concurrency"] == 15


def test_provisioned_concurrency_starts_from_none_at_the_configured_start(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_client_error(
        "get_provisioned_concurrency_config",
        "ProvisionedConcurrencyConfigNotFoundException",
        http_status_code=404,
        expected_params=KEY,
    )
    stubber.add_response(
        "put_provisioned_concurrency_config",
        provisioned(5, "IN_PROGRESS"),
        {**KEY, "ProvisionedConcurrentExecutions": 5},
    )
    stubber.add_response("get_provisioned_concurrency_config", provisioned(5, "IN_PROGRESS"), KEY)
    with stubber:
        result = alarm(stack, ALIAS, PROVISIONED, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert "none -> 5" in result.reason


@pytest.mark.parametrize(
    ("found", "params", "why"),
    [
        (provisioned(10, "IN_PROGRESS"), {}, "still being allocated"),
        (provisioned(50), {}, "at the cap (50)"),
        (provisioned(10), {"max_provisioned_concurrency": 10}, "at the cap (10)"),
    ],
    ids=["in-progress", "default-cap", "configured-cap"],
)
def test_provisioned_concurrency_escalates_without_a_put(stack, stubbed, found, params, why):
    stubber, clients = stubbed
    stubber.add_response("get_provisioned_concurrency_config", found, KEY)
    with stubber:
        result = alarm(stack, ALIAS, {**PROVISIONED, **params}, clients)
        stubber.assert_no_pending_responses()  # and no put: it would be unstubbed

    assert result.outcome is Outcome.ESCALATED
    assert why in result.reason


def test_provisioned_concurrency_dry_run_reads_only(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_provisioned_concurrency_config", provisioned(10), KEY)
    stack.set_switch("dry-run")
    with stubber:
        result = alarm(stack, ALIAS, PROVISIONED, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.DRY_RUN
    assert result.after["provisioned_concurrency"] == 15


def test_provisioned_concurrency_failed_allocation_fails_verify(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_provisioned_concurrency_config", provisioned(10), KEY)
    stubber.add_response(
        "put_provisioned_concurrency_config",
        provisioned(15, "IN_PROGRESS"),
        {**KEY, "ProvisionedConcurrentExecutions": 15},
    )
    stubber.add_response(
        "get_provisioned_concurrency_config",
        provisioned(15, "FAILED", "account concurrency limit reached"),
        KEY,
    )
    with stubber:
        result = alarm(stack, ALIAS, PROVISIONED, clients)

    assert result.outcome is Outcome.FAILED
    assert "account concurrency limit reached" in result.reason
    assert "FAILED" in stack.notices()[0]["subject"]


def test_provisioned_concurrency_access_denied_fails_with_a_notice(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_provisioned_concurrency_config", provisioned(10), KEY)
    stubber.add_client_error(
        "put_provisioned_concurrency_config",
        "AccessDeniedException",
        http_status_code=403,
        expected_params={**KEY, "ProvisionedConcurrentExecutions": 15},
    )
    with stubber:
        result = alarm(stack, ALIAS, PROVISIONED, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    assert "FAILED capacity-bump" in stack.notices()[0]["subject"]


def test_provisioned_concurrency_throttled_put_is_retried(stack, emulator, backoff):
    # No Stubber here: it answers before botocore's retry loop. Every call is answered on
    # the wire instead (moto has nothing to pass through to).
    client = boto3.client(
        "lambda", region_name=REGION, config=DEFAULT_CONFIG, endpoint_url="https://lambda.invalid"
    )
    clients = emulator.clients(overrides={"lambda": client})
    wire = Wire(client)
    wire.queue(
        "GetProvisionedConcurrencyConfig",
        response(200, provisioned(10)),
        response(200, provisioned(15, "IN_PROGRESS")),
    )
    wire.queue(
        "PutProvisionedConcurrencyConfig",
        throttled(client),
        response(202, provisioned(15, "IN_PROGRESS")),
    )
    result = alarm(stack, ALIAS, PROVISIONED, clients)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["PutProvisionedConcurrencyConfig"] == 2
    assert len(backoff) == 1
    assert result.after["provisioned_concurrency"] == 15


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_applying_the_before_state_undoes_the_bump(stack, case):
    """The contract ``revert`` relies on: apply makes the target look like ``plan.after``."""
    target = case.make(stack)
    action = action_for(stack, target)
    params = CapacityParams(kind=case.kind)
    plan = action.plan(action.read(target, params), params, stack.now)
    action.apply(target, plan)
    action.verify(target, plan)
    assert case.value(stack, target) == case.bumped

    undo = Plan.change("revert", plan.after, plan.before)
    action.apply(target, undo)
    assert action.verify(target, undo) == plan.before
    assert case.value(stack, target) == case.start
