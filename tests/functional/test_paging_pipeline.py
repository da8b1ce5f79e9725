"""Paging end to end on the emulator: the real pipeline escalates, its outcome event reaches
the default bus (a rule forwards it to a queue, as the pages rule forwards it to PagerDuty);
the alarm's OK resolves the same incident. Notices stay plain text for mail and queues."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.notify import (
    OUTCOME_DETAIL_TYPE,
    OUTCOME_SOURCE,
    incident_id,
)
from serverless_remediation.remediation.pipeline import Pipeline
from tests.conftest import AgreeingPipeline, cloudwatch_time, sns_alarm

ALARM = "test-orders-error-rate"
ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
PLAYBOOK = {"alarms": {ALARM: {"action": "rollback", "target": ALIAS}}}


def pages_queue(stack) -> str:
    """A rule on the default bus like the pages rule, delivering to a queue to read."""
    sqs, events = stack.clients("sqs"), stack.clients("events")
    url = sqs.create_queue(QueueName="pages")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="pages",
        EventPattern=json.dumps({"source": [OUTCOME_SOURCE], "detail-type": [OUTCOME_DETAIL_TYPE]}),
    )
    events.put_targets(Rule="pages", Targets=[{"Id": "q", "Arn": arn}])
    return url


def pages(stack, url: str) -> list[dict]:
    got = stack.clients("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def paging_pipeline(stack, *, on: bool = True) -> Pipeline:
    settings = dataclasses.replace(stack.settings(PLAYBOOK), outcome_events=on)
    return AgreeingPipeline(settings, stack.clients, clock=lambda: stack.now)


def test_an_escalation_pages_and_the_ok_resolves_the_same_incident(stack):
    create_function(stack.clients, "orders", versions=3)
    url = pages_queue(stack)
    stack.clients("ssm").delete_parameter(Name=stack.switch)  # a faulty switch escalates
    pipeline = paging_pipeline(stack)

    (escalated,) = pipeline.handle(sns_alarm(stack.alarm_message()))
    assert escalated.outcome is Outcome.ESCALATED
    (page,) = pages(stack, url)
    assert page["source"] == OUTCOME_SOURCE
    assert page["detail"]["eventAction"] == "trigger"
    assert page["detail"]["dedupKey"] == incident_id("test", ALARM, ALIAS)
    assert page["detail"]["auditId"] == escalated.audit_id
    # Mail (and this queue) get the readable text, not the chat JSON.
    (notice,) = stack.notices()
    assert notice["message"].startswith("Outcome:    escalated")

    ok = stack.alarm_message(NewStateValue="OK", OldStateValue="ALARM")
    (closed,) = pipeline.handle(sns_alarm(ok, message_id="7a6c0f7e-0000-4000-8000-00000000000b"))
    assert closed.outcome is Outcome.SKIPPED
    (resolve,) = pages(stack, url)
    assert resolve["detail"]["eventAction"] == "resolve"
    assert resolve["detail"]["dedupKey"] == page["detail"]["dedupKey"]


def test_without_paging_nothing_is_put_on_the_bus(stack):
    create_function(stack.clients, "orders", versions=3)
    url = pages_queue(stack)
    stack.clients("ssm").delete_parameter(Name=stack.switch)
    (result,) = paging_pipeline(stack, on=False).handle(sns_alarm(stack.alarm_message()))
    assert result.outcome is Outcome.ESCALATED
    assert pages(stack, url) == []


def test_a_late_ok_of_an_alarm_that_fired_again_resolves_nothing(stack):
    create_function(stack.clients, "orders", versions=3)
    url = pages_queue(stack)
    stack.clients("ssm").delete_parameter(Name=stack.switch)
    pipeline = paging_pipeline(stack)
    (escalated,) = pipeline.handle(sns_alarm(stack.alarm_message()))
    assert escalated.outcome is Outcome.ESCALATED
    assert [p["detail"]["eventAction"] for p in pages(stack, url)] == ["trigger"]

    # An OK from before the alarm fired again arrives late: CloudWatch shows ALARM now.
    earlier = stack.now - timedelta(minutes=3)
    ok = stack.alarm_message(
        NewStateValue="OK", OldStateValue="ALARM", StateChangeTime=cloudwatch_time(earlier)
    )
    plain = Pipeline(
        dataclasses.replace(stack.settings(PLAYBOOK), outcome_events=True),
        stack.clients,
        clock=lambda: stack.now,
    )  # CloudWatch as it is: ALARM
    (late,) = plain.handle(sns_alarm(ok, message_id="7a6c0f7e-0000-4000-8000-00000000000c"))
    assert late.outcome is Outcome.REJECTED, late.reason
    assert "ALARM now" in late.reason
    assert pages(stack, url) == []  # the live incident stays open
