"""Walk the action registry: every action is complete, and every action has tests.

After Cloud Custodian's PolicyMetaLint: a new action that forgets its schema, its IAM
permissions, its docstring or its tests fails here, not in production.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from serverless_remediation.remediation.actions import REGISTRY, get_action
from serverless_remediation.remediation.actions.base import Action, ActionParams, Limit
from serverless_remediation.remediation.models import RejectedError, Result
from serverless_remediation.remediation.notify import build_notice

TESTS = Path(__file__).resolve().parents[1]
EXPECTED = {
    "rollback",
    "capacity-bump",
    "flip-flag",
    "waf-block",
    "cost-guard",
    "revert",
    "db-failover",
    "ecs-restart",
    "ecs-scale",
    "ecs-rollback",
    "api-cache",
    "containment",
    "cdn-invalidate",
}
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z]+$")


def test_every_runbook_action_is_registered():
    assert set(REGISTRY) == EXPECTED


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_action_is_complete(name):
    cls = REGISTRY[name]
    assert issubclass(cls, Action)
    assert cls.name == name
    assert inspect.getdoc(cls), f"{name} has no docstring"
    assert inspect.getdoc(inspect.getmodule(cls)), f"{name}'s module has no docstring"
    assert dataclasses.is_dataclass(cls.Params)
    assert issubclass(cls.Params, ActionParams)
    assert isinstance(cls.Params.schema(), dict)
    assert cls.permissions, f"{name} declares no IAM permissions"
    for permission in cls.permissions:
        assert IAM_ACTION.match(permission), f"{name}: {permission!r} is not service:Action"
        assert "*" not in permission
    assert set(cls.limits) <= {f.name for f in dataclasses.fields(cls.Params)}, (
        f"{name} limits name parameters it does not have"
    )
    assert all(isinstance(limit, Limit) for limit in cls.limits.values())
    assert not inspect.getmembers(cls, inspect.isabstract), f"{name} leaves methods abstract"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_action_has_tests(name):
    """Some test module outside this one names the action in quotes."""
    quoted = (f'"{name}"', f"'{name}'")
    mentions = [
        path
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name and any(q in path.read_text() for q in quoted)
    ]
    functional = [p for p in mentions if "functional" in p.parts]
    assert functional, f"no functional test mentions action {name!r}"


def test_unknown_action_lists_the_valid_ones():
    with pytest.raises(RejectedError) as caught:
        get_action("teleport")
    for name in EXPECTED:
        assert name in caught.value.reason


def test_notice_for_an_event_rejected_before_routing_says_so():
    result = Result("id9", "rejected", "unrecognised event")
    subject, _ = build_notice("prod", result, key="-", reason="-")
    assert subject == "[auto-remediation prod] rejected an unreadable event"
