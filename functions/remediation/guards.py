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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import EscalatedError
from .store import (
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    ConditionFailed,
    GuardKind,
    Item,
    Table,
    guard_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BREAKER_RETRIES = 5
COOLDOWN, BREAKER = GuardKind.COOLDOWN, GuardKind.BREAKER


@dataclass(frozen=True)
class GuardSettings:
    cooldown_seconds: int = 900
    breaker_max: int = 3
    breaker_window_seconds: int = 3600


class Blocked(EscalatedError):
    """A guard says no (cooldown, circuit breaker): a human looks, nothing changes."""


class Guards:
    def __init__(
        self, dynamodb_client: DynamoDBClient, table: str, settings: GuardSettings
    ) -> None:
        self._table = Table(dynamodb_client, table)
        self.settings = settings

    def check(self, target: str, now: datetime) -> None:
        """Read-only: raise ``Blocked`` if an action now would be refused (for dry-run)."""
        epoch = int(now.timestamp())
        cooldown = self._table.get(guard_key(target, COOLDOWN))
        if cooldown and int(cooldown["until"]) > epoch:
            raise Blocked(_cooldown_reason(cooldown))
        breaker = self._table.get(guard_key(target, BREAKER))
        stamps = recent(_stamps(breaker), epoch, self.settings.breaker_window_seconds)
        if len(stamps) >= self.settings.breaker_max:
            raise Blocked(self._breaker_reason(len(stamps)))

    def claim(self, target: str, now: datetime, *, audit_id: str = "-", action: str = "-") -> None:
        """Atomically take the cooldown and a breaker slot for ``target``, or raise ``Blocked``."""
        epoch = int(now.timestamp())
        until = epoch + self.settings.cooldown_seconds
        try:
            self._table.put(
                {
                    **guard_key(target, COOLDOWN),
                    "until": until,
                    "since": epoch,
                    "audit_id": audit_id,
                    "action": action,
                    TTL_ATTRIBUTE: until + 86400,
                },
                condition=f"attribute_not_exists({PARTITION_KEY}) OR #until <= :now",
                names={"#until": "until"},
                values={":now": epoch},
                return_current=True,
            )
        except ConditionFailed as lost:
            raise Blocked(_cooldown_reason(lost.current)) from None
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
            item = self._table.get(guard_key(target, BREAKER))
            stamps = _stamps(item)
            if not item or epoch not in stamps:
                return
            stamps.remove(epoch)
            version = int(item["version"])
            try:
                self._table.update(
                    guard_key(target, BREAKER),
                    "SET stamps = :s, version = :next",
                    condition="version = :v",
                    values={":s": stamps, ":next": version + 1, ":v": version},
                )
                return
            except ConditionFailed:
                continue

    def _release_cooldown(self, target: str, audit_id: str) -> None:
        # Another action may hold it now: then it is not ours to give back.
        self._table.delete(
            guard_key(target, COOLDOWN), condition="audit_id = :mine", values={":mine": audit_id}
        )

    def _take_breaker_slot(self, target: str, epoch: int) -> None:
        window = self.settings.breaker_window_seconds
        for _ in range(BREAKER_RETRIES):
            item = self._table.get(guard_key(target, BREAKER))
            version = int(item["version"]) if item else 0
            stamps = recent(_stamps(item), epoch, window)
            if len(stamps) >= self.settings.breaker_max:
                raise Blocked(self._breaker_reason(len(stamps)))
            try:
                self._table.put(
                    {
                        **guard_key(target, BREAKER),
                        "stamps": [*stamps, epoch],
                        "version": version + 1,
                        TTL_ATTRIBUTE: epoch + window + 86400,
                    },
                    condition=f"attribute_not_exists({PARTITION_KEY}) OR version = :v",
                    values={":v": version},
                )
                return
            except ConditionFailed:
                continue
        # Could not record the slot: refuse rather than act uncounted.
        raise Blocked("circuit breaker busy: could not record the action")

    def _breaker_reason(self, count: int) -> str:
        s = self.settings
        return (
            f"circuit breaker open: {count} automatic actions on this target in the last "
            f"{s.breaker_window_seconds // 60} min (limit {s.breaker_max}); a human must decide"
        )


def recent(stamps: list[int], now: int, window: int) -> list[int]:
    """The action times still inside the sliding window ending at ``now``."""
    return sorted(s for s in stamps if s > now - window)


def _stamps(item: Item | None) -> list[int]:
    if not item:
        return []
    return [int(s) for s in item.get("stamps", [])]


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cooldown_reason(item: Item | None) -> str:
    """An alarm during the cooldown fires again after an executed action: a human looks."""
    item = item or {}
    until = _when(int(item.get("until", 0)))
    action: Any = item.get("action", "-")
    if "since" not in item or action == "-":
        return f"target in cooldown until {until}: still alarming after the last action"
    since = _when(int(item["since"]))
    audit_id = item.get("audit_id", "?")
    return (
        f"still alarming after {action} at {since} (audit {audit_id}); needs a human "
        f"(cooldown until {until})"
    )
