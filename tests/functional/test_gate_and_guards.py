"""The switch and the guards against the moto server; a closed gate writes nothing."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import create_function
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.errors import EscalatedError
from serverless_remediation.remediation.gate import Gate
from serverless_remediation.remediation.guards import Blocked, Guards, GuardSettings, stamps
from serverless_remediation.remediation.models import Mode, Outcome
from serverless_remediation.remediation.silences import Silences, build_silence
from serverless_remediation.remediation.store import Canceled, guard_key

ALARM = "test-orders-error-rate"


@pytest.fixture
def gate(stack):
    # max_age=0: every read goes to SSM, so a test can flip the switch between reads.
    return Gate(
        stack.clients("ssm"), stack.switch, override_prefix=stack.override_prefix, max_age=0
    )


@pytest.mark.parametrize(
    ("value", "mode"),
    [("on", Mode.ON), ("dry-run", Mode.DRY_RUN), ("off", Mode.OFF)],
)
def test_exact_switch_values(stack, gate, value, mode):
    stack.set_switch(value)
    switch = gate.mode("rollback")
    assert (switch.mode, switch.faulty) == (mode, False)


@pytest.mark.parametrize("value", ["ON ", " on", "On", "ON", "true", "yes", "0", "dry_run", "of"])
def test_any_other_switch_value_is_off_and_faulty_naming_it(stack, gate, value):
    """A typo must not silently disable automation: it is off, and says what it holds."""
    stack.set_switch(value)
    switch = gate.mode("rollback")
    assert (switch.mode, switch.faulty) == (Mode.OFF, True)
    assert repr(value) in switch.why


def test_missing_switch_is_off_and_faulty(stack, gate):
    stack.clients("ssm").delete_parameter(Name=stack.switch)
    switch = gate.mode("rollback")
    assert (switch.mode, switch.faulty) == (Mode.OFF, True)
    assert "missing" in switch.why


def test_missing_override_is_not_a_fault(stack, gate):
    assert gate.mode("rollback") == (Mode.ON, f"switch {stack.switch} = on", False)


def test_override_can_only_restrict(stack, gate):
    stack.set_switch("dry-run", stack.override_prefix + "rollback")
    assert gate.mode("rollback")[0] is Mode.DRY_RUN
    assert gate.mode("waf-block")[0] is Mode.ON  # other actions keep the global mode
    stack.set_switch("on", stack.override_prefix + "capacity-bump")
    stack.set_switch("dry-run")
    assert gate.mode("capacity-bump")[0] is Mode.DRY_RUN


def test_invalid_override_is_off_and_faulty(stack, gate):
    stack.set_switch("maybe", stack.override_prefix + "rollback")
    assert gate.mode("rollback")[:3:2] == (Mode.OFF, True)


def test_switch_is_cached_for_max_age_then_reread(stack):
    gate = Gate(stack.clients("ssm"), stack.switch, max_age=1)
    assert gate.mode("rollback")[0] is Mode.ON
    stack.set_switch("off")
    assert gate.mode("rollback")[0] is Mode.ON  # cached
    time.sleep(1.1)
    assert gate.mode("rollback")[0] is Mode.OFF


def test_default_max_age_lets_a_flip_land_within_30_seconds():
    from serverless_remediation.remediation.gate import SWITCH_MAX_AGE_SECONDS

    assert SWITCH_MAX_AGE_SECONDS <= 30


def _stubbed(service: str):
    client = boto3.client(service, region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    ("switch", "outcome"),
    [
        ("off", Outcome.SKIPPED),
        # A switch nobody meant to be off reaches a human.
        ("missing", Outcome.ESCALATED),
        ("unreadable", Outcome.ESCALATED),
        ("garbage", Outcome.ESCALATED),
        ("On", Outcome.ESCALATED),
    ],
)
def test_closed_gate_makes_no_write_call(stack, switch, outcome):
    """Lambda is a Stubber with nothing queued: any call to it would raise."""
    create_function(stack.clients, "orders", versions=3)
    lam, lam_stub = _stubbed("lambda")
    overrides = {"lambda": lam}
    if switch == "unreadable":
        ssm, ssm_stub = _stubbed("ssm")
        ssm_stub.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
        overrides["ssm"] = ssm
    elif switch == "missing":
        stack.clients("ssm").delete_parameter(Name=stack.switch)
    else:
        stack.set_switch(switch)
    clients = Clients(endpoint_url=stack.clients("sns").meta.endpoint_url, overrides=overrides)
    alias = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
    pipeline = stack.pipeline(
        {"alarms": {ALARM: {"action": "rollback", "target": alias}}}, clients=clients
    )

    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))

    assert result.outcome is outcome
    assert "switch" in result.reason
    lam_stub.assert_no_pending_responses()
    live = stack.clients("lambda").get_alias(FunctionName="orders", Name="live")
    assert live["FunctionVersion"] == "3"
    assert [r["outcome"] for r in stack.audit_items()] == [str(outcome)]
    assert len(stack.notices()) == (outcome is Outcome.ESCALATED)


@pytest.fixture
def guards(stack):
    return Guards(
        stack.clients("dynamodb"),
        stack.table,
        GuardSettings(cooldown_seconds=600, breaker_max=2, breaker_window_seconds=3600),
    )


def claim(guards, target, when, audit_id="a" * 32, action="rollback"):
    """The guards' claim alone, as the pipeline writes it (with the record, in one
    transaction): refused -> ``Blocked`` with the guards' reason, as the pipeline raises it."""
    write = guards.claim(target, when, audit_id=audit_id, action=action)
    try:
        guards._table.transact([write])
    except Canceled as canceled:
        refused = guards.refusal(canceled.failed[0], when)
        raise Blocked(refused.silenced or refused.blocked) from None


def release(guards, target, audit_id):
    return guards._table.transact([guards.release(target, audit_id=audit_id)])


def test_cooldown_blocks_until_it_expires_and_a_refire_escalates(stack, guards):
    claim(guards, "t1", stack.now, audit_id="a" * 32, action="rollback")
    # until its outcome is written, the holder is named as not finished
    with pytest.raises(Blocked, match="has not finished"):
        claim(guards, "t1", stack.now + timedelta(seconds=1))
    guards._table.transact([guards.executed("t1", audit_id="a" * 32)])
    with pytest.raises(Blocked, match="cooldown") as blocked:
        claim(guards, "t1", stack.now + timedelta(seconds=599))
    # Still alarming after an executed action: a human must look.
    assert isinstance(blocked.value, EscalatedError)  # a human decides
    assert "still alarming after rollback at 2026-11-23T10:30:00Z" in blocked.value.reason
    assert "a" * 32 in blocked.value.reason
    claim(guards, "t2", stack.now)  # other targets are independent
    claim(guards, "t1", stack.now + timedelta(seconds=600))


def test_release_gives_back_the_cooldown_and_the_breaker_slot(stack, guards):
    claim(guards, "t1", stack.now, audit_id="a" * 32)
    assert release(guards, "t1", "a" * 32)
    # Released: the next claim goes through, and the failed action does not count.
    claim(guards, "t1", stack.now + timedelta(seconds=1), audit_id="b" * 32)
    assert release(guards, "t1", "b" * 32)
    claim(guards, "t1", stack.now + timedelta(seconds=2), audit_id="c" * 32)
    claim(guards, "t1", stack.now + timedelta(seconds=700), audit_id="d" * 32)  # limit 2
    with pytest.raises(Blocked, match="circuit breaker"):
        claim(guards, "t1", stack.now + timedelta(seconds=1400), audit_id="e" * 32)


def test_release_keeps_a_cooldown_another_action_holds(stack, guards):
    claim(guards, "t1", stack.now, audit_id="a" * 32)
    # not its own: the optional release is dropped, nothing is written
    assert release(guards, "t1", "z" * 32) == []
    with pytest.raises(Blocked, match="cooldown"):
        claim(guards, "t1", stack.now + timedelta(seconds=1))


def test_breaker_trips_at_its_limit_and_escalates(stack, guards):
    claim(guards, "t1", stack.now)
    claim(guards, "t1", stack.now + timedelta(minutes=10))
    with pytest.raises(Blocked, match="circuit breaker") as blocked:
        claim(guards, "t1", stack.now + timedelta(minutes=20))
    assert isinstance(blocked.value, EscalatedError)  # a human decides
    with pytest.raises(Blocked):
        guards.check("t1", stack.now + timedelta(minutes=30))
    claim(guards, "t1", stack.now + timedelta(minutes=61))  # the window slid past the first
    assert stamps(guards._table.get(guard_key("t1"))) == [
        int((stack.now + timedelta(minutes=61)).timestamp()),
        int((stack.now + timedelta(minutes=10)).timestamp()),
    ]


def test_breaker_kept_in_fixed_slots_follows_a_changed_limit(stack):
    """The slots are newest first: a lower limit reads the newest ones (never fewer actions
    than happened), a higher one finds its extra slots empty."""

    def limit(n):
        return Guards(stack.clients("dynamodb"), stack.table, GuardSettings(600, n, 3600))

    for minutes in (0, 11, 22):
        claim(limit(3), "t1", stack.now + timedelta(minutes=minutes))
    lower = limit(1)
    with pytest.raises(Blocked, match=r"circuit breaker open: 1 .*limit 1"):
        claim(lower, "t1", stack.now + timedelta(minutes=33))
    higher = limit(4)
    claim(higher, "t1", stack.now + timedelta(minutes=33))
    with pytest.raises(Blocked, match=r"circuit breaker open: 4 .*limit 4"):
        claim(higher, "t1", stack.now + timedelta(minutes=44))


def test_a_silence_marker_refuses_the_claim_and_says_which(stack, guards):
    day = timedelta(hours=24)
    silences = Silences(stack.clients("dynamodb"), stack.table, day)

    def silence(target, reason):
        made = build_silence(
            target,
            length=timedelta(hours=1),
            reason=reason,
            created_by="ops",
            now=stack.now,
            max_length=day,
        )
        silences.add(made)
        return made

    made = silence("t1", "deploying")
    write = guards.claim("t1", stack.now + timedelta(minutes=5), audit_id="a" * 32, action="x")
    with pytest.raises(Canceled) as canceled:
        guards._table.transact([write])
    refused = guards.refusal(canceled.value.failed[0], stack.now + timedelta(minutes=5))
    assert refused.silenced == made.describe(timedelta(hours=24))
    assert refused.blocked is None
    # lifted: the marker goes with it, and the claim goes through
    silences.lift(made.silence_id, "ops", stack.now + timedelta(minutes=6))
    claim(guards, "t1", stack.now + timedelta(minutes=7))
    # and a silence that ended by itself holds nothing
    silence("t2", "done")
    claim(guards, "t2", stack.now + timedelta(hours=1))


def test_check_reads_without_claiming(stack, guards):
    guards.check("t1", stack.now)
    guards.check("t1", stack.now)
    claim(guards, "t1", stack.now)


def test_concurrent_claims_on_one_target_let_exactly_one_through(stack, guards):
    barrier = threading.Barrier(6)
    won, lost = [], []

    def contend():
        barrier.wait()
        try:
            claim(guards, "t1", stack.now)
            won.append(1)
        except Blocked:
            lost.append(1)

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(lost)) == (1, 5)


def test_missing_override_is_remembered_for_max_age(stack):
    """An unset override is asked for once per max_age, not on every event."""
    calls = []
    ssm = stack.clients("ssm")
    ssm.meta.events.register(
        "provide-client-params.ssm.GetParameter", lambda params, **_: calls.append(params["Name"])
    )
    gate = Gate(ssm, stack.switch, override_prefix=stack.override_prefix, max_age=30)
    for _ in range(5):
        assert gate.mode("rollback")[0] is Mode.ON
    assert calls == [stack.switch, stack.override_prefix + "rollback"]
