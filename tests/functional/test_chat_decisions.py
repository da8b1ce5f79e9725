"""The chat Approve / Reject buttons: the decisions function (remediation.decisions) in front
of the real pipeline on the emulator.

moto runs no function code without Docker, so the Lambda hop from the decisions function to
the remediator is made in process (``InProcessLambda``: the named remediator's pipeline
handles the payload); the request the function sends is pinned against botocore's model of
``lambda:Invoke`` with the Stubber.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.approvals import Approvals, Status
from serverless_remediation.remediation.decisions import (
    Decider,
    DecisionSettings,
    chat_identity,
)
from serverless_remediation.remediation.errors import ConfigurationError, DeliveryFailed
from serverless_remediation.remediation.models import Outcome

ALARM = "test-orders-error-rate"
CHANNEL = chat_identity("autorem-test")
ROLLBACK = "autorem-test-rollback"
REVERT = "autorem-test-revert"


class InProcessLambda:
    """``lambda:Invoke`` (RequestResponse) of a remediator, handled in this process."""

    def __init__(self, pipelines: dict) -> None:
        self.pipelines = pipelines
        self.calls: list[tuple[str, dict]] = []

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict:
        assert InvocationType == "RequestResponse"
        payload = json.loads(Payload)
        self.calls.append((FunctionName, payload))
        results = self.pipelines[FunctionName].handle(payload)
        body = {"results": [r.as_dict() for r in results]}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}


@pytest.fixture
def world(stack):
    """orders:live on version 3 of 3; its error-rate alarm's rollback waits for approval;
    the approvers admit the chat channel (``approvers``)."""
    create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC).replace(microsecond=0)
    alias = stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["AliasArn"]

    def build(approvers: list[str]):
        playbook = {
            "alarms": {ALARM: {"action": "rollback", "target": alias, "mode": "approve"}},
            "people": {"approvers": approvers, "approval_seconds": 900},
        }
        pipeline = stack.pipeline(playbook)
        (asked,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
        assert asked.outcome is Outcome.AWAITING_APPROVAL, asked.reason
        (pending,) = Approvals(stack.clients("dynamodb"), stack.table).pending(stack.now)
        reverter = stack.pipeline(playbook, actions={"revert"})
        service = InProcessLambda({ROLLBACK: pipeline, REVERT: reverter})
        settings = DecisionSettings(
            env="test",
            identity=CHANNEL,
            table=stack.table,
            remediators={"rollback": ROLLBACK, "revert": REVERT},
        )
        decider = Decider(
            settings, lambda name: service if name == "lambda" else stack.clients(name)
        )
        return decider, service, pending

    return build


def live_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def record(stack, audit_id: str) -> dict:
    return next(r for r in stack.audit_items() if r["audit_id"] == audit_id)


def test_the_approve_button_applies_the_plan_in_the_channels_name(stack, world) -> None:
    decider, service, pending = world([CHANNEL])
    answer = decider.decide({"approve": pending.approval_id}, correlation_id="c1")
    (result,) = answer["results"]
    assert result["outcome"] == "executed", result
    assert live_version(stack) == "2"
    # what was sent: the id, and who decides as this function says, never the payload
    assert service.calls == [
        (
            ROLLBACK,
            {
                "approve": pending.approval_id,
                "requested_by": CHANNEL,
                "reason": "approved from chat",
                "via": "chat",
                "request_id": "c1",
            },
        )
    ]
    done = record(stack, result["audit_id"])
    assert (done["source"], done["requested_by"]) == ("approval", CHANNEL)
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert (stored.status, stored.decided_by, stored.decided_via) == (
        Status.APPROVED,
        CHANNEL,
        "chat",
    )
    # pressed again: used once
    (again,) = decider.decide({"approve": pending.approval_id}, correlation_id="c2")["results"]
    assert again["outcome"] == "rejected"
    assert "used once" in again["reason"]


def test_the_reject_button_changes_nothing(stack, world) -> None:
    decider, _, pending = world([CHANNEL])
    (result,) = decider.decide({"reject": pending.approval_id}, correlation_id="c1")["results"]
    assert result["outcome"] == "skipped", result
    assert live_version(stack) == "3"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert stored.status is Status.REJECTED


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"requested_by": "alice", "approve": "x" * 32}, id="names-a-person"),
        pytest.param({"approve": "a" * 32, "reject": "a" * 32}, id="both-verbs"),
        pytest.param({"approve": "a" * 32, "action": "rollback"}, id="names-an-action"),
        pytest.param({"approve": 7}, id="id-not-a-string"),
        pytest.param(["approve"], id="not-an-object"),
        pytest.param({}, id="empty"),
    ],
)
def test_anything_but_a_verb_and_an_id_is_refused_here_with_a_record(stack, world, event) -> None:
    decider, service, pending = world([CHANNEL])
    (result,) = decider.decide(event, correlation_id="c1")["results"]
    assert result["outcome"] == "rejected"
    assert "nothing else" in result["reason"]
    assert service.calls == []  # never forwarded
    refused = record(stack, result["audit_id"])
    assert (refused["outcome"], refused["requested_by"]) == ("rejected", CHANNEL)
    assert refused["raw"] == json.dumps(event, sort_keys=True)
    assert live_version(stack) == "3"
    stored = Approvals(stack.clients("dynamodb"), stack.table).get(pending.approval_id)
    assert stored.status is Status.PENDING


def test_an_unknown_id_is_refused_and_recorded_by_a_remediator(stack, world) -> None:
    decider, service, _ = world([CHANNEL])
    unknown = "0" * 32
    (result,) = decider.decide({"approve": unknown}, correlation_id="c1")["results"]
    assert service.calls[0][0] == ROLLBACK
    assert result["outcome"] == "rejected"
    assert "unknown id" in result["reason"]
    assert record(stack, result["audit_id"])["key"] == unknown


def test_a_channel_the_approvers_do_not_admit_decides_nothing(stack, world) -> None:
    decider, _, pending = world(["arn:aws:sts::123456789012:assumed-role/OnCall/*"])
    (result,) = decider.decide({"approve": pending.approval_id}, correlation_id="c1")["results"]
    assert result["outcome"] == "rejected"
    assert f"{CHANNEL!r} may not decide approvals" in result["reason"]
    assert live_version(stack) == "3"


def test_the_invoke_matches_the_lambda_api_and_a_remediator_error_fails_loudly(stack) -> None:
    import boto3

    client = boto3.client("lambda", region_name="eu-west-1")
    settings = DecisionSettings(
        env="test", identity=CHANNEL, table=stack.table, remediators={"rollback": ROLLBACK}
    )
    decider = Decider(settings, lambda name: client if name == "lambda" else stack.clients(name))
    unknown = "1" * 32

    def expected(request_id: str) -> dict:
        sent = {
            "approve": unknown,
            "requested_by": CHANNEL,
            "reason": "approved from chat",
            "via": "chat",
            "request_id": request_id,
        }
        return {
            "FunctionName": ROLLBACK,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(sent).encode(),
        }

    with Stubber(client) as stub:
        body = b'{"results": [{"outcome": "rejected"}]}'
        stub.add_response(
            "invoke", {"StatusCode": 200, "Payload": io.BytesIO(body)}, expected("c1")
        )
        assert decider.decide({"approve": unknown}, "c1") == json.loads(body)
        failed = b'{"errorMessage": "boom"}'
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(failed)},
            expected("c2"),
        )
        with pytest.raises(DeliveryFailed, match="boom"):
            decider.decide({"approve": unknown}, "c2")
        stub.add_client_error("invoke", "TooManyRequestsException", expected_params=expected("c3"))
        with pytest.raises(DeliveryFailed, match="TooManyRequests"):
            decider.decide({"approve": unknown}, "c3")
        stub.assert_no_pending_responses()
    # an undelivered or unanswered press is recorded as failed, with what was sent
    failures = [r for r in stack.audit_items() if r["outcome"] == "failed"]
    assert sorted(r["correlation_id"] for r in failures) == ["c2", "c3"]
    assert all(r["requested_by"] == CHANNEL and unknown in r["raw"] for r in failures)


def test_an_approval_that_cannot_be_read_goes_on_as_unknown(stack, world) -> None:
    decider, service, pending = world([CHANNEL])

    def broken(_: str):
        raise RuntimeError("the table cannot be read")

    decider.approvals.get = broken
    (result,) = decider.decide({"approve": pending.approval_id}, correlation_id="c1")["results"]
    # the remediator reads it again itself: here it can, and the plan is applied
    assert service.calls[0][0] == ROLLBACK
    assert result["outcome"] == "executed", result


def test_the_remediator_is_invoked_once_and_waited_for() -> None:
    settings = DecisionSettings(
        env="test", identity=CHANNEL, table="t", remediators={"rollback": ROLLBACK},
        remediator_timeout=120,
    )  # fmt: skip
    config = settings.invoke_config()
    assert config.retries == {"total_max_attempts": 1}
    assert config.read_timeout == 125


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REMEDIATOR_FUNCTIONS", "not json"),
        ("REMEDIATOR_FUNCTIONS", '{"rollback": ""}'),
        ("REMEDIATOR_FUNCTIONS", "[]"),
        ("REMEDIATOR_FUNCTIONS", "{}"),
        ("REMEDIATOR_TIMEOUT_SECONDS", "soon"),
        ("REMEDIATOR_TIMEOUT_SECONDS", "0"),
        ("CHAT_IDENTITY", ""),
    ],
)
def test_a_misconfigured_function_fails_its_cold_start(name: str, value: str) -> None:
    environ = {
        "REMEDIATION_ENV": "test",
        "CHAT_IDENTITY": CHANNEL,
        "AUDIT_TABLE": "t",
        "REMEDIATOR_FUNCTIONS": json.dumps({"rollback": ROLLBACK}),
        "REMEDIATOR_TIMEOUT_SECONDS": "120",
    }
    assert DecisionSettings.from_env(environ).remediators == {"rollback": ROLLBACK}
    with pytest.raises(ConfigurationError, match=name):
        DecisionSettings.from_env({**environ, name: value})


def test_only_a_pending_approvals_notice_carries_the_buttons(stack, world, monkeypatch) -> None:
    """What Holds publishes: buttons and approvalId on the asking notice, not after."""
    published: list[dict] = []
    from serverless_remediation.remediation.notify import Notifier

    real = Notifier.publish

    def capture(self, subject, message, chat=None):
        published.append(chat or {})
        return real(self, subject, message, chat)

    monkeypatch.setattr(Notifier, "publish", capture)
    decider, _, pending = world([CHANNEL])
    asking = published[-1]["metadata"]
    assert asking["enableCustomActions"] is True
    assert asking["additionalContext"]["approvalId"] == pending.approval_id
    decider.decide({"reject": pending.approval_id}, correlation_id="c1")
    rejected = published[-1]["metadata"]
    assert "enableCustomActions" not in rejected
    assert "approvalId" not in rejected["additionalContext"]
    assert rejected["additionalContext"]["approval"] == pending.approval_id


def test_a_revert_from_chat_goes_to_the_revert_remediator_in_the_channels_name(
    stack, world
) -> None:
    decider, service, pending = world([CHANNEL])
    (done,) = decider.decide({"approve": pending.approval_id}, correlation_id="c1")["results"]
    assert live_version(stack) == "2"
    (undone,) = decider.decide({"revert": done["audit_id"]}, correlation_id="c2")["results"]
    assert undone["outcome"] == "executed", undone
    assert live_version(stack) == "3"
    assert service.calls[-1] == (
        REVERT,
        {
            "action": "revert",
            "target": done["audit_id"],
            "reason": "reverted from chat",
            "requested_by": CHANNEL,
            "request_id": "c2",
        },
    )
    assert record(stack, undone["audit_id"])["requested_by"] == CHANNEL


def test_a_revert_where_none_is_deployed_is_refused_here() -> None:
    from serverless_remediation.remediation.decisions import forward
    from serverless_remediation.remediation.errors import RejectedError

    with pytest.raises(RejectedError, match="revert from chat is not enabled"):
        forward(
            {"revert": "a" * 32},
            identity=CHANNEL,
            remediators={"rollback": ROLLBACK},
            find=lambda _: None,
            request_id="r",
        )
    # an unknown approval id goes to a deciding remediator, never to revert
    sent = forward(
        {"approve": "a" * 32},
        identity=CHANNEL,
        remediators={"revert": REVERT, "rollback": ROLLBACK},
        find=lambda _: None,
        request_id="r",
    )
    assert sent.function == ROLLBACK
