"""The one DynamoDB table: its shape, every item's key layout, and the wire format.

Everything the suite keeps lives in one table (the CDK app, the drill and the tests build
it from the names here). Item kinds, by partition key / sort key:

=================  =======================  ======================  ============================
kind               pk                       sk                      kept by
=================  =======================  ======================  ============================
audit record       ``audit#<id>``           ``record``              ``audit.AuditLog``
guards             ``guard#<target>``       ``state``               ``guards.Guards``
block expiry       ``block#<ip set ARN>``   ``<address CIDR>``      ``actions.waf_block``
block index        ``block-index``          ``<ip set ARN>``        ``actions.waf_block``
transition         ``once#<env>``           ``<transition key>``    ``once.Once``
approval           ``approvals``            ``<approval id>``       ``approvals.Approvals``
silence            ``silences``             ``<silence id>``        ``silences.Silences``
=================  =======================  ======================  ============================

A target's guard item holds its cooldown, its circuit breaker's last stamps and the marker of
its silences (``silences.Silences`` keeps the marker, ``guards.Guards`` reads it when it
claims), so one conditional write decides all three.

Audit records are also listed per target by the ``by_target`` index (``target``,
``created_at``); every kind but the guard items (one per target, kept: a silence marker must
never expire early) expires through the TTL attribute ``expires_at``.

Values cross the wire through boto3's ``TypeSerializer`` / ``TypeDeserializer``: callers
hand ``Table`` plain Python (``str``, ``int``, lists, dicts) and get plain Python back
(DynamoDB numbers as ``int``). Nothing outside this module writes ``{"S": ...}``.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from .clients import error_code
from .errors import FailedError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        DeleteItemInputTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
        UpdateItemInputTypeDef,
    )

# -- the table's shape ----------------------------------------------------------------------

PARTITION_KEY, SORT_KEY = "pk", "sk"
TARGET_INDEX, TARGET_INDEX_KEYS = "by_target", ("target", "created_at")
#: the TTL attribute (epoch seconds) of every item kind
TTL_ATTRIBUTE = "expires_at"

#: a DynamoDB item or key as plain Python
Item = dict[str, Any]
#: the conditional write lost: another writer got there first
CONDITION_FAILED = "ConditionalCheckFailedException"


#: the guard item's attributes that say a silence holds the target (``silences.py`` writes
#: them, ``guards.py`` honours them): until when (epoch seconds), and why, as a person reads it
SILENCED_UNTIL, SILENCED_BY = "silenced_until", "silenced_by"
#: the marker's version: each change of it is conditioned on the version read
SILENCE_VERSION = "silence_version"


# -- key layouts ----------------------------------------------------------------------------

AUDIT_SORT = "record"
BLOCK_INDEX = "block-index"


def audit_key(audit_id: str) -> Item:
    return {PARTITION_KEY: f"audit#{audit_id}", SORT_KEY: AUDIT_SORT}


def is_audit_item(item: Mapping[str, Any]) -> bool:
    """True for an audit record (plain or wire format), not a guard, block or idempotency."""
    pk = item.get(PARTITION_KEY)
    text = pk.get("S") if isinstance(pk, dict) else pk
    return isinstance(text, str) and text.startswith("audit#")


def guard_key(target: str) -> Item:
    return {PARTITION_KEY: f"guard#{target}", SORT_KEY: "state"}


def block_partition(ip_set_arn: str) -> str:
    return f"block#{ip_set_arn}"


def block_key(ip_set_arn: str, address: str) -> Item:
    return {PARTITION_KEY: block_partition(ip_set_arn), SORT_KEY: address}


def block_index_key(ip_set_arn: str) -> Item:
    return {PARTITION_KEY: BLOCK_INDEX, SORT_KEY: ip_set_arn}


APPROVALS = "approvals"
SILENCES = "silences"


def approval_key(approval_id: str) -> Item:
    return {PARTITION_KEY: APPROVALS, SORT_KEY: approval_id}


def silence_key(silence_id: str) -> Item:
    return {PARTITION_KEY: SILENCES, SORT_KEY: silence_id}


def transition_key(env: str, key: str) -> Item:
    """The item that says alarm transition ``key`` was (or is being) handled (hashed: a
    sort key holds at most 1 KB)."""
    return {PARTITION_KEY: f"once#{env}", SORT_KEY: hashlib.sha256(key.encode()).hexdigest()}


# -- wire format ----------------------------------------------------------------------------

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_wire(values: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """Plain Python -> DynamoDB's attribute values (``None`` values are left out)."""
    return {name: _SERIALIZER.serialize(v) for name, v in values.items() if v is not None}


def from_wire(item: Mapping[str, Any]) -> Item:
    """DynamoDB's attribute values -> plain Python (whole numbers as ``int``)."""
    return {name: _plain(_DESERIALIZER.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


class ConditionFailed(FailedError):
    """A conditional write lost to another writer. ``current`` is the item as it stands,
    when the write asked for it (``return_current``)."""

    def __init__(self, reason: str, current: Item | None = None) -> None:
        super().__init__(reason)
        self.current = current


class Table:
    """The table, spoken to in plain Python. One call to DynamoDB per method call (pages
    aside), so what the suite costs in calls is what its callers make."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_current: bool = False,
    ) -> None:
        """PutItem; ``ConditionFailed`` (with the current item if ``return_current``)."""
        request: PutItemInputTypeDef = {"TableName": self.name, "Item": to_wire(item)}
        if condition:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = to_wire(values)
        if return_current:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self.client.put_item(**request)
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            raise _lost(exc) from None

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
        found = self.client.get_item(
            TableName=self.name, Key=to_wire(key), ConsistentRead=consistent
        )
        item = found.get("Item")
        return from_wire(item) if item else None

    def update(
        self,
        key: Mapping[str, Any],
        update: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """UpdateItem; ``ConditionFailed`` if ``condition`` does not hold."""
        request: UpdateItemInputTypeDef = {
            "TableName": self.name,
            "Key": to_wire(key),
            "UpdateExpression": update,
        }
        if condition:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = to_wire(values)
        try:
            self.client.update_item(**request)
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            raise _lost(exc) from None

    def delete(
        self,
        key: Mapping[str, Any],
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """DeleteItem; False (nothing deleted) if ``condition`` does not hold."""
        request: DeleteItemInputTypeDef = {"TableName": self.name, "Key": to_wire(key)}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = to_wire(values)
        try:
            self.client.delete_item(**request)
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        return True

    def transact(self, writes: Sequence[Write]) -> list[Write]:
        """All of ``writes`` at once (``TransactWriteItems``), or ``Canceled``. Optional
        writes whose own condition fails are dropped and the rest written again (one more
        call); the writes that were made are returned."""
        writes = list(writes)
        while writes:
            try:
                self._transact(writes)
                return writes
            except Canceled as canceled:
                lost = [w for i, w in enumerate(writes) if canceled.lost(i)]
                if not lost or not all(w.optional for w in lost):
                    raise
                writes = [w for w in writes if w not in lost]
        return []

    def _transact(self, writes: Sequence[Write]) -> None:
        """One ``TransactWriteItems``: every write or none. ``Canceled`` when a condition
        fails; a conflict with another transaction on the same items is tried again."""
        items: Any = [w.request(self.name) for w in writes]
        for attempt in range(_CONFLICT_TRIES):
            try:
                self.client.transact_write_items(TransactItems=items)
                return
            except Exception as exc:
                reasons = (getattr(exc, "response", None) or {}).get("CancellationReasons")
                if error_code(exc) != "TransactionCanceledException" or not reasons:
                    raise
                codes = [r.get("Code") or "None" for r in reasons]
                if _CONFLICT in codes and attempt + 1 < _CONFLICT_TRIES:
                    cap = min(_CONFLICT_CAP_SECONDS, 0.05 * 2**attempt)
                    time.sleep(random.uniform(0, cap))
                    continue
                if any(c not in ("None", "ConditionalCheckFailed") for c in codes):
                    raise
                raise Canceled(
                    [
                        from_wire(r.get("Item") or {}) if c == "ConditionalCheckFailed" else None
                        for r, c in zip(reasons, codes, strict=True)
                    ]
                ) from None

    def partition(self, pk: str) -> Iterator[Item]:
        """Every item under ``pk``, in sort key order, read consistently, page by page."""
        request: QueryInputTypeDef = {
            "TableName": self.name,
            "KeyConditionExpression": f"{PARTITION_KEY} = :pk",
            "ExpressionAttributeValues": to_wire({":pk": pk}),
            "ConsistentRead": True,
        }
        yield from self._pages(request)

    def by_target(self, target: str, page_size: int = 50) -> Iterator[Item]:
        """Every audit record of ``target``, newest first, a page at a time (stop early to
        read fewer pages)."""
        request: QueryInputTypeDef = {
            "TableName": self.name,
            "IndexName": TARGET_INDEX,
            "KeyConditionExpression": f"{TARGET_INDEX_KEYS[0]} = :t",
            "ExpressionAttributeValues": to_wire({":t": target}),
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        yield from self._pages(request)

    def _pages(self, request: QueryInputTypeDef) -> Iterator[Item]:
        while True:
            page = self.client.query(**request)
            yield from (from_wire(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass(frozen=True)
class Write:
    """One write of a transaction (``Table.transact``): a put (``item``), an update
    (``key`` and ``update``), a condition check (``key`` and ``check``) or a delete (``key``
    alone), each with its condition. An ``optional`` write is dropped, and the rest written
    again, when only its own condition fails: giving back what is no longer ours must never
    cost the record."""

    item: Mapping[str, Any] | None = None
    key: Mapping[str, Any] | None = None
    update: str = ""
    condition: str = ""
    names: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False
    #: writes nothing: only its condition counts (the item is read in the transaction)
    check: bool = False

    def request(self, table: str) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": table}
        if self.item is not None:
            kind, body["Item"] = "Put", to_wire(self.item)
        elif self.check:
            kind, body["Key"] = "ConditionCheck", to_wire(self.key or {})
        elif self.update:
            kind, body["Key"], body["UpdateExpression"] = (
                "Update",
                to_wire(self.key or {}),
                self.update,
            )
        else:
            kind, body["Key"] = "Delete", to_wire(self.key or {})
        if self.condition:
            body["ConditionExpression"] = self.condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if self.names:
            body["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            body["ExpressionAttributeValues"] = to_wire(self.values)
        return {kind: body}


class Canceled(FailedError):
    """A transaction whose conditions did not all hold: nothing of it was written.
    ``failed[i]`` is the item as it stands for each write whose condition failed (``{}``
    for an absent item), None for the others."""

    def __init__(self, failed: list[Item | None]) -> None:
        super().__init__("transaction canceled: a condition did not hold")
        self.failed = failed

    def lost(self, index: int) -> bool:
        return self.failed[index] is not None


#: another transaction on the same item: DynamoDB cancels, the caller tries again (a storm
#: of deliveries on one target contends for its guard item): jittered, up to ~5 s in all
_CONFLICT = "TransactionConflict"
_CONFLICT_TRIES = 10
_CONFLICT_CAP_SECONDS = 1.0


def _lost(exc: Exception) -> ConditionFailed:
    """A conditional-check failure as ``ConditionFailed``, with the item DynamoDB returned."""
    response = getattr(exc, "response", None) or {}
    current = response.get("Item")
    return ConditionFailed("conditional write lost", from_wire(current) if current else None)
