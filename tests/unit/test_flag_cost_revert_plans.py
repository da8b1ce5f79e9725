"""The pure parts of flip-flag, cost-guard and revert: targets, parameters and plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.actions.cost_guard import CostGuardParams, plan_shed
from serverless_remediation.remediation.actions.cost_guard import parse_target as parse_cost_target
from serverless_remediation.remediation.actions.flag import (
    FlagParams,
    parse_target,
    plan_flip,
    plan_restore,
)
from serverless_remediation.remediation.actions.revert import check_audit_id, plan_revert, refusal
from serverless_remediation.remediation.models import RejectedError, Request, Route, Source
from serverless_remediation.remediation.playbook import Playbook

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
FLIPPED_AT = NOW - timedelta(minutes=20)


# -- flip-flag -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind", "name", "variable"),
    [
        ("arn:aws:ssm:eu-west-1:123456789012:parameter/app/webhook", "ssm", "/app/webhook", None),
        ("arn:aws:ssm:eu-west-1:123456789012:parameter/flag", "ssm", "flag", None),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:leads#WEBHOOK_ENABLED",
            "lambda",
            "arn:aws:lambda:eu-west-1:123456789012:function:leads",
            "WEBHOOK_ENABLED",
        ),
    ],
)
def test_flag_targets_parse(target, kind, name, variable):
    flag = parse_target(target)
    assert (flag.kind, flag.region, flag.name, flag.variable) == (kind, "eu-west-1", name, variable)


@pytest.mark.parametrize(
    "target",
    [
        "arn:aws:lambda:eu-west-1:123456789012:function:leads",  # no variable
        "arn:aws:lambda:eu-west-1:123456789012:function:leads:live#FLAG",  # qualified
        "arn:aws:lambda:eu-west-1:123456789012:function:leads#1FLAG",
        "arn:aws:ssm:eu-west-1:123456789012:parameter//double",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/trailing/",
        "/app/webhook",
    ],
)
def test_bad_flag_targets_are_rejected(target):
    with pytest.raises(RejectedError, match=r"flip-flag target|not an SSM parameter ARN"):
        parse_target(target)


@pytest.mark.parametrize(
    "params", [{"value": ""}, {"value": "x" * 4097}, {"hold_minutes": -1}, {"value": False}]
)
def test_bad_flag_params_are_rejected(params):
    with pytest.raises(RejectedError):
        FlagParams.from_dict(params)


def test_flip_changes_only_the_value():
    plan = plan_flip({"value": "true"}, "false")
    assert (plan.verdict, plan.before, plan.after) == (
        "change",
        {"value": "true"},
        {"value": "false"},
    )


def test_flip_of_a_flag_already_safe_is_a_noop():
    assert plan_flip({"value": "false"}, "false").verdict == "noop"


def test_flip_refusal_escalates():
    plan = plan_flip({"value": None, "refusal": "parameter x does not exist"}, "false")
    assert (plan.verdict, plan.summary) == ("escalate", "parameter x does not exist")


def executed(before: str = "true", after: str = "false", at: datetime = FLIPPED_AT) -> dict:
    return {
        "audit_id": "a" * 32,
        "before_state": {"value": before},
        "after_state": {"value": after},
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
    }


def test_restore_puts_the_recorded_value_back():
    plan = plan_restore({"value": "false"}, "false", 0, NOW, executed())
    assert (plan.verdict, plan.after) == ("change", {"value": "true"})
    assert "a" * 32 in plan.summary


@pytest.mark.parametrize(
    ("hold", "verdict"), [(19, "change"), (20, "change"), (21, "escalate"), (0, "change")]
)
def test_restore_waits_for_the_hold_time(hold, verdict):
    assert plan_restore({"value": "false"}, "false", hold, NOW, executed()).verdict == verdict


@pytest.mark.parametrize(
    ("current", "last", "verdict", "words"),
    [
        ("false", None, "noop", "nothing to restore"),
        ("true", executed(before="false", after="true"), "noop", "nothing to restore"),
        ("true", executed(), "noop", "already back"),
        ("other", executed(), "escalate", "changed since"),
        ("false", {"audit_id": "x", "created_at": NOW.isoformat()}, "escalate", "no before/after"),
    ],
)
def test_restore_refuses_what_it_cannot_trust(current, last, verdict, words):
    plan = plan_restore({"value": current}, "false", 0, NOW, last)
    assert plan.verdict == verdict
    assert words in plan.summary
    assert plan.after == plan.before


# -- cost-guard ------------------------------------------------------------------------------


def test_cost_target_is_a_function_wildcard():
    prefix = parse_cost_target("arn:aws:lambda:eu-west-1:123456789012:function:*")
    assert prefix == "arn:aws:lambda:eu-west-1:123456789012:function:"
    with pytest.raises(RejectedError):
        parse_cost_target("arn:aws:lambda:eu-west-1:123456789012:function:reports")


@pytest.mark.parametrize(
    "params",
    [
        {"sheddable": ["arn:aws:lambda:eu-west-1:123456789012:function:x"]},
        {"sheddable": ["a", "a"]},
        {"sheddable": "reports"},
        {"max_reserved": -1},
    ],
)
def test_bad_cost_params_are_rejected(params):
    with pytest.raises(RejectedError):
        CostGuardParams.from_dict(params)


def test_shed_drops_provisioned_and_caps_reserved_never_raising_it():
    current = {
        "functions": {
            "a": {"reserved": 50, "provisioned": {"live": 10, "3": 2}},
            "b": {"reserved": None, "provisioned": {}},
            "c": {"reserved": 0, "provisioned": {"live": 5}},
        },
        "missing": ["gone"],
    }
    plan = plan_shed(current, ["a", "b", "c", "gone"], 2)
    assert plan.verdict == "change"
    assert plan.after == {
        "functions": {
            "a": {"reserved": 2, "provisioned": {}},
            "b": {"reserved": 2, "provisioned": {}},
            "c": {"reserved": 0, "provisioned": {}},
        }
    }
    assert "a: provisioned 12 -> 0" in plan.summary
    assert "b: reserved unreserved -> 2" in plan.summary
    assert "not found: gone" in plan.summary


def test_shed_of_shed_functions_is_a_noop():
    current = {"functions": {"a": {"reserved": 1, "provisioned": {}}}, "missing": []}
    assert plan_shed(current, ["a"], 1).verdict == "noop"


@pytest.mark.parametrize(
    ("current", "sheddable", "words"),
    [
        ({"functions": {}, "missing": []}, [], "no function is marked sheddable"),
        ({"functions": {}, "missing": ["a"]}, ["a"], "none of the sheddable functions exist"),
    ],
)
def test_shed_preconditions_escalate(current, sheddable, words):
    plan = plan_shed(current, sheddable, 1)
    assert plan.verdict == "escalate"
    assert words in plan.summary


# -- revert ----------------------------------------------------------------------------------

AUDIT = "b" * 32
TARGET = "arn:aws:lambda:eu-west-1:123456789012:function:leads#WEBHOOK_ENABLED"
INVENTORY = {("flip-flag", TARGET): Route("flip-flag", TARGET)}


def stored(**changes) -> dict:
    item = {
        "audit_id": AUDIT,
        "action": "flip-flag",
        "target": TARGET,
        "outcome": "executed",
        "before_state": {"value": "true"},
        "after_state": {"value": "false"},
    }
    return {**item, **changes}


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (None, "no audit record"),
        (stored(action="revert"), "itself a revert"),
        (stored(target=TARGET + "X"), "not in this remediator's inventory"),
        (stored(outcome="failed"), "is failed, not executed"),
        (stored(before_state=None), "no before/after state"),
    ],
)
def test_revert_refusals(item, words):
    assert words in refusal(AUDIT, item, INVENTORY)


def test_executed_record_in_inventory_is_revertible():
    assert refusal(AUDIT, stored(), INVENTORY) is None


def now_state(value: str, **extra) -> dict:
    return {
        "audit_id": AUDIT,
        "action": "flip-flag",
        "target": TARGET,
        "record_before": {"value": "true"},
        "record_after": {"value": "false"},
        "state": {"value": value, **extra},
    }


def test_revert_plan_goes_back_to_the_before_state():
    plan = plan_revert(now_state("false", unrelated="ignored"))
    assert plan.verdict == "change"
    assert plan.before == {"action": "flip-flag", "target": TARGET, "state": {"value": "false"}}
    assert plan.after == {"action": "flip-flag", "target": TARGET, "state": {"value": "true"}}


@pytest.mark.parametrize(("value", "verdict"), [("true", "noop"), ("other", "escalate")])
def test_revert_plan_refuses_a_changed_target(value, verdict):
    assert plan_revert(now_state(value)).verdict == verdict


def test_revert_plan_escalates_a_refusal():
    plan = plan_revert({"audit_id": AUDIT, "refusal": "no audit record"})
    assert (plan.verdict, plan.summary) == ("escalate", "no audit record")


def test_audit_ids_are_32_hex_digits():
    assert check_audit_id(AUDIT) == AUDIT
    with pytest.raises(RejectedError):
        check_audit_id("B" * 32)


def manual(action: str, target: str) -> Request:
    return Request(
        source=Source.MANUAL,
        key=action,
        idempotency_key="",
        state="ALARM",
        requested_by="alice@example.com",
        reason="undo it",
        action=action,
        target=target,
    )


def test_playbook_lets_a_manual_revert_name_an_audit_id_only_for_revert():
    book = Playbook.from_dict({"inventory": [{"action": "flip-flag", "target": TARGET}]})
    assert book.resolve(manual("revert", AUDIT), {"revert"}) == Route("revert", AUDIT, {})
    with pytest.raises(RejectedError, match="not in the inventory"):
        book.resolve(manual("flip-flag", AUDIT), {"flip-flag"})
    with pytest.raises(RejectedError, match="not 'revert'"):
        book.resolve(manual("revert", AUDIT), {"flip-flag"})


@pytest.mark.parametrize(
    "action", sorted(a for a, cls in REGISTRY.items() if cls.not_revertable)
)  # fmt: skip
def test_an_action_that_cannot_be_undone_is_refused_before_any_read(action):
    """One check for every such action (its ``not_revertable`` reason), in the revert's
    pure refusal: nothing of the target is read or planned."""
    target = f"arn:aws:example:eu-west-1:123456789012:{action}"
    item = stored(action=action, target=target)
    why = refusal(AUDIT, item, {(action, target): Route(action, target)})
    assert why is not None
    assert REGISTRY[action].not_revertable in why


def test_the_actions_that_cannot_be_undone_say_why():
    refused = {a for a, cls in REGISTRY.items() if cls.not_revertable}
    assert refused == {"db-failover", "ecs-restart", "cdn-invalidate"}
    assert all("cannot be" in REGISTRY[a].not_revertable for a in refused)
