"""db-failover through the whole pipeline against the moto server (moto 5.2 implements
FailoverDBCluster and moves the writer at once); a Stubber where moto cannot show what AWS
does: a failover still in flight when verify reads the cluster."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.drill.resources_data import cluster_state, create_cluster
from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation.actions.db_failover import NOT_REVERTABLE
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome

ALARM = "test-leads-db-db-connections"  # tests/events/sns_alarm_rds_writer_connections.json
EVENT = "sns_alarm_rds_writer_connections.json"
CLUSTER = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:leads-db"
SERVED = {"db-failover", "revert"}


def playbook(params: dict | None = None) -> dict:
    route = {"action": "db-failover", "target": CLUSTER, "params": params or {}}
    return {"alarms": {ALARM: route}, "inventory": [route]}


def alarm(stack, params: dict | None = None, clients=None, message_id: str | None = None) -> Any:
    event = stack.event(EVENT)
    if message_id:
        event["Records"][0]["Sns"]["MessageId"] = message_id
    pipeline = stack.pipeline(playbook(params), clients=clients, actions=SERVED)
    (result,) = pipeline.handle(event)
    return result


def record(stack, audit_id: str) -> dict:
    return next(r for r in stack.audit_items() if r["audit_id"] == audit_id)


def test_failover_promotes_the_first_reader_and_records_why_it_cannot_be_reverted(stack):
    create_cluster(stack.clients, "leads-db", readers=2)
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-1"
    result = alarm(stack)
    assert result.outcome is Outcome.EXECUTED, result.reason
    # leads-db-2 has promotion tier 2, leads-db-3 tier 3
    assert cluster_state(stack.clients, "leads-db") == {
        "writer": "leads-db-2",
        "status": "available",
        "members": 3,
    }
    done = record(stack, result.audit_id)
    assert done["before_state"]["writer"] == "leads-db-1"
    assert done["after_state"] == {
        "writer": "leads-db-2",
        "status": "available",
        "note": NOT_REVERTABLE,
    }


def test_a_second_alarm_within_the_window_escalates_and_changes_nothing(stack):
    create_cluster(stack.clients, "leads-db", readers=2)
    first = alarm(stack)
    assert first.outcome is Outcome.EXECUTED, first.reason
    stack.now += timedelta(hours=2)  # past the cooldown, inside the 6 h window
    second = alarm(stack, message_id="7a6c0f7e-0000-4000-8000-0000000000f2")
    assert second.outcome is Outcome.ESCALATED
    assert "within the last 6 h" in second.reason
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-2"
    stack.now += timedelta(hours=5)  # 7 h after the first: outside the window
    third = alarm(stack, message_id="7a6c0f7e-0000-4000-8000-0000000000f3")
    assert third.outcome is Outcome.EXECUTED, third.reason
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-1"


def test_no_healthy_reader_escalates(stack):
    create_cluster(stack.clients, "leads-db", readers=2, reader_status="rebooting")
    result = alarm(stack)
    assert result.outcome is Outcome.ESCALATED
    assert "no available reader" in result.reason
    assert "leads-db-2 rebooting" in result.reason
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-1"


def test_a_cluster_without_reader_escalates(stack):
    create_cluster(stack.clients, "leads-db", readers=0)
    result = alarm(stack)
    assert result.outcome is Outcome.ESCALATED
    assert "readers: none" in result.reason


def test_dry_run_plans_and_changes_nothing(stack):
    create_cluster(stack.clients, "leads-db", readers=1)
    stack.set_switch("dry-run")
    result = alarm(stack)
    assert result.outcome is Outcome.DRY_RUN
    assert "would fail over cluster leads-db: writer leads-db-1 -> leads-db-2" in result.reason
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-1"


def test_revert_is_refused_and_the_writer_stays(stack):
    create_cluster(stack.clients, "leads-db", readers=1)
    done = alarm(stack)
    assert done.outcome is Outcome.EXECUTED, done.reason
    request = {
        "action": "revert",
        "target": done.audit_id,
        "reason": "fail back",
        "requested_by": "alice@example.com",
    }
    (result,) = stack.pipeline(playbook(), actions=SERVED).handle(request)
    assert result.outcome is Outcome.ESCALATED
    assert "cannot be reverted" in result.reason
    assert cluster_state(stack.clients, "leads-db")["writer"] == "leads-db-2"


# -- a failover still in flight at verify time (moto finishes it at once) -----------------


def _cluster(writer: str, status: str) -> dict:
    members = [
        {"DBInstanceIdentifier": name, "IsClusterWriter": name == writer, "PromotionTier": tier}
        for tier, name in enumerate(("leads-db-1", "leads-db-2"), start=1)
    ]
    return {
        "DBClusters": [
            {
                "DBClusterIdentifier": "leads-db",
                "Status": status,
                "Engine": "aurora-postgresql",
                "EngineMode": "provisioned",
                "DBClusterMembers": members,
            }
        ]
    }


INSTANCES = {
    "DBInstances": [
        {"DBInstanceIdentifier": "leads-db-1", "DBInstanceStatus": "available"},
        {"DBInstanceIdentifier": "leads-db-2", "DBInstanceStatus": "available"},
    ]
}


@pytest.fixture
def stubbed(emulator):
    client = boto3.client("rds", region_name=REGION, config=DEFAULT_CONFIG)
    return Stubber(client), emulator.clients(overrides={"rds": client})


def test_a_failover_not_confirmed_in_time_fails_and_says_what_it_saw(stack, stubbed, monkeypatch):
    stubber, clients = stubbed
    slept: list[float] = []
    monkeypatch.setattr(
        "serverless_remediation.remediation.actions.db_failover.time.sleep", slept.append
    )
    by_id = {"DBClusterIdentifier": "leads-db"}
    stubber.add_response("describe_db_clusters", _cluster("leads-db-1", "available"), by_id)
    stubber.add_response(
        "describe_db_instances",
        INSTANCES,
        {"Filters": [{"Name": "db-cluster-id", "Values": ["leads-db"]}]},
    )
    stubber.add_response(
        "failover_db_cluster",
        {"DBCluster": {"DBClusterIdentifier": "leads-db", "Status": "failing-over"}},
        {"DBClusterIdentifier": "leads-db", "TargetDBInstanceIdentifier": "leads-db-2"},
    )
    stubber.add_response("describe_db_clusters", _cluster("leads-db-1", "failing-over"), by_id)
    with stubber:
        result = alarm(stack, {"verify_seconds": 0}, clients=clients)
    stubber.assert_no_pending_responses()
    assert result.outcome is Outcome.FAILED
    assert "writer leads-db-1 and status failing-over" in result.reason
    assert "not confirmed" in result.reason


def test_verify_waits_for_the_new_writer(stack, stubbed, monkeypatch):
    stubber, clients = stubbed
    slept: list[float] = []
    monkeypatch.setattr(
        "serverless_remediation.remediation.actions.db_failover.time.sleep", slept.append
    )
    stubber.add_response("describe_db_clusters", _cluster("leads-db-1", "available"))
    stubber.add_response("describe_db_instances", copy.deepcopy(INSTANCES))
    stubber.add_response("failover_db_cluster", {"DBCluster": {}})
    stubber.add_response("describe_db_clusters", _cluster("leads-db-1", "failing-over"))
    stubber.add_response("describe_db_clusters", _cluster("leads-db-2", "failing-over"))
    stubber.add_response("describe_db_clusters", _cluster("leads-db-2", "available"))
    with stubber:
        result = alarm(stack, {"verify_seconds": 120, "poll_seconds": 7}, clients=clients)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert slept == [7, 7]
