"""The audit trail: one record per delivery, written before anything changes and completed after.

Pure ``build_*`` functions say what a record holds; ``AuditLog`` keeps records in the table
(``store.py`` owns the key layout and the wire format). ``recorder.py`` decides when a
record is opened and closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from .models import Outcome, Source
from .store import (
    PARTITION_KEY,
    SORT_KEY,
    TARGET_INDEX,
    TARGET_INDEX_KEYS,
    TTL_ATTRIBUTE,
    Table,
    Write,
    audit_key,
    from_wire,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "PARTITION_KEY",
    "RETENTION",
    "SORT_KEY",
    "TARGET_INDEX",
    "TARGET_INDEX_KEYS",
    "TTL_ATTRIBUTE",
    "AuditLog",
    "AuditRecord",
    "Entry",
    "build_close",
    "build_record",
    "parse_item",
]

RETENTION = timedelta(days=400)
#: fields kept as JSON text (any shape, one attribute)
JSON_FIELDS = frozenset({"params", "before_state", "after_state", "plan"})


@dataclass(frozen=True)
class Entry:
    """What the audit knows about one delivery when it is opened."""

    audit_id: str
    correlation_id: str
    created_at: datetime
    source: Source
    key: str
    state: str
    requested_by: str
    reason: str
    idempotency_key: str = ""
    action: str | None = None
    target: str | None = None
    params: Mapping[str, Any] | None = None
    mode: str | None = None
    raw: str | None = None
    #: a follow-up step's record names the record of the action it followed
    parent: str | None = None
    #: a hub's record names the account it acted in (the event's, enrolled)
    account: str | None = None


class AuditRecord(TypedDict, total=False):
    """A record read back (``parse_item``): what ``Entry`` and the outcome wrote."""

    audit_id: str
    correlation_id: str
    created_at: str
    updated_at: str
    source: str
    key: str
    state: str
    requested_by: str
    reason: str
    outcome: str
    detail: str
    expires_at: int
    idempotency_key: str
    action: str
    target: str
    mode: str
    raw: str
    parent: str
    account: str
    params: dict[str, Any]
    before_state: dict[str, Any]
    after_state: dict[str, Any]


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


def build_record(entry: Entry, outcome: Outcome, detail: str = "") -> dict[str, Any]:
    """Pure: the attributes of an entry's record with its (first) outcome."""
    record: dict[str, Any] = {
        **audit_key(entry.audit_id),
        "audit_id": entry.audit_id,
        "correlation_id": entry.correlation_id,
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.created_at.isoformat(),
        "source": str(entry.source),
        "key": entry.key or "-",
        "state": entry.state or "-",
        "requested_by": entry.requested_by or "-",
        "reason": entry.reason or "-",
        "outcome": str(outcome),
        "detail": detail or "-",
        TTL_ATTRIBUTE: int((entry.created_at + RETENTION).timestamp()),
    }
    optional = {
        "idempotency_key": entry.idempotency_key,
        "action": entry.action,
        "target": entry.target,
        "mode": entry.mode,
        "raw": entry.raw,
        "parent": entry.parent,
        "account": entry.account,
    }
    record.update({name: value for name, value in optional.items() if value})
    if entry.params is not None:
        record["params"] = _json(entry.params)
    return record


@dataclass(frozen=True)
class Close:
    """An UpdateItem that completes a pending record exactly once."""

    update: str
    condition: str
    values: dict[str, Any]


def build_close(
    outcome: Outcome,
    detail: str,
    now: datetime,
    *,
    before: Any = None,
    after: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> Close:
    """Pure: the update that completes a pending record exactly once."""
    values: dict[str, Any] = {
        ":outcome": str(outcome),
        ":detail": detail or "-",
        ":now": now.isoformat(),
        ":pending": str(Outcome.PENDING),
    }
    sets = ["outcome = :outcome", "detail = :detail", "updated_at = :now"]
    fields = {"before_state": before, "after_state": after, **(extra or {})}
    for name, value in fields.items():
        if value is not None:
            values[f":{name}"] = _json(value)
            sets.append(f"{name} = :{name}")
    return Close("SET " + ", ".join(sets), "outcome = :pending", values)


def parse_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record (wire format, as a scan returns it) -> plain data, JSON decoded."""
    return dict(_decoded(from_wire(item)))


class AuditLog:
    def __init__(self, dynamodb_client: DynamoDBClient, table: str) -> None:
        self.store = Table(dynamodb_client, table)

    @property
    def table(self) -> str:
        """The table's name: actions keep their own items (block expiries) beside the audit."""
        return self.store.name

    def open(
        self,
        entry: Entry,
        outcome: Outcome = Outcome.PENDING,
        detail: str = "",
        *,
        also: Sequence[Write] = (),
    ) -> None:
        """Write the entry, with ``also`` in the same transaction (all or none: a
        ``Canceled`` names the writes whose condition failed, the record's first). Raises
        if it cannot be written: never act without a record."""
        record = Write(
            item=build_record(entry, outcome, detail),
            condition=f"attribute_not_exists({PARTITION_KEY})",
        )
        if also:
            self.store.transact([record, *also])
        else:
            self._write(record)

    def close(
        self,
        audit_id: str,
        outcome: Outcome,
        detail: str,
        now: datetime,
        *,
        before: Any = None,
        after: Any = None,
        extra: Mapping[str, Any] | None = None,
        also: Sequence[Write] = (),
    ) -> None:
        """Complete a pending record, with ``also`` in the same transaction."""
        done = build_close(outcome, detail, now, before=before, after=after, extra=extra)
        record = Write(
            key=audit_key(audit_id),
            update=done.update,
            condition=done.condition,
            values=done.values,
        )
        if also:
            self.store.transact([record, *also])
        else:
            self._write(record)

    def _write(self, write: Write) -> None:
        """One write alone: a plain put or update (no transaction's doubled cost)."""
        if write.item is not None:
            self.store.put(write.item, condition=write.condition, values=write.values or None)
        else:
            self.store.update(
                write.key or {}, write.update, condition=write.condition, values=write.values
            )

    def get(self, audit_id: str) -> AuditRecord | None:
        item = self.store.get(audit_key(audit_id))
        return _decoded(item) if item else None

    def history(self, target: str, page_size: int = 50) -> Iterator[AuditRecord]:
        """Every record for ``target``, newest first, a page at a time (stop when found)."""
        for item in self.store.by_target(target, page_size):
            yield _decoded(item)


def _decoded(plain: dict[str, Any]) -> AuditRecord:
    for name in JSON_FIELDS & plain.keys():
        if isinstance(plain[name], str):
            plain[name] = json.loads(plain[name])
    return cast(AuditRecord, plain)
