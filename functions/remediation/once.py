"""At most once per alarm transition: one item per transition, claimed in the transaction
that writes the audit record's intent (``pipeline.py``).

SNS delivers at least once, and a Lambda retry redelivers: the same alarm transition (its
idempotency key) acts once. The first delivery claims the transition's item (``claim``),
naming its audit record and how long it may run; a duplicate finds it and is skipped
naming that record, or, while the first is still running, saying so. The record's outcome
completes the item in the transaction that completes the record (``done``), so a
duplicate never sees a transition half handled. A failed action gives the transition back
(``forget``), so a redrive from the dead-letter queue acts again; a run that stopped
without finishing (a timeout) loses its claim when its time is up, and its guards' cooldown
then stops the retry from acting twice.

The items expire after ``IDEMPOTENCY_TTL_SECONDS``; the pipeline refuses events older than
that, so an expired claim never lets a stale redelivery act.
"""

from __future__ import annotations

from datetime import datetime

from .models import Outcome
from .store import PARTITION_KEY, TTL_ATTRIBUTE, Item, Write, transition_key

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RUNNING, DONE = "running", "done"


class Once:
    def __init__(self, env: str) -> None:
        self.env = env

    def claim(self, key: str, audit_id: str, now: datetime, deadline: datetime) -> Write:
        """The put that takes transition ``key`` for record ``audit_id`` until ``deadline``
        (the end of this invocation), on condition nobody holds it: never taken, expired, or
        taken by a run whose time is up."""
        epoch = int(now.timestamp())
        return Write(
            item={
                **transition_key(self.env, key),
                "audit_id": audit_id,
                "status": RUNNING,
                "running_until": int(deadline.timestamp()),
                TTL_ATTRIBUTE: epoch + IDEMPOTENCY_TTL_SECONDS,
            },
            condition=(
                f"attribute_not_exists({PARTITION_KEY}) OR {TTL_ATTRIBUTE} <= :now"
                " OR (#status = :running AND running_until < :now)"
            ),
            names={"#status": "status"},
            values={":now": epoch, ":running": RUNNING},
        )

    def done(self, key: str, audit_id: str, outcome: Outcome) -> Write:
        """The update that marks the transition handled, with the record's outcome."""
        return Write(
            key=transition_key(self.env, key),
            update="SET #status = :done, outcome = :outcome REMOVE running_until",
            condition="audit_id = :mine",
            names={"#status": "status"},
            values={":done": DONE, ":outcome": str(outcome), ":mine": audit_id},
            optional=True,  # taken over by a later run (this one outran its time): its own
        )

    def forget(self, key: str, audit_id: str) -> Write:
        """The delete that gives a failed transition back (a redrive acts again), while it
        is still this record's."""
        return Write(
            key=transition_key(self.env, key),
            condition="audit_id = :mine",
            values={":mine": audit_id},
            optional=True,
        )


def duplicate(item: Item) -> str:
    """Pure: why a delivery is skipped, from the transition's item as it stood."""
    if item.get("status") == DONE:
        return (
            f"duplicate delivery: already handled by audit {item.get('audit_id', '?')} "
            f"({item.get('outcome', '?')})"
        )
    return (
        "duplicate delivery: this alarm transition is being handled right now "
        f"(audit {item.get('audit_id', '?')})"
    )
