"""Intake: every shape an event can arrive in -> one normalised ``Request`` per message.

Pure functions. Shapes understood:

- SNS ``Records`` wrapping a CloudWatch alarm message (single metric ``Trigger`` or
  metric-math ``Trigger.Metrics``) or an AWS Budgets plain-text notice;
- the EventBridge "CloudWatch Alarm State Change" event (``detail-type``; parsed in
  ``intake_eventbridge.py``);
- the direct Lambda alarm-action payload (``source: aws.cloudwatch``, ``alarmData``, no
  ``detail-type``);
- a manual request ``{action, target, params, dry_run, reason, requested_by}``.

Anything else raises ``RejectedError`` with a message a human can act on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from .errors import RejectedError
from .models import ALARM_STATES, Request, Source

RAW_EXCERPT = 2048
MAX_REASON = 1024

_BUDGET_SUBJECT = re.compile(
    r"^AWS Budgets:\s*(?P<name>.+?)\s+has exceeded your\b.*\balert threshold", re.IGNORECASE
)
_BUDGET_NAME_LINE = re.compile(r"^\s*Budget Name:\s*(?P<name>\S.*?)\s*$", re.MULTILINE)
_ALARM_ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:.+$")

MANUAL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action", "target", "reason", "requested_by"],
    "properties": {
        "action": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$"},
        "target": {"type": "string", "minLength": 1, "maxLength": 2048},
        "params": {"type": "object", "maxProperties": 32},
        "dry_run": {"type": "boolean"},
        "reason": {"type": "string", "minLength": 3, "maxLength": MAX_REASON},
        "requested_by": {"type": "string", "minLength": 1, "maxLength": 256},
        "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
    },
}


def excerpt(value: Any) -> str:
    """A bounded printable copy of what arrived, for the audit record."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    # A lone surrogate cannot be stored or published: keep a "?" in its place.
    return text[:RAW_EXCERPT].encode(errors="replace").decode()


def split(event: Any) -> list[Any]:
    """The messages inside one Lambda event: one per SNS record, else the event itself."""
    if isinstance(event, dict) and "Records" in event:
        records = event["Records"]
        if not isinstance(records, list) or not records:
            raise RejectedError("SNS event has no Records", raw=excerpt(event))
        return records
    return [event]


def parse(message: Any) -> Request:
    """One message (an SNS record, a direct alarm payload or a manual request) -> Request."""
    _require_valid_unicode(message)
    if isinstance(message, dict) and "Sns" in message:
        return _parse_sns(message)
    if isinstance(message, dict) and "detail-type" in message:
        # Imported here: the EventBridge parser reuses this module's field checks.
        from .intake_eventbridge import parse_alarm_event

        return parse_alarm_event(message)
    if isinstance(message, dict) and message.get("source") == "aws.cloudwatch":
        return _parse_direct_alarm(message)
    if isinstance(message, dict) and ("approve" in message or "reject" in message):
        from .approvals import parse_decision  # a human's approve / reject

        return parse_decision(message, excerpt(message))
    if isinstance(message, dict) and "action" in message:
        return _parse_manual(message)
    raise RejectedError(
        "unrecognised event: expected SNS Records, an EventBridge CloudWatch Alarm State "
        "Change event, a CloudWatch alarm payload (source aws.cloudwatch) or a manual "
        "request with action/target/reason/requested_by",
        raw=excerpt(message),
    )


def _parse_sns(record: dict[str, Any]) -> Request:
    sns = record["Sns"]
    if not isinstance(sns, dict):
        raise RejectedError("SNS record: Sns must be an object", raw=excerpt(record))
    body = sns.get("Message")
    subject = sns.get("Subject") or ""
    if not isinstance(body, str) or not body.strip():
        raise RejectedError("SNS record: Message missing or empty", raw=excerpt(record))
    if not isinstance(subject, str):
        raise RejectedError("SNS record: Subject must be a string", raw=excerpt(record))
    if subject.startswith("AWS Budgets:"):
        sent = sns.get("Timestamp")
        return _parse_budget(subject, body, sent if isinstance(sent, str) else None)
    try:
        alarm = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
        raise RejectedError(
            "SNS message is neither CloudWatch alarm JSON nor an AWS Budgets notice",
            raw=excerpt(body),
        ) from None
    if not isinstance(alarm, dict):
        raise RejectedError("SNS message JSON must be an object", raw=excerpt(body))
    _require_valid_unicode(alarm)
    return _parse_sns_alarm(alarm)


def _parse_sns_alarm(alarm: dict[str, Any]) -> Request:
    name = require_text(alarm, "AlarmName", 255)
    arn = require_text(alarm, "AlarmArn", 2048)
    state = require_state(alarm, "NewStateValue")
    changed = require_text(alarm, "StateChangeTime", 64)
    when = require_time(changed, "StateChangeTime", alarm)
    if not alarm_arn(arn):
        raise RejectedError(
            f"AlarmArn is not a CloudWatch alarm ARN: {arn[:200]!r}", raw=excerpt(alarm)
        )
    trigger = alarm.get("Trigger")
    if trigger is not None and not isinstance(trigger, dict):
        raise RejectedError("Trigger must be an object", raw=excerpt(alarm))
    reason = alarm.get("NewStateReason")
    return Request(
        source=Source.ALARM,
        key=name,
        idempotency_key=transition_key(arn, when, state),
        state=state,
        requested_by=arn,
        reason=bounded(reason if isinstance(reason, str) else f"alarm {name} is {state}"),
        occurred_at=when,
        details={
            "old_state": alarm.get("OldStateValue"),
            "region": arn.split(":")[3],
            "account": arn.split(":")[4],
            # What the message claims beside its ARN: the scope check makes them agree.
            "account_id": alarm.get("AWSAccountId"),
            "metric": _metric_summary(trigger or {}),
        },
    )


def _parse_direct_alarm(payload: dict[str, Any]) -> Request:
    arn = require_text(payload, "alarmArn", 2048)
    data = payload.get("alarmData")
    if not isinstance(data, dict):
        raise RejectedError("alarmData must be an object", raw=excerpt(payload))
    name = require_text(data, "alarmName", 255)
    state_obj = data.get("state")
    if not isinstance(state_obj, dict):
        raise RejectedError("alarmData.state must be an object", raw=excerpt(payload))
    state = require_state(state_obj, "value")
    changed = require_text(state_obj, "timestamp", 64)
    when = require_time(changed, "alarmData.state.timestamp", payload)
    if not alarm_arn(arn):
        raise RejectedError(
            f"alarmArn is not a CloudWatch alarm ARN: {arn[:200]!r}", raw=excerpt(payload)
        )
    reason = state_obj.get("reason")
    previous = data.get("previousState")
    return Request(
        source=Source.ALARM,
        key=name,
        idempotency_key=transition_key(arn, when, state),
        state=state,
        requested_by=arn,
        reason=bounded(reason if isinstance(reason, str) else f"alarm {name} is {state}"),
        occurred_at=when,
        details={
            "old_state": previous.get("value") if isinstance(previous, dict) else None,
            "region": arn.split(":")[3],
            "account": arn.split(":")[4],
            # What the payload claims beside its ARN: the scope check makes them agree.
            "account_id": payload.get("accountId"),
            "region_code": payload.get("region"),
        },
    )


def _parse_budget(subject: str, body: str, sent: str | None) -> Request:
    match = _BUDGET_SUBJECT.match(subject) or _BUDGET_NAME_LINE.search(body)
    if not match:
        raise RejectedError(
            "AWS Budgets notice without a budget name in its subject or body", raw=excerpt(body)
        )
    name = match.group("name").strip()[:255]
    digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()
    return Request(
        source=Source.BUDGET,
        key=name,
        idempotency_key=f"budget|{name}|{digest}",
        state="ALARM",
        requested_by=f"budget:{name}",
        reason=bounded(subject),
        occurred_at=require_time(sent, "Sns.Timestamp", {"Timestamp": sent}) if sent else None,
        details={"notice": body[:RAW_EXCERPT]},
    )


@cache
def _manual_validator() -> Callable[[Any], Any]:
    import fastjsonschema  # only manual requests pay for the schema compiler

    return fastjsonschema.compile(MANUAL_SCHEMA)


def _parse_manual(payload: dict[str, Any]) -> Request:
    from fastjsonschema import JsonSchemaException

    try:
        _manual_validator()(payload)
    except JsonSchemaException as exc:
        message = (
            str(getattr(exc, "message", exc))
            .replace("data.", "", 1)
            .replace("data ", "request ", 1)
        )
        raise RejectedError(f"manual request invalid: {message}", raw=excerpt(payload)) from None
    request_id = payload.get("request_id")
    return Request(
        source=Source.MANUAL,
        key=payload["action"],
        # Every manual request is its own event unless the caller names it.
        idempotency_key=f"manual|{request_id}" if request_id else "",
        state="ALARM",
        requested_by=payload["requested_by"],
        reason=payload["reason"],
        action=payload["action"],
        target=payload["target"],
        params=dict(payload.get("params") or {}),
        dry_run=bool(payload.get("dry_run", False)),
    )


def _require_valid_unicode(value: Any) -> None:
    """Refuse text with a lone surrogate: legal in JSON escapes, but not UTF-8, so neither
    the audit table nor the notice topic could take it."""
    try:
        json.dumps(value, default=str, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise RejectedError(
            "event holds text that is not valid Unicode (a lone surrogate)", raw=excerpt(value)
        ) from None
    except (RecursionError, ValueError):
        pass  # nested too deeply or circular: the shape checks that follow say why


def require_text(obj: dict[str, Any], name: str, limit: int, label: str = "") -> str:
    """``obj[name]``, a non-empty string of at most ``limit`` characters (``label`` names it
    in the message when its path is longer than its name)."""
    value = obj.get(name)
    label = label or name
    if not isinstance(value, str) or not value.strip():
        raise RejectedError(f"{label} missing or not a non-empty string", raw=excerpt(obj))
    if len(value) > limit:
        raise RejectedError(f"{label} longer than {limit} characters", raw=excerpt(obj))
    return value


def require_state(obj: dict[str, Any], name: str, label: str = "") -> str:
    value = obj.get(name)
    if not isinstance(value, str) or value not in ALARM_STATES:  # a list is unhashable
        raise RejectedError(
            f"{label or name} must be one of {sorted(ALARM_STATES)}, got {str(value)[:40]!r}",
            raw=excerpt(obj),
        )
    return value


def require_time(value: str, name: str, obj: dict[str, Any]) -> datetime:
    try:
        # Python 3.11 reads "Z" and "+0000"; SNS and CloudWatch write both.
        when = datetime.fromisoformat(value)
    except ValueError:
        raise RejectedError(
            f"{name} is not an ISO 8601 time: {value!r}", raw=excerpt(obj)
        ) from None
    if when.tzinfo is None:
        raise RejectedError(f"{name} has no time zone: {value!r}", raw=excerpt(obj))
    return when


def bounded(text: str) -> str:
    return text[:MAX_REASON]


def alarm_arn(value: str) -> bool:
    """Whether ``value`` is a CloudWatch alarm ARN (any partition)."""
    return bool(_ALARM_ARN.match(value))


def transition_key(arn: str, when: datetime, state: str) -> str:
    """The idempotency key of one alarm transition, whatever delivered it (SNS, EventBridge,
    a direct alarm action): the alarm ARN, the state time in CloudWatch's own format
    (``2026-11-23T10:29:36.557+0000``, so a ``Z`` or another offset reads the same) and the
    state value."""
    utc = when.astimezone(UTC)
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"
    return f"{arn}|{stamp}|{state}"


def _metric_summary(trigger: dict[str, Any]) -> str:
    """One line naming what the alarm watched: a metric, or the metric-math expression."""
    if isinstance(trigger.get("Metrics"), list):
        for metric in trigger["Metrics"]:
            if isinstance(metric, dict) and metric.get("ReturnData") and metric.get("Expression"):
                return str(metric["Expression"])[:200]
        return "metric math"
    namespace, metric = trigger.get("Namespace"), trigger.get("MetricName")
    if isinstance(namespace, str) and isinstance(metric, str):
        return f"{namespace} {metric}"
    return ""
