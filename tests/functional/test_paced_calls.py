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


def test_an_ip_set_update_takes_its_slot_before_the_read_whose_lock_token_it_carries(
    emulator: Emulator,
) -> None:
    """A wait for UpdateIPSet's share comes before the set is read again: the update carries
    a fresh lock token, not the plan's, which another environment spent meanwhile."""
    from serverless_remediation.remediate.emulator import create_ip_set
    from serverless_remediation.remediation.actions.waf_block.ip_sets import (
        change_ip_set,
        get_ip_set,
        parse_ip_set_arn,
    )

    other = emulator.clients()
    ref = parse_ip_set_arn(create_ip_set(other, "paced-blocks")["ARN"])
    clock = Clock()
    pace = Pace({"wafv2:UpdateIPSet": 6}, clock=clock, sleep=clock.sleep)
    waf = emulator.clients(pace=pace)("wafv2")
    change_ip_set(waf, ref, add=["203.0.113.1/32"])  # the first update: no wait
    seen = get_ip_set(waf, ref)  # this environment plans its next change
    change_ip_set(other("wafv2"), ref, add=["198.51.100.2/32"])  # another environment writes
    updates: list[str] = []
    waf.meta.events.register("before-call.wafv2.UpdateIPSet", lambda **_: updates.append("u"))
    written = change_ip_set(waf, ref, add=["203.0.113.3/32"], seen=seen)
    assert clock.slept == [pytest.approx(6 * 1.01)]  # waited for its share, then read again
    assert updates == ["u"]  # one update: no lock conflict to retry
    assert set(written) == {"203.0.113.1/32", "198.51.100.2/32", "203.0.113.3/32"}


def test_a_wait_that_would_outlast_the_invocation_fails_the_run_on_the_record(
    stack, emulator: Emulator
) -> None:
    """Near the invocation's end a call's share is not waited for: the run fails on the
    record, and the notice tells a human, instead of Lambda stopping it mid-change."""
    from serverless_remediation.remediate.emulator import create_function
    from serverless_remediation.remediation.models import Outcome

    alias_arn = create_function(stack.clients, "orders", versions=3)
    playbook = {"alarms": {"test-orders-error-rate": {"action": "rollback", "target": alias_arn}}}
    clock = Clock()
    # 150 environments share GetAlias's 15/s: one call per 10 s each
    pace = Pace({"lambda:GetAlias": 150}, clock=clock, sleep=clock.sleep)
    pace.deadline = clock.now + 12.0
    pipeline = stack.pipeline(playbook, clients=emulator.clients(pace=pace))
    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    # the plan's GetAlias went at once; the verify's would wait 10 s, into the last 5
    assert result.outcome is Outcome.FAILED
    assert "too close to the end of this invocation" in result.reason
    assert clock.slept == []
    (record,) = stack.audit_items()
    assert record["outcome"] == "failed"
    (notice,) = stack.notices()
    assert result.audit_id in notice["message"]
