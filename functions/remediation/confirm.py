"""Confirm a trigger at its source before acting on it.

Anyone who can publish to an alarm topic or invoke a remediator can write an alarm message.
What they cannot write is CloudWatch's own view of the alarm: ``DescribeAlarms`` in this
account and region. An alarm request is acted on only when

- it is fresh: its state changed at most ``max_age`` ago (an old capture, a redelivery after
  the idempotency record expired, a message stuck in a queue: a human looks instead);
- the alarm exists here, under the name and ARN the message gives;
- it is in the state the message says, and entered it at (or after) the message's time
  (``StateTransitionedTimestamp``, else ``StateUpdatedTimestamp``), so the alarm has not
  recovered and fired again since.

``check_fresh`` and ``check_alarm`` are pure; ``describe_alarm`` is the one AWS call.
Both checks raise ``RejectedError``: the pipeline records, notifies and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .errors import RejectedError, SkippedError
from .models import Request, Source

#: CloudWatch's message and its API round times differently (ms vs. s): allow this much
CLOCK_SLACK = timedelta(seconds=1)


def check_fresh(request: Request, now: datetime, max_age_seconds: int) -> None:
    """``RejectedError`` if an alarm or budget request is older than ``max_age_seconds``."""
    if request.source is Source.MANUAL or request.occurred_at is None:
        return
    age = now - request.occurred_at
    if age > timedelta(seconds=max_age_seconds):
        minutes = int(age.total_seconds() // 60)
        raise RejectedError(
            f"{request.source} {request.key[:100]!r} changed state at "
            f"{request.occurred_at.isoformat()}, {minutes} min ago: older than the "
            f"{max_age_seconds // 60} min an event may be acted on"
        )
    if age < -timedelta(minutes=5):
        raise RejectedError(
            f"{request.source} {request.key[:100]!r} claims a state change at "
            f"{request.occurred_at.isoformat()}, in the future"
        )


def describe_alarm(cloudwatch: Any, name: str) -> dict[str, Any] | None:
    """The metric alarm named ``name`` in the client's account and region.

    Metric alarms only: the suite's alarms are metric alarms, and CloudWatch returns composite
    alarms only to a permission on "*", while this one is scoped to the suite's alarm names.
    """
    found = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])
    alarms = found.get("MetricAlarms", [])
    return alarms[0] if alarms else None


def check_alarm(request: Request, alarm: dict[str, Any] | None) -> None:
    """Pure: ``RejectedError`` unless ``alarm`` (from DescribeAlarms) confirms ``request``."""
    name = request.key[:100]
    if alarm is None:
        raise RejectedError(f"alarm {name!r} does not exist in this account and region")
    if alarm.get("AlarmArn") != request.requested_by:
        raise RejectedError(
            f"alarm {name!r} has ARN {str(alarm.get('AlarmArn'))[:200]!r}, "
            f"not {request.requested_by[:200]!r} as the event says"
        )
    state = alarm.get("StateValue")
    if state != request.state:
        raise RejectedError(f"alarm {name!r} is {state} now, not {request.state} as the event says")
    since = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
    if not isinstance(since, datetime) or request.occurred_at is None:
        raise RejectedError(f"alarm {name!r}: cannot tell when it entered {state}")
    if since < request.occurred_at - CLOCK_SLACK:
        raise RejectedError(
            f"alarm {name!r} has been {state} since {since.isoformat()}, before the event's "
            f"state change at {request.occurred_at.isoformat()}: the event is not CloudWatch's"
        )


def check_still_alarming(alarm_arn: str, name: str, alarm: dict[str, Any] | None) -> None:
    """Pure: an approved change answers an alarm; it is made only while that alarm is still
    in ALARM. ``RejectedError`` when the alarm is gone or another; ``SkippedError`` when it
    has left ALARM (the change is no longer needed: nothing changes, the approval is used)."""
    name = name[:100]
    if alarm is None or alarm.get("AlarmArn") != alarm_arn:
        raise RejectedError(f"alarm {name!r} the approval answers no longer exists as asked")
    state = alarm.get("StateValue")
    if state != "ALARM":
        raise SkippedError(
            f"alarm {name!r} is {state} now, no longer ALARM: the approved change is not "
            "needed; nothing changed (the next ALARM asks again)"
        )
