"""The plain data that moves through the pipeline. No AWS calls here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import MAX_REASON, RejectedError

__all__ = [
    "ALARM_STATES",
    "MAX_REASON",
    "Mode",
    "Outcome",
    "RejectedError",
    "Request",
    "Result",
    "Route",
    "RouteMode",
    "Source",
    "Verdict",
]


class Source(StrEnum):
    """Where a delivery came from (the audit record's ``source``)."""

    ALARM = "alarm"
    BUDGET = "budget"
    MANUAL = "manual"
    #: the scheduled sweeper
    SCHEDULE = "schedule"
    #: rejected before it could be read
    UNKNOWN = "unknown"
    #: a human's approve or reject of a pending approval (``approvals.py``)
    APPROVAL = "approval"


class Mode(StrEnum):
    """The automation switch. Ordered from most to least restrictive."""

    OFF = "off"
    DRY_RUN = "dry-run"
    ON = "on"


class Outcome(StrEnum):
    #: the record is open: the outcome is not written yet
    PENDING = "pending"
    #: a route in ``approve`` mode planned a change and waits for a human (``approvals.py``)
    AWAITING_APPROVAL = "awaiting-approval"
    #: a silence or maintenance window held an automatic action (``silences.py``)
    SILENCED = "silenced"
    EXECUTED = "executed"
    DRY_RUN = "dry-run"
    SKIPPED = "skipped"
    ESCALATED = "escalated"
    FAILED = "failed"
    REJECTED = "rejected"


class RouteMode(StrEnum):
    """How far a route acts on its own: ``auto`` acts, ``approve`` waits for a human's
    approval, ``notify`` plans and tells, never acts."""

    AUTO = "auto"
    APPROVE = "approve"
    NOTIFY = "notify"


class Verdict(StrEnum):
    """What a plan says: change the target, leave it (nothing to do), or ask a human."""

    CHANGE = "change"
    NOOP = "noop"
    ESCALATE = "escalate"


ALARM_STATES = frozenset({"ALARM", "OK", "INSUFFICIENT_DATA"})


@dataclass(frozen=True)
class Request:
    """One normalised remediation request, whatever shape it arrived in.

    ``action``/``target``/``params`` are set for manual requests; for alarms and budgets
    the playbook fills them in from ``key`` (the alarm or budget name).
    """

    source: Source
    key: str
    idempotency_key: str
    state: str
    requested_by: str
    reason: str
    occurred_at: datetime | None = None
    action: str | None = None
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def automatic(self) -> bool:
        return self.source is not Source.MANUAL

    @property
    def is_alarm(self) -> bool:
        return self.state == "ALARM"


@dataclass(frozen=True)
class Route:
    """What the playbook says to do: one action on one target with its parameters."""

    action: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    mode: RouteMode = RouteMode.AUTO
    #: weekly UTC windows ("tue 02:00-03:00") in which automatic actions are held
    maintenance: tuple[str, ...] = ()
    #: follow-up steps run after this route's action executed (``followups.py``)
    then: tuple[Route, ...] = ()
    #: the enrolled spoke account the route's alarm and target live in (a hub's); None:
    #: the deployment's own account
    account: str | None = None


@dataclass(frozen=True)
class Result:
    """What happened to one delivery: returned by the handler and written to the audit."""

    audit_id: str
    outcome: Outcome
    reason: str = ""
    action: str | None = None
    target: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    #: an OK transition CloudWatch confirmed, gone through without failure: the incident
    #: its ALARM paged may be resolved (``notify.build_outcome_event``)
    resolves: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "resolves": self.resolves,
        }
