"""Pure pieces of the core: playbook resolution, parameter checking, rollback planning,
the breaker window and notices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.base import ActionParams
from serverless_remediation.remediation.actions.rollback import parse_alias_arn, plan_alias_rollback
from serverless_remediation.remediation.guards import recent
from serverless_remediation.remediation.models import (
    Outcome,
    RejectedError,
    Request,
    Result,
    Source,
)
from serverless_remediation.remediation.notify import SUBJECT_LIMIT, build_notice
from serverless_remediation.remediation.playbook import Playbook

ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
BOOK = Playbook.from_dict(
    {
        "alarms": {"orders-errors": {"action": "rollback", "target": ALIAS}},
        "budgets": {"monthly": {"action": "cost-guard", "target": "sheddable"}},
        "inventory": [{"action": "rollback", "target": "arn:extra", "params": {"a": 1}}],
    }
)


def request(source=Source.ALARM, key="orders-errors", **kw):
    return Request(
        source=source,
        key=key,
        idempotency_key="k",
        state="ALARM",
        requested_by="x",
        reason="r",
        **kw,
    )


class TestPlaybook:
    def test_alarm_routes_to_its_entry(self):
        route = BOOK.resolve(request(), {"rollback"})
        assert (route.action, route.target) == ("rollback", ALIAS)

    def test_unknown_alarm_is_rejected(self):
        with pytest.raises(RejectedError, match="no playbook entry for alarm 'other'"):
            BOOK.resolve(request(key="other"), {"rollback"})

    def test_budget_routes_by_budget_name(self):
        route = BOOK.resolve(request(Source.BUDGET, "monthly"), {"cost-guard"})
        assert route.target == "sheddable"

    def test_action_not_served_here_is_rejected(self):
        with pytest.raises(RejectedError, match="this remediator runs"):
            BOOK.resolve(request(), {"waf-block"})

    def test_manual_merges_params_over_inventory_defaults(self):
        manual = request(
            Source.MANUAL, "rollback", action="rollback", target="arn:extra", params={"b": 2}
        )
        assert BOOK.resolve(manual, {"rollback"}).params == {"a": 1, "b": 2}

    def test_manual_target_outside_inventory_is_rejected(self):
        manual = request(Source.MANUAL, "rollback", action="rollback", target="arn:other")
        with pytest.raises(RejectedError, match="not in the inventory"):
            BOOK.resolve(manual, {"rollback"})

    @pytest.mark.parametrize("bad", [[], {"alarms": {"a": "x"}}, {"alarms": {"a": {"action": 1}}}])
    def test_malformed_playbook_fails_loudly(self, bad):
        with pytest.raises(ValueError, match="playbook"):
            Playbook.from_dict(bad)


@dataclass(frozen=True)
class SampleParams(ActionParams):
    count: int = 1
    factor: float = 1.5
    names: list[str] | None = None
    label: str = "x"


class TestParams:
    def test_defaults_and_types(self):
        params = SampleParams.from_dict({"count": 3, "factor": 2, "names": ["a"]})
        assert (params.count, params.factor, params.names) == (3, 2, ["a"])

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"count": "3"}, "'count' must be int"),
            ({"count": True}, "'count' must be int"),
            ({"names": ["a", 1]}, "'names' must be"),
            ({"colour": "red"}, "unknown parameter(s) ['colour']"),
        ],
    )
    def test_wrong_parameters_are_rejected(self, data, message):
        with pytest.raises(RejectedError) as caught:
            SampleParams.from_dict(data)
        assert message in caught.value.reason

    def test_schema_lists_every_field(self):
        assert set(SampleParams.schema()) == {"count", "factor", "names", "label"}


class TestRollbackPlan:
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)

    def current(self, minutes_ago=10, previous="6", weights=None):
        live = (self.now - timedelta(minutes=minutes_ago)).isoformat()
        return {"version": "7", "weights": weights or {}, "live_since": live, "previous": previous}

    def test_recent_deploy_with_predecessor_rolls_back(self):
        plan = plan_alias_rollback(self.current(), 60, self.now)
        assert plan.verdict == "change"
        assert (plan.before["version"], plan.after["version"]) == ("7", "6")

    def test_old_deploy_escalates(self):
        plan = plan_alias_rollback(self.current(minutes_ago=61), 60, self.now)
        assert plan.verdict == "escalate"
        assert plan.after == plan.before

    def test_no_predecessor_escalates(self):
        plan = plan_alias_rollback(self.current(previous=None), 60, self.now)
        assert plan.verdict == "escalate"
        assert "no predecessor" in plan.summary

    def test_canary_is_dropped_first(self):
        current = self.current(weights={"8": 0.1})
        current["published"] = {"8": (self.now - timedelta(minutes=5)).isoformat()}
        plan = plan_alias_rollback(current, 60, self.now)
        assert plan.after == {"version": "7", "weights": {}}

    @pytest.mark.parametrize(
        "target",
        [
            "arn:aws:lambda:eu-west-1:1:function:orders",
            "arn:aws:lambda:eu-west-1:1:function:o:3",
            "arn:aws:sqs:eu-west-1:1:function:o:live",
            "orders",
        ],
    )
    def test_only_alias_arns_are_targets(self, target):
        with pytest.raises(RejectedError):
            parse_alias_arn(target)


def test_breaker_window_keeps_only_recent_stamps():
    assert recent([100, 3500, 3700, 7100], now=7200, window=3600) == [3700, 7100]


def test_notice_subject_is_bounded_ascii():
    result = Result(
        "id1",
        Outcome.EXECUTED,
        "alias 3 -> 2",
        "rollback",
        ALIAS + "é" * 80,
        {"version": "3"},
        {"version": "2"},
    )
    subject, message = build_notice("prod", result, key="orders-errors", reason="spike")
    assert len(subject) <= SUBJECT_LIMIT
    assert subject.isascii()
    assert "Audit id:   id1" in message
    assert '"version": "2"' in message
