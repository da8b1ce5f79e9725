"""db-failover: fail an Aurora cluster over to its healthiest reader.

Runbook: Nigredo "Database connection failures" (Aurora down -> ``rds failover-db-cluster``),
on a connection-error or writer-health alarm. The target is the cluster's ARN
(``arn:PARTITION:rds:REGION:ACCOUNT:cluster:NAME``).

Acts only when the cluster is ``available``, at least one reader is ``available`` and no
failover of this cluster executed or failed within ``window_hours`` (default 6). The window
is read from the audit history of the cluster ARN, so it holds across invocations and
deliveries. Never more than one failover per cluster in flight: while one runs the cluster is
``failing-over`` (not ``available``: escalate), concurrent alarm deliveries share the target's
cooldown guard, and the window refuses a second one after it. The reader promoted is the
``available`` one with the lowest promotion tier (then its id): the one Aurora itself
would pick, named explicitly so verify knows what to expect.

Refused (escalated, nothing changed): Aurora Serverless v1 (no replica), a member of a global
database (a cross-Region decision: ``FailoverGlobalCluster`` is for a human), non-Aurora
Multi-AZ DB clusters (RDS picks the standby itself, and RDS for MySQL ones take no target).

Verify reads the cluster until the promoted reader is the writer and the cluster is
``available`` again, for up to ``verify_seconds``; otherwise ``VerifyError``: the failover was
requested and is recorded, and a human confirms it.

Not revertable: failing back is another failover, which must pass its own checks. The
after-state's ``note`` records why, and ``revert`` refuses it (``read`` never returns a note,
so the cluster never matches the record's after-state).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import EscalatedError, RejectedError
from ...models import Outcome
from ...targets import build, parse
from ..base import Action, ActionContext, Limit, Plan, VerifyError, register
from .plans import (
    NOT_REVERTABLE,
    ClusterCurrent,
    FailoverParams,
    FailoverState,
    Member,
    plan_failover,
    state_of,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_rds.type_defs import DBClusterTypeDef

__all__ = [
    "NOT_REVERTABLE",
    "ClusterCurrent",
    "DbFailover",
    "FailoverParams",
    "FailoverState",
    "plan_failover",
]

#: audit outcomes that mean a failover was requested of AWS
_ATTEMPTED = frozenset({Outcome.EXECUTED, Outcome.FAILED})


def cluster_name(target: str) -> str:
    """The cluster identifier of an RDS cluster ARN; ``RejectedError`` for anything else."""
    parsed = parse(target)
    if parsed.service != "rds" or parsed.resource_type != "cluster" or not parsed.name:
        raise RejectedError(f"db-failover needs an RDS cluster ARN, got {target[:200]!r}")
    return parsed.name


@register
class DbFailover(Action[FailoverParams, ClusterCurrent, FailoverState]):
    """Fail an Aurora DB cluster over to its healthiest reader, at most once per window."""

    name = "db-failover"
    not_revertable = NOT_REVERTABLE
    Params = FailoverParams
    # A manual request may only widen the window (be more reluctant).
    limits: ClassVar[dict[str, Limit]] = {"window_hours": Limit.AT_LEAST}
    permissions = (
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "rds:FailoverDBCluster",
    )

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        defaults = FailoverParams()
        #: (verify_seconds, poll_seconds): verify gets no params, so ``read`` keeps the route's
        self._timing = (defaults.verify_seconds, defaults.poll_seconds)

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        cluster_name(target)
        parsed = parse(target)
        # DescribeDBInstances is authorized on instance ARNs; the cluster's instances are
        # named at run time, so the read is granted on the account's instances in the Region.
        instances = build(parsed.partition, "rds", parsed.region, parsed.account, "db:*")
        return [target, instances]

    def read(self, target: str, params: FailoverParams) -> ClusterCurrent:
        name = cluster_name(target)
        self._timing = (params.verify_seconds, params.poll_seconds)
        cluster = self._cluster(name)
        statuses = self._instance_statuses(name)
        writer: str | None = None
        readers: list[Member] = []
        for member in cluster.get("DBClusterMembers", []):
            instance = member.get("DBInstanceIdentifier", "")
            if member.get("IsClusterWriter"):
                writer = instance
            else:
                readers.append(
                    {
                        "id": instance,
                        "status": statuses.get(instance, "unknown"),
                        "tier": int(member.get("PromotionTier", 15)),
                    }
                )
        return {
            "cluster": name,
            "status": cluster.get("Status", "unknown"),
            "engine": cluster.get("Engine", "unknown"),
            "engine_mode": cluster.get("EngineMode", "provisioned"),
            "global_cluster": cluster.get("GlobalClusterIdentifier") or None,
            "writer": writer,
            "readers": sorted(readers, key=lambda r: r["id"]),
            "failovers": self._failovers(target, params.window_hours),
        }

    def plan(
        self, current: ClusterCurrent, params: FailoverParams, now: datetime
    ) -> Plan[FailoverState]:
        return plan_failover(current, params.window_hours, now)

    def apply(self, target: str, plan: Plan[FailoverState]) -> None:
        reader = plan.after["writer"]
        if plan.after.get("note") != NOT_REVERTABLE or not reader:
            # Only a plan from ``plan_failover`` fails over; a revert's plan back to the old
            # writer is another failover that skipped its checks.
            raise EscalatedError(NOT_REVERTABLE)
        self.clients("rds").failover_db_cluster(
            DBClusterIdentifier=cluster_name(target), TargetDBInstanceIdentifier=reader
        )

    def verify(self, target: str, plan: Plan[FailoverState]) -> FailoverState:
        name = cluster_name(target)
        wait, poll = self._timing
        deadline = time.monotonic() + wait
        while True:
            seen = self._state(name)
            if seen["writer"] == plan.after["writer"] and seen["status"] == "available":
                return {**seen, "note": plan.after["note"]}
            if time.monotonic() >= deadline:
                raise VerifyError(
                    f"cluster {name} reads back with writer {seen['writer']} and status "
                    f"{seen['status']}, expected writer {plan.after['writer']} and available: "
                    "the failover was requested but is not confirmed"
                )
            time.sleep(poll)

    # -- reads -----------------------------------------------------------------------------

    def _cluster(self, name: str) -> DBClusterTypeDef:
        found = self.clients("rds").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"]
        if len(found) != 1:
            raise RejectedError(f"cluster {name} not found")
        return found[0]

    def _instance_statuses(self, name: str) -> dict[str, str]:
        rds = self.clients("rds")
        statuses: dict[str, str] = {}
        pages = rds.get_paginator("describe_db_instances").paginate(
            Filters=[{"Name": "db-cluster-id", "Values": [name]}]
        )
        for page in pages:
            for instance in page.get("DBInstances", []):
                statuses[instance.get("DBInstanceIdentifier", "")] = instance.get(
                    "DBInstanceStatus", "unknown"
                )
        return statuses

    def _state(self, name: str) -> FailoverState:
        cluster = self._cluster(name)
        writers = [
            m.get("DBInstanceIdentifier")
            for m in cluster.get("DBClusterMembers", [])
            if m.get("IsClusterWriter")
        ]
        current: ClusterCurrent = {
            "cluster": name,
            "status": cluster.get("Status", "unknown"),
            "engine": "",
            "engine_mode": "",
            "global_cluster": None,
            "writer": writers[0] if len(writers) == 1 else None,
            "readers": [],
            "failovers": [],
        }
        return state_of(current)

    def _failovers(self, target: str, window_hours: int) -> list[str]:
        """When this cluster was failed over (executed or failed records), newest first,
        back to the window's start (the history is newest first: stop there)."""
        since = self.ctx.clock() - timedelta(hours=window_hours)
        found: list[str] = []
        for record in self.audit.history(target):
            created = record.get("created_at", "")
            try:
                at = datetime.fromisoformat(created)
            except ValueError:
                at = datetime.max.replace(tzinfo=UTC)  # unreadable: keep it (fail closed)
            if at.tzinfo is not None and at < since:
                break
            if record.get("action") == self.name and record.get("outcome") in _ATTEMPTED:
                found.append(created)
        return found
