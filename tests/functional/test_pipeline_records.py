"""Every delivery leaves a record: rejections, failures, a missing audit table, the handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

import serverless_remediation.remediation.handler as handler_module
from serverless_remediation.remediate.emulator import ACCOUNT, REGION, agree_alarms, create_function
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.pipeline import RemediationFailed
from tests.conftest import load_event, sns_alarm

ALARM = "test-orders-error-rate"
ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
PLAYBOOK = {"alarms": {ALARM: {"action": "rollback", "target": ALIAS}}}


@pytest.fixture
def orders(stack):
    create_function(stack.clients, "orders", versions=3)
    stack.now = datetime.now(UTC)


def alias_version(stack) -> str:
    return stack.clients("lambda").get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not json", "unrecognised event"),
        ({"Records": [{"Sns": {"Message": "{oops", "Subject": "ALARM"}}]}, "neither CloudWatch"),
        ({"action": "rollback", "target": ALIAS}, "manual request invalid"),
        (
            {"action": "teleport", "target": ALIAS, "reason": "why not", "requested_by": "eve"},
            "unknown action 'teleport'",
        ),
        (
            {
                "action": "rollback",
                "target": ALIAS + "x",
                "reason": "why not",
                "requested_by": "eve",
            },
            "not in the inventory",
        ),
    ],
)
def test_bad_input_is_rejected_audited_and_notified(stack, orders, event, reason):
    (result,) = stack.pipeline(PLAYBOOK).handle(event)
    assert result.outcome is Outcome.REJECTED
    assert reason in result.reason
    (record,) = stack.audit_items()
    assert record["outcome"] == "rejected"
    assert reason in record["detail"]
    assert record["raw"]  # what arrived is kept for a human
    assert "rejected" in stack.notices()[0]["subject"]
    assert alias_version(stack) == "3"


def test_unknown_alarm_is_rejected(stack, orders):
    alarm = stack.alarm_message()
    alarm["AlarmName"] = "someone-elses-alarm"
    (result,) = stack.pipeline(PLAYBOOK).handle(sns_alarm(alarm))
    assert result.outcome is Outcome.REJECTED
    assert "no playbook entry for alarm 'someone-elses-alarm'" in result.reason
    assert stack.audit_items()[0]["key"] == "someone-elses-alarm"


def test_bad_params_from_manual_request_are_rejected(stack, orders):
    request = {**load_event("manual_request.json"), "params": {"window_minutes": "soon"}}
    (result,) = stack.pipeline(PLAYBOOK).handle(request)
    assert result.outcome is Outcome.REJECTED
    assert "'window_minutes' must be int" in result.reason


def test_each_sns_record_gets_its_own_result_and_record(stack, orders):
    good = stack.event("sns_alarm_single_metric.json")
    bad = json.loads(json.dumps(good))
    bad["Records"][0]["Sns"]["Message"] = "{"
    event = {"Records": [bad["Records"][0], good["Records"][0]]}
    results = stack.pipeline(PLAYBOOK).handle(event)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.EXECUTED]
    assert sorted(r["outcome"] for r in stack.audit_items()) == ["executed", "rejected"]


def test_access_denied_on_apply_fails_with_notice_and_record(stack, orders):
    real = stack.clients("lambda")
    lam = boto3.client("lambda", region_name="eu-west-1")
    stub = Stubber(lam)
    name = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    stub.add_response(
        "get_alias",
        real.get_alias(FunctionName="orders", Name="live"),
        {"FunctionName": name, "Name": "live"},
    )
    versions = real.list_versions_by_function(FunctionName="orders")
    versions.pop("ResponseMetadata")
    stub.add_response("list_versions_by_function", versions, {"FunctionName": "orders"})
    stub.add_client_error("update_alias", "AccessDeniedException", http_status_code=403)
    stub.activate()
    clients = Clients(endpoint_url=real.meta.endpoint_url, overrides={"lambda": lam})

    (result,) = stack.pipeline(PLAYBOOK, clients=clients).handle(
        stack.event("sns_alarm_single_metric.json")
    )

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    (record,) = stack.audit_items()
    assert record["outcome"] == "failed"
    assert record["before_state"]["version"] == "3"  # what was attempted is on record
    assert record["after_state"]["version"] == "2"
    assert "FAILED" in stack.notices()[0]["subject"]
    stub.assert_no_pending_responses()


def test_no_audit_table_means_no_action(stack, orders):
    pipeline = stack.pipeline(PLAYBOOK)
    stack.clients("dynamodb").delete_table(TableName=stack.table)
    with pytest.raises(Exception, match="ResourceNotFound"):
        pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    assert alias_version(stack) == "3"


@dataclass
class FakeContext:
    function_name: str = "remediation-test-rollback"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:remediator"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def handler_env(stack, emulator, tmp_path, monkeypatch):
    stack.now = datetime.now(UTC)  # the handler runs on the wall clock
    playbook = tmp_path / "playbook.json"
    playbook.write_text(json.dumps(PLAYBOOK))
    env = {
        "REMEDIATION_ENV": "test",
        "REMEDIATION_ACTIONS": "rollback",
        "AUDIT_TABLE": stack.table,
        "NOTICE_TOPIC_ARN": stack.topic_arn,
        "SWITCH_PARAMETER": stack.switch,
        "PLAYBOOK_PATH": str(playbook),
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_REGION": REGION,  # Lambda sets it
        "DEPLOYMENT_ACCOUNT": ACCOUNT,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler_module, "_pipeline", None)
    return env


def test_handler_end_to_end(stack, orders, handler_env):
    event = stack.event("sns_alarm_single_metric.json")
    agree_alarms(stack.clients, event)  # CloudWatch shows the alarm as the event says
    body = handler_module.lambda_handler(event, FakeContext())
    assert [r["outcome"] for r in body["results"]] == ["executed"]
    assert alias_version(stack) == "2"
    assert stack.audit_items()[0]["correlation_id"] == "req-1"


def test_handler_raises_after_recording_a_failure(stack, handler_env):
    """No such function: read fails, the failure is recorded, then the handler raises (-> DLQ)."""
    event = stack.event("sns_alarm_single_metric.json")
    agree_alarms(stack.clients, event)
    with pytest.raises(RemediationFailed, match="ResourceNotFoundException"):
        handler_module.lambda_handler(event, FakeContext())
    (record,) = stack.audit_items()
    assert record["outcome"] == "failed"
    assert "FAILED" in stack.notices()[0]["subject"]


def test_handler_misconfigured_fails_loudly(handler_env, monkeypatch):
    monkeypatch.delenv("AUDIT_TABLE")
    with pytest.raises(RuntimeError, match="AUDIT_TABLE unset"):
        handler_module.lambda_handler({}, FakeContext())
