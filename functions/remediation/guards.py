"""Guards kept in DynamoDB with conditional writes, so concurrent deliveries cannot both act.

- cooldown: one automatic action per target per ``cooldown_seconds``;
- circuit breaker: at most ``breaker_max`` automatic actions per target in a sliding
  ``breaker_window_seconds``; past it the pipeline escalates to a human instead of acting.

The cooldown item names the action and audit record that took it: an alarm firing again
during the cooldown is still alarming after that action, and escalates saying so ("still
alarming after rollback at 03:12"). A failed action gives back what it took (``release``):
the cooldown only while it is still its own, and its breaker slot, so a redrive from the
dead-letter queue acts again and failures do not trip the breaker.

Idempotency (the same alarm transition delivered twice) is Powertools' idempotency utility,
see ``pipeline.py``. Items live in the audit table under ``pk = guard#<target>``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BREAKER_RETRIES = 5


@dataclass(frozen=True)
class GuardSettings:
    cooldown_seconds: int = 900
    breaker_max: int = 3
    breaker_window_seconds: int = 3600


class Blocked(Exception):
    """A guard says no. ``escalate`` is true when a human must look (breaker tripped)."""

    def __init__(self, reason: str, *, escalate: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.escalate = escalate


class Guards:
    def __init__(self, dynamodb_client: Any, table: str, settings: GuardSettings) -> None:
        self._db = dynamodb_client
        self._table = table
        self.settings = settings

    def check(self, target: str, now: datetime) -> None:
        """Read-only: raise ``Blocked`` if an action now would be refused (for dry-run)."""
        epoch = int(now.timestamp())
        cooldown = self._get(target, "cooldown")
        if cooldown and int(cooldown["until"]["N"]) > epoch:
            raise Blocked(_cooldown_reason(cooldown), escalate=True)
        breaker = self._get(target, "breaker")
        stamps = recent(_stamps(breaker), epoch, self.settings.breaker_window_seconds)
        if len(stamps) >= self.settings.breaker_max:
            raise Blocked(self._breaker_reason(len(stamps)), escalate=True)

    def claim(self, target: str, now: datetime, *, audit_id: str = "-", action: str = "-") -> None:
        """Atomically take the cooldown and a breaker slot for ``target``, or raise ``Blocked``."""
        epoch = int(now.timestamp())
        until = epoch + self.settings.cooldown_seconds
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **_key(target, "cooldown"),
                    "until": {"N": str(until)},
                    "since": {"N": str(epoch)},
                    "audit_id": {"S": audit_id},
                    "action": {"S": action},
                    "expires_at": {"N": str(until + 86400)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #until <= :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": {"N": str(epoch)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException as exc:
            raise Blocked(_cooldown_reason(exc.response.get("Item")), escalate=True) from None
        try:
            self._take_breaker_slot(target, epoch)
        except Blocked:
            self._release_cooldown(target, audit_id)
            raise

    def release(self, target: str, now: datetime, *, audit_id: str) -> None:
        """Give back what ``claim`` took for a failed action: the cooldown if it is still
        this action's, and its breaker slot."""
        self._release_cooldown(target, audit_id)
        epoch = int(now.timestamp())
        for _ in range(BREAKER_RETRIES):
            item = self._get(target, "breaker", consistent=True)
            stamps = _stamps(item)
            if not item or epoch not in stamps:
                return
            stamps.remove(epoch)
            version = int(item["version"]["N"])
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=_key(target, "breaker"),
                    UpdateExpression="SET stamps = :s, version = :next",
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={
                        ":s": {"L": [{"N": str(s)} for s in stamps]},
                        ":next": {"N": str(version + 1)},
                        ":v": {"N": str(version)},
                    },
                )
                return
            except self._db.exceptions.ConditionalCheckFailedException:
                continue

    def _release_cooldown(self, target: str, audit_id: str) -> None:
        # Another action may hold it now: then it is not ours to give back.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.delete_item(
                TableName=self._table,
                Key=_key(target, "cooldown"),
                ConditionExpression="audit_id = :mine",
                ExpressionAttributeValues={":mine": {"S": audit_id}},
            )

    def _take_breaker_slot(self, target: str, epoch: int) -> None:
        window = self.settings.breaker_window_seconds
        for _ in range(BREAKER_RETRIES):
            item = self._get(target, "breaker", consistent=True)
            version = int(item["version"]["N"]) if item else 0
            stamps = recent(_stamps(item), epoch, window)
            if len(stamps) >= self.settings.breaker_max:
                raise Blocked(self._breaker_reason(len(stamps)), escalate=True)
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={
                        **_key(target, "breaker"),
                        "stamps": {"L": [{"N": str(s)} for s in [*stamps, epoch]]},
                        "version": {"N": str(version + 1)},
                        "expires_at": {"N": str(epoch + window + 86400)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
                return
            except self._db.exceptions.ConditionalCheckFailedException:
                continue
        # Could not record the slot: refuse rather than act uncounted.
        raise Blocked("circuit breaker busy: could not record the action", escalate=True)

    def _get(self, target: str, kind: str, *, consistent: bool = True) -> dict | None:
        response = self._db.get_item(
            TableName=self._table, Key=_key(target, kind), ConsistentRead=consistent
        )
        return response.get("Item")

    def _breaker_reason(self, count: int) -> str:
        s = self.settings
        return (
            f"circuit breaker open: {count} automatic actions on this target in the last "
            f"{s.breaker_window_seconds // 60} min (limit {s.breaker_max}); a human must decide"
        )


def recent(stamps: list[int], now: int, window: int) -> list[int]:
    """The action times still inside the sliding window ending at ``now``."""
    return sorted(s for s in stamps if s > now - window)


def _stamps(item: dict | None) -> list[int]:
    if not item:
        return []
    return [int(v["N"]) for v in item.get("stamps", {}).get("L", [])]


def _key(target: str, kind: str) -> dict:
    return {"pk": {"S": f"guard#{target}"}, "sk": {"S": kind}}


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cooldown_reason(item: dict | None) -> str:
    """An alarm during the cooldown fires again after an executed action: a human looks."""
    item = item or {}
    until = _when(int(item.get("until", {}).get("N", "0")))
    action = item.get("action", {}).get("S", "-")
    if "since" not in item or action == "-":
        return f"target in cooldown until {until}: still alarming after the last action"
    since = _when(int(item["since"]["N"]))
    audit_id = item.get("audit_id", {}).get("S", "?")
    return (
        f"still alarming after {action} at {since} (audit {audit_id}); needs a human "
        f"(cooldown until {until})"
    )
