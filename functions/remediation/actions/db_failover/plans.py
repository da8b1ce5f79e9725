"""db-failover's parameters, states and pure plan: a cluster as read -> fail over or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from ..base import ActionParams, Plan

#: why a failover is recorded as not revertable (the after-state carries it)
NOT_REVERTABLE = (
    "a failover cannot be reverted: failing back is another failover, which must pass its "
    "own checks (window, healthy reader); request db-failover again if a human wants it"
)
#: cluster engines this action fails over (Aurora); others escalate
AURORA_ENGINES = ("aurora-mysql", "aurora-postgresql", "aurora")


@dataclass(frozen=True)
class FailoverParams(ActionParams):
    #: no second failover of the same cluster within this many hours (executed or failed)
    window_hours: int = 6
    #: how long verify waits for the new writer and the cluster ``available`` again
    verify_seconds: int = 60
    #: seconds between reads while verify waits
    poll_seconds: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.window_hours <= 7 * 24:
            raise ValueError("window_hours must be between 1 and 168")
        if not 0 <= self.verify_seconds <= 600:
            raise ValueError("verify_seconds must be between 0 and 600")
        if not 1 <= self.poll_seconds <= 60:
            raise ValueError("poll_seconds must be between 1 and 60")


class Member(TypedDict):
    """One DB instance of the cluster: its id, status and promotion tier (0 is first)."""

    id: str
    status: str
    tier: int


class ClusterCurrent(TypedDict):
    """A cluster as read, with the times (ISO 8601) of the failovers the audit recorded for it
    (executed or failed), newest first."""

    cluster: str
    status: str
    engine: str
    engine_mode: str
    global_cluster: str | None
    writer: str | None
    readers: list[Member]
    failovers: list[str]


class FailoverState(TypedDict):
    """The writer and the cluster's status; ``note`` says, after a failover, why it cannot be
    reverted (read never returns one, so a revert never matches the record)."""

    writer: str | None
    status: str
    note: str | None


def state_of(current: ClusterCurrent) -> FailoverState:
    return {"writer": current["writer"], "status": current["status"], "note": None}


def plan_failover(current: ClusterCurrent, window_hours: int, now: datetime) -> Plan[FailoverState]:
    """Pure: fail over to the healthiest reader, or escalate saying why not.

    Refuses (escalates) what it cannot handle safely: a cluster that is not ``available``
    (a failover or maintenance in flight), Aurora Serverless v1 (no replicas), a member of a
    global database (a cross-Region decision), a non-Aurora Multi-AZ DB cluster, no known
    writer, no ``available`` reader, or a failover of this cluster within the window.
    """
    before = state_of(current)
    name = current["cluster"]
    if current["status"] != "available":
        return Plan.escalate(
            f"cluster {name} is {current['status']}, not available: a failover or maintenance "
            "may be in flight",
            before,
        )
    if current["engine_mode"] == "serverless":
        return Plan.escalate(f"cluster {name} is Aurora Serverless v1: it has no replica", before)
    if current["global_cluster"]:
        return Plan.escalate(
            f"cluster {name} belongs to global database {current['global_cluster']}: "
            "a failover there is a cross-Region decision for a human",
            before,
        )
    if current["engine"] not in AURORA_ENGINES:
        return Plan.escalate(
            f"cluster {name} runs {current['engine']}, not Aurora: Multi-AZ DB cluster "
            "failover is left to a human",
            before,
        )
    if current["writer"] is None:
        return Plan.escalate(f"cluster {name} has no writer instance", before)
    recent = [t for t in current["failovers"] if _within(t, window_hours, now)]
    if recent:
        return Plan.escalate(
            f"cluster {name} was failed over at {recent[0]}, within the last {window_hours} h: "
            "a second failover is for a human to decide",
            before,
        )
    healthy = sorted(
        (r for r in current["readers"] if r["status"] == "available"),
        key=lambda r: (r["tier"], r["id"]),
    )
    if not healthy:
        seen = ", ".join(f"{r['id']} {r['status']}" for r in current["readers"]) or "none"
        return Plan.escalate(f"cluster {name} has no available reader (readers: {seen})", before)
    reader = healthy[0]["id"]
    after: FailoverState = {"writer": reader, "status": "available", "note": NOT_REVERTABLE}
    return Plan.change(
        f"fail over cluster {name}: writer {current['writer']} -> {reader}", before, after
    )


def _within(when: str, window_hours: int, now: datetime) -> bool:
    """True if ``when`` is in the window ending at ``now``; an unreadable time counts as in
    it (fail closed)."""
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return True
    if at.tzinfo is None:
        return True
    return now - at < timedelta(hours=window_hours)
