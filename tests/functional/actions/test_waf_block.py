"""waf-block through the pipeline: WAFv2 IP sets in the moto server, Logs Insights results from
a ``Stubber`` (moto ignores ``filter``/``stats``), a ``Stubber`` for WAF faults moto cannot make."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from serverless_remediation.remediate.emulator import REGION, create_ip_set
from serverless_remediation.remediate.replay import retime
from serverless_remediation.remediation.actions import waf_block
from serverless_remediation.remediation.actions.base import ActionContext, Plan
from serverless_remediation.remediation.actions.waf_block import (
    DEFAULT_QUERY,
    IP_SET_LIMIT,
    WafBlock,
    WafBlockParams,
    entry_key,
)
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.clients import DEFAULT_CONFIG, Clients
from serverless_remediation.remediation.models import Outcome
from tests.conftest import DEPLOYMENT, AgreeingPipeline, load_event, sns_alarm
from tests.functional.actions.wire import Wire, error, response

ALARM = "test-orders-auth-failures"
LOG_GROUP = "/aws/apigateway/orders"
ALLOW = "198.51.100.64/26"
OLD = ["192.0.2.200/32", "192.0.2.0/28"]


def rows(counts: dict[str, int]) -> list[list[dict[str, str]]]:
    return [
        [{"field": "ip", "value": ip}, {"field": "requests", "value": str(n)}]
        for ip, n in counts.items()
    ]


class Insights:
    """A stubbed Logs client answering one query with ``counts``."""

    def __init__(self) -> None:
        self.client = boto3.client("logs", region_name=REGION)
        self.stub = Stubber(self.client)
        self.stub.activate()

    def answer(self, counts: dict[str, int], *, running: int = 1, query: str = DEFAULT_QUERY):
        self.stub.add_response(
            "start_query",
            {"queryId": "q-1"},
            {"logGroupName": LOG_GROUP, "startTime": ANY, "endTime": ANY, "queryString": query},
        )
        for _ in range(running):
            self.stub.add_response(
                "get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"}
            )
        self.stub.add_response(
            "get_query_results",
            {"status": "Complete", "results": rows(counts)},
            {"queryId": "q-1"},
        )
        return self


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The backoff and poll waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(waf_block, "_sleep", waits.append)
    return waits


@pytest.fixture
def world(stack, emulator, pauses):
    """An IPv4 and an IPv6 IP set, the playbook routing ALARM to the IPv4 one, and clients
    whose Logs client is stubbed."""
    v4 = create_ip_set(stack.clients, "blocked-v4", addresses=list(OLD))
    v6 = create_ip_set(stack.clients, "blocked-v6", version="IPV6", addresses=["2001:db8:ff::/48"])
    insights = Insights()
    clients = Clients(endpoint_url=emulator.endpoint_url, overrides={"logs": insights.client})
    params = {"log_group": LOG_GROUP, "allowlist": [ALLOW]}
    playbook = {"alarms": {ALARM: {"action": "waf-block", "target": v4["ARN"], "params": params}}}
    return World(stack, clients, insights, v4, v6, playbook)


class World:
    def __init__(self, stack, clients, insights, v4, v6, playbook):
        self.stack, self.clients, self.insights = stack, clients, insights
        self.v4, self.v6, self.playbook = v4, v6, playbook

    def run(self, *, clients=None, event=None, deployment=None):
        pipeline = self.stack.pipeline(self.playbook, clients=clients or self.clients)
        if deployment is not None:  # an environment that serves more regions
            settings = dataclasses.replace(pipeline.settings, deployment=deployment)
            pipeline = AgreeingPipeline(settings, pipeline.clients, clock=lambda: self.stack.now)
        (result,) = pipeline.handle(event or alarm_event(self.stack.now))
        return result

    def entries(self, ip_set=None) -> list[str]:
        ip_set = ip_set or self.v4
        got = self.stack.clients("wafv2").get_ip_set(
            Name=ip_set["Name"], Scope="REGIONAL", Id=ip_set["Id"]
        )
        return got["IPSet"]["Addresses"]

    def records(self) -> dict[str, dict]:
        items = self.stack.clients("dynamodb").scan(TableName=self.stack.table)["Items"]
        return {i["sk"]["S"]: i for i in items if i["pk"]["S"].startswith("block#")}

    def target(self, target: str) -> None:
        self.playbook["alarms"][ALARM]["target"] = target

    def params(self, **kw) -> None:
        self.playbook["alarms"][ALARM]["params"].update(kw)


def alarm_event(when: datetime) -> dict:
    """The auth-failures alarm's transition at ``when`` (older ones are refused as stale)."""
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    alarm["AlarmName"] = ALARM
    alarm["AlarmArn"] = alarm["AlarmArn"].rsplit(":", 1)[0] + f":{ALARM}"
    return retime(sns_alarm(alarm), when)


def test_alarm_blocks_offenders_records_expiry_audits_and_notifies(world):
    world.insights.answer({"203.0.113.9": 812, "203.0.113.10": 150, "203.0.113.11": 99})
    result = world.run()

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert world.entries() == [*OLD, "203.0.113.9/32", "203.0.113.10/32"]
    expires = world.stack.now + timedelta(minutes=240)
    records = world.records()
    assert set(records) == {"203.0.113.9/32", "203.0.113.10/32"}
    for item in records.values():
        assert item["pk"]["S"] == f"block#{world.v4['ARN']}"
        assert int(item["block_until"]["N"]) == int(expires.timestamp())
        assert item["route_target"]["S"] == world.v4["ARN"]
    (audit,) = world.stack.audit_items()
    assert audit["outcome"] == "executed"
    assert audit["before_state"] == {"addresses": []}
    assert audit["after_state"] == {"addresses": ["203.0.113.9/32", "203.0.113.10/32"]}
    (notice,) = world.stack.notices()
    assert "did waf-block" in notice["subject"]
    assert "203.0.113.9/32 (812)" in notice["message"]
    world.insights.stub.assert_no_pending_responses()


def test_stale_lock_token_is_retried_and_merges_old_concurrent_and_new(world, pauses):
    """Someone else updates the IP set between our GetIPSet and UpdateIPSet: the lock token we
    hold is stale, WAF refuses, and the retry re-reads, re-merges and writes."""
    world.insights.answer(
        {
            "203.0.113.9": 500,  # new
            "203.0.113.10": 400,  # new
            "192.0.2.200": 300,  # already blocked
            "192.0.2.3": 300,  # inside the 192.0.2.0/28 already blocked
            "198.51.100.70": 900,  # allowlisted
        }
    )
    waf = world.clients("wafv2")
    other = world.stack.clients("wafv2")  # a different client: a human at the console
    attempts = []

    def concurrent_edit(params, **_):
        attempts.append(params["LockToken"])
        if len(attempts) == 1:
            got = other.get_ip_set(Name="blocked-v4", Scope="REGIONAL", Id=world.v4["Id"])
            other.update_ip_set(
                Name="blocked-v4",
                Scope="REGIONAL",
                Id=world.v4["Id"],
                Addresses=[*got["IPSet"]["Addresses"], "192.0.2.99/32", "203.0.113.9/32"],
                LockToken=got["LockToken"],
            )

    waf.meta.events.register("before-parameter-build.wafv2.UpdateIPSet", concurrent_edit)
    result = world.run()

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert len(attempts) == 2
    assert attempts[0] != attempts[1]
    final = world.entries()
    assert final == [*OLD, "192.0.2.99/32", "203.0.113.9/32", "203.0.113.10/32"]
    keys = [entry_key(e) for e in final]
    assert len(keys) == len(set(keys))
    assert not any(k.startswith("198.51.100.") for k in keys)
    assert len(pauses) == 2  # one query poll, one jittered backoff
    assert 0 <= pauses[1] <= waf_block.BACKOFF_BASE_SECONDS


def test_threshold_not_met_skips_and_changes_nothing(world):
    world.insights.answer({"203.0.113.9": 99})
    result = world.run()
    assert result.outcome is Outcome.SKIPPED
    assert "no address reached 100 requests" in result.reason
    assert world.entries() == OLD
    assert world.records() == {}
    assert world.stack.notices() == []


def test_more_offenders_than_the_cap_escalates(world):
    world.params(max_addresses=2)
    world.insights.answer({"203.0.113.1": 500, "203.0.113.2": 500, "203.0.113.3": 500})
    result = world.run()
    assert result.outcome is Outcome.ESCALATED
    assert "3 addresses over the threshold, more than the 2" in result.reason
    assert world.entries() == OLD
    assert "needs a human" in world.stack.notices()[0]["subject"]


def test_ip_set_limit_escalates(world):
    full = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(IP_SET_LIMIT - 1)]
    big = create_ip_set(world.stack.clients, "blocked-full", addresses=full)
    world.target(big["ARN"])
    world.insights.answer({"203.0.113.9": 500, "203.0.113.10": 500})
    result = world.run()
    assert result.outcome is Outcome.ESCALATED
    assert f"would hold {IP_SET_LIMIT + 1} entries" in result.reason
    assert len(world.entries(big)) == IP_SET_LIMIT - 1


def test_ipv6_and_ipv4_offenders_go_to_their_own_sets(world):
    world.target(f"{world.v4['ARN']},{world.v6['ARN']}")
    world.insights.answer({"2001:DB8::7": 600, "203.0.113.9": 500, "2001:db8:ff::1": 500})
    result = world.run()
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert world.entries(world.v6) == ["2001:db8:ff::/48", "2001:db8::7/128"]
    assert world.entries() == [*OLD, "203.0.113.9/32"]
    assert set(world.records()) == {"2001:db8::7/128", "203.0.113.9/32"}
    # 2001:db8:ff::1 is inside someone else's /48: not ours, not added, not reported
    assert result.after == {"addresses": ["203.0.113.9/32", "2001:db8::7/128"]}


def test_dry_run_switch_plans_and_changes_nothing(world):
    world.stack.set_switch("dry-run")
    world.insights.answer({"203.0.113.9": 500})
    result = world.run()
    assert result.outcome is Outcome.DRY_RUN
    assert result.after["addresses"] == ["203.0.113.9/32"]
    assert world.entries() == OLD
    assert world.records() == {}
    assert "(dry-run) waf-block" in world.stack.notices()[0]["subject"]


def test_verify_fails_when_the_block_does_not_read_back(world):
    world.insights.answer({"203.0.113.9": 500})
    waf = world.clients("wafv2")
    other = world.stack.clients("wafv2")

    def undo(**_):  # someone takes the entry straight out again
        got = other.get_ip_set(Name="blocked-v4", Scope="REGIONAL", Id=world.v4["Id"])
        other.update_ip_set(
            Name="blocked-v4",
            Scope="REGIONAL",
            Id=world.v4["Id"],
            Addresses=OLD,
            LockToken=got["LockToken"],
        )

    waf.meta.events.register("after-call.wafv2.UpdateIPSet", undo)
    result = world.run()
    assert result.outcome is Outcome.FAILED
    assert "VerifyError: 203.0.113.9/32 missing from blocked-v4" in result.reason
    assert "FAILED waf-block" in world.stack.notices()[0]["subject"]


def test_manual_request_cannot_set_a_cap(world):
    request = {
        "action": "waf-block",
        "target": world.v4["ARN"],
        "params": {"allowlist": []},
        "reason": "clear the allowlist",
        "requested_by": "mallory@example.com",
    }
    result = world.run(event=request)
    assert result.outcome is Outcome.REJECTED
    assert "parameter 'allowlist' = [] is beyond the configured limit" in result.reason
    assert f"a superset of ['{ALLOW}']" in result.reason


def test_raw_access_log_lines_are_counted_when_the_query_has_no_stats(world):
    query = "fields @timestamp, @message | limit 10000"
    world.params(query=query, threshold=3)
    lines = [{"ip": "203.0.113.9", "status": "401"}] * 3 + [{"ip": "203.0.113.10"}] * 2
    world.insights.stub.add_response(
        "start_query",
        {"queryId": "q-2"},
        {"logGroupName": LOG_GROUP, "startTime": ANY, "endTime": ANY, "queryString": query},
    )
    world.insights.stub.add_response(
        "get_query_results",
        {
            "status": "Complete",
            "results": [[{"field": "@message", "value": json.dumps(line)}] for line in lines],
        },
        {"queryId": "q-2"},
    )
    result = world.run()
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert world.entries() == [*OLD, "203.0.113.9/32"]


# -- faults moto cannot make: a stubbed WAF client --------------------------------------------


def ip_set_response(world, addresses: list[str], token: str) -> dict:
    return {
        "IPSet": {
            "Name": "blocked-v4",
            "Id": world.v4["Id"],
            "ARN": world.v4["ARN"],
            "Description": "auto-remediation blocks",
            "IPAddressVersion": "IPV4",
            "Addresses": addresses,
        },
        "LockToken": token,
    }


@pytest.fixture
def stubbed_waf(world, emulator):
    client = boto3.client("wafv2", region_name=REGION)
    stub = Stubber(client)
    stub.activate()
    clients = Clients(
        endpoint_url=emulator.endpoint_url,
        overrides={"logs": world.insights.client, "wafv2": client},
    )
    key = {"Name": "blocked-v4", "Scope": "REGIONAL", "Id": world.v4["Id"]}
    return stub, clients, key


def expect_get(stub, world, key, addresses, token):
    stub.add_response("get_ip_set", ip_set_response(world, addresses, token), key)


def expect_update(stub, key, addresses, token):
    stub.add_response(
        "update_ip_set",
        {"NextLockToken": f"{token}-next"},
        {
            **key,
            "Addresses": addresses,
            "LockToken": token,
            "Description": "auto-remediation blocks",
        },
    )


def test_throttling_is_retried_by_the_client(world, emulator, pauses, backoff):
    """A throttled poll, a throttled UpdateIPSet and WAF's internal error (HTTP 500) are
    retried by botocore's standard retry mode, inside the client: the action waits for
    nothing itself and succeeds."""
    logs = boto3.client("logs", region_name=REGION, config=DEFAULT_CONFIG)
    Wire(logs).queue("StartQuery", response(200, {"queryId": "q-1"})).queue(
        "GetQueryResults",
        error("ThrottlingException", 400),
        response(200, {"status": "Complete", "results": rows({"203.0.113.9": 500})}),
    )
    waf = boto3.client(
        "wafv2", region_name=REGION, endpoint_url=emulator.endpoint_url, config=DEFAULT_CONFIG
    )
    waf_wire = Wire(waf).queue(
        "UpdateIPSet",
        error("ThrottlingException", 400),
        error("WAFInternalErrorException", 500),  # WAF's "retry your request"
        None,
    )
    clients = Clients(endpoint_url=emulator.endpoint_url, overrides={"logs": logs, "wafv2": waf})

    result = world.run(clients=clients)
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert world.entries() == [*OLD, "203.0.113.9/32"]
    assert waf_wire.attempts["UpdateIPSet"] == 3
    assert len(backoff) == 3  # botocore's waits: one per retried attempt
    assert pauses == []  # nothing polled twice, no lock conflict: no wait of our own


def test_access_denied_fails_and_notifies(world, stubbed_waf):
    stub, clients, key = stubbed_waf
    world.insights.answer({"203.0.113.9": 500})
    # one read: its IP version, entries and lock token serve the update too
    expect_get(stub, world, key, OLD, "t1")
    stub.add_client_error("update_ip_set", "AccessDeniedException", http_status_code=403)

    result = world.run(clients=clients)
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    stub.assert_no_pending_responses()
    (notice,) = world.stack.notices()
    assert "FAILED waf-block" in notice["subject"]
    (audit,) = world.stack.audit_items()
    assert audit["outcome"] == "failed"
    assert audit["after_state"]["addresses"] == ["203.0.113.9/32"]  # what was attempted


def test_lock_conflicts_give_up_after_bounded_attempts(world, stubbed_waf, pauses):
    stub, clients, key = stubbed_waf
    world.insights.answer({"203.0.113.9": 500})
    expect_get(stub, world, key, OLD, "t0")  # read: its lock token is the first update's
    for n in range(waf_block.MAX_ATTEMPTS):
        if n:  # each retry reads the set again
            expect_get(stub, world, key, OLD, f"t{n}")
        stub.add_client_error("update_ip_set", "WAFOptimisticLockException")

    result = world.run(clients=clients)
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("WAFOptimisticLockException")
    stub.assert_no_pending_responses()
    backoffs = pauses[1:]  # the first wait is the query poll
    assert len(backoffs) == waf_block.MAX_ATTEMPTS - 1
    assert all(0 <= w <= waf_block.BACKOFF_CAP_SECONDS for w in backoffs)


def test_query_that_never_finishes_is_stopped_and_fails(world):
    world.params(query_timeout_seconds=3)
    stub = world.insights.stub
    stub.add_response(
        "start_query",
        {"queryId": "q-1"},
        {"logGroupName": LOG_GROUP, "startTime": ANY, "endTime": ANY, "queryString": DEFAULT_QUERY},
    )
    for _ in range(3):
        stub.add_response(
            "get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"}
        )
    stub.add_response("stop_query", {"success": True}, {"queryId": "q-1"})
    result = world.run()
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("QueryFailedError")
    assert "still Running after 3 s" in result.reason
    stub.assert_no_pending_responses()
    assert world.entries() == OLD


def test_cloudfront_scope_ip_set_is_changed_through_us_east_1(world):
    edge_waf = world.stack.clients("wafv2", region="us-east-1")
    edge = edge_waf.create_ip_set(
        Name="blocked-edge", Scope="CLOUDFRONT", IPAddressVersion="IPV4", Addresses=list(OLD)
    )["Summary"]
    assert ":us-east-1:" in edge["ARN"]
    assert ":global/ipset/" in edge["ARN"]
    world.target(edge["ARN"])
    world.insights.answer({"203.0.113.9": 500})
    # CLOUDFRONT-scope sets live in us-east-1: an environment serves it only when told to.
    edge_too = dataclasses.replace(DEPLOYMENT, extra_regions=frozenset({"us-east-1"}))
    result = world.run(deployment=edge_too)
    assert result.outcome is Outcome.EXECUTED, result.reason
    got = edge_waf.get_ip_set(Name="blocked-edge", Scope="CLOUDFRONT", Id=edge["Id"])
    assert got["IPSet"]["Addresses"] == [*OLD, "203.0.113.9/32"]


def test_block_can_be_undone_from_its_audit_record(world):
    """The ``revert`` contract: ``read`` reports the same ``addresses`` the audit recorded
    as after-state, and ``apply`` with before/after swapped removes exactly the new blocks."""
    world.insights.answer({"203.0.113.9": 500, "192.0.2.200": 500})
    assert world.run().outcome is Outcome.EXECUTED
    (audit,) = world.stack.audit_items()
    ctx = ActionContext(
        clients=world.clients,
        audit=AuditLog(world.clients("dynamodb"), world.stack.table),
        deployment=DEPLOYMENT,
        clock=lambda: world.stack.now,
    )
    action = WafBlock(ctx.for_target(world.v4["ARN"]))
    params = WafBlockParams.from_dict(audit["params"])
    world.insights.answer({})  # revert reads the target again
    now = action.read(world.v4["ARN"], params)
    assert now["addresses"] == audit["after_state"]["addresses"] == ["203.0.113.9/32"]

    undo = Plan.change("revert", audit["after_state"], audit["before_state"])
    action.apply(world.v4["ARN"], undo)
    assert action.verify(world.v4["ARN"], undo) == {"addresses": []}
    assert world.entries() == OLD  # 192.0.2.200 was never ours: it stays
    assert world.records() == {}


def test_a_set_filled_meanwhile_is_never_written_past_the_limit(world, stubbed_waf):
    """The plan saw room, but by apply time others filled the IP set: nothing is written."""
    stub, clients, key = stubbed_waf
    full = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(IP_SET_LIMIT)]
    world.insights.answer({"203.0.113.9": 500})
    expect_get(stub, world, key, OLD, "t1")  # read: room
    # the update made with the read's lock token: WAF refuses it, the set changed since
    stub.add_client_error("update_ip_set", "WAFOptimisticLockException")
    expect_get(stub, world, key, full, "t2")  # read again: full now
    result = world.run(clients=clients)
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("IPSetFullError: IP set blocked-v4 would hold 10001")
    stub.assert_no_pending_responses()  # no other UpdateIPSet was tried


def test_cloudfront_scope_ip_set_outside_the_served_regions_is_rejected(world):
    edge_waf = world.stack.clients("wafv2", region="us-east-1")
    edge = edge_waf.create_ip_set(
        Name="blocked-edge", Scope="CLOUDFRONT", IPAddressVersion="IPV4", Addresses=list(OLD)
    )["Summary"]
    world.target(edge["ARN"])
    result = world.run()
    assert result.outcome is Outcome.REJECTED
    assert "region us-east-1, not eu-west-1" in result.reason
    got = edge_waf.get_ip_set(Name="blocked-edge", Scope="CLOUDFRONT", Id=edge["Id"])
    assert got["IPSet"]["Addresses"] == OLD


def test_ipv6_offender_without_an_ipv6_set_escalates_and_blocks_nothing(world):
    """The target holds only the IPv4 set: the IPv4 offender is not blocked alone while the
    IPv6 one goes on, and the result does not say executed."""
    world.insights.answer({"2001:db8::7": 600, "203.0.113.9": 500})
    result = world.run()

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "1 offender(s) with no IPV6 IP set in the target: 2001:db8::7/128 (600)" in (
        result.reason
    )
    assert "nothing blocked" in result.reason
    assert world.entries() == OLD
    assert world.entries(world.v6) == ["2001:db8:ff::/48"]
    assert world.records() == {}
    (audit,) = world.stack.audit_items()
    assert audit["outcome"] == "escalated"
    (notice,) = world.stack.notices()
    assert "needs a human for waf-block" in notice["subject"]
    assert "2001:db8::7/128" in notice["message"]
