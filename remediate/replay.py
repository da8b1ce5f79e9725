"""Replay a captured event at another time: move its timestamps, keep everything else.

A user who captured an alarm from their own incident can replay it in the drill; a test can
deliver a sample event "now". The remediator refuses an alarm transition older than
``MAX_EVENT_AGE_SECONDS``, so a replay moves the event's own times to ``when``:

- SNS records: ``Sns.Timestamp``, and inside a CloudWatch alarm message ``StateChangeTime``;
- the direct Lambda alarm-action payload: ``time`` and ``alarmData.state.timestamp``;
- the EventBridge "CloudWatch Alarm State Change" event: ``time`` (EventBridge's whole
  seconds, ``Z``) and ``detail.state.timestamp``.

The idempotency key (alarm ARN + state time + state) changes with it, as it would for a new
transition. Anything that is not one of these shapes is returned unchanged.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any


def cloudwatch_time(when: datetime) -> str:
    """The time format CloudWatch writes: ``2026-11-23T10:29:36.557+0000``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{when.microsecond // 1000:03d}+0000"
    )


def sns_time(when: datetime) -> str:
    """The time format SNS writes: ``2026-11-23T10:29:36.611Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def retime(event: Any, when: datetime) -> Any:
    """A copy of ``event`` whose state-change and delivery times are ``when``."""
    moved = copy.deepcopy(event)
    if isinstance(moved, dict) and isinstance(moved.get("Records"), list):
        for record in moved["Records"]:
            _retime_sns(record, when)
    elif isinstance(moved, dict) and "detail-type" in moved:
        _retime_eventbridge(moved, when)
    elif isinstance(moved, dict) and moved.get("source") == "aws.cloudwatch":
        _retime_direct(moved, when)
    return moved


def eventbridge_time(when: datetime) -> str:
    """The time format of an EventBridge envelope: ``2026-11-23T10:29:36Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retime_sns(record: Any, when: datetime) -> None:
    sns = record.get("Sns") if isinstance(record, dict) else None
    if not isinstance(sns, dict):
        return
    if "Timestamp" in sns:
        sns["Timestamp"] = sns_time(when)
    try:
        message = json.loads(sns.get("Message") or "")
    except (TypeError, ValueError):
        return  # a Budgets notice is plain text: its Timestamp is the envelope's
    if isinstance(message, dict) and "StateChangeTime" in message:
        message["StateChangeTime"] = cloudwatch_time(when)
        sns["Message"] = json.dumps(message)


def _retime_direct(payload: dict, when: datetime) -> None:
    if "time" in payload:
        payload["time"] = cloudwatch_time(when)
    state = (payload.get("alarmData") or {}).get("state")
    if isinstance(state, dict) and "timestamp" in state:
        state["timestamp"] = cloudwatch_time(when)


def _retime_eventbridge(event: dict, when: datetime) -> None:
    if "time" in event:
        event["time"] = eventbridge_time(when)
    detail = event.get("detail")
    state = detail.get("state") if isinstance(detail, dict) else None
    if isinstance(state, dict) and "timestamp" in state:
        state["timestamp"] = cloudwatch_time(when)
