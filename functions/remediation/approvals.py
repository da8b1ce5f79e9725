"""Approvals: a planned change that waits for a human, and the human's approve or reject.

A route in ``approve`` mode plans as usual, then the remediator stores a pending approval
(``store.approval_key``): the route (action, target, parameters), the plan's before and after
states and summary, the alarm it answers, and a deadline (15 minutes by default). Nothing
changes. A human answers with a decision request, sent to the remediator that runs the action
(``remediate approve ID`` / ``remediate reject ID``, or a chat button)::

    {"approve": "<approval id>", "requested_by": "<who>", "reason": "...", "via": "cli"}
    {"reject":  "<approval id>", "requested_by": "<who>", "reason": "...", "via": "chat"}

Only those keys: the plan comes from the stored record, never from the request, so a request
that names an action, a target or a plan is refused as tampered. An approval is used once: a
conditional write moves it from ``pending`` to ``approved`` or ``rejected`` while its deadline
has not passed. Who decided, from where and when are kept on the approval and in the
decision's audit record (``requested_by``, ``reason``, ``raw``, ``created_at``).

Who may decide: ``requested_by`` must match one of the environment's ``approvers`` patterns
(``fnmatch``, e.g. an IAM role's assumed-role ARN with ``*`` for the session). The caller is
who IAM let invoke the function (``lambda:InvokeFunction``: the real boundary);
``requested_by`` is what the CLI or the chat button says it is, checked against the list.
With no approvers configured nobody may approve (fail closed).

Pure: parsing, the record's layout and the checks. ``Approvals`` reads and writes.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from .errors import RejectedError
from .models import Request, Route, RouteMode, Source
from .store import (
    APPROVALS,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    ConditionFailed,
    Item,
    Table,
    approval_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_EXPIRY = timedelta(minutes=15)
#: an approval record outlives its deadline this long, so a late answer is told "expired"
KEPT_AFTER_DEADLINE = timedelta(days=7)
APPROVE, REJECT = "approve", "reject"
#: an approval id (``uuid4().hex``)
ID_PATTERN = r"^[0-9a-f]{32}$"

DECISION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["requested_by", "reason"],
    "properties": {
        APPROVE: {"type": "string", "pattern": ID_PATTERN},
        REJECT: {"type": "string", "pattern": ID_PATTERN},
        "requested_by": {"type": "string", "minLength": 1, "maxLength": 256},
        "reason": {"type": "string", "minLength": 3, "maxLength": 1024},
        "via": {"type": "string", "minLength": 1, "maxLength": 256},
        "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
    },
}


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Policy:
    """The environment's settings for people in the loop (the playbook's ``people``)."""

    expiry: timedelta = DEFAULT_EXPIRY
    approvers: tuple[str, ...] = ()
    max_silence: timedelta = timedelta(hours=24)

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("playbook people: expected an object")
        approvers = data.get("approvers", [])
        if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
            raise ValueError("playbook people.approvers: expected a list of strings")
        expiry = int(data.get("approval_seconds", DEFAULT_EXPIRY.total_seconds()))
        silence = int(data.get("max_silence_seconds", 24 * 3600))
        if expiry < 60 or silence < 60:
            raise ValueError("playbook people: approval_seconds and max_silence_seconds >= 60")
        return cls(timedelta(seconds=expiry), tuple(approvers), timedelta(seconds=silence))

    def may_decide(self, who: str) -> bool:
        return any(fnmatch.fnmatchcase(who, pattern) for pattern in self.approvers)


# -- the decision request (intake) ---------------------------------------------------------------


def is_decision(message: Any) -> bool:
    return isinstance(message, dict) and (APPROVE in message or REJECT in message)


@cache
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    return fastjsonschema.compile(DECISION_SCHEMA)


def parse_decision(payload: dict[str, Any], raw: str) -> Request:
    """A decision request -> ``Request`` (source ``approval``, ``key`` the approval id);
    ``RejectedError`` for any other key (a tampered request) or both or neither verb."""
    from fastjsonschema import JsonSchemaException

    try:
        _validator()(payload)
    except JsonSchemaException as exc:
        message = str(getattr(exc, "message", exc)).replace("data.", "", 1)
        message = message.replace("data ", "request ", 1)
        raise RejectedError(
            f"approval decision invalid (only approve or reject, requested_by, reason, via; "
            f"the plan comes from the stored approval): {message}",
            raw=raw,
        ) from None
    verbs = [verb for verb in (APPROVE, REJECT) if verb in payload]
    if len(verbs) != 1:
        raise RejectedError("an approval decision names either approve or reject", raw=raw)
    request_id = payload.get("request_id")
    return Request(
        source=Source.APPROVAL,
        key=payload[verbs[0]],
        idempotency_key=f"manual|{request_id}" if request_id else "",
        state="ALARM",
        requested_by=payload["requested_by"],
        # who is requested_by, when is the record's time, and from where is kept here
        reason=f"{payload['reason']} (via {payload.get('via', 'unknown')})",
        details={"decision": verbs[0], "via": payload.get("via", "unknown")},
    )


# -- the stored approval --------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    approval_id: str
    route: Route
    before: Any
    after: Any
    summary: str
    asked_at: datetime
    deadline: datetime
    #: the audit record of the event that asked, and what it was (the alarm's name)
    origin_audit_id: str
    origin_key: str
    status: Status = Status.PENDING
    decided_by: str = ""
    decided_via: str = ""
    decided_at: str = ""
    #: the approval this one replaces (the target changed before that one was approved)
    replaces: str = ""
    #: the ARN of the alarm that asked (empty for a budget): an approval applies only while
    #: that alarm is still in ALARM
    origin_alarm: str = ""

    def left(self, now: datetime) -> timedelta:
        return max(self.deadline - now, timedelta(0))


def build_approval(
    route: Route,
    *,
    before: Any,
    after: Any,
    summary: str,
    now: datetime,
    expiry: timedelta,
    origin_audit_id: str,
    origin_key: str,
    replaces: str = "",
    origin_alarm: str = "",
) -> Approval:
    return Approval(
        approval_id=uuid.uuid4().hex,
        route=route,
        before=before,
        after=after,
        summary=summary,
        asked_at=now,
        deadline=now + expiry,
        origin_audit_id=origin_audit_id,
        origin_key=origin_key,
        replaces=replaces,
        origin_alarm=origin_alarm,
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def same_state(stored: Any, seen: Any) -> bool:
    """The target reads as it did when the plan was made (compared as JSON)."""
    return _json(stored) == _json(seen)


def approval_item(approval: Approval) -> Item:
    route = approval.route
    return {
        **approval_key(approval.approval_id),
        "approval_id": approval.approval_id,
        "status": str(approval.status),
        "action": route.action,
        "target": route.target,
        "params": _json(route.params),
        "mode": str(route.mode),
        "before_state": _json(approval.before),
        "after_state": _json(approval.after),
        "summary": approval.summary,
        "asked_at": approval.asked_at.isoformat(),
        "deadline": int(approval.deadline.timestamp()),
        "origin_audit_id": approval.origin_audit_id,
        "origin_key": approval.origin_key,
        "replaces": approval.replaces or None,
        "origin_alarm": approval.origin_alarm or None,
        TTL_ATTRIBUTE: int((approval.deadline + KEPT_AFTER_DEADLINE).timestamp()),
    }


def parse_approval(item: Mapping[str, Any]) -> Approval:
    return Approval(
        approval_id=str(item["approval_id"]),
        route=Route(
            str(item["action"]),
            str(item["target"]),
            json.loads(str(item.get("params", "{}"))),
            RouteMode(str(item.get("mode", RouteMode.APPROVE))),
        ),
        before=json.loads(str(item.get("before_state", "null"))),
        after=json.loads(str(item.get("after_state", "null"))),
        summary=str(item.get("summary", "")),
        asked_at=datetime.fromisoformat(str(item["asked_at"])),
        deadline=datetime.fromtimestamp(int(item["deadline"]), UTC),
        origin_audit_id=str(item.get("origin_audit_id", "")),
        origin_key=str(item.get("origin_key", "")),
        status=Status(str(item.get("status", Status.PENDING))),
        decided_by=str(item.get("decided_by", "")),
        decided_via=str(item.get("decided_via", "")),
        decided_at=str(item.get("decided_at", "")),
        replaces=str(item.get("replaces") or ""),
        origin_alarm=str(item.get("origin_alarm") or ""),
    )


def check_decision(
    approval: Approval | None, request: Request, now: datetime, policy: Policy
) -> Approval:
    """Pure: the approval a decision may act on, or ``RejectedError`` saying why not
    (unknown id, a caller not among the approvers, already decided, expired)."""
    if approval is None:
        raise RejectedError(f"no approval {request.key!r}: unknown id (or long expired)")
    if not policy.may_decide(request.requested_by):
        allowed = ", ".join(policy.approvers) or "nobody (no approvers configured)"
        raise RejectedError(
            f"{request.requested_by!r} may not decide approvals; approvers: {allowed}"
        )
    if approval.status is not Status.PENDING:
        raise RejectedError(
            f"approval {approval.approval_id} was already {approval.status} by "
            f"{approval.decided_by or '?'} at {approval.decided_at or '?'}: it is used once"
        )
    if now >= approval.deadline:
        raise RejectedError(
            f"approval {approval.approval_id} expired at {approval.deadline.isoformat()}: "
            "nothing changed; the next alarm asks again"
        )
    return approval


class Approvals:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self.store = Table(dynamodb_client, table)

    def ask(self, approval: Approval) -> None:
        self.store.put(approval_item(approval), condition=f"attribute_not_exists({PARTITION_KEY})")

    def get(self, approval_id: str) -> Approval | None:
        item = self.store.get(approval_key(approval_id))
        return parse_approval(item) if item else None

    def decide(
        self, approval: Approval, decision: str, *, by: str, via: str, now: datetime
    ) -> Approval:
        """Use the approval once: pending -> approved / rejected, if its deadline has not
        passed. ``RejectedError`` if another decision got there first or it expired."""
        status = Status.APPROVED if decision == APPROVE else Status.REJECTED
        try:
            self.store.update(
                approval_key(approval.approval_id),
                "SET #s = :s, decided_by = :by, decided_via = :via, decided_at = :at",
                condition="#s = :pending AND deadline > :now",
                names={"#s": "status"},
                values={
                    ":s": str(status),
                    ":by": by,
                    ":via": via,
                    ":at": now.isoformat(),
                    ":pending": str(Status.PENDING),
                    ":now": int(now.timestamp()),
                },
            )
        except ConditionFailed:
            current = self.get(approval.approval_id)
            raise RejectedError(
                f"approval {approval.approval_id} was decided or expired meanwhile"
                + (f" ({current.status} by {current.decided_by or '?'})" if current else "")
            ) from None
        return replace(
            approval, status=status, decided_by=by, decided_via=via, decided_at=now.isoformat()
        )

    def all(self) -> Iterator[Approval]:
        for item in self.store.partition(APPROVALS):
            yield parse_approval(item)

    def pending(self, now: datetime) -> list[Approval]:
        """Approvals still waiting at ``now`` (deadline checked: TTL deletion is lazy)."""
        found = [a for a in self.all() if a.status is Status.PENDING and now < a.deadline]
        return sorted(found, key=lambda a: a.deadline)
