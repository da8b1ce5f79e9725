"""The waf-block sweeper against the moto server: only expired blocks leave the IP sets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

import serverless_remediation.remediation.sweeper as sweeper_module
from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_ip_set
from serverless_remediation.remediation.actions import waf_block
from serverless_remediation.remediation.actions.waf_block import BlockRecords
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.sweeper import Sweeper, SweeperSettings, SweepFailed
from tests.conftest import DEPLOYMENT

HUMAN = "192.0.2.200/32"  # put there by a person: never ours to remove


@pytest.fixture
def blocked(stack, monkeypatch):
    """An IPv4 set with a human's entry, two expired blocks and one still running; an IPv6
    set with one expired block. ``stack.now`` is the sweep time."""
    monkeypatch.setattr(waf_block, "_sleep", lambda _: None)
    records = BlockRecords(stack.clients("dynamodb"), stack.table)
    v4 = create_ip_set(
        stack.clients,
        "blocked-v4",
        addresses=[HUMAN, "203.0.113.9/32", "203.0.113.10/32", "203.0.113.11/32"],
    )
    v6 = create_ip_set(stack.clients, "blocked-v6", version="IPV6", addresses=["2001:DB8::7/128"])
    target = f"{v4['ARN']},{v6['ARN']}"
    past, future = stack.now - timedelta(minutes=1), stack.now + timedelta(minutes=30)
    records.record(v4["ARN"], ["203.0.113.9/32", "203.0.113.10/32"], past, target)
    records.record(v4["ARN"], ["203.0.113.11/32"], future, target)
    records.record(v6["ARN"], ["2001:db8::7/128"], stack.now, target)  # ends exactly now
    return Blocked(stack, records, v4, v6, target)


@dataclass
class Blocked:
    stack: object
    records: BlockRecords
    v4: dict
    v6: dict
    target: str

    def sweeper(self, clients: Clients | None = None) -> Sweeper:
        settings = SweeperSettings(
            env="test",
            table=self.stack.table,
            notice_topic=self.stack.topic_arn,
            deployment=DEPLOYMENT,
        )
        return Sweeper(settings, clients or self.stack.clients)

    def entries(self, ip_set: dict) -> list[str]:
        scope_key = {"Name": ip_set["Name"], "Scope": "REGIONAL", "Id": ip_set["Id"]}
        return self.stack.clients("wafv2").get_ip_set(**scope_key)["IPSet"]["Addresses"]

    def left(self, ip_set: dict) -> list[str]:
        return sorted(r["address"] for r in self.records.expired(ip_set["ARN"], FAR_FUTURE))


FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def test_sweeper_removes_only_expired_blocks(blocked):
    stack = blocked.stack
    results = blocked.sweeper().sweep(stack.now)

    assert [r.outcome for r in results] == [Outcome.EXECUTED, Outcome.EXECUTED]
    assert blocked.entries(blocked.v4) == [HUMAN, "203.0.113.11/32"]
    assert blocked.entries(blocked.v6) == []  # written as 2001:DB8::7/128: same address
    assert blocked.left(blocked.v4) == ["203.0.113.11/32"]
    assert blocked.left(blocked.v6) == []
    audits = {a["before_state"]["addresses"][0]: a for a in stack.audit_items()}
    v4_audit = audits["203.0.113.9/32"]
    assert v4_audit["outcome"] == "executed"
    assert v4_audit["action"] == "waf-block-sweep"  # not an action revert could undo
    assert v4_audit["target"] == blocked.target
    assert v4_audit["source"] == "schedule"
    assert v4_audit["before_state"]["addresses"] == ["203.0.113.9/32", "203.0.113.10/32"]
    assert v4_audit["after_state"]["addresses"] == []
    assert "unblocked 2 expired address(es) in blocked-v4" in v4_audit["detail"]
    notices = stack.notices()
    assert len(notices) == 2
    assert all("did waf-block" in n["subject"] for n in notices)


def test_each_sweep_is_counted_like_any_action(blocked, monkeypatch, capsys):
    """The sweeper's records go through the same recorder as the pipeline's: one EMF
    metric per result, by action and outcome, beside the audit record and the notice."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    results = blocked.sweeper().sweep(blocked.stack.now)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    metrics = [line for line in lines if line["_aws"]["CloudWatchMetrics"][0]["Namespace"]]
    assert len(metrics) == len(results) == 2
    for metric in metrics:
        assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AutoRemediation"
        assert (metric["Action"], metric["Outcome"], metric["Remediations"]) == (
            "waf-block-sweep",
            "executed",
            [1.0],
        )


def test_nothing_expired_changes_nothing_and_records_nothing(blocked):
    early = blocked.stack.now - timedelta(hours=1)
    assert blocked.sweeper().sweep(early) == []
    assert len(blocked.entries(blocked.v4)) == 4
    assert blocked.stack.audit_items() == []
    assert blocked.stack.notices() == []


def test_blocks_already_gone_are_forgotten_without_an_update(blocked):
    stack = blocked.stack
    waf = stack.clients("wafv2")
    key = {"Name": "blocked-v6", "Scope": "REGIONAL", "Id": blocked.v6["Id"]}
    token = waf.get_ip_set(**key)["LockToken"]
    waf.update_ip_set(**key, Addresses=[], LockToken=token)  # a human unblocked it early
    token = waf.get_ip_set(**key)["LockToken"]

    results = blocked.sweeper().sweep(stack.now)

    v6_result = next(r for r in results if r.reason.endswith("(1 already gone)"))
    assert v6_result.outcome is Outcome.SKIPPED
    assert waf.get_ip_set(**key)["LockToken"] == token  # no UpdateIPSet
    assert blocked.left(blocked.v6) == []


def test_sweeper_retries_a_stale_lock_token(blocked, emulator):
    clients = Clients(endpoint_url=emulator.endpoint_url)
    other = blocked.stack.clients("wafv2")
    key = {"Name": "blocked-v4", "Scope": "REGIONAL", "Id": blocked.v4["Id"]}
    calls = []

    def concurrent_edit(**_):
        calls.append(1)
        if len(calls) == 1:
            got = other.get_ip_set(**key)
            addresses = [*got["IPSet"]["Addresses"], "192.0.2.99/32"]
            other.update_ip_set(**key, Addresses=addresses, LockToken=got["LockToken"])

    clients("wafv2").meta.events.register(
        "before-parameter-build.wafv2.UpdateIPSet", concurrent_edit
    )
    blocked.sweeper(clients).sweep(blocked.stack.now)

    assert len(calls) == 3  # v4: stale then fresh; v6: once
    assert blocked.entries(blocked.v4) == [HUMAN, "203.0.113.11/32", "192.0.2.99/32"]


def test_a_block_renewed_during_the_sweep_keeps_its_record(blocked, emulator):
    """The action blocks 203.0.113.9 again right after the sweeper took it out."""
    clients = Clients(endpoint_url=emulator.endpoint_url)
    other = blocked.stack.clients("wafv2")
    later = blocked.stack.now + timedelta(hours=4)

    def reblock(**_):
        if blocked.records.expired(blocked.v4["ARN"], blocked.stack.now):
            blocked.records.record(blocked.v4["ARN"], ["203.0.113.9/32"], later, blocked.target)
            waf_block.change_ip_set(
                other, waf_block.parse_ip_set_arn(blocked.v4["ARN"]), add=["203.0.113.9/32"]
            )

    clients("wafv2").meta.events.register("after-call.wafv2.UpdateIPSet", reblock)
    results = blocked.sweeper(clients).sweep(blocked.stack.now)

    v4_result = next(r for r in results if "blocked-v4" in r.reason)
    assert v4_result.outcome is Outcome.EXECUTED, v4_result.reason
    assert "(1 renewed meanwhile)" in v4_result.reason
    assert "203.0.113.9/32" in blocked.entries(blocked.v4)
    assert "203.0.113.10/32" not in blocked.entries(blocked.v4)
    assert blocked.left(blocked.v4) == ["203.0.113.11/32", "203.0.113.9/32"]


def test_access_denied_keeps_the_records_audits_notifies_and_the_handler_raises(
    blocked, emulator, monkeypatch
):
    waf = boto3.client("wafv2", region_name=REGION)
    stub = Stubber(waf)
    stub.activate()
    for _ in range(2):  # one IP set each: both denied
        stub.add_client_error("get_ip_set", "AccessDeniedException", http_status_code=403)
    clients = Clients(endpoint_url=emulator.endpoint_url, overrides={"wafv2": waf})
    for name, value in environment(blocked.stack.table, blocked.stack.topic_arn).items():
        monkeypatch.setenv(name, value)
    made = Sweeper(SweeperSettings.from_env(), clients)
    monkeypatch.setattr(sweeper_module, "_sweeper", made)

    with pytest.raises(SweepFailed, match="AccessDeniedException"):
        sweeper_module.lambda_handler({}, FakeContext())

    stub.assert_no_pending_responses()
    assert blocked.left(blocked.v4) == ["203.0.113.10/32", "203.0.113.11/32", "203.0.113.9/32"]
    outcomes = sorted(a["outcome"] for a in blocked.stack.audit_items())
    assert outcomes == ["failed", "failed"]
    notices = blocked.stack.notices()
    assert len(notices) == 2
    assert all("FAILED waf-block" in n["subject"] for n in notices)


def test_handler_sweeps_with_settings_from_the_environment(blocked, emulator, monkeypatch):
    for name, value in {
        **environment(blocked.stack.table, blocked.stack.topic_arn),
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sweeper_module, "_sweeper", None)
    frozen = blocked.stack.now

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(sweeper_module, "datetime", Clock)
    body = sweeper_module.lambda_handler({}, FakeContext())
    assert sorted(r["outcome"] for r in body["results"]) == ["executed", "executed"]


def environment(table: str, topic: str) -> dict[str, str]:
    """The sweeper's environment as the CDK app sets it (AWS_REGION: Lambda's own)."""
    return {
        "REMEDIATION_ENV": "test",
        "AUDIT_TABLE": table,
        "NOTICE_TOPIC_ARN": topic,
        "DEPLOYMENT_ACCOUNT": ACCOUNT,
        "AWS_REGION": REGION,
    }


def test_settings_from_the_environment_carry_the_deployment():
    env = {**environment("t", "arn:topic"), "SERVED_REGIONS": "us-east-1"}
    settings = SweeperSettings.from_env(env)
    assert settings.deployment.account == ACCOUNT
    assert settings.deployment.regions == {REGION, "us-east-1"}


@pytest.mark.parametrize(
    "missing",
    ["REMEDIATION_ENV", "AUDIT_TABLE", "NOTICE_TOPIC_ARN", "DEPLOYMENT_ACCOUNT", "AWS_REGION"],
)
def test_settings_name_the_missing_variable(missing):
    env = {
        "REMEDIATION_ENV": "test",
        "AUDIT_TABLE": "t",
        "NOTICE_TOPIC_ARN": "arn:topic",
        "DEPLOYMENT_ACCOUNT": ACCOUNT,
        "AWS_REGION": REGION,
    }
    del env[missing]
    with pytest.raises(RuntimeError, match=f"environment variable {missing} unset"):
        SweeperSettings.from_env(env)


@dataclass
class FakeContext:
    function_name: str = "remediation-test-waf-sweeper"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sweeper"
    aws_request_id: str = "req-sweep"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_a_deleted_ip_set_is_forgotten_and_escalated_once(blocked):
    """Someone deleted the IPv4 set: nothing is left to unblock there. Its records go (the
    expired and the running one), so the sweeper escalates once instead of failing every run;
    the IPv6 set is swept as usual."""
    stack = blocked.stack
    waf = stack.clients("wafv2")
    key = {"Name": "blocked-v4", "Scope": "REGIONAL", "Id": blocked.v4["Id"]}
    waf.delete_ip_set(**key, LockToken=waf.get_ip_set(**key)["LockToken"])

    results = blocked.sweeper().sweep(stack.now)

    by_set = {("blocked-v4" if "blocked-v4" in r.reason else "blocked-v6"): r for r in results}
    gone = by_set["blocked-v4"]
    assert gone.outcome is Outcome.ESCALATED, gone.reason
    assert "IP set blocked-v4 no longer exists (WAFNonexistentItemException)" in gone.reason
    assert "forgot its 3 block record(s) (203.0.113.9/32, 203.0.113.10/32, 203.0.113.11/32)" in (
        gone.reason
    )
    assert by_set["blocked-v6"].outcome is Outcome.EXECUTED
    assert blocked.records.addresses(blocked.v4["ARN"]) == []
    assert blocked.records.ip_sets() == [blocked.v6["ARN"]]
    audits = sorted(a["outcome"] for a in stack.audit_items())
    assert audits == ["escalated", "executed"]
    subjects = [n["subject"] for n in stack.notices()]
    assert sum("needs a human" in s for s in subjects) == 1

    # Later runs, even past every expiry, have nothing more to say about the deleted set.
    assert blocked.sweeper().sweep(stack.now) == []
    assert blocked.sweeper().sweep(FAR_FUTURE) == []
    assert stack.notices() == []


def test_a_deleted_ip_set_does_not_fail_the_handler(blocked, emulator, monkeypatch):
    stack = blocked.stack
    waf = stack.clients("wafv2")
    for ip_set in (blocked.v4, blocked.v6):
        key = {"Name": ip_set["Name"], "Scope": "REGIONAL", "Id": ip_set["Id"]}
        waf.delete_ip_set(**key, LockToken=waf.get_ip_set(**key)["LockToken"])
    for name, value in environment(stack.table, stack.topic_arn).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        sweeper_module, "_sweeper", Sweeper(SweeperSettings.from_env(), stack.clients)
    )
    frozen = stack.now

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(sweeper_module, "datetime", Clock)
    body = sweeper_module.lambda_handler({}, FakeContext())  # does not raise SweepFailed
    assert [r["outcome"] for r in body["results"]] == ["escalated", "escalated"]
    assert blocked.records.ip_sets() == []
