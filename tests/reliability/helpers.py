"""Building blocks shared by the reliability tests: alarm transitions and target state."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from remediate.emulator import ACCOUNT, REGION, create_function
from remediation.clients import Clients
from tests.conftest import load_event, sns_alarm

BASE_TIME = datetime.fromisoformat("2026-11-23T10:00:00.000+00:00")


def alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def transition(name: str, state: str = "ALARM", *, at: datetime | None = None) -> dict:
    """A CloudWatch alarm message (the JSON inside ``Sns.Message``) for one transition."""
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    when = at or BASE_TIME
    alarm.update(
        AlarmName=name,
        AlarmArn=alarm_arn(name),
        NewStateValue=state,
        OldStateValue="OK" if state == "ALARM" else "ALARM",
        StateChangeTime=when.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}+0000",
    )
    return alarm


def delivery(alarm: dict) -> dict:
    """One SNS -> Lambda delivery of ``alarm`` (each delivery has its own message id)."""
    return sns_alarm(alarm, message_id=str(uuid.uuid4()))


def later(minutes: float) -> datetime:
    return BASE_TIME + timedelta(minutes=minutes)


def rollback_target(clients: Clients, name: str, versions: int = 3) -> str:
    """A Lambda function ``name`` with ``versions`` versions, alias ``live`` on the newest."""
    return create_function(clients, name, versions=versions)


def alias_version(clients: Clients, alias_arn: str) -> int:
    function_arn, alias = alias_arn.rsplit(":", 1)
    name = function_arn.rsplit(":", 1)[1]
    return int(clients("lambda").get_alias(FunctionName=name, Name=alias)["FunctionVersion"])
