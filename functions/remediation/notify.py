"""Readable notices to the human topic. Pure ``build_notice``; ``Notifier`` publishes.

Most of a notice comes from the event: the alarm name and reason, a manual request's
target, a rejection reason quoting what arrived. None of it may shape the mail. Every field
is one line: control characters (C0, DEL, C1), line and paragraph separators (U+2028,
U+2029) and format characters (bidi overrides and isolates, zero-width marks) are shown as
escapes (``\\n``, ``\\u2028``), so a crafted target cannot start a fake ``Outcome:`` line or
reverse the text a reader sees. Where a value becomes a command line, each argument is
``shlex.quote``-d, so pasting the line runs exactly that command on exactly that target; a
target that cannot be written on one line is not offered as a command at all.
"""

from __future__ import annotations

import json
import shlex
import unicodedata
from typing import Any

from remediation.models import Outcome, Result

SUBJECT_LIMIT = 100
#: longest value shown for one field (the audit record keeps the whole of it)
FIELD_LIMIT = 2000
# Outcomes a human should hear about; plain skips (duplicate, cooldown, switch off) are
# only audited, so a noisy alarm does not page twice.
NOTIFY = frozenset(
    {Outcome.EXECUTED, Outcome.DRY_RUN, Outcome.ESCALATED, Outcome.FAILED, Outcome.REJECTED}
)
# control (Cc), format (Cf: bidi, zero-width), line/paragraph separator (Zl, Zp), surrogate
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def unsafe(ch: str) -> bool:
    """True for a character that may not appear as itself in a one-line field."""
    return unicodedata.category(ch) in _UNSAFE


def one_line(value: Any, limit: int = FIELD_LIMIT) -> str:
    """``value`` as one printable line: unsafe characters as their escapes, bounded."""
    text = value if isinstance(value, str) else str(value)
    shown = "".join(
        ch.encode("unicode_escape").decode("ascii") if unsafe(ch) else ch for ch in text[:limit]
    )
    return shown if len(text) <= limit else shown + "..."


def command(*args: str) -> str | None:
    """A shell command line with every argument quoted, or None if an argument cannot be
    written on one line (quoting keeps a newline a newline: the line would break)."""
    if any(unsafe(ch) for arg in args for ch in arg):
        return None
    return " ".join(shlex.quote(arg) for arg in args)


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
    # SNS subjects: ASCII, no line breaks or control characters, under 100 characters.
    subject = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)[:SUBJECT_LIMIT]
    lines = [
        f"Outcome:    {one_line(result.outcome)}",
        f"Why:        {one_line(result.reason or '-')}",
        f"Action:     {one_line(result.action or '-')}",
        f"Target:     {one_line(result.target or '-')}",
        f"Trigger:    {one_line(key or '-')}",
        f"Triggered:  {one_line(reason or '-')}",
        f"Audit id:   {one_line(result.audit_id)}",
    ]
    if result.before is not None or result.after is not None:
        lines.append(f"Before:     {_compact(result.before)}")
        lines.append(f"After:      {_compact(result.after)}")
    lines.append("")
    lines.append(_history_line(env, result.target))
    return subject, "\n".join(lines)


def _history_line(env: str, target: str | None) -> str:
    base = ["remediate", "history", "--env", env]
    if not target:
        shown = command(*base)
        return f"History: {shown}" if shown else "History: remediate history"
    # ``--target=VALUE`` in one word: a target starting with "-" stays a value.
    shown = command(*base, f"--target={target}")
    if shown is None:
        listing = command(*base)
        return (
            "History: the target holds control or format characters and is not shown as a "
            f"command; list recent records with: {listing or 'remediate history'}"
        )
    return f"History: {shown}"


def _compact(value: Any) -> str:
    # ensure_ascii escapes every control and non-ASCII character; one_line is the backstop.
    return one_line(json.dumps(value, default=str, sort_keys=True), FIELD_LIMIT)


class Notifier:
    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        self._sns.publish(TopicArn=self._topic, Subject=subject, Message=message)
