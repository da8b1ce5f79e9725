"""capacity-bump changes only what reaches live traffic, and what it records can be reverted.

- a function served through an alias: a memory/timeout bump would change only ``$LATEST``;
- a table (or GSI) under Application Auto Scaling: an UpdateTable would be undone;
- on-demand -> provisioned (the revert of an on-demand switch) sends every GSI's throughput;
- the after-state holds only what ``read`` returns, so a revert is not refused.

moto (the ``stack`` fixture) where it implements the API; a ``Stubber`` (requests checked
against the service model) where a request must be asserted exactly or moto cannot answer.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import REGION, create_function
from serverless_remediation.remediation.actions.base import Plan
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_capacity import (
    FUNCTION,
    action_for,
    alarm,
    billing,
    make_table,
    memory,
    playbook,
    throughput,
    timeout,
)
from tests.functional.actions.wire import Wire, response

TABLE_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/orders"
INDEX = "by-customer"
INDEX_UNITS = {"ReadCapacityUnits": 3, "WriteCapacityUnits": 4}


def make_indexed_table(stack) -> str:
    """A provisioned table (5/5) with one GSI (3/4)."""
    return stack.clients("dynamodb").create_table(
        TableName="orders",
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "customer", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ProvisionedThroughput": dict(INDEX_UNITS),
            }
        ],
    )["TableDescription"]["TableArn"]


def index_units(stack) -> dict[str, int]:
    table = stack.clients("dynamodb").describe_table(TableName="orders")["Table"]
    (index,) = table["GlobalSecondaryIndexes"]
    units = index["ProvisionedThroughput"]
    return {k: units[k] for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def revert(stack, audit_id: str, target: str, params: dict) -> Any:
    request = {
        "action": "revert",
        "target": audit_id,
        "reason": "the load is back to normal",
        "requested_by": "alice@example.com",
    }
    pipeline = stack.pipeline(playbook(target, params), actions={"capacity-bump", "revert"})
    (result,) = pipeline.handle(request)
    return result


def update_table_calls(stack) -> list[dict]:
    """The parameters of every UpdateTable the (shared) DynamoDB client sends from now on."""
    calls: list[dict] = []
    stack.clients("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.UpdateTable", lambda params, **_: calls.append(params)
    )
    return calls


# -- a function served through an alias ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "what"),
    [("lambda-memory", memory, "memory"), ("lambda-timeout", timeout, "timeout")],
)
def test_aliased_function_under_latency_escalates_and_changes_nothing(stack, kind, value, what):
    create_function(stack.clients, "orders", versions=2, alias="live", memory=512, timeout=30)
    wire = Wire(stack.clients("lambda"))
    result = alarm(stack, FUNCTION, {"kind": kind})

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert f"served through alias live: a {what} change reaches only $LATEST" in result.reason
    assert "provisioned concurrency on the alias" in result.reason
    assert wire.attempts["ListAliases"] == 1
    assert wire.attempts["UpdateFunctionConfiguration"] == 0
    assert value(stack, FUNCTION) == (512 if what == "memory" else 30)
    assert "needs a human for capacity-bump" in stack.notices()[0]["subject"]


def test_an_alias_on_a_later_page_still_escalates(stack, emulator):
    """ListAliases is paginated: an alias on the second page counts."""
    client = boto3.client("lambda", region_name=REGION, config=DEFAULT_CONFIG)
    stubber = Stubber(client)
    configuration = {"MemorySize": 512, "Timeout": 30, "LastUpdateStatus": "Successful"}
    stubber.add_response("get_function_configuration", configuration, {"FunctionName": FUNCTION})
    stubber.add_response(
        "list_aliases", {"Aliases": [], "NextMarker": "m2"}, {"FunctionName": "orders"}
    )
    stubber.add_response(
        "list_aliases",
        {"Aliases": [{"Name": "live", "FunctionVersion": "4"}]},
        {"FunctionName": "orders", "Marker": "m2"},
    )
    with stubber:
        result = alarm(
            stack,
            FUNCTION,
            {"kind": "lambda-memory"},
            emulator.clients(overrides={"lambda": client}),
        )
        stubber.assert_no_pending_responses()  # and no update: it would be unstubbed

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "served through alias live" in result.reason


def test_function_without_an_alias_still_bumps(stack):
    create_function(stack.clients, "orders", versions=2, alias=None, memory=512)
    result = alarm(stack, FUNCTION, {"kind": "lambda-memory"})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert memory(stack, FUNCTION) == 768


# -- a table under Application Auto Scaling --------------------------------------------------


@pytest.mark.parametrize("kind", ["dynamodb-throughput", "dynamodb-on-demand"])
@pytest.mark.parametrize(
    ("resource", "dimension"),
    [
        ("table/orders", "dynamodb:table:WriteCapacityUnits"),
        (f"table/orders/index/{INDEX}", "dynamodb:index:ReadCapacityUnits"),
    ],
    ids=["table", "index"],
)
def test_auto_scaled_table_escalates_without_an_update_table(stack, kind, resource, dimension):
    target = make_indexed_table(stack)
    stack.clients("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=2,
        MaxCapacity=50,
    )
    wire = Wire(stack.clients("dynamodb"))
    result = alarm(stack, target, {"kind": kind})

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "auto scaling would undo an UpdateTable" in result.reason
    assert "raise the scalable target's minimum" in result.reason
    assert f"{resource} {dimension.rsplit(':', 1)[1]} min 2 max 50" in result.reason
    assert wire.attempts["UpdateTable"] == 0
    assert (throughput(stack, target), billing(stack, target)) == ((5, 5), "PROVISIONED")


def test_auto_scaling_of_another_table_does_not_count(stack):
    target = make_indexed_table(stack)
    stack.clients("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId="table/orders-archive",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
        MinCapacity=2,
        MaxCapacity=50,
    )
    result = alarm(stack, target, {"kind": "dynamodb-throughput"})

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert throughput(stack, target) == (8, 8)


# -- on-demand and back -------------------------------------------------------------------------


def test_revert_of_on_demand_sends_throughput_for_the_table_and_every_index(stack):
    target = make_indexed_table(stack)
    params = {"kind": "dynamodb-on-demand"}
    switched = alarm(stack, target, params, served={"capacity-bump", "revert"})
    assert switched.outcome is Outcome.EXECUTED, switched.reason
    assert switched.before["indexes"] == {INDEX: {"read_units": 3, "write_units": 4}}
    assert billing(stack, target) == "PAY_PER_REQUEST"

    calls = update_table_calls(stack)
    result = revert(stack, switched.audit_id, target, params)

    assert result.outcome is Outcome.EXECUTED, result.reason
    (sent,) = calls
    assert sent["BillingMode"] == "PROVISIONED"
    assert sent["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert sent["GlobalSecondaryIndexUpdates"] == [
        {"Update": {"IndexName": INDEX, "ProvisionedThroughput": INDEX_UNITS}}
    ]
    assert (billing(stack, target), throughput(stack, target)) == ("PROVISIONED", (5, 5))
    assert index_units(stack) == INDEX_UNITS


def test_switching_back_to_provisioned_is_one_request_aws_accepts(stack, emulator):
    """Stubber: the exact UpdateTable, checked against the DynamoDB service model."""
    client = boto3.client("dynamodb", region_name=REGION, config=DEFAULT_CONFIG)
    stubber = Stubber(client)
    action = action_for(stack, TABLE_ARN, emulator.clients(overrides={"dynamodb": client}))
    on_demand = {"dimension": "dynamodb-capacity", "billing_mode": "PAY_PER_REQUEST"}
    provisioned = {
        "dimension": "dynamodb-capacity",
        "billing_mode": "PROVISIONED",
        "read_units": 5,
        "write_units": 6,
        "indexes": {
            "by-status": {"read_units": 1, "write_units": 2},
            "by-customer": {"read_units": 3, "write_units": 4},
        },
    }
    expected = {
        "TableName": "orders",
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6},
        "GlobalSecondaryIndexUpdates": [
            {"Update": {"IndexName": "by-customer", "ProvisionedThroughput": INDEX_UNITS}},
            {
                "Update": {
                    "IndexName": "by-status",
                    "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 2},
                }
            },
        ],
    }
    stubber.add_response("update_table", {}, expected)
    with stubber:
        action.apply(TABLE_ARN, Plan.change("revert", on_demand, provisioned))
        stubber.assert_no_pending_responses()


def test_a_throughput_step_sends_no_index_updates(stack, emulator):
    """Indexes keep their throughput when the table stays provisioned (AWS refuses an index
    update that changes nothing)."""
    client = boto3.client("dynamodb", region_name=REGION, config=DEFAULT_CONFIG)
    stubber = Stubber(client)
    action = action_for(stack, TABLE_ARN, emulator.clients(overrides={"dynamodb": client}))
    indexes = {INDEX: {"read_units": 3, "write_units": 4}}
    before = {
        "dimension": "dynamodb-capacity",
        "billing_mode": "PROVISIONED",
        "read_units": 5,
        "write_units": 5,
        "indexes": indexes,
    }
    after = {**before, "read_units": 8, "write_units": 8}
    stubber.add_response(
        "update_table",
        {},
        {
            "TableName": "orders",
            "ProvisionedThroughput": {"ReadCapacityUnits": 8, "WriteCapacityUnits": 8},
        },
    )
    with stubber:
        action.apply(TABLE_ARN, Plan.change("bump", before, after))
        stubber.assert_no_pending_responses()


# -- the after-state is what read returns -----------------------------------------------------


def describe_updating(units: int) -> Any:
    """DescribeTable on the wire: UPDATING, still showing the old capacity (as AWS does)."""
    throughput_ = {"ReadCapacityUnits": units, "WriteCapacityUnits": units}
    return response(
        200,
        {
            "Table": {
                "TableName": "orders",
                "TableStatus": "UPDATING",
                "BillingModeSummary": {"BillingMode": "PROVISIONED"},
                "ProvisionedThroughput": throughput_,
            }
        },
    )


def test_a_bump_verified_while_updating_can_still_be_reverted(stack):
    """Verify sees UPDATING (the old capacity still showing) and records ``plan.after``: only
    the keys ``read`` returns, so a later revert compares like with like and acts."""
    target = make_table(stack)
    params = {"kind": "dynamodb-throughput"}
    wire = Wire(stack.clients("dynamodb"))
    wire.queue("DescribeTable", None, describe_updating(5))  # read passes, verify UPDATING
    bumped = alarm(stack, target, params, served={"capacity-bump", "revert"})
    assert bumped.outcome is Outcome.EXECUTED, bumped.reason
    assert bumped.after == {
        "dimension": "dynamodb-capacity",
        "billing_mode": "PROVISIONED",
        "read_units": 8,
        "write_units": 8,
        "indexes": {},
    }
    assert "table_status" not in stack.audit_items()[0]["after_state"]

    result = revert(stack, bumped.audit_id, target, params)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert throughput(stack, target) == (5, 5)
