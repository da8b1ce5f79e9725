"""Silences and maintenance windows: hold automatic actions on a target for a while.

A silence is an item in the table (``store.silence_key``) written by ``remediate silence``:
one target, until a time, why and by whom. Its target's guard item carries a marker (until
when the longest silence holds it, and why): the remediators read the marker, in the same
conditional write that claims the guards (``guards.py``), never the list of silences. A
silence raises the marker; a lift sets it from the silences left.

A silence ends by itself: the expiry is checked on every read (DynamoDB's TTL deletion is
lazy, days late at worst), and a silence longer than the configured maximum counts only up
to that maximum from its start, whoever wrote it. It can be lifted before then.

A maintenance window is config: weekly UTC ranges per service (``"tue 02:00-03:00"``,
``"daily 23:00-24:00"``), carried on each of the service's routes in the playbook. UTC only:
no time zones, no daylight saving, a range never crosses midnight (write two).

Only automatic actions (alarms, budgets) are held; a held event is still audited and
noticed, with outcome ``silenced``. A manual request is a human acting on purpose: it is not
held, and its result says the target is silenced. Pure parsing and decisions here; ``Silences``
does the reads and writes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import RejectedError
from .store import (
    PARTITION_KEY,
    SILENCE_VERSION,
    SILENCED_BY,
    SILENCED_UNTIL,
    SILENCES,
    TTL_ATTRIBUTE,
    Canceled,
    Item,
    Table,
    Write,
    guard_key,
    silence_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: the longest silence unless the environment says otherwise (``people.max_silence_hours``)
DEFAULT_MAX_SILENCE = timedelta(hours=24)
#: how often a silence or lift recomputes the marker when silences change meanwhile
MARK_TRIES = 5
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?P<day>mon|tue|wed|thu|fri|sat|sun|daily) "
    r"(?P<start>[0-2][0-9]:[0-5][0-9])-(?P<end>[0-2][0-9]:[0-5][0-9])$"
)


# -- maintenance windows (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A weekly UTC range: ``day`` is 0 (Monday) .. 6, or None for every day; minutes of
    the day, ``start < end <= 1440``."""

    day: int | None
    start: int
    end: int
    text: str

    def holds(self, now: datetime) -> bool:
        now = now.astimezone(UTC)
        minute = now.hour * 60 + now.minute
        return (self.day is None or now.weekday() == self.day) and self.start <= minute < self.end


def parse_window(text: str) -> Window:
    """``"tue 02:00-03:00"`` or ``"daily 23:00-24:00"`` -> ``Window``; ``ValueError`` naming
    the accepted form otherwise."""
    match = _WINDOW.match(text.strip().lower()) if isinstance(text, str) else None
    form = "'<mon..sun|daily> HH:MM-HH:MM' (UTC, start before end, end at most 24:00)"
    if not match:
        raise ValueError(f"maintenance window {text!r}: expected {form}")
    start, end = _minute(match["start"]), _minute(match["end"])
    if not 0 <= start < end <= 24 * 60:
        raise ValueError(f"maintenance window {text!r}: expected {form}")
    day = None if match["day"] == "daily" else DAYS.index(match["day"])
    return Window(day, start, end, text.strip())


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def open_window(windows: Iterable[str], now: datetime) -> str | None:
    """The first of ``windows`` that holds at ``now``, as written; None if none does."""
    for text in windows:
        if parse_window(text).holds(now):
            return text
    return None


# -- silences -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silence:
    silence_id: str
    target: str
    reason: str
    created_by: str
    created_at: datetime
    until: datetime
    lifted_by: str = ""

    def ends(self, max_length: timedelta) -> datetime:
        """When it stops holding: its own end, or the maximum from its start if sooner."""
        return min(self.until, self.created_at + max_length)

    def holds(self, now: datetime, max_length: timedelta) -> bool:
        return not self.lifted_by and self.created_at <= now < self.ends(max_length)

    def describe(self, max_length: timedelta) -> str:
        return (
            f"silence {self.silence_id} by {self.created_by} until "
            f"{self.ends(max_length).isoformat()}: {self.reason}"
        )


def build_silence(
    target: str,
    *,
    length: timedelta,
    reason: str,
    created_by: str,
    now: datetime,
    max_length: timedelta,
) -> Silence:
    """Pure: a new silence, or ``RejectedError`` if its length is not in (0, max]."""
    if not target.strip():
        raise RejectedError("a silence names a target")
    if length <= timedelta(0) or length > max_length:
        raise RejectedError(
            f"a silence lasts more than 0 and at most {_hours(max_length)}, not {_hours(length)}"
        )
    if len(reason.strip()) < 3:
        raise RejectedError("a silence needs a reason (at least 3 characters)")
    return Silence(uuid.uuid4().hex[:12], target, reason.strip(), created_by, now, now + length)


def _hours(length: timedelta) -> str:
    return f"{length.total_seconds() / 3600:g} h"


def silence_item(silence: Silence) -> Item:
    return {
        **silence_key(silence.silence_id),
        "silence_id": silence.silence_id,
        "target": silence.target,
        "reason": silence.reason,
        "created_by": silence.created_by,
        "created_at": silence.created_at.isoformat(),
        "until": silence.until.isoformat(),
        # TTL a day late: the item stays readable (and listed as ended) a while
        TTL_ATTRIBUTE: int((silence.until + timedelta(days=1)).timestamp()),
    }


def parse_silence(item: Item) -> Silence:
    return Silence(
        silence_id=str(item["silence_id"]),
        target=str(item["target"]),
        reason=str(item.get("reason", "")),
        created_by=str(item.get("created_by", "")),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        until=datetime.fromisoformat(str(item["until"])),
        lifted_by=str(item.get("lifted_by", "")),
    )


class Silences:
    def __init__(
        self,
        dynamodb_client: DynamoDBClient,
        table: str,
        max_length: timedelta = DEFAULT_MAX_SILENCE,
    ) -> None:
        self.store = Table(dynamodb_client, table)
        self.max_length = max_length

    def add(self, silence: Silence) -> None:
        """Store the silence and mark its target, in one transaction."""
        item = Write(item=silence_item(silence), condition=f"attribute_not_exists({PARTITION_KEY})")
        self._mark(silence.target, silence.created_at, item, adding=silence)

    def lift(self, silence_id: str, by: str, now: datetime) -> Silence:
        """End a silence now, and mark its target from the silences left, in one
        transaction; ``RejectedError`` if there is none by that id or it has ended."""
        found = self.store.get(silence_key(silence_id))
        if found is None:
            raise RejectedError(f"no silence {silence_id!r}")
        silence = parse_silence(found)
        if not silence.holds(now, self.max_length):
            raise RejectedError(f"silence {silence_id} has already ended")
        lifted = Write(
            key=silence_key(silence_id),
            update="SET lifted_by = :by, lifted_at = :now",
            condition=f"attribute_exists({PARTITION_KEY}) AND attribute_not_exists(lifted_by)",
            values={":by": by, ":now": now.isoformat()},
        )
        self._mark(silence.target, now, lifted, lifting=silence_id)
        return silence

    def _mark(
        self,
        target: str,
        now: datetime,
        change: Write,
        *,
        adding: Silence | None = None,
        lifting: str = "",
    ) -> None:
        """Write ``change`` (the silence added or lifted) with ``target``'s marker set from
        the silences holding it after the change: the longest, or none. The marker carries
        a version, and each write is conditioned on the version it read, so two people
        silencing and lifting at once never leave a silence unmarked: the later one reads
        again and recomputes."""
        for _ in range(MARK_TRIES):
            version = int((self.store.get(guard_key(target)) or {}).get(SILENCE_VERSION, 0))
            holding = [s for s in self.active(now, target) if s.silence_id != lifting]
            holding += [adding] if adding else []
            longest = max(holding, key=lambda s: s.ends(self.max_length), default=None)
            values: dict[str, Any] = {":next": version + 1}
            if longest is None:
                update = f"REMOVE {SILENCED_UNTIL}, {SILENCED_BY} SET {SILENCE_VERSION} = :next"
            else:
                update = (
                    f"SET {SILENCED_UNTIL} = :until, {SILENCED_BY} = :by, {SILENCE_VERSION} = :next"
                )
                values[":until"] = int(longest.ends(self.max_length).timestamp())
                values[":by"] = longest.describe(self.max_length)
            if version:
                condition, values[":seen"] = f"{SILENCE_VERSION} = :seen", version
            else:
                condition = f"attribute_not_exists({SILENCE_VERSION})"
            marker = Write(key=guard_key(target), update=update, condition=condition, values=values)
            try:
                self.store.transact([change, marker])
                return
            except Canceled as canceled:
                if canceled.lost(0):
                    what = "exists already" if adding else "has been lifted already"
                    raise RejectedError(
                        f"silence {adding.silence_id if adding else lifting} {what}"
                    ) from None
                continue  # the marker changed meanwhile: read it again
        raise RejectedError(f"the silences of {target} kept changing meanwhile: try again")

    def all(self) -> Iterator[Silence]:
        """Every silence still stored (ended ones too, until TTL removes them)."""
        for item in self.store.partition(SILENCES):
            yield parse_silence(item)

    def active(self, now: datetime, target: str | None = None) -> list[Silence]:
        """The silences holding at ``now`` (on ``target`` if given), longest first."""
        found = [
            s
            for s in self.all()
            if s.holds(now, self.max_length) and (target is None or s.target == target)
        ]
        return sorted(found, key=lambda s: s.ends(self.max_length), reverse=True)

    def holding(self, target: str, windows: Iterable[str], now: datetime) -> str | None:
        """Why automatic actions on ``target`` are held at ``now``, or None: its marker
        (one read; the pipeline's claim reads the same marker), else an open window."""
        marker = self.store.get(guard_key(target)) or {}
        if int(marker.get(SILENCED_UNTIL, 0)) > int(now.timestamp()):
            return str(marker.get(SILENCED_BY) or "a silence")
        return self.window(windows, now)

    @staticmethod
    def window(windows: Iterable[str], now: datetime) -> str | None:
        """Pure: the maintenance window holding at ``now``, as a reason, or None."""
        window = open_window(windows, now)
        return f"maintenance window {window} (UTC)" if window else None


def describe_all(silences: Iterable[Silence], max_length: timedelta) -> list[dict[str, Any]]:
    """Plain rows for the CLI and ``remediate status``."""
    return [
        {
            "silence_id": s.silence_id,
            "target": s.target,
            "until": s.ends(max_length).isoformat(),
            "created_by": s.created_by,
            "reason": s.reason,
            "lifted_by": s.lifted_by or None,
        }
        for s in silences
    ]
