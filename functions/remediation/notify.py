"""Readable notices to the human topic. Pure ``build_notice``; ``Notifier`` publishes."""

from __future__ import annotations

import json
from typing import Any

from remediation.models import Outcome, Result

SUBJECT_LIMIT = 100
# Outcomes a human should hear about; plain skips (duplicate, cooldown, switch off) are
# only audited, so a noisy alarm does not page twice.
NOTIFY = frozenset(
    {Outcome.EXECUTED, Outcome.DRY_RUN, Outcome.ESCALATED, Outcome.FAILED, Outcome.REJECTED}
)


def build_notice(env: str, result: Result, *, key: str, reason: str) -> tuple[str, str]:
    """(subject, message) for one result."""
    verb = {
        Outcome.EXECUTED: "did",
        Outcome.DRY_RUN: "would do (dry-run)",
        Outcome.ESCALATED: "needs a human for",
        Outcome.FAILED: "FAILED",
        Outcome.REJECTED: "rejected",
    }.get(result.outcome, str(result.outcome))
    if result.action:
        what = f"{result.action} on {result.target or '?'}"
    else:  # rejected before it could name an action
        what = f"an event from {key}" if key and key != "-" else "an unreadable event"
    subject = f"[auto-remediation {env}] {verb} {what}"
    subject = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)[:SUBJECT_LIMIT]
    lines = [
        f"Outcome:    {result.outcome}",
        f"Why:        {result.reason or '-'}",
        f"Action:     {result.action or '-'}",
        f"Target:     {result.target or '-'}",
        f"Trigger:    {key or '-'}",
        f"Triggered:  {reason or '-'}",
        f"Audit id:   {result.audit_id}",
    ]
    if result.before is not None or result.after is not None:
        lines.append(f"Before:     {_compact(result.before)}")
        lines.append(f"After:      {_compact(result.after)}")
    lines.append("")
    lines.append(f"History: remediate history --env {env} --target '{result.target or ''}'")
    return subject, "\n".join(lines)


def _compact(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)[:2000]


class Notifier:
    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        self._sns.publish(TopicArn=self._topic, Subject=subject, Message=message)
