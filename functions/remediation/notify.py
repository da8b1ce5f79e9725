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

import hashlib
import json
import shlex
import unicodedata
from collections.abc import Mapping
from typing import Any

from .models import Outcome, Result, Source

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


def build_notice(
    env: str, result: Result, *, key: str, reason: str, account: str | None = None
) -> tuple[str, str]:
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
        *([f"Account:    {one_line(account)}"] if account else []),
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


# -- chat (Amazon Q Developer in chat applications, custom notifications) ------------------

#: chat title and description bounds (kept well under what Slack and Teams render whole)
CHAT_TITLE_LIMIT = 250
CHAT_DESCRIPTION_LIMIT = 4000
CHAT_FIELD_LIMIT = 300
#: SNS refuses a message over 256 KiB (all protocols' bodies together, as one JSON string)
SNS_MESSAGE_LIMIT = 256 * 1024
#: what an outcome is called in chat (also the ``eventType``)
EVENT_TYPES = {
    Outcome.EXECUTED: "RemediationExecuted",
    Outcome.DRY_RUN: "RemediationDryRun",
    Outcome.ESCALATED: "RemediationEscalated",
    Outcome.FAILED: "RemediationFailed",
    Outcome.REJECTED: "RemediationRejected",
    Outcome.SKIPPED: "RemediationSkipped",
    Outcome.PENDING: "RemediationPending",
}
_MARKDOWN_LOOKALIKES = str.maketrans({"`": "\u02cb", "<": "\u2039", ">": "\u203a"})


def incident_id(env: str, key: str, target: str | None) -> str:
    """One incident: the alarm (or budget, or request) ``key`` on ``target`` in ``env``.

    A chat thread and a PagerDuty ``dedup_key`` both use it, so an alarm's repeats, its
    escalation and its return to OK land together. A digest: fixed length (PagerDuty allows
    255), printable whatever the alarm name holds."""
    digest = hashlib.sha256(f"{env}\n{key}\n{target or ''}".encode()).hexdigest()
    return f"auto-remediation-{digest[:40]}"


def code(value: Any, limit: int = CHAT_FIELD_LIMIT) -> str:
    """``value`` as a markdown code span: one line, nothing that ends it or pings anyone,
    at most ``limit`` characters shown (escapes included)."""
    return f"`{_bounded(value, limit).translate(_MARKDOWN_LOOKALIKES)}`"


def build_chat_notice(
    env: str,
    result: Result,
    *,
    key: str,
    reason: str,
    next_steps: list[str] | None = None,
    context: Mapping[str, str] | None = None,
    buttons: bool = False,
    account: str | None = None,
) -> dict[str, Any]:
    """The custom notification for one result. ``next_steps`` and ``context`` (values added
    to ``metadata.additionalContext``, e.g. an approval id a chat button reads) let other
    notices reuse the layout; ``buttons`` lets the channel attach its custom actions
    (``metadata.enableCustomActions``: the Approve / Reject buttons of a pending approval)."""
    subject, _ = build_notice(env, result, key=key, reason=reason)
    lines = [
        f"*Outcome:* {code(result.outcome)}",
        f"*Why:* {code(result.reason or '-')}",
        f"*Action:* {code(result.action or '-')} on {code(result.target or '-')}",
    ]
    if account:
        lines.append(f"*Account:* {code(account)}")
    if result.before is not None or result.after is not None:
        lines.append(
            f"*Before -> after:* {_chat_state(result.before)} -> {_chat_state(result.after)}"
        )
    lines += [
        f"*Alarm:* {code(key or '-')}: {code(reason or '-')}",
        f"*Audit id:* {code(result.audit_id)}",
    ]
    description = "\n".join(lines)
    if len(description) > CHAT_DESCRIPTION_LIMIT:
        description = description[: CHAT_DESCRIPTION_LIMIT - 3] + "..."
    steps = next_steps if next_steps is not None else _next_steps(env, result)
    target = result.target or ""
    related = [target] if _arn_like(target) else []
    additional = {
        "env": one_line(env, 100),
        "outcome": str(result.outcome),
        "auditId": one_line(result.audit_id, 100),
        "action": one_line(result.action or "-", 100),
        "target": one_line(result.target or "-", CHAT_FIELD_LIMIT),
        "alarm": one_line(key or "-", CHAT_FIELD_LIMIT),
        **({"account": one_line(account, 20)} if account else {}),
        **{name: one_line(value, CHAT_FIELD_LIMIT) for name, value in (context or {}).items()},
    }
    metadata: dict[str, Any] = {
        "threadId": incident_id(env, key, result.target),
        "summary": subject.translate(_MARKDOWN_LOOKALIKES),
        "eventType": EVENT_TYPES.get(result.outcome, "RemediationNotice"),
        "relatedResources": related,
        "additionalContext": additional,
    }
    if buttons:
        metadata["enableCustomActions"] = True
    return {
        "version": "1.0",
        "source": "custom",
        "id": one_line(result.audit_id, 100),
        "content": {
            "textType": "client-markdown",
            "title": subject[:CHAT_TITLE_LIMIT].translate(_MARKDOWN_LOOKALIKES),
            "description": description,
            "nextSteps": steps,
            "keywords": [
                k for k in (env, str(result.outcome), result.action) if k and len(k) <= 100
            ],
        },
        "metadata": metadata,
    }


def _arn_like(text: str) -> bool:
    """An ARN a chat client may link: printable ASCII, no space or markdown."""
    return (
        text.startswith("arn:")
        and text.isascii()
        and text.isprintable()
        and not any(ch in text for ch in " `<>|*_~")
    )


def _chat_state(value: Any) -> str:
    return code(json.dumps(value, default=str, sort_keys=True), CHAT_FIELD_LIMIT)


def _next_steps(env: str, result: Result) -> list[str]:
    steps = {
        Outcome.ESCALATED: "A human decides: nothing was changed by the suite.",
        Outcome.FAILED: "The action failed: check the target; the event is in the dead-letter "
        "queue for a redrive.",
        Outcome.EXECUTED: "Check the alarm returns to OK; if the change was wrong, revert it.",
        Outcome.DRY_RUN: "Nothing changed (dry-run).",
        Outcome.REJECTED: "Nothing changed: the event was refused.",
    }
    out = [steps[result.outcome]] if result.outcome in steps else []
    # Commands as code spans; one a code span cannot hold whole is not offered.
    history = command("remediate", "history", "--env", env, f"--target={result.target}")
    if not result.target or not _fits_a_span(history):
        history = command("remediate", "history", "--env", env)
    status = command("remediate", "status", "--env", env)
    out += [f"`{line}`" for line in (history, status) if _fits_a_span(line)]
    return out


def _fits_a_span(line: str | None) -> bool:
    return bool(line) and not any(ch in (line or "") for ch in "`<>")


class Notifier:
    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._sns = sns_client
        self._topic = topic_arn

    def publish(self, subject: str, message: str, chat: Mapping[str, Any] | None = None) -> None:
        """One notice: ``message`` for mail and every other protocol, ``chat`` (a custom
        notification) for the HTTPS subscriptions chat channels make."""
        if chat is None:
            self._sns.publish(TopicArn=self._topic, Subject=subject, Message=message)
            return
        self._sns.publish(
            TopicArn=self._topic,
            Subject=subject,
            MessageStructure="json",
            Message=structured_message(message, chat),
        )


def structured_message(message: str, chat: Mapping[str, Any]) -> str:
    """The per-protocol body SNS ``MessageStructure=json`` takes: ``default`` (required) and
    ``email`` the plain text, ``https`` the chat notice. Within SNS's size limit: the chat
    body is dropped (chat gets the plain text) rather than the notice failing."""
    bodies = {"default": message, "email": message, "https": json.dumps(chat)}
    whole = json.dumps(bodies)
    if len(whole.encode()) <= SNS_MESSAGE_LIMIT:
        return whole
    # Escaped as JSON, one character takes at most 12 bytes (a surrogate pair).
    return json.dumps({"default": message[: SNS_MESSAGE_LIMIT // 16]})


# -- pages (an EventBridge event; a rule maps it to PagerDuty's Events API v2) ---------------

#: the event the remediators put on the default bus for every outcome that pages or resolves
OUTCOME_SOURCE = "auto-remediation"
OUTCOME_DETAIL_TYPE = "Remediation Outcome"
#: outcomes that page: a human must act (manual requests answer their caller instead)
PAGE = frozenset({Outcome.ESCALATED, Outcome.FAILED})
#: a plan waiting for approval pages too, at ``warning``, on a page of its own (one per
#: target): under the incident's key, a later failure would be folded into a warning alert
APPROVAL_PAGE = "approval"
BREAKER_OPEN = "circuit breaker open"
PAGE_SUMMARY_LIMIT = 1024


def build_outcome_event(
    env: str, result: Result, *, key: str, source: str, state: str
) -> dict[str, Any] | None:
    """The ``detail`` of the outcome event, or None when nothing pages or resolves.

    ``trigger`` for an escalated or failed automatic delivery (a breaker opening is an
    escalation, marked ``breaker``) and, at ``warning`` on its own key, for a plan waiting for
    approval; ``resolve`` of that key when a person answered it, and of the incident when an
    alarm's OK transition, confirmed by CloudWatch (``result.resolves``), went through without
    a failure or a refusal: the incident the ALARM opened closes (PagerDuty ignores a resolve
    for a key it never saw)."""
    automatic = source != "manual"
    dedup = incident_id(env, key, result.target)
    if result.outcome is Outcome.AWAITING_APPROVAL:
        action, dedup = "trigger", approval_page(env, result.target)
    elif (
        source == Source.APPROVAL
        and result.outcome not in PAGE
        and result.outcome is not Outcome.REJECTED
    ):
        # a person answered (approved and applied, or rejected): the asking page closes; a
        # refused answer (unknown, expired, not an approver) leaves it open
        action, dedup = "resolve", approval_page(env, result.target)
    elif result.outcome in PAGE and automatic:
        action = "trigger"
    elif (
        result.resolves
        and source == "alarm"
        and state == "OK"
        and result.outcome is not Outcome.REJECTED
    ):
        action = "resolve"
    else:
        return None
    breaker = result.outcome is Outcome.ESCALATED and BREAKER_OPEN in result.reason
    subject, _ = build_notice(env, result, key=key, reason="")
    severity = (
        "critical"
        if breaker or result.outcome is Outcome.FAILED
        else "warning"
        if result.outcome is Outcome.AWAITING_APPROVAL
        else "error"
    )
    return {
        "env": _bounded(env, 100),
        "eventAction": action,
        "dedupKey": dedup,
        "summary": _bounded(f"{subject}: {result.reason}", PAGE_SUMMARY_LIMIT),
        "severity": severity if action == "trigger" else "info",
        "outcome": str(result.outcome),
        "breaker": breaker,
        "auditId": _bounded(result.audit_id, 100),
        "action": _bounded(result.action or "-", 100),
        "target": _bounded(result.target or "-", CHAT_FIELD_LIMIT),
        "alarm": _bounded(key or "-", CHAT_FIELD_LIMIT),
        "state": _bounded(state or "-", 40),
        "reason": _bounded(result.reason or "-", CHAT_FIELD_LIMIT),
    }


def approval_page(env: str, target: str | None) -> str:
    """The dedup key of the page asking for an approval on ``target``."""
    return incident_id(env, APPROVAL_PAGE, target)


def _bounded(value: Any, limit: int) -> str:
    """One line of at most ``limit`` characters, escapes included."""
    shown = one_line(value, limit)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


class OutcomeEvents:
    """Puts outcome events on the account's default bus. Best effort: the audit record and
    the notice are already written when it runs; a page that cannot be sent is logged
    (``page not sent``) and the delivery goes on."""

    def __init__(self, events_client: Any) -> None:
        self._events = events_client

    def put(self, detail: Mapping[str, Any]) -> bool:
        entry = {
            "Source": OUTCOME_SOURCE,
            "DetailType": OUTCOME_DETAIL_TYPE,
            "Detail": json.dumps(detail, sort_keys=True),
        }
        response = self._events.put_events(Entries=[entry])
        return not response.get("FailedEntryCount")
