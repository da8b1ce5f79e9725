"""Forged or misdirected events, generated: none may act.

Hypothesis (derandomized) draws events of five kinds (``strategies.forgeries``): alarms
CloudWatch does not confirm (missing, in another state, or in its state since before the
transition claimed); alarms of another account, region or partition, or whose AWSAccountId /
``accountId`` / ``region`` disagree with their ARN (the emulated CloudWatch shows them where
it can); stale or future transitions CloudWatch does confirm; AWS Budgets notices for another
account or naming none; and real, current alarms and manual requests whose playbook route
names a target of another account, region or partition, or with no account.

Every one goes through the real pipeline against the moto server, which holds a target of
every kind in the deployment's own account and region under the names the forged routes use:
a rollback alias, a function (memory), a function variable and an SSM flag (flip-flag), a
DynamoDB table, a REST stage, a WAF IP set fed by an access log with an offender, the
cost-guard functions. Each event must be rejected, audited and notified, with no AWS write
call outside the suite's own table and topic and every target as it was. The controls send
the same shapes in scope and must act: the harness can see an action when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import boto3
import pytest
from hypothesis import given, settings

from serverless_remediation.remediate.emulator import (
    agree_alarm,
    agree_alarms,
    create_function,
    create_ip_set,
    create_log_group,
    create_rest_stage,
    create_table,
    put_parameter,
)
from serverless_remediation.remediation.actions import waf_block
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.targets import build
from tests.conftest import load_event, sns_alarm
from tests.reliability.faults import Injector, TracedClients
from tests.reliability.strategies import (
    OWN_ACCOUNT,
    OWN_REGION,
    SCOPE_TARGETS,
    Forgery,
    foreign_budgets,
    misdirected_alarms,
    out_of_scope_targets,
    stale_alarms,
    unconfirmed_alarms,
)
from tests.reliability.test_fuzz import FAST

CASES_PER_KIND = 70
BUDGET = "test-monthly"
READS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "Head", "StartQuery", "StopQuery")
_serial = count()


# -- the world: one target of every kind, in scope ---------------------------------------------


def make_world(stack) -> None:
    clients = stack.clients
    create_function(clients, "orders", versions=3)
    create_function(clients, "worker", versions=1, alias=None)
    create_function(
        clients, "hooks", versions=1, alias=None, environment={"WEBHOOK_ENABLED": "true"}
    )
    put_parameter(clients, "/orders/webhook-enabled", "true")
    create_table(clients, "orders-table")
    create_rest_stage(clients, "r1e2s3t4a5", "prod")
    create_ip_set(clients, "blocked", ip_set_id="a1b2c3d4-0000-4000-8000-00000000000a")
    line = json.dumps({"ip": "203.0.113.9", "status": 403})
    at = int(stack.now.timestamp() * 1000) - 60_000
    create_log_group(clients, "/aws/apigateway/orders", [line] * 3, at_ms=at)


def snapshot(stack) -> dict[str, Any]:
    """What any of the actions would change, as plain data."""
    lam, c = stack.clients("lambda"), stack.clients
    worker = lam.get_function_configuration(FunctionName="worker")
    table = c("dynamodb").describe_table(TableName="orders-table")["Table"]
    waf = c("wafv2").get_ip_set(
        Name="blocked", Scope="REGIONAL", Id="a1b2c3d4-0000-4000-8000-00000000000a"
    )
    return {
        "alias": lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"],
        "memory": worker["MemorySize"],
        "reserved": lam.get_function_concurrency(FunctionName="worker").get(
            "ReservedConcurrentExecutions"
        ),
        "variable": lam.get_function_configuration(FunctionName="hooks")["Environment"][
            "Variables"
        ],
        "flag": c("ssm").get_parameter(Name="/orders/webhook-enabled")["Parameter"]["Value"],
        "table": table["ProvisionedThroughput"]["ReadCapacityUnits"],
        "stage": c("apigateway").get_stage(restApiId="r1e2s3t4a5", stageName="prod")[
            "deploymentId"
        ],
        "waf": sorted(waf["IPSet"]["Addresses"]),
    }


# -- building the event ------------------------------------------------------------------------


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def route_for(forgery: Forgery) -> dict:
    action, params, service, resource, suffix = SCOPE_TARGETS[forgery.kind]
    if forgery.target_parts is not None:
        partition, region, account = forgery.target_parts
    else:
        account = "" if service == "apigateway" else OWN_ACCOUNT
        partition, region = "aws", OWN_REGION
    target = build(partition, service, region, account, resource) + suffix
    return {"action": action, "target": target, "params": params}


@dataclass
class Delivery:
    event: Any
    playbook: dict
    alarm_arn: str | None = None
    occurred: datetime | None = None


def build_delivery(forgery: Forgery, now: datetime) -> Delivery:
    route = route_for(forgery)
    name = f"scope-{next(_serial)}"
    when = now - timedelta(seconds=forgery.age)
    if forgery.path == "manual":
        request = {
            "action": route["action"],
            "target": route["target"],
            "reason": "scope fuzz",
            "requested_by": "mallory@example.com",
        }
        return Delivery(request, {"inventory": [route]})
    if forgery.path == "budget":
        event = load_event("sns_budget_notice.json")
        sns = event["Records"][0]["Sns"]
        sns["Timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        line = forgery.budget_line
        own = f"AWS Account {OWN_ACCOUNT}\n"
        sns["Message"] = sns["Message"].replace(own, "" if line is None else f"{line}\n")
        return Delivery(event, {"budgets": {BUDGET: route}})
    partition, region, account = forgery.alarm_parts
    arn = build(partition, "cloudwatch", region, account, f"alarm:{name}")
    playbook = {"alarms": {name: route}}
    if forgery.path == "direct":
        payload = load_event("lambda_alarm_action.json")
        payload.update(alarmArn=arn, time=stamp(when))
        for key, value in (
            ("accountId", forgery.claimed_account),
            ("region", forgery.claimed_region),
        ):
            if value is None:
                payload.pop(key)
            else:
                payload[key] = value
        payload["alarmData"]["alarmName"] = name
        payload["alarmData"]["state"].update(value=forgery.state, timestamp=stamp(when))
        return Delivery(payload, playbook, arn, when)
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    alarm.update(AlarmName=name, AlarmArn=arn, NewStateValue=forgery.state)
    alarm["StateChangeTime"] = stamp(when)
    if forgery.claimed_account is None:
        alarm.pop("AWSAccountId")
    else:
        alarm["AWSAccountId"] = forgery.claimed_account
    return Delivery(sns_alarm(alarm), playbook, arn, when)


def stand_cloudwatch(stack, forgery: Forgery, delivery: Delivery) -> None:
    """Set the emulated CloudWatch as the forgery says (through untraced clients)."""
    if delivery.alarm_arn is None or forgery.cloudwatch == "absent":
        return
    if forgery.cloudwatch == "agree":
        agree_alarms(stack.clients, delivery.event)
    elif forgery.cloudwatch == "other-state":
        other = "OK" if forgery.state == "ALARM" else "ALARM"
        agree_alarm(stack.clients, delivery.alarm_arn, other, delivery.occurred)
    elif forgery.cloudwatch == "earlier":
        since = delivery.occurred - timedelta(minutes=10)
        agree_alarm(stack.clients, delivery.alarm_arn, forgery.state, since)


# -- one delivery through the pipeline -----------------------------------------------------------


@dataclass
class Outcome_:
    outcome: Outcome
    reason: str
    record: dict | None
    notices: list[dict]
    writes: list[str]
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def acted(self) -> bool:
        return self.outcome is Outcome.EXECUTED or bool(self.writes) or bool(self.changed)


class Harness:
    """The world, traced clients shared by every delivery (a fresh trace each time)."""

    def __init__(self, stack, emulator) -> None:
        self.stack = stack
        self.injector = Injector()
        self.clients = TracedClients(
            self.injector, session=boto3.session.Session(), endpoint_url=emulator.endpoint_url
        )
        make_world(stack)
        self.before = snapshot(stack)

    def deliver(self, forgery: Forgery) -> Outcome_:
        stack = self.stack
        delivery = build_delivery(forgery, stack.now)
        stand_cloudwatch(stack, forgery, delivery)
        self.injector.calls.clear()
        pipeline = stack.pipeline(delivery.playbook, clients=self.clients, agree=False)
        (result,) = pipeline.handle(delivery.event)
        writes = [
            c.label
            for c in self.injector.calls
            if not c.operation.startswith(READS)
            and not (c.service == "dynamodb" and "[" in c.label)  # the suite's own table
            and not (c.service == "sns" and c.operation == "Publish")
        ]
        after = snapshot(stack)
        changed = {k: (v, after[k]) for k, v in self.before.items() if after[k] != v}
        self.before = after
        record = AuditLog(stack.clients("dynamodb"), stack.table).get(result.audit_id)
        return Outcome_(result.outcome, result.reason, record, stack.notices(), writes, changed)


@pytest.fixture
def harness(stack, emulator, monkeypatch):
    monkeypatch.setattr(waf_block, "_sleep", lambda seconds: None)
    stack.now = datetime.now(UTC)
    return Harness(stack, emulator)


def check_refused(figures, forgery: Forgery, done: Outcome_) -> None:
    figures.add("scope_events_tried")
    figures.add(f"scope_{forgery.bucket.replace(' ', '_').replace('-', '_')}")
    figures.add("scope_events_acted", int(done.acted))
    figures.add("wrong_actions", int(done.acted))
    lost = done.record is None or done.record.get("outcome") == "pending"
    figures.add("records_lost", int(lost))
    problems = [
        what
        for what, bad in [
            (f"outcome {done.outcome}: {done.reason[:300]}", done.outcome is not Outcome.REJECTED),
            (f"write calls {done.writes}", bool(done.writes)),
            (f"targets changed {done.changed}", bool(done.changed)),
            ("no rejected record", lost or done.record.get("outcome") != "rejected"),
            (
                "no rejected notice",
                len(done.notices) != 1 or "rejected" not in done.notices[0]["subject"],
            ),
        ]
        if bad
    ]
    assert not problems, f"{forgery.bucket}: {forgery.what}: {'; '.join(problems)}"


def run_bucket(harness, figures, forgery: Forgery) -> None:
    check_refused(figures, forgery, harness.deliver(forgery))


@settings(FAST, max_examples=CASES_PER_KIND)
@given(forgery=unconfirmed_alarms())
def test_alarms_cloudwatch_does_not_confirm_never_act(harness, figures, forgery):
    run_bucket(harness, figures, forgery)


@settings(FAST, max_examples=CASES_PER_KIND)
@given(forgery=misdirected_alarms())
def test_alarms_of_another_account_region_or_partition_never_act(harness, figures, forgery):
    run_bucket(harness, figures, forgery)


@settings(FAST, max_examples=CASES_PER_KIND)
@given(forgery=stale_alarms())
def test_stale_or_future_transitions_never_act(harness, figures, forgery):
    run_bucket(harness, figures, forgery)


@settings(FAST, max_examples=CASES_PER_KIND // 2)
@given(forgery=foreign_budgets())
def test_budget_notices_for_another_account_never_act(harness, figures, forgery):
    run_bucket(harness, figures, forgery)


@settings(FAST, max_examples=CASES_PER_KIND * 2)
@given(forgery=out_of_scope_targets())
def test_routes_to_out_of_scope_targets_never_act(harness, figures, forgery):
    run_bucket(harness, figures, forgery)


# -- controls: the same shapes, in scope, do act ---------------------------------------------------

#: what each kind's control changes in the snapshot (cost guard: moto has no provisioned
#: concurrency listing, so it gets as far as reading the function and fails there)
CHANGES = {
    "lambda alias": "alias",
    "lambda function": "memory",
    "lambda variable": "variable",
    "ssm parameter": "flag",
    "dynamodb table": "table",
    "rest stage": "stage",
    "waf ip set": "waf",
    "cost guard": None,
}


@pytest.mark.parametrize("path", ["sns", "direct", "manual"])
@pytest.mark.parametrize("kind", sorted(SCOPE_TARGETS))
def test_controls_in_scope_do_act(stack, emulator, monkeypatch, figures, kind, path):
    monkeypatch.setattr(waf_block, "_sleep", lambda seconds: None)
    stack.now = datetime.now(UTC)
    harness = Harness(stack, emulator)
    done = harness.deliver(Forgery("control", f"{kind} via {path}", path, kind))
    figures.add("scope_controls_tried")
    expected = CHANGES[kind]
    if expected is None:
        reached = done.outcome is not Outcome.REJECTED and any(
            c.service == "lambda" for c in harness.injector.calls
        )
        figures.add("scope_controls_acted", int(reached))
        assert reached, (done.outcome, done.reason)
        return
    acted = done.outcome is Outcome.EXECUTED and expected in done.changed
    figures.add("scope_controls_acted", int(acted))
    assert acted, (done.outcome, done.reason, done.changed)


def test_control_budget_notice_for_this_account_acts(harness, figures):
    done = harness.deliver(Forgery("control", "own budget", "budget", "cost guard"))
    figures.add("scope_controls_tried")
    reached = done.outcome is not Outcome.REJECTED and any(
        c.service == "lambda" for c in harness.injector.calls
    )
    figures.add("scope_controls_acted", int(reached))
    assert reached, (done.outcome, done.reason)
