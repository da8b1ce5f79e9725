"""Guards kept in DynamoDB, decided by one conditional write, so concurrent deliveries
cannot both act.

- cooldown: one automatic action per target per ``cooldown_seconds``;
- circuit breaker: at most ``breaker_max`` automatic actions per target in a sliding
  ``breaker_window_seconds``; past it the pipeline escalates to a human instead of acting;
- silences: a target a person silenced is held (``silences.py`` keeps the marker); a run
  that claims nothing still reads the marker in its record's transaction (``look``).

All three live in one item per target (``store.guard_key``; kept, not expired: a silence
marker must outlive any TTL), so ``claim`` is a single
conditional update, written in the same transaction as the audit record's intent and the
alarm transition's claim (``pipeline.py``). The breaker keeps the target's last
``breaker_max`` action times in ``b1`` (newest) .. ``bN``: a slot is free when ``bN`` is
empty or older than the window, and taking it shifts them along; no read comes first.

The cooldown names the action and audit record that took it: an alarm firing again during
the cooldown is still alarming after that action, and escalates saying so ("still alarming
after rollback at 03:12"). An action that does not execute gives back what it took
(``release``, in the transaction that completes its record), while it is still its own, so
a redrive from the dead-letter queue acts again and failures do not trip the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import EscalatedError
from .store import (
    SILENCED_BY,
    SILENCED_UNTIL,
    Item,
    Table,
    Write,
    guard_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: who holds the cooldown (and the newest breaker slot): released only by the same record
HOLDER = "audit_id"
#: whether the holder's action was executed (set with its record's outcome)
EXECUTED = "executed"
#: the most breaker slots one item keeps: the claim's expression must stay under DynamoDB's
#: 4 KB (3.3 KB at 100)
MAX_BREAKER = 100


@dataclass(frozen=True)
class GuardSettings:
    cooldown_seconds: int = 900
    breaker_max: int = 3
    breaker_window_seconds: int = 3600


class Blocked(EscalatedError):
    """A guard says no (cooldown, circuit breaker): a human looks, nothing changes."""


@dataclass(frozen=True)
class Refusal:
    """Why a claim was refused, read from the guard item as it stood (pure)."""

    #: a silence holds the target (the pipeline holds the change: outcome ``silenced``)
    silenced: str | None = None
    #: the cooldown or the breaker says no (the pipeline escalates)
    blocked: str | None = None


class Guards:
    def __init__(
        self, dynamodb_client: DynamoDBClient, table: str, settings: GuardSettings
    ) -> None:
        self._table = Table(dynamodb_client, table)
        self.settings = settings

    # -- the writes, made in the pipeline's transactions ------------------------------------

    def claim(self, target: str, now: datetime, *, audit_id: str, action: str) -> Write:
        """The update that takes ``target``'s cooldown and a breaker slot, on condition that
        no silence holds it, its cooldown has ended and a breaker slot is free."""
        epoch = int(now.timestamp())
        s = self.settings
        n = s.breaker_max
        shift = [f"b{i} = if_not_exists(b{i - 1}, :zero)" for i in range(n, 1, -1)]
        values: dict[str, Any] = {
            ":now": epoch,
            ":until": epoch + s.cooldown_seconds,
            ":mine": audit_id,
            ":action": action,
            ":edge": epoch - s.breaker_window_seconds,
            ":no": False,
        }
        if shift:  # DynamoDB refuses a value the expressions do not use
            values[":zero"] = 0
        return Write(
            key=guard_key(target),
            update="SET "
            + ", ".join(
                [
                    *shift,
                    "b1 = :now",
                    "#until = :until",
                    "since = :now",
                    f"{HOLDER} = :mine",
                    "#action = :action",
                    f"{EXECUTED} = :no",
                ]
            ),
            condition=(
                f"(attribute_not_exists({SILENCED_UNTIL}) OR {SILENCED_UNTIL} <= :now)"
                " AND (attribute_not_exists(#until) OR #until <= :now)"
                f" AND (attribute_not_exists(b{n}) OR b{n} <= :edge)"
            ),
            names={"#until": "until", "#action": "action"},
            values=values,
        )

    def executed(self, target: str, *, audit_id: str) -> Write:
        """The update, made with the record's outcome, that says the claim's action was
        executed: a refusal then reads "still alarming after ...", not "in flight"."""
        return Write(
            key=guard_key(target),
            update=f"SET {EXECUTED} = :yes",
            condition=f"{HOLDER} = :mine",
            values={":yes": True, ":mine": audit_id},
            optional=True,
        )

    def look(self, target: str, now: datetime) -> Write:
        """The condition check, for a run that claims nothing, that no silence holds
        ``target``: a refused one names the silence (``refusal``), read in the same
        transaction as the record, without a read of its own."""
        return Write(
            key=guard_key(target),
            check=True,
            condition=f"attribute_not_exists({SILENCED_UNTIL}) OR {SILENCED_UNTIL} <= :now",
            values={":now": int(now.timestamp())},
        )

    def release(self, target: str, *, audit_id: str) -> Write:
        """The update that gives back what ``claim`` took for an action that did not
        execute: the cooldown and the newest breaker slot, only while they are still this
        record's (optional: if another claim came since, nothing is given back)."""
        n = self.settings.breaker_max
        shift = [f"b{i} = if_not_exists(b{i + 1}, :zero)" for i in range(1, n)]
        return Write(
            key=guard_key(target),
            update="SET " + ", ".join([*shift, f"b{n} = :zero", "#until = :zero"]),
            condition=f"{HOLDER} = :mine",
            names={"#until": "until"},
            values={":mine": audit_id, ":zero": 0},
            optional=True,
        )

    # -- why not ---------------------------------------------------------------------------

    def refusal(self, item: Item | None, now: datetime) -> Refusal:
        """Pure: why ``claim`` would be refused on ``item`` at ``now`` (a refused claim
        returns the item as it stood). Nothing found: the claim is refused all the same,
        as busy (fail closed)."""
        epoch = int(now.timestamp())
        item = item or {}
        silenced = None
        if int(item.get(SILENCED_UNTIL, 0)) > epoch:
            silenced = str(item.get(SILENCED_BY) or "a silence")
        blocked = None
        if int(item.get("until", 0)) > epoch:
            blocked = _cooldown_reason(item)
        else:
            count = len(self._recent(item, epoch))
            if count >= self.settings.breaker_max:
                blocked = self._breaker_reason(count)
        if silenced is None and blocked is None:
            blocked = "guards busy: the claim was refused, try again"
        return Refusal(silenced, blocked)

    def check(self, target: str, now: datetime) -> None:
        """Read-only: raise ``Blocked`` if an action now would be refused (dry-run and
        approval routes look; acting claims)."""
        item = self._table.get(guard_key(target))
        epoch = int(now.timestamp())
        if item and int(item.get("until", 0)) > epoch:
            raise Blocked(_cooldown_reason(item))
        count = len(self._recent(item or {}, epoch))
        if count >= self.settings.breaker_max:
            raise Blocked(self._breaker_reason(count))

    def _recent(self, item: Item, epoch: int) -> list[int]:
        kept = stamps(item)[: self.settings.breaker_max]
        return recent(kept, epoch, self.settings.breaker_window_seconds)

    def _breaker_reason(self, count: int) -> str:
        s = self.settings
        return (
            f"circuit breaker open: {count} automatic actions on this target in the last "
            f"{s.breaker_window_seconds // 60} min (limit {s.breaker_max}); a human must decide"
        )


def stamps(item: Item | None) -> list[int]:
    """The breaker's action times kept on a guard item (``b1``, ``b2``, ...), any number."""
    item = item or {}
    found = []
    i = 1
    while f"b{i}" in item:
        found.append(int(item[f"b{i}"]))
        i += 1
    return [s for s in found if s > 0]


def recent(stamps: list[int], now: int, window: int) -> list[int]:
    """The action times still inside the sliding window ending at ``now``."""
    return sorted(s for s in stamps if s > now - window)


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cooldown_reason(item: Item) -> str:
    """An alarm during the cooldown fires again after an executed action, or while another
    delivery holds the target (in flight, or stopped before it finished): a human looks."""
    until = _when(int(item.get("until", 0)))
    action: Any = item.get("action", "-")
    if "since" not in item or action == "-":
        return f"target in cooldown until {until}: still alarming after the last action"
    since = _when(int(item["since"]))
    audit_id = item.get(HOLDER, "?")
    if item.get(EXECUTED) is False:
        return (
            f"{action} (audit {audit_id}) took this target at {since} and has not finished: "
            f"in flight, or it stopped before recording an outcome; nothing changed here, "
            f"needs a human if it does not finish (cooldown until {until})"
        )
    return (
        f"still alarming after {action} at {since} (audit {audit_id}); needs a human "
        f"(cooldown until {until})"
    )
