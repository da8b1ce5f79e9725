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
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from remediation.actions.base import VerifyError
from remediation.actions.waf_block import (
    BlockRecords,
    IPSetRef,
    change_ip_set,
    entry_key,
    get_ip_set,
    parse_ip_set_arn,
    sort_cidrs,
    waf_client,
)
from remediation.audit import AuditLog, Entry
from remediation.clients import Clients, error_code
from remediation.config import deployment_from_env, required
from remediation.models import Outcome, Result
from remediation.notify import NOTIFY, Notifier, build_notice
from remediation.scope import Deployment, ScopeError

logger = Logger(service="auto-remediation")
# Its own audit label, not "waf-block": an expiry is not an action ``revert`` could undo
# (re-adding an address with no expiry is exactly what waf-block refuses to do).
ACTION = "waf-block-sweep"
KEY = "waf-block-sweeper"
#: what WAF answers for an IP set that was deleted
GONE = "WAFNonexistentItemException"


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


class SweepFailed(RuntimeError):
    """Raised by the handler after recording a failure, so the run counts as an error."""


class Sweeper:
    def __init__(self, settings: SweeperSettings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        dynamodb = clients("dynamodb")
        self.records = BlockRecords(dynamodb, settings.table)
        self.audit = AuditLog(dynamodb, settings.table)
        self.notifier = Notifier(clients("sns"), settings.notice_topic)

    def sweep(self, now: datetime, correlation_id: str | None = None) -> list[Result]:
        """One result per IP set that had expired blocks (none when nothing expired)."""
        correlation_id = correlation_id or uuid.uuid4().hex
        results = []
        for arn in self.records.ip_sets():
            expired = self.records.expired(arn, now)
            if expired:
                results.append(self._sweep_ip_set(arn, expired, now, correlation_id))
        return results

    def _sweep_ip_set(
        self, arn: str, expired: list[dict[str, Any]], now: datetime, correlation_id: str
    ) -> Result:
        targets = {record["target"] for record in expired}
        target = targets.pop() if len(targets) == 1 else arn
        ref = parse_ip_set_arn(arn)
        entry = Entry(
            audit_id=uuid.uuid4().hex,
            correlation_id=correlation_id,
            created_at=now,
            source="schedule",
            key=KEY,
            state="EXPIRED",
            requested_by="waf-block sweeper",
            reason=f"{len(expired)} block(s) in IP set {ref.name} expired",
            action=ACTION,
            target=target,
        )
        self.audit.open(entry)
        before = after = None
        try:
            # The same scope check as every action: a record naming an IP set outside this
            # deployment (a corrupted or planted item) is refused, not acted on.
            self.settings.deployment.check_target(arn)
            waf = waf_client(self.clients, ref)
            try:
                current = get_ip_set(waf, ref)
            except Exception as exc:
                if error_code(exc) != GONE:
                    raise
                current = None
            if current is None:
                outcome, reason = self._forget_deleted(arn, ref)
            else:
                keys = {entry_key(e) for e in current["entries"]}
                present = sort_cidrs(
                    r["address"] for r in expired if entry_key(r["address"]) in keys
                )
                size = {"version": current["version"], "entries": len(current["entries"])}
                before = {"ip_sets": {arn: size}, "addresses": present}
                outcome, reason, after = self._unblock(arn, ref, waf, present, size, expired)
        except ScopeError as exc:
            outcome, reason = Outcome.REJECTED, exc.reason
        except Exception as exc:
            logger.exception("sweep failed", extra={"audit_id": entry.audit_id, "ip_set": arn})
            outcome, reason = Outcome.FAILED, f"{error_code(exc)}: {str(exc)[:500]}"
        result = Result(entry.audit_id, outcome, reason, ACTION, target, before, after)
        self.audit.close(entry.audit_id, outcome, reason, now, before=before, after=after)
        logger.info(
            "sweep",
            extra={"audit_id": entry.audit_id, "outcome": str(outcome), "detail": reason},
        )
        if outcome in NOTIFY:
            subject, message = build_notice(self.settings.env, result, key=KEY, reason=entry.reason)
            self.notifier.publish(subject, message)
        return result

    def _unblock(
        self,
        arn: str,
        ref: IPSetRef,
        waf: Any,
        present: list[str],
        size: dict[str, Any],
        expired: list[dict[str, Any]],
    ) -> tuple[Outcome, str, dict[str, Any] | None]:
        """Take the expired blocks the IP set still holds (``present``) out of it; forget
        their records. Returns the outcome, its reason and the after-state."""
        after = None
        if present:
            change_ip_set(waf, ref, remove=present)
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
            after = {"ip_sets": {arn: {**size, "entries": len(seen)}}, "addresses": left}
        gone = len(expired) - len(present)
        notes = [f"{gone} already gone"] if gone else []
        notes += [f"{len(kept)} renewed meanwhile"] if kept else []
        tail = f" ({'; '.join(notes)})" if notes else ""
        if not present:
            return Outcome.SKIPPED, f"expired blocks no longer in {ref.name}{tail}", after
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        reason = f"unblocked {len(present)} expired address(es) in {ref.name}: {shown}{tail}"
        return Outcome.EXECUTED, reason, after

    def _forget_deleted(self, arn: str, ref: IPSetRef) -> tuple[Outcome, str]:
        """The IP set was deleted: nothing is left to unblock, and retrying every run would
        fail forever. Forget its records (so this escalates once) and tell a human."""
        forgotten = sort_cidrs(self.records.forget_ip_set(arn))
        shown = ", ".join(forgotten[:10]) + (" ..." if len(forgotten) > 10 else "")
        return Outcome.ESCALATED, (
            f"IP set {ref.name} no longer exists ({GONE}): forgot its {len(forgotten)} block "
            f"record(s) ({shown}) and stopped sweeping it; if a new set replaced it, check that "
            "the web ACL and the waf-block route's target name the new one"
        )


_sweeper: Sweeper | None = None


def sweeper() -> Sweeper:
    """Built once per container, on first use."""
    global _sweeper
    if _sweeper is None:
        _sweeper = Sweeper(SweeperSettings.from_env(), Clients())
    return _sweeper


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = sweeper().sweep(datetime.now(UTC), correlation_id=context.aws_request_id)
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        # Recorded and notified already; raising makes the run count as an error.
        raise SweepFailed("; ".join(f"{r.audit_id}: {r.reason}" for r in failed))
    return {"results": [r.as_dict() for r in results]}
