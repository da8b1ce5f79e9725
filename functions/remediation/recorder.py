"""The life of one audit record, the same for the pipeline and the sweeper.

``open`` writes the intent (outcome ``pending``) before anything changes: if it cannot be
written, nothing is done. ``close`` completes it with the result, then tells: one structured
log line, one EMF metric (``AutoRemediation/Remediations`` by ``Action`` and ``Outcome``)
and, for outcomes a human should hear about, one notice. ``reject`` does all of that at once
for a delivery refused before it reached an action.

If the outcome cannot be written, the notice still goes out (naming the failure, with what
changed) and the error is raised, so the delivery fails and is retried or reaches the
dead-letter queue. If the notice cannot be sent, the page still is, then the error is raised
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from .audit import AuditLog, Entry
from .clients import error_code
from .models import Outcome, Result
from .notify import (
    NOTIFY,
    Notifier,
    OutcomeEvents,
    build_chat_notice,
    build_notice,
    build_outcome_event,
)
from .store import Write

logger = Logger(child=True)
METRICS_NAMESPACE = "AutoRemediation"
METRIC_NAME = "Remediations"


class Recorder:
    def __init__(
        self,
        audit: AuditLog,
        notifier: Notifier,
        *,
        env: str,
        clock: Callable[[], datetime],
        outcomes: OutcomeEvents | None = None,
    ) -> None:
        self.audit = audit
        self.notifier = notifier
        self.env = env
        self.clock = clock
        #: pages (and their resolves) as EventBridge events; None where paging is not set up
        self.outcomes = outcomes

    def open(self, entry: Entry, *, also: Sequence[Write] = ()) -> None:
        """The intent, before anything changes, with ``also`` in the same transaction.
        Raises if it cannot be written (``Canceled`` when a condition of ``also`` fails)."""
        self.audit.open(entry, also=also)

    def close(self, entry: Entry, result: Result, *, also: Sequence[Write] = ()) -> None:
        """The outcome (with ``also`` in the same transaction), then the log line, the
        metric and the notice."""
        try:
            self.audit.close(
                entry.audit_id,
                result.outcome,
                result.reason,
                self.clock(),
                before=result.before,
                after=result.after,
                also=also,
            )
        except Exception as exc:
            # The record stays pending: the notice must still carry what changed, then the
            # delivery fails (and is retried or reaches the dead-letter queue).
            unsaved = f"; audit record not completed ({error_code(exc)})"
            self.announce(replace(result, reason=result.reason + unsaved), entry)
            raise
        logger.info(
            "remediation",
            extra={
                "audit_id": entry.audit_id,
                "correlation_id": entry.correlation_id,
                "source": str(entry.source),
                "outcome": str(result.outcome),
                "action": result.action,
                "target": result.target,
                "detail": result.reason,
            },
        )
        self.announce(result, entry)

    def reject(self, entry: Entry, reason: str) -> Result:
        """A delivery refused before it reached an action: one record, already complete."""
        result = Result(entry.audit_id, Outcome.REJECTED, reason, entry.action, entry.target)
        logger.warning("rejected", extra={"audit_id": entry.audit_id, "reason": reason})
        return self.record(entry, result)

    def record(self, entry: Entry, result: Result) -> Result:
        """A delivery settled before anything was read (refused, or a duplicate): its
        record written complete in one write, then the metric and the notice."""
        self.audit.open(entry, result.outcome, result.reason)
        self.announce(result, entry)
        return result

    def announce(self, result: Result, entry: Entry) -> None:
        """The EMF metric, and the notice when a human should hear about ``result``."""
        # One EMF line per dimension set: its own dimensions, no state shared between
        # threads. The first is the dashboard's set (stacks/constructs/dashboard.py
        # METRIC_DIMENSIONS: a CloudWatch query matches only the exact set); a hub's record
        # is counted by account too, in a set of its own.
        dimensions = {
            "Environment": self.env,
            "Action": result.action or "none",
            "Outcome": str(result.outcome),
        }
        for extra in [{}, *([{"Account": entry.account}] if entry.account else [])]:
            metric = AmazonCloudWatchEMFProvider(namespace=METRICS_NAMESPACE)
            for name, value in {**dimensions, **extra}.items():
                metric.add_dimension(name=name, value=value)
            metric.add_metric(name=METRIC_NAME, unit=MetricUnit.Count, value=1)
            metric.flush_metrics()
        try:
            if result.outcome in NOTIFY:
                key, reason, account = entry.key, entry.reason, entry.account
                subject, message = build_notice(
                    self.env, result, key=key, reason=reason, account=account
                )
                chat = build_chat_notice(self.env, result, key=key, reason=reason, account=account)
                self.notifier.publish(subject, message, chat)
        finally:  # a notice that could not be sent never costs the page: it goes out first
            self.page(result, entry)

    def page(self, result: Result, entry: Entry) -> None:
        """The outcome event paging (or resolving) the incident, when it pages. Never raises:
        the record and the notice are already out; a lost page is logged as an error."""
        if self.outcomes is None:
            return
        detail = build_outcome_event(
            self.env, result, key=entry.key, source=str(entry.source), state=entry.state
        )
        if detail is None:
            return
        try:
            sent = self.outcomes.put(detail)
        except Exception as exc:
            sent, why = False, error_code(exc)
        else:
            why = "entry refused by EventBridge"
        if not sent:
            logger.error(
                "page not sent",
                extra={
                    "audit_id": entry.audit_id,
                    "event_action": detail["eventAction"],
                    "why": why,
                },
            )
