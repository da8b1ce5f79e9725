"""``remediation.quotas``: each execution environment's share of AWS's documented rates."""

from __future__ import annotations

import bisect
import json
import random

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.errors import ConfigurationError
from serverless_remediation.remediation.quotas import RATES, OutOfTime, Pace, share


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def peak(stamps: list[float]) -> int:
    """The most calls in any closed one-second window."""
    ordered = sorted(stamps)
    return max(bisect.bisect_right(ordered, t + 1.0) - i for i, t in enumerate(ordered))


@pytest.mark.parametrize(
    ("rate", "environments", "expected"),
    [
        (15, 1, (15, 1.0)),
        (15, 5, (3, 1.0)),
        (15, 15, (1, 1.0)),
        (15, 50, (1, 50 / 15)),
        (9, 5, (1, 1.0)),
        (1, 6, (1, 6.0)),
    ],
)
def test_share(rate: float, environments: int, expected: tuple[int, float]) -> None:
    assert share(rate, environments) == expected


@pytest.mark.parametrize("environments", [1, 3, 5, 9, 15, 50])
@pytest.mark.parametrize("action", ["lambda:UpdateAlias", "cloudwatch:DescribeAlarms"])
def test_all_environments_together_keep_within_the_rate(environments: int, action: str) -> None:
    """Every environment calls as fast as it can, all starting together. With no more
    environments than the rate, no one-second window holds more than the rate; with more,
    a window holds at most one call per environment, and over time they keep to the rate."""
    rate = RATES[action][0]
    stamps: list[float] = []
    rng = random.Random(environments)
    for _ in range(environments):
        clock = Clock()
        clock.now = 100.0 + rng.random() * 0.01
        pace = Pace({action: environments}, clock=clock, sleep=clock.sleep, max_wait=1e9)
        for _ in range(40):
            pace.take("eu-west-1", action)
            stamps.append(clock.now)
    if environments <= rate:
        assert peak(stamps) <= rate
    else:
        assert peak(stamps) <= environments
    span = max(stamps) - min(stamps)
    assert (len(stamps) - max(rate, environments)) / span <= rate


def test_a_lone_call_does_not_wait_and_the_next_waits_for_its_window() -> None:
    clock = Clock()
    pace = Pace({"wafv2:UpdateIPSet": 6}, clock=clock, sleep=clock.sleep)
    assert pace.take("us-east-1", "wafv2:UpdateIPSet") == 0
    assert pace.take("us-east-1", "wafv2:UpdateIPSet") == pytest.approx(6 * 1.01)
    # another Region has its own rate
    assert pace.take("eu-west-1", "wafv2:UpdateIPSet") == 0
    assert pace.waited == pytest.approx(6 * 1.01)


def test_calls_sharing_a_rate_are_counted_together() -> None:
    clock = Clock()
    pace = Pace({"ssm:GetParameter": 40}, clock=clock, sleep=clock.sleep)
    assert pace.take("r", "ssm:GetParameter") == 0
    assert pace.take("r", "ssm:GetParameters") == pytest.approx(1.01)


def test_a_wait_is_capped() -> None:
    clock = Clock()
    pace = Pace({"wafv2:UpdateIPSet": 100}, clock=clock, sleep=clock.sleep, max_wait=2.0)
    pace.take("r", "wafv2:UpdateIPSet")
    assert pace.take("r", "wafv2:UpdateIPSet") == 2.0
    assert clock.slept == [2.0]


def test_unset_means_this_environment_is_the_only_caller() -> None:
    assert Pace.from_env({}).limit("lambda:UpdateAlias") == (15, 1.0)
    pace = Pace.from_env({"REMEDIATION_PACE": json.dumps({"lambda:UpdateAlias": 20})})
    assert pace.limit("lambda:UpdateAlias") == (1, 20 / 15)
    assert pace.limit("lambda:GetAlias") == (15, 1.0)


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "[1]",
        '{"lambda:GetAlias": 0}',
        '{"lambda:GetAlias": "5"}',
        '{"x": 1.5}',
        '{"Lambda:GetAlias": 5}',  # IAM names are case-insensitive; this table's are not
        '{"ssm:GetParameters": 5}',  # counted under the rate it shares, ssm:GetParameter
    ],
)
def test_a_malformed_pace_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="REMEDIATION_PACE"):
        Pace.from_env({"REMEDIATION_PACE": raw})


def test_a_wait_that_would_run_into_the_end_of_the_invocation_raises_instead() -> None:
    clock = Clock()
    pace = Pace({"lambda:GetAlias": 30}, clock=clock, sleep=clock.sleep)  # one per 2 s
    pace.deadline = clock.now + 6.0
    pace.take("r", "lambda:GetAlias")  # no wait: goes whatever the deadline
    with pytest.raises(OutOfTime, match="lambda:GetAlias"):
        pace.take("r", "lambda:GetAlias")  # 2 s wait, into the last 5 s
    assert clock.slept == []
    pace.deadline = clock.now + 60.0
    assert pace.take("r", "lambda:GetAlias") == pytest.approx(2 * 1.01)


def test_every_lambda_control_plane_call_an_action_declares_has_its_rate() -> None:
    declared = {p for action in REGISTRY.values() for p in action.permissions}
    control = {p for p in declared if p.startswith("lambda:")} - {"lambda:InvokeFunction"}
    assert control
    assert control <= set(RATES), control - set(RATES)
