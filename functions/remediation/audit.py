"""The audit trail: one item per delivery, written before anything changes and completed after.

Pure ``build_*`` functions make the DynamoDB items; ``AuditLog`` writes them. Items live in
the shared table under ``pk = audit#<id>``; the ``by_target`` index lists a target's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from remediation.models import Outcome

RETENTION = timedelta(days=400)
# The table's shape: the CDK app, the drill and the tests all build it from these names.
PARTITION_KEY, SORT_KEY = "pk", "sk"
TARGET_INDEX, TARGET_INDEX_KEYS = "by_target", ("target", "created_at")
TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True)
class Entry:
    """What the audit knows about one delivery when it is opened."""

    audit_id: str
    correlation_id: str
    created_at: datetime
    source: str
    key: str
    state: str
    requested_by: str
    reason: str
    idempotency_key: str = ""
    action: str | None = None
    target: str | None = None
    params: dict[str, Any] | None = None
    mode: str | None = None
    raw: str | None = None


def _json(value: Any) -> dict:
    return {"S": json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)}


def build_item(entry: Entry, outcome: Outcome, detail: str = "") -> dict:
    """The DynamoDB item for an entry with its (first) outcome."""
    item = {
        "pk": {"S": f"audit#{entry.audit_id}"},
        "sk": {"S": "record"},
        "audit_id": {"S": entry.audit_id},
        "correlation_id": {"S": entry.correlation_id},
        "created_at": {"S": entry.created_at.isoformat()},
        "updated_at": {"S": entry.created_at.isoformat()},
        "source": {"S": entry.source},
        "key": {"S": entry.key or "-"},
        "state": {"S": entry.state or "-"},
        "requested_by": {"S": entry.requested_by or "-"},
        "reason": {"S": entry.reason or "-"},
        "outcome": {"S": str(outcome)},
        "detail": {"S": detail or "-"},
        "expires_at": {"N": str(int((entry.created_at + RETENTION).timestamp()))},
    }
    optional = {
        "idempotency_key": entry.idempotency_key,
        "action": entry.action,
        "target": entry.target,
        "mode": entry.mode,
        "raw": entry.raw,
    }
    item.update({k: {"S": v} for k, v in optional.items() if v})
    if entry.params is not None:
        item["params"] = _json(entry.params)
    return item


def build_close(
    outcome: Outcome,
    detail: str,
    now: datetime,
    *,
    before: Any = None,
    after: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict:
    """UpdateItem arguments that complete a pending entry exactly once."""
    values: dict[str, Any] = {
        ":outcome": {"S": str(outcome)},
        ":detail": {"S": detail or "-"},
        ":now": {"S": now.isoformat()},
        ":pending": {"S": str(Outcome.PENDING)},
    }
    sets = ["outcome = :outcome", "detail = :detail", "updated_at = :now"]
    fields = {"before_state": before, "after_state": after, **(extra or {})}
    for name, value in fields.items():
        if value is not None:
            values[f":{name}"] = _json(value)
            sets.append(f"{name} = :{name}")
    return {
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "outcome = :pending",
        "ExpressionAttributeValues": values,
    }


def parse_item(item: dict) -> dict[str, Any]:
    """A stored item -> plain dict (JSON fields decoded)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            text = value["S"]
            is_json = name in {"params", "before_state", "after_state", "plan"}
            out[name] = json.loads(text) if is_json else text
        elif "N" in value:
            out[name] = int(value["N"])
    return out


class AuditLog:
    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @property
    def table(self) -> str:
        """The table's name: actions keep their own items (block expiries) beside the audit."""
        return self._table

    def open(self, entry: Entry, outcome: Outcome = Outcome.PENDING, detail: str = "") -> None:
        """Write the entry. Raises if it cannot be written: never act without a record."""
        self._db.put_item(
            TableName=self._table,
            Item=build_item(entry, outcome, detail),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def close(self, audit_id: str, outcome: Outcome, detail: str, now: datetime, **fields) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"audit#{audit_id}"}, "sk": {"S": "record"}},
            **build_close(outcome, detail, now, **fields),
        )

    def get(self, audit_id: str) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"audit#{audit_id}"}, "sk": {"S": "record"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return parse_item(item) if item else None

    def history(self, target: str, page_size: int = 50) -> Iterator[dict[str, Any]]:
        """Every entry for ``target``, newest first, a page at a time (stop when found)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": TARGET_INDEX,
            "KeyConditionExpression": "target = :t",
            "ExpressionAttributeValues": {":t": {"S": target}},
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        while True:
            response = self._db.query(**kwargs)
            yield from (parse_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
