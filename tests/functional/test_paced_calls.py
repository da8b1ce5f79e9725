"""Clients keep the calls that have a documented rate to their environment's share of it
(``remediation.quotas``), on the emulator's real clients, and so do the clients they make
for another identity."""

from __future__ import annotations

import pytest

from remediate.emulator import Emulator
from serverless_remediation.remediation.quotas import Pace
from tests.unit.test_quotas import Clock


def test_a_paced_call_waits_for_its_share_and_others_do_not(emulator: Emulator) -> None:
    clock = Clock()
    pace = Pace({"cloudwatch:DescribeAlarms": 18}, clock=clock, sleep=clock.sleep)
    clients = emulator.clients(pace=pace)
    cloudwatch = clients("cloudwatch")
    cloudwatch.describe_alarms(AlarmNames=["a"])
    cloudwatch.describe_alarms(AlarmNames=["a"])
    assert clock.slept == [pytest.approx(2 * 1.01)]  # 18 environments share 9/s
    cloudwatch.list_metrics()  # no documented rate: not paced
    clients("sns").list_topics()
    assert len(clock.slept) == 1
    # another identity's clients keep to the same share
    other = clients.acting_as(
        lambda: {"aws_access_key_id": "AKIDOTHER", "aws_secret_access_key": "x"}, region=None
    )
    other("cloudwatch").describe_alarms(AlarmNames=["a"])
    assert len(clock.slept) == 2
