"""Building blocks shared by the reliability tests: alarm transitions and target state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_function
from serverless_remediation.remediation.clients import Clients
from tests.conftest import load_event, sns_alarm

#: how long before "now" a transition happened when a test does not say: inside the
#: pipeline's freshness limit (``MAX_EVENT_AGE_SECONDS``, 15 min by default)
DEFAULT_AGE = timedelta(seconds=30)


def alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def transition(name: str, state: str = "ALARM", *, at: datetime | None = None) -> dict:
    """A CloudWatch alarm message (the JSON inside ``Sns.Message``) for one transition,
    by default one that happened just now (an old one is refused as stale)."""
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    when = at or datetime.now(UTC) - DEFAULT_AGE
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


def rollback_target(clients: Clients, name: str, versions: int = 3) -> str:
    """A Lambda function ``name`` with ``versions`` versions, alias ``live`` on the newest."""
    return create_function(clients, name, versions=versions)


def alias_version(clients: Clients, alias_arn: str) -> int:
    function_arn, alias = alias_arn.rsplit(":", 1)
    name = function_arn.rsplit(":", 1)[1]
    return int(clients("lambda").get_alias(FunctionName=name, Name=alias)["FunctionVersion"])
