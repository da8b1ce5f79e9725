"""Pure decisions of approvals and silences: no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from serverless_remediation.remediation import intake
from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.approvals import (
    Approval,
    Policy,
    Status,
    approval_item,
    build_approval,
    check_decision,
    parse_approval,
    same_state,
)
from serverless_remediation.remediation.errors import RejectedError
from serverless_remediation.remediation.models import Route, RouteMode, Source
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.remediation.silences import (
    build_silence,
    open_window,
    parse_silence,
    parse_window,
    silence_item,
)
from serverless_remediation.stacks import catalog
from serverless_remediation.stacks.config import ConfigError, parse_env

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # a Tuesday
ALICE = "arn:aws:sts::123456789012:assumed-role/OnCall/alice"
POLICY = Policy(approvers=("arn:aws:sts::123456789012:assumed-role/OnCall/*",))
ROUTE = Route("rollback", "fn:live", {"window_minutes": 60}, RouteMode.APPROVE)


def approval(**changes) -> Approval:
    made = build_approval(
        ROUTE,
        before={"version": "3"},
        after={"version": "2"},
        summary="alias 3 -> 2",
        now=NOW,
        expiry=timedelta(minutes=15),
        origin_audit_id="a" * 32,
        origin_key="orders-error-rate",
    )
    return Approval(**{**made.__dict__, **changes})


def decision(verb: str = "approve", who: str = ALICE, **extra) -> dict:
    return {verb: "f" * 32, "requested_by": who, "reason": "checked the graphs", **extra}


# -- the decision request -----------------------------------------------------------------------


def test_a_decision_parses_to_an_approval_request_naming_where_it_came_from():
    request = intake.parse(decision("reject", via="chat:#ops"))
    assert request.source is Source.APPROVAL
    assert (request.key, request.requested_by) == ("f" * 32, ALICE)
    assert request.details == {"decision": "reject", "via": "chat:#ops"}
    assert request.reason == "checked the graphs (via chat:#ops)"  # kept in the audit record
    assert request.action is None
    assert request.target is None


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (decision(action="rollback"), "action"),
        (decision(target="arn:x"), "target"),
        (decision(plan={"after": {"version": "1"}}), "plan"),
        (decision(params={}), "params"),
        ({**decision(), "reject": "f" * 32}, "either approve or reject"),
        ({"approve": "not-an-id", "requested_by": ALICE, "reason": "ok!"}, "approve"),
        ({"approve": "f" * 32, "reason": "ok!"}, "requested_by"),
        (decision(reason="x"), "reason"),
    ],
)
def test_a_tampered_or_malformed_decision_is_refused(payload, says):
    with pytest.raises(RejectedError) as caught:
        intake.parse(payload)
    assert says in caught.value.reason
    assert caught.value.raw  # what arrived is kept for the audit


# -- checks before a decision acts -----------------------------------------------------------------


def request(who: str = ALICE):
    return intake.parse(decision(who=who))


def test_a_pending_approval_from_an_approver_in_time_passes():
    pending = approval()
    assert check_decision(pending, request(), NOW + timedelta(minutes=14), POLICY) is pending


@pytest.mark.parametrize(
    ("found", "who", "when", "says"),
    [
        (None, ALICE, NOW, "unknown id"),
        (approval(), "arn:aws:iam::123456789012:user/mallory", NOW, "may not decide"),
        (approval(), ALICE + "/../x", NOW, None),  # a pattern's * matches any session name
        (approval(status=Status.APPROVED, decided_by=ALICE), ALICE, NOW, "used once"),
        (approval(status=Status.REJECTED), ALICE, NOW, "already rejected"),
        (approval(), ALICE, NOW + timedelta(minutes=15), "expired"),
    ],
)
def test_decisions_that_may_not_act(found, who, when, says):
    if says is None:
        assert check_decision(found, request(who), when, POLICY) is found
        return
    with pytest.raises(RejectedError, match=says):
        check_decision(found, request(who), when, POLICY)


def test_nobody_may_decide_without_approvers():
    with pytest.raises(RejectedError, match="no approvers configured"):
        check_decision(approval(), request(), NOW, Policy())


def test_same_state_compares_values_not_key_order():
    assert same_state({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert not same_state({"version": "3"}, {"version": "2"})
    assert not same_state({"version": "3"}, None)


def test_an_approval_survives_its_stored_form():
    pending = approval(replaces="e" * 32)
    item = approval_item(pending)
    assert item["deadline"] == int((NOW + timedelta(minutes=15)).timestamp())
    assert item["expires_at"] > item["deadline"]  # kept past its deadline: "expired", not unknown
    assert parse_approval(item) == pending


def test_policy_reads_the_playbook_people_and_refuses_nonsense():
    policy = Policy.from_dict(
        {"approval_seconds": 300, "approvers": ["a*"], "max_silence_seconds": 7200}
    )
    assert (policy.expiry, policy.approvers, policy.max_silence) == (
        timedelta(minutes=5),
        ("a*",),
        timedelta(hours=2),
    )
    assert Policy.from_dict(None).expiry == timedelta(minutes=15)
    for bad in ({"approvers": "a*"}, {"approval_seconds": 5}, []):
        with pytest.raises(ValueError, match="people"):
            Policy.from_dict(bad)


def test_playbook_routes_carry_mode_and_windows():
    book = Playbook.from_dict(
        {
            "alarms": {
                "a": {"action": "rollback", "target": "t", "mode": "approve"},
                "b": {"action": "rollback", "target": "u", "maintenance": ["tue 02:00-03:00"]},
            },
            "people": {"approvers": ["x"]},
        }
    )
    assert book.alarms["a"].mode is RouteMode.APPROVE
    assert book.alarms["b"].mode is RouteMode.AUTO
    assert book.alarms["b"].maintenance == ("tue 02:00-03:00",)
    assert book.people.approvers == ("x",)
    with pytest.raises(ValueError, match="mode"):
        Playbook.from_dict({"alarms": {"a": {"action": "r", "target": "t", "mode": "yolo"}}})
    with pytest.raises(ValueError, match="maintenance window"):
        Playbook.from_dict({"alarms": {"a": {"action": "r", "target": "t", "maintenance": ["x"]}}})


# -- maintenance windows and silences -------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "holds"),
    [
        ("tue 02:00-03:00", True),
        ("tue 02:30-02:31", True),
        ("tue 02:31-03:00", False),  # the start is inside, the end outside
        ("tue 00:00-02:30", False),
        ("mon 02:00-03:00", False),
        ("daily 02:00-03:00", True),
        ("Tue 02:00-24:00", True),
    ],
)
def test_windows_are_weekly_utc_ranges(window, holds):
    assert parse_window(window).holds(NOW) is holds
    # the same instant written in another zone is the same instant
    assert parse_window(window).holds(NOW.astimezone(ZoneInfo("Asia/Tokyo"))) is holds


@pytest.mark.parametrize(
    "bad", ["tue 03:00-02:00", "tue 02:00-02:00", "tuesday 02:00-03:00", "tue 2:00-3:00", "24/7"]
)
def test_a_window_not_in_the_one_form_is_refused(bad):
    with pytest.raises(ValueError, match="expected"):
        parse_window(bad)


def test_open_window_names_the_first_that_holds():
    assert open_window(["mon 00:00-24:00", "daily 02:00-03:00"], NOW) == "daily 02:00-03:00"
    assert open_window([], NOW) is None


def test_a_silence_holds_from_its_start_to_its_end_or_the_maximum():
    made = build_silence(
        "t",
        length=timedelta(hours=2),
        reason="migration",
        created_by=ALICE,
        now=NOW,
        max_length=timedelta(hours=24),
    )
    assert made.holds(NOW, timedelta(hours=24))
    assert made.holds(NOW + timedelta(hours=1, minutes=59), timedelta(hours=24))
    assert not made.holds(NOW + timedelta(hours=2), timedelta(hours=24))
    assert not made.holds(NOW - timedelta(seconds=1), timedelta(hours=24))
    # a lower maximum (config changed, or an item written by hand) wins over its own end
    assert not made.holds(NOW + timedelta(hours=1), timedelta(minutes=30))
    assert parse_silence(silence_item(made)) == made


@pytest.mark.parametrize(
    ("length", "reason", "says"),
    [
        (timedelta(hours=25), "migration", "at most 24 h"),
        (timedelta(0), "migration", "more than 0"),
        (timedelta(hours=1), "x", "reason"),
    ],
)
def test_a_silence_outside_the_limits_is_refused(length, reason, says):
    with pytest.raises(RejectedError, match=says):
        build_silence(
            "t",
            length=length,
            reason=reason,
            created_by=ALICE,
            now=NOW,
            max_length=timedelta(hours=24),
        )


# -- cdk.json -> playbook --------------------------------------------------------------------------


def people_env(**service: Any) -> dict[str, Any]:
    return {
        "account": "123456789012",
        "region": "eu-west-1",
        "services": {
            "orders": {"kind": "lambda", "function": "orders", "alias": "live", **service}
        },
        "people": {"approvers": ["arn:aws:sts::123456789012:assumed-role/OnCall/*"]},
    }


def test_cdk_json_modes_windows_and_people_reach_the_playbook():
    raw = people_env(modes={"error-rate": "approve"}, maintenance=["tue 02:00-03:00"])
    raw["people"] |= {"approval_minutes": 10, "max_silence_hours": 4}
    book = catalog.build(parse_env("autorem", "test", raw), REGISTRY).playbook()
    routes = {name.removeprefix("autorem-test-orders-"): r for name, r in book["alarms"].items()}
    assert routes["error-rate"]["mode"] == "approve"
    assert "mode" not in routes["latency"]  # auto: the playbook stays as it was
    assert routes["latency"]["maintenance"] == ["tue 02:00-03:00"]
    policy = Playbook.from_dict(book).people
    assert (policy.expiry, policy.max_silence) == (timedelta(minutes=10), timedelta(hours=4))
    assert policy.may_decide("arn:aws:sts::123456789012:assumed-role/OnCall/bob")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (people_env(modes={"error-rate": "ask"}), "modes"),
        (people_env(maintenance=["tuesday 2-3"]), "maintenance window"),
        ({**people_env(modes={"error-rate": "approve"}), "people": {}}, "nobody may approve"),
    ],
)
def test_cdk_json_people_mistakes_fail_at_synth(raw, says):
    with pytest.raises(ConfigError, match=says):
        catalog.build(parse_env("autorem", "test", raw), REGISTRY)
