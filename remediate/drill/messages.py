"""What CloudWatch and AWS Budgets send to SNS, the envelope SNS hands to Lambda, and the
alarm state-change event CloudWatch puts on EventBridge.

Pure builders. moto 5.2 never fires alarm actions, so the drill builds the exact message
CloudWatch would publish for an alarm from the alarm's own (synthesized) definition.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

# CloudWatch puts the region's display name in the message, not its code.
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "eu-south-1": "EU (Milan)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "sa-east-1": "South America (Sao Paulo)",
}
SUBJECT_LIMIT = 100


def cloudwatch_time(when: datetime) -> str:
    """CloudWatch's ``2026-11-23T10:29:36.557+0000``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def sns_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _dimensions(dimensions: list[dict] | None) -> list[dict]:
    # The message spells dimension keys in lower case, unlike the API.
    return [{"value": d["Value"], "name": d["Name"]} for d in dimensions or []]


def trigger(alarm: dict[str, Any]) -> dict[str, Any]:
    """The ``Trigger`` object for an alarm's (resolved) CloudFormation properties."""
    common = {
        "Period": alarm.get("Period"),
        "EvaluationPeriods": alarm.get("EvaluationPeriods"),
        "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm.get("EvaluationPeriods")),
        "ComparisonOperator": alarm.get("ComparisonOperator"),
        "Threshold": float(alarm["Threshold"]) if "Threshold" in alarm else None,
        "TreatMissingData": alarm.get("TreatMissingData", "missing"),
        "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
    }
    if "Metrics" in alarm:
        metrics = []
        for metric in alarm["Metrics"]:
            item: dict[str, Any] = {"Id": metric["Id"]}
            if "Expression" in metric:
                item["Expression"] = metric["Expression"]
            if "Label" in metric:
                item["Label"] = metric["Label"]
            if "MetricStat" in metric:
                stat = metric["MetricStat"]
                item["MetricStat"] = {
                    "Metric": {
                        "Dimensions": _dimensions(stat["Metric"].get("Dimensions")),
                        "MetricName": stat["Metric"]["MetricName"],
                        "Namespace": stat["Metric"]["Namespace"],
                    },
                    "Period": stat["Period"],
                    "Stat": stat["Stat"],
                }
                common["Period"] = common["Period"] or stat["Period"]
            item["ReturnData"] = metric.get("ReturnData", True)
            metrics.append(item)
        return {**common, "Metrics": metrics}
    if "ExtendedStatistic" in alarm:
        stat = {
            "StatisticType": "ExtendedStatistic",
            "ExtendedStatistic": alarm["ExtendedStatistic"],
        }
    else:
        stat = {"StatisticType": "Statistic", "Statistic": str(alarm.get("Statistic", "")).upper()}
    return {
        "MetricName": alarm.get("MetricName"),
        "Namespace": alarm.get("Namespace"),
        **stat,
        "Unit": alarm.get("Unit"),
        "Dimensions": _dimensions(alarm.get("Dimensions")),
        **common,
    }


def alarm_message(
    alarm: dict[str, Any],
    *,
    arn: str,
    region: str,
    account: str,
    new_state: str,
    old_state: str,
    reason: str,
    when: datetime,
) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS action on a state change."""
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": cloudwatch_time(when),
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": cloudwatch_time(when),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.get("OKActions") or []),
        "AlarmActions": list(alarm.get("AlarmActions") or []),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions") or []),
        "Trigger": trigger(alarm),
    }


def state_reason(alarm: dict[str, Any], new_state: str, when: datetime) -> str:
    """A ``NewStateReason`` shaped like CloudWatch's."""
    periods = alarm.get("EvaluationPeriods", 1)
    threshold = float(alarm.get("Threshold", 0))
    stamp = when.strftime("%d/%m/%y %H:%M:%S")
    transition = "OK -> ALARM" if new_state == "ALARM" else "ALARM -> OK"
    if new_state == "ALARM":
        value, verb = threshold * 2 or 1.0, "were"
    else:
        value, verb = 0.0, "were not"
    return (
        f"Threshold Crossed: {periods} out of the last {periods} datapoints "
        f"[{value} ({stamp})] {verb} greater than the threshold ({threshold}) "
        f"(minimum {periods} datapoint for {transition} transition)."
    )


def alarm_subject(name: str, state: str, region: str) -> str:
    return f'{state}: "{name}" in {REGION_NAMES.get(region, region)}'[:SUBJECT_LIMIT]


def eventbridge_time(when: datetime) -> str:
    """EventBridge's envelope ``time``: ``2026-11-23T10:29:36Z`` (whole seconds)."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_configuration(alarm: dict[str, Any]) -> dict[str, Any]:
    """``detail.configuration`` of the EventBridge event for an alarm's (resolved)
    CloudFormation properties: ``metrics[]`` with ``metricStat`` or ``expression``."""

    def stat(metric: dict[str, Any], period: Any, statistic: Any) -> dict[str, Any]:
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}
        watched = {"namespace": metric["Namespace"], "name": metric["MetricName"]}
        metric_ = {**watched, "dimensions": dimensions}
        return {"metric": metric_, "period": period, "stat": statistic}

    metrics: list[dict[str, Any]] = []
    if "Metrics" in alarm:
        for metric in alarm["Metrics"]:
            item: dict[str, Any] = {"id": metric["Id"]}
            if "Expression" in metric:
                item["expression"] = metric["Expression"]
            if "Label" in metric:
                item["label"] = metric["Label"]
            if "MetricStat" in metric:
                given = metric["MetricStat"]
                item["metricStat"] = stat(given["Metric"], given["Period"], given["Stat"])
            item["returnData"] = metric.get("ReturnData", True)
            metrics.append(item)
    else:
        statistic = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
        metrics.append(
            {
                "id": str(uuid.uuid4()),
                "metricStat": stat(alarm, alarm.get("Period"), statistic),
                "returnData": True,
            }
        )
    return {"description": alarm.get("AlarmDescription"), "metrics": metrics}


def alarm_event(
    alarm: dict[str, Any],
    *,
    arn: str,
    region: str,
    account: str,
    new_state: str,
    old_state: str,
    reason: str,
    when: datetime,
) -> dict[str, Any]:
    """The "CloudWatch Alarm State Change" event CloudWatch puts on the default bus of the
    alarm's account and region, as an EventBridge rule hands it to a Lambda target."""
    state = {"value": new_state, "reason": reason, "timestamp": cloudwatch_time(when)}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": eventbridge_time(when),
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": state,
            "previousState": {"value": old_state, "reason": "drill: the state before"},
            "configuration": event_configuration(alarm),
        },
    }


def budget_notice(
    budget: str, account: str, limit: float, actual: float, when: datetime
) -> tuple[str, str]:
    """(subject, plain-text body) of an AWS Budgets alert e-mail sent to SNS."""
    subject = f"AWS Budgets: {budget} has exceeded your alert threshold"
    threshold = limit * 0.8
    body = (
        f"AWS Budget Notification {when.strftime('%B %d, %Y')}\n"
        f"AWS Account {account}\n\nDear AWS Customer,\n\n"
        f"You requested that we alert you when the ACTUAL Cost associated with your {budget} "
        f"budget is greater than ${threshold:,.2f} for the current month. The ACTUAL Cost "
        f"associated with this budget is ${actual:,.2f}. You can find additional details below "
        "and by accessing the AWS Budgets dashboard [1].\n\n"
        f"Budget Name: {budget}\nBudget Type: Cost\nBudgeted Amount: ${limit:,.2f}\n"
        f"Alert Type: ACTUAL\nAlert Threshold: > ${threshold:,.2f}\n"
        f"ACTUAL Amount: ${actual:,.2f}\n\n"
        "[1] https://console.aws.amazon.com/billing/home#/budgets\n"
    )
    return subject, body


def sns_envelope(topic_arn: str, subject: str, message: str, when: datetime) -> dict[str, Any]:
    """The event SNS hands a subscribed Lambda function: one record."""
    region = topic_arn.split(":")[3]
    subscription = f"{topic_arn}:{uuid.uuid4()}"
    endpoint = f"https://sns.{region}.amazonaws.com"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": sns_time(when),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": f"{endpoint}/SimpleNotificationService-drill.pem",
                    "UnsubscribeUrl": (
                        f"{endpoint}/?Action=Unsubscribe&SubscriptionArn={subscription}"
                    ),
                    "MessageAttributes": {},
                },
            }
        ]
    }


def alarm_envelope(topic_arn: str, message: dict[str, Any], when: datetime) -> dict[str, Any]:
    region = message["AlarmArn"].split(":")[3]
    subject = alarm_subject(message["AlarmName"], message["NewStateValue"], region)
    return sns_envelope(topic_arn, subject, json.dumps(message), when)
