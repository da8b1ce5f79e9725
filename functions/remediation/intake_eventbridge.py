"""Intake of the EventBridge "CloudWatch Alarm State Change" event -> ``Request``.

CloudWatch guarantees delivery of alarm state changes to EventBridge (the default bus of the
alarm's account and region). The event, as AWS documents it::

    {"version": "0", "id": ..., "detail-type": "CloudWatch Alarm State Change",
     "source": "aws.cloudwatch", "account": "123456789012", "time": "...Z",
     "region": "eu-west-1", "resources": ["<alarm ARN>"],
     "detail": {"alarmName": ..., "state": {"value", "reason", "timestamp"},
                "previousState": {...}, "configuration": {"description", "metrics": [...]},
                "alarmTags": {...}}}

It gives the same ``Request`` as the SNS message of the same transition, with the same
idempotency key (alarm ARN + state time + state value), so an alarm delivered once by SNS and
once by EventBridge is handled once. The top-level ``account`` and ``region`` go where the
scope check compares them with the ARN (``details["account_id"]``/``["region_code"]``).

Composite alarms (``configuration.alarmRule``) are refused: the suite confirms only metric
alarms at their source (``confirm.py``). The direct Lambda alarm-action payload also carries
``source: aws.cloudwatch``; it has ``alarmData`` and no ``detail-type`` (``intake.parse``
tells them apart by that shape).
"""

from __future__ import annotations

from typing import Any

from .intake import (
    alarm_arn,
    bounded,
    excerpt,
    require_state,
    require_text,
    require_time,
    transition_key,
)
from .models import RejectedError, Request, Source

DETAIL_TYPE = "CloudWatch Alarm State Change"
#: alarm tags kept in the request (the alarm's own tags: at most 50 per resource)
MAX_TAGS = 50


def is_eventbridge(message: Any) -> bool:
    """An EventBridge event (it has a ``detail-type``), whatever its source."""
    return isinstance(message, dict) and "detail-type" in message


def parse_alarm_event(event: dict[str, Any]) -> Request:
    """One EventBridge alarm state-change event -> Request; ``RejectedError`` otherwise."""
    raw = excerpt(event)
    if event.get("source") != "aws.cloudwatch":
        raise RejectedError(
            f"EventBridge event from source {str(event.get('source'))[:60]!r}: only "
            "aws.cloudwatch alarm state changes are accepted",
            raw=raw,
        )
    if event.get("detail-type") != DETAIL_TYPE:
        raise RejectedError(
            f"EventBridge event of detail-type {str(event.get('detail-type'))[:80]!r}: only "
            f"{DETAIL_TYPE!r} is acted on (check the rule's event pattern)",
            raw=raw,
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise RejectedError("EventBridge alarm event: detail must be an object", raw=raw)
    arn = _resource(event, raw)
    name = require_text(detail, "alarmName", 255)
    if arn.split(":alarm:", 1)[1] != name:
        raise RejectedError(
            f"EventBridge alarm event: detail.alarmName {name[:100]!r} is not the alarm "
            f"resources[0] names ({arn[:200]!r})",
            raw=raw,
        )
    configuration = detail.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        raise RejectedError("detail.configuration must be an object", raw=raw)
    configuration = configuration or {}
    if "alarmRule" in configuration:
        raise RejectedError(
            f"alarm {name[:100]!r} is a composite alarm: the suite confirms and acts on metric "
            "alarms only; route the metric alarms it combines instead",
            raw=raw,
        )
    state_obj = detail.get("state")
    if not isinstance(state_obj, dict):
        raise RejectedError("detail.state must be an object", raw=raw)
    state = require_state(state_obj, "value", "detail.state.value")
    changed = require_text(state_obj, "timestamp", 64, "detail.state.timestamp")
    when = require_time(changed, "detail.state.timestamp", event)
    previous = detail.get("previousState")
    reason = state_obj.get("reason")
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
            # What the envelope claims beside its ARN: the scope check makes them agree.
            "account_id": _envelope_field(event, "account", raw),
            "region_code": _envelope_field(event, "region", raw),
            "metric": _metric_summary(configuration),
            "tags": _tags(detail.get("alarmTags"), raw),
            "delivery": "eventbridge",
        },
    )


def _resource(event: dict[str, Any], raw: str) -> str:
    resources = event.get("resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise RejectedError(
            "EventBridge alarm event: resources must hold exactly one alarm ARN", raw=raw
        )
    arn = resources[0]
    if not isinstance(arn, str) or len(arn) > 2048 or not alarm_arn(arn):
        raise RejectedError(
            f"EventBridge alarm event: resources[0] is not a CloudWatch alarm ARN: "
            f"{str(arn)[:200]!r}",
            raw=raw,
        )
    return arn


def _envelope_field(event: dict[str, Any], name: str, raw: str) -> str:
    """``account``/``region``: EventBridge always sets them; an event without is forged."""
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise RejectedError(
            f"EventBridge alarm event: top-level {name} missing: cannot tell whose alarm it is",
            raw=raw,
        )
    return value[:64]


def _tags(tags: Any, raw: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise RejectedError("detail.alarmTags must map tag keys to string values", raw=raw)
    return {k[:128]: v[:256] for k, v in list(tags.items())[:MAX_TAGS]}


def _metric_summary(configuration: dict[str, Any]) -> str:
    """One line naming what the alarm watched: the returned expression, or one metric."""
    metrics = configuration.get("metrics")
    if not isinstance(metrics, list):
        return ""
    for metric in metrics:
        if isinstance(metric, dict) and metric.get("returnData") and metric.get("expression"):
            return str(metric["expression"])[:200]
    for metric in metrics:
        stat = metric.get("metricStat") if isinstance(metric, dict) else None
        watched = stat.get("metric") if isinstance(stat, dict) else None
        if isinstance(watched, dict):
            namespace, metric_name = watched.get("namespace"), watched.get("name")
            if isinstance(namespace, str) and isinstance(metric_name, str):
                return f"{namespace} {metric_name}"
    return "metric math" if len(metrics) > 1 else ""
