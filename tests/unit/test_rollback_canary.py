"""Pure rollback decisions for a Lambda alias with weighted routing (a canary)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.rollback import plan_alias_rollback

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def alias(
    version: str = "6",
    weights: dict[str, float] | None = None,
    published: dict[str, str | None] | None = None,
) -> dict:
    """An alias on ``version`` (published 3 days ago, version 5 before it) with ``weights``;
    each weighted version published 10 minutes ago unless ``published`` says otherwise."""
    weights = {"7": 0.1} if weights is None else weights
    return {
        "kind": "lambda-alias",
        "version": version,
        "weights": weights,
        "live_since": at(3 * 24 * 60),
        "previous": "5",
        "published": published if published is not None else {v: at(10) for v in weights},
    }


def test_normal_canary_drops_the_weight_and_keeps_the_primary():
    plan = plan_alias_rollback(alias(), 60, NOW)
    assert plan.verdict == "change"
    assert plan.before == {"version": "6", "weights": {"7": 0.1}}
    assert plan.after == {"version": "6", "weights": {}}
    assert "drop canary version 7 (10 % of traffic): all traffic to version 6" in plan.summary


def test_the_newer_version_is_never_promoted_whatever_its_weight():
    # 90 % already on the canary: the rollback still goes to the primary, never to 7.
    plan = plan_alias_rollback(alias(weights={"7": 0.9}), 60, NOW)
    assert plan.after == {"version": "6", "weights": {}}


def test_an_old_primary_does_not_stop_a_recent_canary_rollback():
    """The window applies to the canary's publish time, not the primary's (3 days old)."""
    assert plan_alias_rollback(alias(), 60, NOW).verdict == "change"


def test_canary_published_outside_the_window_escalates():
    plan = plan_alias_rollback(alias(published={"7": at(61)}), 60, NOW)
    assert plan.verdict == "escalate"
    assert "canary version 7 was published 61 min ago, outside the 60 min window" in plan.summary
    assert plan.after == plan.before


def test_canary_exactly_at_the_window_still_acts():
    assert plan_alias_rollback(alias(published={"7": at(60)}), 60, NOW).verdict == "change"


@pytest.mark.parametrize(
    ("current", "why"),
    [
        (alias(weights={"7": 0.1, "8": 0.1}), "weights to 2 versions (7 (10 %), 8 (10 %))"),
        (alias(version="8", weights={"7": 0.2}), "weighted version 7 (20 %) is not newer"),
        (alias(version="$LATEST", weights={"7": 0.1}), "not both published version numbers"),
        (alias(weights={"7": 0.1}, published={"7": None}), "cannot tell when canary version 7"),
        (alias(weights={"7": 0.1}, published={}), "cannot tell when canary version 7"),
    ],
    ids=["two-weighted", "weighted-older", "not-numeric", "publish-unknown", "publish-missing"],
)
def test_ambiguous_canaries_escalate_and_change_nothing(current, why):
    plan = plan_alias_rollback(current, 60, NOW)
    assert plan.verdict == "escalate"
    assert why in plan.summary
    assert plan.after == plan.before
    assert plan.before["weights"] == current["weights"]


def test_a_state_without_publish_times_escalates():
    current = alias()
    del current["published"]
    assert plan_alias_rollback(current, 60, NOW).verdict == "escalate"


def test_weights_are_recorded_as_floats_for_an_exact_revert():
    plan = plan_alias_rollback(alias(weights={"7": 1}), 60, NOW)
    assert plan.before["weights"] == {"7": 1.0}
    assert isinstance(plan.before["weights"]["7"], float)


def test_without_weights_the_previous_version_logic_is_unchanged():
    current = alias(weights={})
    current["live_since"] = at(10)
    plan = plan_alias_rollback(current, 60, NOW)
    assert (plan.verdict, plan.after) == ("change", {"version": "5", "weights": {}})


def test_plan_does_not_touch_its_input():
    current = alias()
    kept = copy.deepcopy(current)
    plan_alias_rollback(current, 60, NOW)
    assert current == kept
