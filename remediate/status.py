"""``remediate status``: where an environment stands, at a glance.

- open incidents: per alarm (or budget) and target, the latest audit record, when it is an
  ALARM transition (an OK transition after it closes the incident): the last action, its
  outcome and why;
- guards per target: the cooldown (until when, after which action) and the circuit breaker
  (automatic actions in the last hour against the limit: ``open`` at the limit);
- active WAF blocks (address, IP set, until when);
- the dead-letter queue's depth (events nothing was remediated for);
- the switch and its per-action overrides.

Everything is read, nothing written: one scan of the audit table (items decoded by
``remediation.store``), one ``GetQueueAttributes``, the switch parameters. Other item kinds
add their own section with ``register_section`` (pending approvals with time left,
silences): a function from the scanned items and the time to rows.

``collect`` does the reading (clients passed in); ``build`` is pure (items in, ``Status``
out); ``render`` prints it for people and ``as_json`` for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from serverless_remediation.remediation.guards import recent, stamps
from serverless_remediation.remediation.store import (
    BLOCK_INDEX,
    PARTITION_KEY,
    SORT_KEY,
    Item,
    from_wire,
)

#: a section other item kinds add: (scanned items, now) -> rows (plain, JSON-able dicts)
SectionReader = Callable[[list[Item], datetime], list[dict[str, Any]]]
_SECTIONS: dict[str, SectionReader] = {}
AUTOMATIC_SOURCES = frozenset({"alarm", "budget"})


def register_section(name: str, reader: SectionReader) -> None:
    """Add a section (e.g. ``approvals``, ``silences``) to every status, after the built-in
    ones. Registering a name again replaces its reader."""
    _SECTIONS[name] = reader


@dataclass
class Status:
    env: str
    now: str
    switch: dict[str, Any]
    incidents: list[dict[str, Any]] = field(default_factory=list)
    guards: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- pure -------------------------------------------------------------------------------------


def _iso(epoch: int | float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_incidents(items: Iterable[Item]) -> list[dict[str, Any]]:
    """Per (key, target) of automatic deliveries, the latest record if it is an ALARM."""
    latest: dict[tuple[str, str], Item] = {}
    for item in items:
        pk = str(item.get(PARTITION_KEY, ""))
        if not pk.startswith("audit#") or item.get("source") not in AUTOMATIC_SOURCES:
            continue
        target = item.get("target")
        if not target:  # refused before it named a target: not an incident of a target
            continue
        group = (str(item.get("key", "")), str(target))
        if group not in latest or str(item.get("created_at", "")) > str(
            latest[group].get("created_at", "")
        ):
            latest[group] = item
    rows = [
        {
            "alarm": key,
            "target": target,
            "action": item.get("action") or "-",
            "outcome": item.get("outcome", "-"),
            "since": str(item.get("created_at", ""))[:19],
            "audit_id": item.get("audit_id", str(item.get(PARTITION_KEY, ""))[6:]),
            "detail": str(item.get("detail", ""))[:300],
        }
        for (key, target), item in latest.items()
        if item.get("state") == "ALARM"
    ]
    return sorted(rows, key=lambda r: r["since"], reverse=True)


def guard_rows(
    items: Iterable[Item], now: datetime, *, breaker_max: int, window_seconds: int = 3600
) -> list[dict[str, Any]]:
    """Per target with a guard item: its cooldown (if still running) and breaker count."""
    epoch = int(now.timestamp())
    by_target: dict[str, dict[str, Any]] = {}
    for item in items:
        pk = str(item.get(PARTITION_KEY, ""))
        if not pk.startswith("guard#"):
            continue
        target = pk.removeprefix("guard#")
        row = by_target.setdefault(
            target,
            {
                "target": target,
                "cooldown_until": None,
                "cooldown_after": None,
                "breaker_count": 0,
                "breaker_max": breaker_max,
                "breaker": "closed",
            },
        )
        if int(item.get("until", 0)) > epoch:
            row["cooldown_until"] = _iso(int(item["until"]))
            row["cooldown_after"] = f"{item.get('action', '-')} (audit {item.get('audit_id', '?')})"
        kept = recent(stamps(item)[:breaker_max], epoch, window_seconds)
        row["breaker_count"] = len(kept)
        row["breaker"] = "open" if len(kept) >= breaker_max else "closed"
    rows = [r for r in by_target.values() if r["cooldown_until"] or r["breaker_count"]]
    return sorted(rows, key=lambda r: r["target"])


def block_rows(items: Iterable[Item], now: datetime) -> list[dict[str, Any]]:
    """WAF blocks whose expiry is still ahead (the sweeper lifts the others)."""
    epoch = int(now.timestamp())
    rows = [
        {
            "ip_set": str(item.get("ip_set_arn", str(item[PARTITION_KEY])[6:])),
            "address": str(item.get(SORT_KEY, "")),
            "until": _iso(int(item["block_until"])),
            "target": str(item.get("route_target", "-")),
        }
        for item in items
        if str(item.get(PARTITION_KEY, "")).startswith("block#")
        and item.get(PARTITION_KEY) != BLOCK_INDEX
        and "block_until" in item
        and int(item["block_until"]) > epoch
    ]
    return sorted(rows, key=lambda r: (r["ip_set"], r["address"]))


def build(
    env: str,
    items: list[Item],
    now: datetime,
    *,
    switch: dict[str, Any],
    dead_letters: dict[str, Any],
    breaker_max: int,
    sections: Mapping[str, SectionReader] | None = None,
) -> Status:
    readers = _SECTIONS if sections is None else sections
    return Status(
        env=env,
        now=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        switch=switch,
        incidents=open_incidents(items),
        guards=guard_rows(items, now, breaker_max=breaker_max),
        blocks=block_rows(items, now),
        dead_letters=dead_letters,
        sections={name: reader(items, now) for name, reader in readers.items()},
    )


# -- reading (clients passed in) -------------------------------------------------------------


def scan(db: Any, table: str) -> list[Item]:
    """Every item of the table, decoded (audit, guards, blocks, and any other kind)."""
    items: list[Item] = []
    for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(from_wire(item) for item in page["Items"])
    return items


def read_switch(ssm: Any, name: str, override_prefix: str | None) -> dict[str, Any]:
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        value = "missing (remediators treat this as off)"
    overrides: dict[str, str] = {}
    if override_prefix:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=override_prefix.rstrip("/")
        )
        overrides = {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}
    return {"parameter": name, "value": value, "overrides": overrides}


def read_dead_letters(sqs: Any, queue_name: str) -> dict[str, Any]:
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return {"queue": queue_name, "depth": None, "note": "queue not found"}
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {
        "queue": queue_name,
        "depth": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


def collect(
    env: str,
    *,
    db: Any,
    table: str,
    ssm: Any,
    switch_name: str,
    override_prefix: str | None,
    sqs: Any,
    dead_letter_queue: str,
    breaker_max: int,
    now: datetime | None = None,
) -> Status:
    return build(
        env,
        scan(db, table),
        now or datetime.now(UTC),
        switch=read_switch(ssm, switch_name, override_prefix),
        dead_letters=read_dead_letters(sqs, dead_letter_queue),
        breaker_max=breaker_max,
    )


# -- output ------------------------------------------------------------------------------------


def render(status: Status, console: Any, *, cell: Callable[[str], str] = str) -> None:
    """Tables for people (``console``: a rich Console; ``cell`` shapes an ARN for a cell)."""
    from rich.markup import escape
    from rich.table import Table

    switch = status.switch
    console.print(
        f"{status.env} at {status.now}: switch {escape(switch['parameter'])} = "
        f"[bold]{escape(str(switch['value']))}[/]"
    )
    for name, value in sorted(switch.get("overrides", {}).items()):
        console.print(f"  override {escape(name)} = {escape(value)}")
    dlq = status.dead_letters
    depth = "unknown" if dlq.get("depth") is None else str(dlq["depth"])
    console.print(f"dead-letter queue {escape(dlq.get('queue', '-'))}: {depth} waiting")

    def table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if not rows:
            console.print(f"{title}: none")
            return
        out = Table(title=title)
        for column in columns:
            out.add_column(column.replace("_", " "), overflow="fold")
        for row in rows:
            out.add_row(
                *(escape(cell(str(row.get(c) if row.get(c) is not None else "-"))) for c in columns)
            )
        console.print(out)

    table(
        "open incidents",
        status.incidents,
        ["alarm", "target", "action", "outcome", "since", "audit_id", "detail"],
    )
    table(
        "guards",
        status.guards,
        ["target", "cooldown_until", "cooldown_after", "breaker", "breaker_count", "breaker_max"],
    )
    table("active WAF blocks", status.blocks, ["address", "ip_set", "until", "target"])
    for name, rows in status.sections.items():
        table(name, rows, sorted({k for row in rows for k in row}))
