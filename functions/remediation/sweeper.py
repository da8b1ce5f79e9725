"""The scheduled sweeper: take expired ``waf-block`` blocks out of their WAFv2 IP sets.

Runs on a schedule (an EventBridge rule, e.g. every 5 minutes). The blocks and their expiries
are the records ``waf-block`` writes to the audit table before it changes an IP set (see
``remediation.actions.waf_block``): ``block-index`` lists the IP sets, ``block#<ARN>`` their
blocks. For each IP set with expired blocks it removes exactly those entries (``UpdateIPSet``
with the ``LockToken``, re-read and retried on a lock conflict or throttling), reads the set
back, deletes the records (unless a new block renewed one meanwhile) and writes one audit
record (action ``waf-block-sweep``, the blocking route's target), with a notice. A failure
keeps the records, so the next run tries again.

An IP set that was deleted (``WAFNonexistentItemException``) has nothing left to unblock and
would fail every run forever: the sweeper forgets its block records and its ``block-index``
entry and escalates once (a notice asks whether a new set replaced it).

The sweeper ignores the automation switch: an expiry is part of the block that was made,
and an ``off`` switch must not turn a four-hour block into a permanent one.

Environment (same style as ``config.py``): ``REMEDIATION_ENV``, ``AUDIT_TABLE``,
``NOTICE_TOPIC_ARN``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from .actions.base import VerifyError
from .actions.waf_block import (
    BlockRecords,
    IPSetRef,
    change_ip_set,
    entry_key,
    get_ip_set,
    parse_ip_set_arn,
    pause,
    sort_cidrs,
    waf_client,
)
from .actions.waf_block.expiries import Expired
from .audit import AuditLog, Entry
from .clients import Clients, error_code
from .config import deployment_from_env, required
from .errors import DeliveryFailed, EscalatedError, RejectedError
from .models import Outcome, Result, Source
from .notify import Notifier
from .quotas import Pace
from .recorder import Recorder
from .scope import Deployment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_wafv2 import WAFV2Client

logger = Logger(service="auto-remediation")
# Its own audit label, not "waf-block": an expiry is not an action ``revert`` could undo
# (re-adding an address with no expiry is exactly what waf-block refuses to do).
ACTION = "waf-block-sweep"
KEY = "waf-block-sweeper"
#: what WAF answers for an IP set that was deleted
GONE = "WAFNonexistentItemException"
#: the audit's before/after of a sweep: each IP set's size, and the addresses concerned
SweepState = dict[str, Any]


@dataclass(frozen=True)
class SweeperSettings:
    env: str
    table: str
    notice_topic: str
    deployment: Deployment

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SweeperSettings:
        def need(name: str) -> str:
            return required(environ, name, "sweeper")

        return cls(
            env=need("REMEDIATION_ENV"),
            table=need("AUDIT_TABLE"),
            notice_topic=need("NOTICE_TOPIC_ARN"),
            deployment=deployment_from_env(environ, "sweeper"),
        )


class SweepFailed(DeliveryFailed):
    """Raised by the handler after recording a failure, so the run counts as an error."""


class IPSetGone(EscalatedError):
    """The IP set was deleted: its records were forgotten, a human checks what replaced it."""


@dataclass
class Sweep:
    """One IP set's expired blocks on their way out."""

    arn: str
    ref: IPSetRef
    expired: list[Expired]
    before: SweepState | None = None
    after: SweepState | None = None


class Sweeper:
    """Audited like any action (``Recorder``: intent, outcome, notice, EMF metric)."""

    def __init__(self, settings: SweeperSettings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        dynamodb = clients("dynamodb")
        self.records = BlockRecords(dynamodb, settings.table)
        self.audit = AuditLog(dynamodb, settings.table)
        self.notifier = Notifier(clients("sns"), settings.notice_topic)
        #: the time of the sweep under way: its records are completed at that time
        self._sweep_time = datetime.now(UTC)
        self.recorder = Recorder(
            self.audit, self.notifier, env=settings.env, clock=lambda: self._sweep_time
        )

    def sweep(self, now: datetime, correlation_id: str | None = None) -> list[Result]:
        """One result per IP set that had expired blocks (none when nothing expired)."""
        correlation_id = correlation_id or uuid.uuid4().hex
        self._sweep_time = now
        results = []
        for arn in self.records.ip_sets():
            expired = self.records.expired(arn, now)
            if expired:
                results.append(self._sweep_ip_set(arn, expired, now, correlation_id))
        return results

    def _sweep_ip_set(
        self, arn: str, expired: list[Expired], now: datetime, correlation_id: str
    ) -> Result:
        targets = {record["target"] for record in expired}
        target = targets.pop() if len(targets) == 1 else arn
        sweep = Sweep(arn, parse_ip_set_arn(arn), expired)
        entry = Entry(
            audit_id=uuid.uuid4().hex,
            correlation_id=correlation_id,
            created_at=now,
            source=Source.SCHEDULE,
            key=KEY,
            state="EXPIRED",
            requested_by="waf-block sweeper",
            reason=f"{len(expired)} block(s) in IP set {sweep.ref.name} expired",
            action=ACTION,
            target=target,
        )
        self.recorder.open(entry)
        try:
            outcome, reason = self._unblock_expired(sweep)
        except RejectedError as exc:
            outcome, reason = Outcome.REJECTED, exc.reason
        except EscalatedError as exc:
            outcome, reason = Outcome.ESCALATED, exc.reason
        except Exception as exc:
            logger.exception("sweep failed", extra={"audit_id": entry.audit_id, "ip_set": arn})
            outcome, reason = Outcome.FAILED, f"{error_code(exc)}: {str(exc)[:500]}"
        result = Result(entry.audit_id, outcome, reason, ACTION, target, sweep.before, sweep.after)
        self.recorder.close(entry, result)
        return result

    def _unblock_expired(self, sweep: Sweep) -> tuple[Outcome, str]:
        # The same scope check as every action: a record naming an IP set outside this
        # deployment (a corrupted or planted item) is refused, not acted on.
        self.settings.deployment.check_target(sweep.arn)
        waf = waf_client(self.clients, sweep.ref)
        try:
            current = get_ip_set(waf, sweep.ref)
        except Exception as exc:
            if error_code(exc) != GONE:
                raise
            raise self._forget_deleted(sweep) from None
        keys = {entry_key(e) for e in current["entries"]}
        present = sort_cidrs(r["address"] for r in sweep.expired if entry_key(r["address"]) in keys)
        size = {"version": current["version"], "entries": len(current["entries"])}
        sweep.before = {"ip_sets": {sweep.arn: size}, "addresses": present}
        return self._unblock(sweep, waf, present, size)

    def _unblock(
        self, sweep: Sweep, waf: WAFV2Client, present: list[str], size: dict[str, Any]
    ) -> tuple[Outcome, str]:
        """Take the expired blocks the IP set still holds (``present``) out of it; forget
        their records. Returns the outcome and its reason (the after-state on ``sweep``)."""
        arn, ref, expired = sweep.arn, sweep.ref, sweep.expired
        if present:
            change_ip_set(waf, ref, remove=present, sleep=pause)
        # Records renewed by a new block since we read them stay (and so do their entries).
        kept = [
            r["address"] for r in expired if not self.records.forget(arn, r["address"], r["until"])
        ]
        if present:
            seen = {entry_key(e) for e in get_ip_set(waf, ref)["entries"]}
            left = [c for c in present if entry_key(c) in seen]
            still = [c for c in left if c not in kept]
            if still:
                raise VerifyError(f"still in {ref.name} after removal: {', '.join(still)}")
            sweep.after = {"ip_sets": {arn: {**size, "entries": len(seen)}}, "addresses": left}
        gone = len(expired) - len(present)
        notes = [f"{gone} already gone"] if gone else []
        notes += [f"{len(kept)} renewed meanwhile"] if kept else []
        tail = f" ({'; '.join(notes)})" if notes else ""
        if not present:
            return Outcome.SKIPPED, f"expired blocks no longer in {ref.name}{tail}"
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        reason = f"unblocked {len(present)} expired address(es) in {ref.name}: {shown}{tail}"
        return Outcome.EXECUTED, reason

    def _forget_deleted(self, sweep: Sweep) -> IPSetGone:
        """The IP set was deleted: nothing is left to unblock, and retrying every run would
        fail forever. Forget its records (so this escalates once); a human is told."""
        forgotten = sort_cidrs(self.records.forget_ip_set(sweep.arn))
        shown = ", ".join(forgotten[:10]) + (" ..." if len(forgotten) > 10 else "")
        return IPSetGone(
            f"IP set {sweep.ref.name} no longer exists ({GONE}): forgot its {len(forgotten)} "
            f"block record(s) ({shown}) and stopped sweeping it; if a new set replaced it, "
            "check that the web ACL and the waf-block route's target name the new one"
        )


_sweeper: Sweeper | None = None


def sweeper() -> Sweeper:
    """Built once per container, on first use; its clients keep to this environment's share
    of AWS's rates (``quotas.py``)."""
    global _sweeper
    if _sweeper is None:
        _sweeper = Sweeper(SweeperSettings.from_env(), Clients(pace=Pace.from_env()))
    return _sweeper


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    built = sweeper()
    # no wait for a rate runs past the invocation: an IP set left for lack of time is
    # recorded as failed and swept by the next run
    built.clients.until(time.monotonic() + context.get_remaining_time_in_millis() / 1000)
    results = built.sweep(datetime.now(UTC), correlation_id=context.aws_request_id)
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        # Recorded and notified already; raising makes the run count as an error.
        raise SweepFailed("; ".join(f"{r.audit_id}: {r.reason}" for r in failed))
    return {"results": [r.as_dict() for r in results]}
