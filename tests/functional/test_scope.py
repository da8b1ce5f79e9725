"""Scope: an event may touch only what this deployment has authority over.

One table: every target kind x {same account and region, other account, other region,
other partition, no account, AlarmArn and AWSAccountId disagreeing}, on the alarm path and
on the manual path. Only the first column acts. The playbooks here name the out-of-scope
targets on purpose (a playbook is data: a typo or a copied config can hold anything); the
pipeline must refuse them.

A refusal is: outcome REJECTED with a reason naming the mismatch, a rejected audit record, a
notice, and no AWS write call outside the suite's own audit table and notice topic (every
call the pipeline makes is recorded through a botocore ``provide-client-params`` hook). The
resources exist in the deployment's own account and region under the same names, so an
action that slipped through would find something to change there.

Then the alarm side on its own: an alarm ARN of another account, region or partition;
AWSAccountId or a direct invoke's ``accountId``/``region`` disagreeing with the ARN; AWS
Budgets notices for another account or naming none.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import (
    ACCOUNT,
    REGION,
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
from serverless_remediation.remediation.clients import DEFAULT_CONFIG, Clients
from serverless_remediation.remediation.models import Outcome, Result
from serverless_remediation.remediation.pipeline import Pipeline
from serverless_remediation.remediation.scope import Deployment
from serverless_remediation.remediation.targets import build
from tests.conftest import DEPLOYMENT, load_event, sns_alarm

OTHER_ACCOUNT = "111122223333"
OTHER_REGION = "us-west-2"
OTHER_PARTITION = "aws-cn"
GLOBAL_REGION = "us-east-1"  # where CLOUDFRONT-scope WAF lives
ALARM = "scope-test-alarm"
BUDGET = "test-monthly"
REST_API, HTTP_API = "r1e2s3t4a5", "h1t2t3p4a5"
READS = re.compile(r"^(Get|Describe|List|Query|Scan|BatchGet|Head|StartQuery|StopQuery)")


# -- recording every call --------------------------------------------------------------


@dataclass
class Call:
    service: str
    operation: str
    params: dict


class Recorder(Clients):
    """``Clients`` whose every client records each API call (once per call, whatever the
    retries) before it is sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[Call] = []
        for client in self._made.values():  # overrides (a Stubber's client) record too
            self.watch(client)

    def watch(self, client: Any) -> Any:
        service = client.meta.service_model.service_name

        def seen(model: Any, params: dict, **_: Any) -> None:
            self.calls.append(Call(service, model.name, dict(params)))

        # The first event of a call: ahead of a Stubber, which raises when it has no answer.
        client.meta.events.register("provide-client-params", seen)
        return client

    def _make(self, *args: Any, **kwargs: Any) -> Any:
        return self.watch(super()._make(*args, **kwargs))

    def writes(self, table: str, topic: str) -> list[str]:
        """Every call that could change something, except the suite's own records."""
        found = []
        for call in self.calls:
            own = (call.service == "dynamodb" and call.params.get("TableName") == table) or (
                call.service == "sns"
                and call.operation == "Publish"
                and call.params.get("TopicArn") == topic
            )
            if not own and not READS.match(call.operation):
                found.append(f"{call.service}.{call.operation}")
        return found


# -- target kinds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One target kind: how to make it in the emulator and how its ARN is built."""

    name: str
    action: str
    params: dict
    service: str
    resource: str
    make: Callable[[Any], None]
    #: API Gateway: the ARN carries no account (it is the caller's)
    accountless: bool = False
    #: a fixed region (CLOUDFRONT-scope WAF lives in us-east-1), else the deployment's
    region: str = REGION
    #: the deployment serving this kind (extra regions for CLOUDFRONT)
    deployment: Deployment = DEPLOYMENT
    #: the "same" column must execute; else it must reach the action (a call to
    #: ``reaches``), whatever the action then decides (moto lacks HTTP API deployments and
    #: provisioned concurrency listings)
    executes: bool = True
    suffix: str = ""
    reaches: str = ""

    @property
    def client(self) -> str:
        return self.reaches or self.service

    def arn(self, *, partition="aws", region=None, account=None) -> str:
        if account is None:
            account = "" if self.accountless else ACCOUNT
        made = build(partition, self.service, region or self.region, account, self.resource)
        return made + self.suffix


def _alias(stack) -> None:
    create_function(stack.clients, "orders", versions=3)


def _function(stack) -> None:
    create_function(stack.clients, "worker", versions=1, alias=None)


def _reserved(stack) -> None:
    _function(stack)
    stack.clients("lambda").put_function_concurrency(
        FunctionName="worker", ReservedConcurrentExecutions=10
    )


def _variable(stack) -> None:
    create_function(
        stack.clients, "hooks", versions=1, alias=None, environment={"WEBHOOK_ENABLED": "true"}
    )


def _parameter(stack) -> None:
    put_parameter(stack.clients, "/orders/webhook-enabled", "true")


def _table(stack) -> None:
    create_table(stack.clients, "orders-table")


def _rest_stage(stack) -> None:
    create_rest_stage(stack.clients, REST_API, "prod")


def _nothing(stack) -> None:
    """The HTTP API is a Stubber with no answers: reaching it is what the case shows."""


ACCESS_LOG = "/aws/apigateway/orders"
OFFENDER = "203.0.113.9"


def _access_log(stack) -> None:
    at = int(stack.now.timestamp() * 1000) - 60_000
    line = json.dumps({"ip": OFFENDER, "status": 403})
    create_log_group(stack.clients, ACCESS_LOG, [line] * 3, at_ms=at)


def _regional_ip_set(stack) -> None:
    create_ip_set(stack.clients, "blocked", ip_set_id="a1b2c3d4-0000-4000-8000-00000000000a")
    _access_log(stack)


def _global_ip_set(stack) -> None:
    from moto.wafv2.models import WAFV2Backend

    waf = stack.clients("wafv2", region=GLOBAL_REGION)
    original = WAFV2Backend._generate_id
    WAFV2Backend._generate_id = lambda self: "a1b2c3d4-0000-4000-8000-00000000000b"
    try:
        waf.create_ip_set(Name="edge", Scope="CLOUDFRONT", IPAddressVersion="IPV4", Addresses=[])
    finally:
        WAFV2Backend._generate_id = original
    _access_log(stack)


WAF_PARAMS = {"log_group": ACCESS_LOG, "threshold": 1, "query": "fields @message"}
SERVES_US_EAST_1 = dataclasses.replace(DEPLOYMENT, extra_regions=frozenset({GLOBAL_REGION}))

KINDS = [
    Kind("lambda alias", "rollback", {}, "lambda", "function:orders:live", _alias),
    Kind(
        "lambda function (memory)",
        "capacity-bump",
        {"kind": "lambda-memory", "max_memory_mb": 1024},
        "lambda",
        "function:worker",
        _function,
    ),
    Kind(
        "lambda function (reserved)",
        "capacity-bump",
        {"kind": "lambda-reserved-concurrency", "max_reserved_concurrency": 100},
        "lambda",
        "function:worker",
        _reserved,
    ),
    Kind(
        "lambda variable",
        "flip-flag",
        {},
        "lambda",
        "function:hooks",
        _variable,
        suffix="#WEBHOOK_ENABLED",
    ),
    Kind("ssm parameter", "flip-flag", {}, "ssm", "parameter/orders/webhook-enabled", _parameter),
    Kind(
        "dynamodb table",
        "capacity-bump",
        {"kind": "dynamodb-throughput", "max_read_units": 100, "max_write_units": 100},
        "dynamodb",
        "table/orders-table",
        _table,
    ),
    Kind(
        "rest stage",
        "rollback",
        {},
        "apigateway",
        f"/restapis/{REST_API}/stages/prod",
        _rest_stage,
        accountless=True,
    ),
    Kind(
        "http api stage",
        "rollback",
        {},
        "apigateway",
        f"/apis/{HTTP_API}/stages/prod",
        _nothing,
        accountless=True,
        executes=False,
        reaches="apigatewayv2",
    ),
    Kind(
        "waf ip set (regional)",
        "waf-block",
        WAF_PARAMS,
        "wafv2",
        "regional/ipset/blocked/a1b2c3d4-0000-4000-8000-00000000000a",
        _regional_ip_set,
    ),
    Kind(
        "waf ip set (cloudfront, us-east-1 served)",
        "waf-block",
        WAF_PARAMS,
        "wafv2",
        "global/ipset/edge/a1b2c3d4-0000-4000-8000-00000000000b",
        _global_ip_set,
        region=GLOBAL_REGION,
        deployment=SERVES_US_EAST_1,
    ),
    Kind(
        "cost guard",
        "cost-guard",
        {"sheddable": ["worker"], "max_reserved": 1},
        "lambda",
        "function:*",
        _function,
        executes=False,
    ),
]
BY_NAME = {kind.name: kind for kind in KINDS}


# -- the cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One column: the target's ARN and the alarm's account, and what must happen."""

    target: str
    alarm_account: str = ACCOUNT  # in AlarmArn
    claimed_account: str = ACCOUNT  # AWSAccountId
    refused_for: str = ""  # a phrase the refusal must contain; empty: it acts


def column(kind: Kind, name: str, path: str) -> Case | None:
    """The case for ``kind`` in column ``name`` on ``path`` (None: cannot be expressed)."""
    if name == "same":
        return Case(kind.arn())
    if name == "other account":
        if kind.accountless and path == "alarm":
            # The ARN has no account to change: the alarm is another account's.
            return Case(kind.arn(), OTHER_ACCOUNT, OTHER_ACCOUNT, f"account {OTHER_ACCOUNT}")
        target = kind.arn(account=OTHER_ACCOUNT)
        if kind.accountless:
            # Manual: an API Gateway ARN naming an account is no API Gateway ARN at all.
            return Case(target, refused_for=target)
        return Case(target, refused_for=f"account {OTHER_ACCOUNT}")
    if name == "other region":
        return Case(kind.arn(region=OTHER_REGION), refused_for=f"region {OTHER_REGION}")
    if name == "other partition":
        # The same region name under another partition: only the partition differs.
        return Case(kind.arn(partition=OTHER_PARTITION), refused_for=f"partition {OTHER_PARTITION}")
    if name == "no account":
        if kind.accountless:  # their normal form: the deployment's own account
            return Case(kind.arn(account=""))
        # Refused by the target model or by the action's own shape check, whichever comes
        # first; either way the reason names the ARN.
        target = kind.arn(account="")
        return Case(target, refused_for=target)
    if name == "AlarmArn and AWSAccountId disagree":
        if path != "alarm":
            return None  # a manual request has no alarm
        return Case(kind.arn(), claimed_account=OTHER_ACCOUNT, refused_for="disagrees with its ARN")
    raise AssertionError(name)


COLUMNS = [
    "same",
    "other account",
    "other region",
    "other partition",
    "no account",
    "AlarmArn and AWSAccountId disagree",
]
TABLE = [
    pytest.param(kind.name, name, path, id=f"{path}-{kind.name}-{name}")
    for path in ("alarm", "manual")
    for kind in KINDS
    for name in COLUMNS
    if column(kind, name, path) is not None
]


# -- running one case ------------------------------------------------------------------


def alarm_message(
    stack,
    *,
    name: str = ALARM,
    partition: str = "aws",
    region: str = REGION,
    account: str = ACCOUNT,
    claimed: str | None = ACCOUNT,
    state: str = "ALARM",
    at: datetime | None = None,
) -> dict:
    """A CloudWatch alarm message as SNS carries it, changed state 30 s before the clock."""
    alarm = load_event("cloudwatch_alarm_single_metric.json")
    when = at or stack.now - timedelta(seconds=30)
    alarm.update(
        AlarmName=name,
        AlarmArn=build(partition, "cloudwatch", region, account, f"alarm:{name}"),
        NewStateValue=state,
        StateChangeTime=when.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}+0000",
    )
    if claimed is None:
        alarm.pop("AWSAccountId")
    else:
        alarm["AWSAccountId"] = claimed
    return alarm


def direct_alarm(stack, **changes: Any) -> dict:
    """The payload CloudWatch sends when an alarm action invokes a Lambda function."""
    payload = load_event("lambda_alarm_action.json")
    when = stack.now - timedelta(seconds=30)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    payload["time"] = stamp
    payload["alarmArn"] = build("aws", "cloudwatch", REGION, ACCOUNT, f"alarm:{ALARM}")
    payload["alarmData"]["alarmName"] = ALARM
    payload["alarmData"]["state"]["timestamp"] = stamp
    payload.update(changes)
    return payload


@dataclass
class Run:
    result: Result
    writes: list[str]
    record: dict | None
    notices: list[dict] = field(default_factory=list)
    services: set[str] = field(default_factory=set)


def run(stack, event: Any, playbook: dict, *, deployment=DEPLOYMENT, agree=True) -> Run:
    """Deliver ``event`` once. With ``agree``, the emulated CloudWatch first shows its alarm
    as the event says (what AWS shows for a real alarm), through clients that are not
    recorded: only the pipeline's own calls count."""
    if agree:
        agree_alarms(stack.clients, event)
    http_api = http_api_client()
    recorder = Recorder(endpoint_url=stack.endpoint_url, overrides={"apigatewayv2": http_api})
    Stubber(http_api).activate()
    settings = dataclasses.replace(stack.settings(playbook), deployment=deployment)
    pipeline = Pipeline(settings, recorder, clock=lambda: stack.now)
    (result,) = pipeline.handle(event)
    record = AuditLog(stack.clients("dynamodb"), stack.table).get(result.audit_id)
    writes = recorder.writes(stack.table, stack.topic_arn)
    services = {call.service for call in recorder.calls}
    return Run(result, writes, record, stack.notices(), services)


def assert_refused(done: Run, phrase: str) -> None:
    result = done.result
    assert result.outcome is Outcome.REJECTED, result
    assert phrase in result.reason, result.reason
    assert done.record is not None
    assert done.record["outcome"] == "rejected"
    assert done.record["detail"] == result.reason
    assert len(done.notices) == 1, done.notices
    assert "rejected" in done.notices[0]["subject"]
    assert done.writes == [], f"AWS write calls on a refused event: {done.writes}"


SCOPE_REFUSALS = (
    "outside this deployment",
    "is not this deployment's",
    "not acting across accounts",
    "names no account",
    "names no AWS account",
)


def assert_acted(done: Run, kind: Kind) -> None:
    result = done.result
    assert not any(p in result.reason for p in SCOPE_REFUSALS), result.reason
    assert result.outcome is not Outcome.REJECTED, result
    assert kind.client in done.services, f"never reached {kind.client}: {result}"
    if kind.executes:
        assert result.outcome is Outcome.EXECUTED, result
        assert done.writes, "executed without a write call"


@pytest.fixture
def world(stack, emulator, monkeypatch):
    """The stack with its clock at the wall clock (deploy windows read moto's real creation
    times) and the emulator's address, for recording clients."""
    stack.now = datetime.now(UTC)
    stack.endpoint_url = emulator.endpoint_url
    monkeypatch.setattr(waf_block, "_sleep", lambda seconds: None)
    return stack


def http_api_client() -> Any:
    """The apigatewayv2 client, to be wrapped in a Stubber with no answers once it is
    recorded: any call fails the stub (and the delivery), which in the acting column shows
    the action was reached (moto has no HTTP API deployments)."""
    return boto3.client("apigatewayv2", region_name=REGION, config=DEFAULT_CONFIG)


@pytest.mark.parametrize(("kind_name", "column_name", "path"), TABLE)
def test_only_the_deployments_own_target_is_acted_on(world, kind_name, column_name, path):
    kind = BY_NAME[kind_name]
    case = column(kind, column_name, path)
    assert case is not None
    kind.make(world)
    route = {"action": kind.action, "target": case.target, "params": kind.params}
    if path == "alarm":
        playbook = {"alarms": {ALARM: route}}
        event = sns_alarm(
            alarm_message(world, account=case.alarm_account, claimed=case.claimed_account)
        )
    else:
        playbook = {"inventory": [route]}
        event = {
            "action": kind.action,
            "target": case.target,
            "reason": "scope table",
            "requested_by": "alice@example.com",
        }
    acts = not case.refused_for
    # The emulator holds only the deployment's own alarms: another account's cannot agree.
    agree = case.alarm_account == ACCOUNT
    done = run(world, event, playbook, deployment=kind.deployment, agree=agree)
    if acts:
        assert_acted(done, kind)
    else:
        assert_refused(done, case.refused_for)


# -- CLOUDFRONT scope needs the deployment to serve us-east-1 --------------------------------


@pytest.mark.parametrize("path", ["alarm", "manual"])
def test_a_cloudfront_ip_set_is_refused_unless_the_deployment_serves_us_east_1(world, path):
    kind = BY_NAME["waf ip set (cloudfront, us-east-1 served)"]
    kind.make(world)
    target = kind.arn()
    route = {"action": kind.action, "target": target, "params": kind.params}
    if path == "alarm":
        playbook, event = {"alarms": {ALARM: route}}, sns_alarm(alarm_message(world))
    else:
        playbook = {"inventory": [route]}
        event = {"action": "waf-block", "target": target, "reason": "edge", "requested_by": "a"}
    done = run(world, event, playbook, deployment=DEPLOYMENT)
    assert_refused(done, f"region {GLOBAL_REGION}")


def test_a_two_set_waf_target_with_one_set_out_of_scope_is_refused(world):
    regional = BY_NAME["waf ip set (regional)"]
    regional.make(world)
    outsider = build(
        "aws",
        "wafv2",
        REGION,
        OTHER_ACCOUNT,
        "regional/ipset/blocked-v6/a1b2c3d4-0000-4000-8000-00000000000c",
    )
    route = {"action": "waf-block", "target": f"{regional.arn()},{outsider}", "params": WAF_PARAMS}
    done = run(world, sns_alarm(alarm_message(world)), {"alarms": {ALARM: route}})
    assert_refused(done, f"account {OTHER_ACCOUNT}")


# -- the alarm side on its own -----------------------------------------------------------

ALIAS_TARGET = BY_NAME["lambda alias"].arn()
ROLLBACK = {"alarms": {ALARM: {"action": "rollback", "target": ALIAS_TARGET}}}

ALARM_CASES = {
    "alarm ARN in another account (AWSAccountId agreeing)": (
        {"account": OTHER_ACCOUNT, "claimed": OTHER_ACCOUNT},
        f"account {OTHER_ACCOUNT}",
    ),
    "alarm ARN in another account, AWSAccountId ours": (
        {"account": OTHER_ACCOUNT, "claimed": ACCOUNT},
        "disagrees with its ARN",
    ),
    "AWSAccountId another account, alarm ARN ours": (
        {"claimed": OTHER_ACCOUNT},
        "disagrees with its ARN",
    ),
    "alarm ARN in another region": ({"region": OTHER_REGION}, f"region {OTHER_REGION}"),
    "alarm ARN in another partition": (
        {"partition": OTHER_PARTITION},
        f"partition {OTHER_PARTITION}",
    ),
    "alarm ARN in another partition and its region": (
        {"partition": OTHER_PARTITION, "region": "cn-north-1"},
        f"partition {OTHER_PARTITION}",
    ),
}


@pytest.mark.parametrize(("changes", "phrase"), ALARM_CASES.values(), ids=list(ALARM_CASES.keys()))
def test_an_alarm_from_elsewhere_is_refused(world, changes, phrase):
    _alias(world)
    event = sns_alarm(alarm_message(world, **changes))
    # Agree where the emulator can hold the alarm: even an alarm CloudWatch shows in
    # another region is not this deployment's.
    agree = changes.get("account", ACCOUNT) == ACCOUNT
    assert_refused(run(world, event, ROLLBACK, agree=agree), phrase)


def test_an_alarm_message_without_awsaccountid_is_judged_by_its_arn(world):
    """AWSAccountId is optional in what we accept; the ARN alone then decides."""
    _alias(world)
    done = run(world, sns_alarm(alarm_message(world, claimed=None)), ROLLBACK)
    assert_acted(done, BY_NAME["lambda alias"])


DIRECT_CASES = {
    "accountId another account": ({"accountId": OTHER_ACCOUNT}, "disagrees with its ARN"),
    "region another region": ({"region": OTHER_REGION}, "disagrees with its ARN"),
    "alarmArn another account, accountId ours": (
        {"alarmArn": build("aws", "cloudwatch", REGION, OTHER_ACCOUNT, f"alarm:{ALARM}")},
        "disagrees with its ARN",
    ),
    "alarmArn and accountId another account": (
        {
            "alarmArn": build("aws", "cloudwatch", REGION, OTHER_ACCOUNT, f"alarm:{ALARM}"),
            "accountId": OTHER_ACCOUNT,
        },
        f"account {OTHER_ACCOUNT}",
    ),
}


@pytest.mark.parametrize(
    ("changes", "phrase"), DIRECT_CASES.values(), ids=list(DIRECT_CASES.keys())
)
def test_a_direct_invoke_whose_account_or_region_disagrees_is_refused(world, changes, phrase):
    _alias(world)
    payload = direct_alarm(world, **changes)
    agree = ACCOUNT in payload["alarmArn"]
    assert_refused(run(world, payload, ROLLBACK, agree=agree), phrase)


def test_a_direct_invoke_that_agrees_acts(world):
    """The control: the same payload, consistent with its ARN, rolls back."""
    _alias(world)
    assert_acted(run(world, direct_alarm(world), ROLLBACK), BY_NAME["lambda alias"])


# -- AWS Budgets ---------------------------------------------------------------------------

COST_GUARD = BY_NAME["cost guard"]
SHED = {
    "budgets": {
        BUDGET: {"action": "cost-guard", "target": COST_GUARD.arn(), "params": COST_GUARD.params}
    }
}


def budget_notice(stack, account_line: str | None) -> dict:
    event = load_event("sns_budget_notice.json")
    sns = event["Records"][0]["Sns"]
    sns["Timestamp"] = (stack.now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"
    body = sns["Message"]
    if account_line is None:
        body = body.replace(f"AWS Account {ACCOUNT}\n", "")
    else:
        body = body.replace(f"AWS Account {ACCOUNT}", account_line)
    sns["Message"] = body
    return event


def test_a_budget_notice_for_this_account_acts(world):
    _function(world)
    done = run(world, budget_notice(world, f"AWS Account {ACCOUNT}"), SHED)
    assert_acted(done, COST_GUARD)


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        (f"AWS Account {OTHER_ACCOUNT}", f"for account {OTHER_ACCOUNT}"),
        (None, "names no AWS account"),
        ("AWS Account 12345678901", "names no AWS account"),  # 11 digits: no account
    ],
    ids=["another account", "no account line", "malformed account"],
)
def test_a_budget_notice_not_naming_this_account_is_refused(world, line, phrase):
    _function(world)
    assert_refused(run(world, budget_notice(world, line), SHED), phrase)
