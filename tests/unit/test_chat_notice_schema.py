"""Chat notices follow the custom-notification schema of Amazon Q Developer in chat
applications (formerly AWS Chatbot); mail keeps the plain text. Every notice kind the suite
sends goes through the same SNS publish, checked against the SNS API model (Stubber).

The schema is written from AWS's documentation ("Custom notifications using Amazon Q
Developer in chat applications", Event schema and Parameter details): ``version`` must be
``1.0``, ``source`` must be ``custom``, only ``client-markdown`` is supported as
``textType``; ``description`` is what every notice carries. The length bounds are the
suite's own (kept under what chat clients render whole), not AWS's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import jsonschema
import pytest
from botocore.stub import ANY, Stubber

from serverless_remediation.remediation.audit import Entry
from serverless_remediation.remediation.models import Outcome, Result, Source
from serverless_remediation.remediation.notify import (
    CHAT_DESCRIPTION_LIMIT,
    CHAT_TITLE_LIMIT,
    NOTIFY,
    SNS_MESSAGE_LIMIT,
    SUBJECT_LIMIT,
    Notifier,
    build_chat_notice,
    build_notice,
    incident_id,
    structured_message,
)
from serverless_remediation.remediation.recorder import Recorder
from tests.unit.test_notify import HOSTILE_TARGETS

TOPIC = "arn:aws:sns:eu-west-1:123456789012:notices"
ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"

STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
CHAT_NOTICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "source", "content"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0"},
        "source": {"const": "custom"},
        "id": {"type": "string", "minLength": 1},
        "content": {
            "type": "object",
            "required": ["description"],
            "additionalProperties": False,
            "properties": {
                "textType": {"const": "client-markdown"},
                "title": {"type": "string", "minLength": 1, "maxLength": CHAT_TITLE_LIMIT},
                "description": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": CHAT_DESCRIPTION_LIMIT,
                },
                "nextSteps": STRINGS,
                "keywords": STRINGS,
            },
        },
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threadId": {"type": "string", "minLength": 1},
                "summary": {"type": "string"},
                "eventType": {"type": "string", "pattern": "^[A-Za-z0-9-]+$"},
                "relatedResources": STRINGS,
                # lets the channel attach its custom actions (the Approve / Reject buttons)
                "enableCustomActions": {"type": "boolean"},
                "additionalContext": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
            },
        },
    },
}
VALIDATOR = jsonschema.Draft202012Validator(CHAT_NOTICE_SCHEMA)


def result(outcome: Outcome, target: str | None = ALIAS, **kw) -> Result:
    return Result(
        kw.pop("audit_id", "a1b2c3"),
        outcome,
        kw.pop("reason", "error rate 12% > 5%"),
        kw.pop("action", "rollback"),
        target,
        kw.pop("before", {"version": "3"}),
        kw.pop("after", {"version": "2"}),
    )


#: every notice kind the suite sends: each notifying outcome, with and without a before ->
#: after, a rejection before any action, and hostile targets
KINDS = {
    **{f"{o}": result(o) for o in NOTIFY},
    **{f"{o} without states": result(o, before=None, after=None) for o in NOTIFY},
    "rejected unreadable": Result("id9", Outcome.REJECTED, "unrecognised event"),
    **{f"hostile: {k}": result(Outcome.EXECUTED, v) for k, v in HOSTILE_TARGETS.items()},
    "huge states": result(
        Outcome.FAILED, before={"x": "\u2028" * 50_000}, after={"y": "田" * 50_000}
    ),
}


def published(kind: Result, key: str = "orders-errors", reason: str = "spike") -> dict:
    """The ``Publish`` request the notifier makes for ``kind`` (checked by a Stubber)."""
    sns = boto3.client("sns", region_name="eu-west-1")
    stub = Stubber(sns)
    captured: dict = {}
    stub.add_response(
        "publish",
        {"MessageId": "m1"},
        {"TopicArn": TOPIC, "Subject": ANY, "Message": ANY, "MessageStructure": "json"},
    )
    sns.meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: captured.update(params)
    )
    subject, message = build_notice("prod", kind, key=key, reason=reason)
    with stub:
        Notifier(sns, TOPIC).publish(
            subject, message, build_chat_notice("prod", kind, key=key, reason=reason)
        )
        stub.assert_no_pending_responses()
    return captured


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_every_notice_kind_is_a_valid_chat_notice_and_plain_mail(kind):
    params = published(kind)
    assert len(params["Subject"]) <= SUBJECT_LIMIT
    assert len(params["Message"].encode()) <= SNS_MESSAGE_LIMIT
    bodies = json.loads(params["Message"])
    assert set(bodies) == {"default", "email", "https"}
    chat = json.loads(bodies["https"])
    errors = sorted(VALIDATOR.iter_errors(chat), key=str)
    assert not errors, [e.message for e in errors]
    # Mail: the readable text, not JSON.
    for body in (bodies["default"], bodies["email"]):
        assert body.startswith("Outcome:    ")
        assert not body.lstrip().startswith(("{", "["))
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    assert f"Audit id:   {kind.audit_id}" in bodies["email"]


def test_the_chat_description_names_before_after_the_alarm_and_the_audit_id():
    chat = build_chat_notice("prod", result(Outcome.EXECUTED), key="orders-errors", reason="x")
    text = chat["content"]["description"]
    assert '*Before -> after:* `{"version": "3"}` -> `{"version": "2"}`' in text
    assert "*Alarm:* `orders-errors`" in text
    assert "*Audit id:* `a1b2c3`" in text
    assert chat["metadata"]["eventType"] == "RemediationExecuted"
    assert chat["metadata"]["relatedResources"] == [ALIAS]
    assert chat["metadata"]["additionalContext"]["auditId"] == "a1b2c3"
    assert "`remediate status --env prod`" in chat["content"]["nextSteps"]


@pytest.mark.parametrize(
    "evil",
    ["x` <!channel> `y", "<https://evil.example|click me>", "a\n*Outcome:* `executed`"],
)
def test_event_text_cannot_close_a_code_span_mention_anyone_or_add_a_line(evil):
    kind = result(Outcome.ESCALATED, target=evil, reason=evil)
    chat = build_chat_notice("prod", kind, key=evil, reason=evil)
    text = chat["content"]["description"]
    assert "<" not in text
    assert ">" not in text.replace("->", "")
    # Quoted inside a code span, a fake field is text, not a field: one line starts with it.
    assert [line.startswith("*Outcome:*") for line in text.split("\n")].count(True) == 1
    for line in text.split("\n"):
        assert line.count("`") % 2 == 0, line
    for step in chat["content"]["nextSteps"]:
        assert "<" not in step
        assert step.count("`") in (0, 2)
    assert chat["metadata"]["relatedResources"] == []


def test_one_thread_per_incident_the_same_for_alarm_and_ok():
    alarm = build_chat_notice("prod", result(Outcome.ESCALATED), key="orders-errors", reason="")
    again = build_chat_notice("prod", result(Outcome.FAILED), key="orders-errors", reason="")
    other = build_chat_notice("prod", result(Outcome.FAILED), key="other-alarm", reason="")
    assert alarm["metadata"]["threadId"] == again["metadata"]["threadId"]
    assert alarm["metadata"]["threadId"] != other["metadata"]["threadId"]
    assert alarm["metadata"]["threadId"] == incident_id("prod", "orders-errors", ALIAS)
    assert incident_id("staging", "orders-errors", ALIAS) != incident_id(
        "prod", "orders-errors", ALIAS
    )
    assert len(incident_id("p", "k" * 5000, "t" * 5000)) <= 255


def test_a_message_over_the_sns_limit_falls_back_to_the_plain_text():
    chat = {"content": {"description": "x" * SNS_MESSAGE_LIMIT}}
    whole = structured_message("Outcome:    failed", chat)
    assert len(whole.encode()) <= SNS_MESSAGE_LIMIT
    assert json.loads(whole) == {"default": "Outcome:    failed"}


def test_the_recorder_sends_one_structured_notice_per_notifying_outcome():
    sns = boto3.client("sns", region_name="eu-west-1")
    calls: list[dict] = []
    sns.meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: calls.append(params)
    )
    stub = Stubber(sns)
    stub.add_response("publish", {"MessageId": "m1"})
    entry = Entry(
        audit_id="a1b2c3",
        correlation_id="c",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=Source.ALARM,
        key="orders-errors",
        state="ALARM",
        requested_by="cloudwatch",
        reason="spike",
        target=ALIAS,
        action="rollback",
    )
    recorder = Recorder(None, Notifier(sns, TOPIC), env="prod", clock=lambda: entry.created_at)  # type: ignore[arg-type]
    with stub:
        recorder.announce(result(Outcome.EXECUTED), entry)
        recorder.announce(result(Outcome.SKIPPED), entry)  # audited only: no notice
        stub.assert_no_pending_responses()
    (call,) = calls
    assert call["MessageStructure"] == "json"
    chat = json.loads(json.loads(call["Message"])["https"])
    VALIDATOR.validate(chat)
    assert chat["metadata"]["threadId"] == incident_id("prod", "orders-errors", ALIAS)


def test_title_and_summary_cannot_mention_anyone():
    kind = result(Outcome.FAILED, target="<!channel>", action="rollback")
    chat = build_chat_notice("prod", kind, key="k", reason="r")
    assert "<" not in chat["content"]["title"]
    assert "<" not in chat["metadata"]["summary"]


def test_only_a_pending_approval_shows_the_buttons():
    from serverless_remediation.remediation.approvals import Status, build_approval
    from serverless_remediation.remediation.holds import _chat_context
    from serverless_remediation.remediation.models import Route, RouteMode

    asked = build_approval(
        Route("rollback", ALIAS, {}, RouteMode.APPROVE),
        before={"version": "3"},
        after={"version": "2"},
        summary="3 -> 2",
        now=datetime(2026, 12, 7, tzinfo=UTC),
        expiry=timedelta(minutes=15),
        origin_audit_id="a1",
        origin_key="orders-errors",
    )
    kind = result(Outcome.AWAITING_APPROVAL)
    pending = build_chat_notice(
        "prod", kind, key="k", reason="r", context=_chat_context(asked, True), buttons=True
    )
    assert not list(VALIDATOR.iter_errors(pending))
    assert pending["metadata"]["enableCustomActions"] is True
    # what the buttons read (stacks/constructs/chat.py: NOTICE_CONTEXT.approvalId, env)
    assert pending["metadata"]["additionalContext"]["approvalId"] == asked.approval_id
    assert pending["metadata"]["additionalContext"]["env"] == "prod"
    decided = replace(asked, status=Status.APPROVED)
    after = build_chat_notice(
        "prod", kind, key="k", reason="r", context=_chat_context(decided, False)
    )
    assert "enableCustomActions" not in after["metadata"]
    assert "approvalId" not in after["metadata"]["additionalContext"]
    assert after["metadata"]["additionalContext"]["approval"] == asked.approval_id
