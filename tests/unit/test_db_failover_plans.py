"""Pure pieces of db-failover: parameters, the target, the plan."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.base import Limit
from serverless_remediation.remediation.actions.db_failover import (
    NOT_REVERTABLE,
    ClusterCurrent,
    DbFailover,
    FailoverParams,
    cluster_name,
    plan_failover,
)
from serverless_remediation.remediation.models import RejectedError, Verdict
from serverless_remediation.remediation.targets import parse

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
CLUSTER = "arn:aws:rds:eu-west-1:123456789012:cluster:nigredo-db"


def cluster(**over) -> ClusterCurrent:
    current: ClusterCurrent = {
        "cluster": "nigredo-db",
        "status": "available",
        "engine": "aurora-postgresql",
        "engine_mode": "provisioned",
        "global_cluster": None,
        "writer": "nigredo-db-1",
        "readers": [
            {"id": "nigredo-db-3", "status": "available", "tier": 1},
            {"id": "nigredo-db-2", "status": "available", "tier": 1},
            {"id": "nigredo-db-4", "status": "available", "tier": 0},
        ],
        "failovers": [],
    }
    current.update(over)  # type: ignore[typeddict-item]
    return current


def test_promotes_the_available_reader_with_the_lowest_tier():
    plan = plan_failover(cluster(), 6, NOW)
    assert plan.verdict is Verdict.CHANGE
    assert plan.before == {"writer": "nigredo-db-1", "status": "available", "note": None}
    assert plan.after == {"writer": "nigredo-db-4", "status": "available", "note": NOT_REVERTABLE}
    assert "nigredo-db-1 -> nigredo-db-4" in plan.summary


def test_ties_in_tier_break_by_id_and_unhealthy_readers_are_skipped():
    readers = [
        {"id": "b", "status": "available", "tier": 2},
        {"id": "a", "status": "available", "tier": 2},
        {"id": "z", "status": "rebooting", "tier": 0},
    ]
    plan = plan_failover(cluster(readers=readers), 6, NOW)
    assert plan.after["writer"] == "a"


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"status": "failing-over"}, "failing-over, not available"),
        ({"status": "modifying"}, "not available"),
        ({"engine_mode": "serverless"}, "Serverless v1"),
        ({"global_cluster": "orders-global"}, "global database orders-global"),
        ({"engine": "postgres"}, "not Aurora"),
        ({"writer": None}, "no writer"),
        ({"readers": []}, "no available reader (readers: none)"),
        (
            {"readers": [{"id": "r1", "status": "rebooting", "tier": 0}]},
            "no available reader (readers: r1 rebooting)",
        ),
    ],
)
def test_escalates_what_it_cannot_handle_safely(over, words):
    plan = plan_failover(cluster(**over), 6, NOW)
    assert plan.verdict is Verdict.ESCALATE
    assert words in plan.summary
    assert plan.after == plan.before


def test_a_failover_within_the_window_escalates_and_an_older_one_does_not():
    recent = (NOW - timedelta(hours=5, minutes=59)).isoformat()
    old = (NOW - timedelta(hours=6, minutes=1)).isoformat()
    blocked = plan_failover(cluster(failovers=[recent]), 6, NOW)
    assert blocked.verdict is Verdict.ESCALATE
    assert recent in blocked.summary
    assert "6 h" in blocked.summary
    assert plan_failover(cluster(failovers=[old]), 6, NOW).verdict is Verdict.CHANGE
    # the window is the parameter's
    assert plan_failover(cluster(failovers=[old]), 7, NOW).verdict is Verdict.ESCALATE


@pytest.mark.parametrize("when", ["yesterday-ish", "2026-11-23T10:00:00"])
def test_an_unreadable_or_naive_failover_time_counts_as_recent(when):
    assert plan_failover(cluster(failovers=[when]), 6, NOW).verdict is Verdict.ESCALATE


def test_plan_does_not_touch_its_input():
    current = cluster()
    kept = copy.deepcopy(current)
    plan_failover(current, 6, NOW)
    assert current == kept


@pytest.mark.parametrize(
    "bad",
    [{"window_hours": 0}, {"window_hours": 169}, {"verify_seconds": -1}, {"poll_seconds": 0}],
)
def test_params_ranges(bad):
    with pytest.raises(RejectedError):
        FailoverParams.from_dict(bad)


def test_a_manual_request_may_only_widen_the_window():
    assert DbFailover.limits == {"window_hours": Limit.AT_LEAST}
    DbFailover.check_manual(FailoverParams(), {"window_hours": 12})
    with pytest.raises(RejectedError, match="beyond the configured limit"):
        DbFailover.check_manual(FailoverParams(), {"window_hours": 1})
    with pytest.raises(RejectedError, match="fixed by configuration"):
        DbFailover.check_manual(FailoverParams(), {"verify_seconds": 1})


def test_target_is_a_cluster_arn_and_resources_are_the_cluster_and_its_account_instances():
    assert parse(CLUSTER).resource_type == "cluster"
    assert cluster_name(CLUSTER) == "nigredo-db"
    assert DbFailover.resources(CLUSTER) == [
        CLUSTER,
        "arn:aws:rds:eu-west-1:123456789012:db:*",
    ]
    china = "arn:aws-cn:rds:cn-north-1:123456789012:cluster:x"
    assert DbFailover.resources(china)[1] == "arn:aws-cn:rds:cn-north-1:123456789012:db:*"
    for wrong in (
        "arn:aws:rds:eu-west-1:123456789012:db:nigredo-db-1",
        "arn:aws:lambda:eu-west-1:123456789012:function:f",
    ):
        with pytest.raises(RejectedError):
            DbFailover.resources(wrong)
