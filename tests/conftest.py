"""Shared fixtures: the moto server on loopback, the core resources, sample events."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from serverless_remediation.remediate.emulator import (
    ACCOUNT,
    FAKE_CREDENTIALS,
    REGION,
    Emulator,
    agree_alarms,
    create_audit_table,
)
from serverless_remediation.remediate.replay import cloudwatch_time, retime
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.config import Settings
from serverless_remediation.remediation.guards import GuardSettings
from serverless_remediation.remediation.models import Result
from serverless_remediation.remediation.pipeline import Pipeline
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.remediation.scope import Deployment

#: the deployment every test pipeline serves: the emulator's account and region
DEPLOYMENT = Deployment(account=ACCOUNT, region=REGION)

EVENTS = Path(__file__).parent / "events"
for _name, _value in FAKE_CREDENTIALS.items():
    os.environ[_name] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def load_event(name: str) -> Any:
    """A sample event from tests/events/ (a fresh copy each call)."""
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def sns_alarm(alarm: dict, *, message_id: str = "7a6c0f7e-0000-4000-8000-000000000001") -> dict:
    """Wrap a CloudWatch alarm message in the SNS -> Lambda envelope."""
    envelope = load_event("sns_alarm_single_metric.json")
    record = envelope["Records"][0]["Sns"]
    record["Message"] = json.dumps(alarm)
    record["MessageId"] = message_id
    record["Subject"] = f'ALARM: "{alarm.get("AlarmName", "")}" in EU (Ireland)'[:100]
    return envelope


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@dataclass
class Stack:
    """The core resources a remediator needs, created in the emulator for one test."""

    clients: Clients
    table: str = "remediation-test"
    switch: str = "/auto-remediation/test/switch"
    override_prefix: str = "/auto-remediation/test/switch-override/"
    topic_arn: str = ""
    queue_url: str = ""
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 10, 30, tzinfo=UTC))

    def event(self, name: str) -> Any:
        """A sample event from tests/events/, its state change moved to this stack's ``now``
        (an alarm older than the freshness limit is refused)."""
        return retime(load_event(name), self.now)

    def alarm_message(self, **fields: Any) -> dict:
        """The sample CloudWatch alarm message (not yet wrapped in SNS), changing state at
        this stack's ``now``, with ``fields`` replaced."""
        alarm = load_event("cloudwatch_alarm_single_metric.json")
        alarm["StateChangeTime"] = cloudwatch_time(self.now)
        return {**alarm, **fields}

    def set_switch(self, mode: str, name: str | None = None) -> None:
        self.clients("ssm").put_parameter(
            Name=name or self.switch, Value=mode, Type="String", Overwrite=True
        )

    def notices(self) -> list[dict]:
        """Every notice published so far (drained from the SQS queue subscribed to the topic)."""
        sqs = self.clients("sqs")
        found = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject"), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def audit_items(self) -> list[dict]:
        from serverless_remediation.remediation.audit import parse_item

        items = self.clients("dynamodb").scan(TableName=self.table)["Items"]
        return [parse_item(i) for i in items if i["pk"]["S"].startswith("audit#")]

    def settings(
        self,
        playbook: dict,
        actions: set[str] | None = None,
        guards: GuardSettings | None = None,
        deployment: Deployment = DEPLOYMENT,
    ) -> Settings:
        book = Playbook.from_dict(playbook)
        served = actions or {r.action for r in book.inventory.values()}
        return Settings(
            env="test",
            actions=frozenset(served),
            table=self.table,
            notice_topic=self.topic_arn,
            switch_parameter=self.switch,
            switch_override_prefix=self.override_prefix,
            guards=guards or GuardSettings(),
            playbook=book,
            deployment=deployment,
        )

    def pipeline(
        self,
        playbook: dict,
        *,
        clock: Callable[[], datetime] | None = None,
        clients: Clients | None = None,
        agree: bool = True,
        **kwargs: Any,
    ) -> Pipeline:
        """The real pipeline. With ``agree`` (the default) each delivery first makes the
        emulated CloudWatch show its alarms as the event says, as AWS does when CloudWatch
        itself sent it (see ``AgreeingPipeline``); ``agree=False`` for forged events."""
        made = AgreeingPipeline if agree else Pipeline
        return made(
            self.settings(playbook, **kwargs),
            clients or self.clients,
            clock=clock or (lambda: self.now),
        )


class AgreeingPipeline(Pipeline):
    """The real pipeline, unchanged; only the emulated world is set before each delivery.

    moto never evaluates alarms, so an alarm event in a test has no CloudWatch alarm behind
    it. Before ``handle`` runs, the emulator is made to show each alarm in the event in the
    event's state since the event's time (``remediate.emulator.agree_alarms``, which the
    drill uses too). Tests of forged or outdated events build ``Pipeline`` directly.
    """

    def handle(self, event: Any, correlation_id: str | None = None) -> list[Result]:
        agree_alarms(self.clients, event)
        return super().handle(event, correlation_id)


@pytest.fixture
def stack(emulator: Emulator) -> Stack:
    """A clean emulator holding the audit table, the notice topic (drained into a queue)
    and the switch set to ``on``."""
    emulator.reset()
    clients = emulator.clients()
    made = Stack(clients=clients)
    create_audit_table(clients("dynamodb"), made.table)
    made.topic_arn = clients("sns").create_topic(Name="remediation-notices")["TopicArn"]
    made.queue_url = clients("sqs").create_queue(QueueName="notices")["QueueUrl"]
    queue_arn = clients("sqs").get_queue_attributes(
        QueueUrl=made.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    clients("sns").subscribe(TopicArn=made.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    made.set_switch("on")
    return made
