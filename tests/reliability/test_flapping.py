"""Flapping alarms: ALARM/OK/ALARM inside the cooldown acts once, and each ALARM again inside
the cooldown escalates to a human ("still alarming after rollback at ..."): the action did
not help. The circuit breaker trips at its limit and escalates. Default guard settings (15 min
cooldown, at most 3 automatic actions per target per hour), against the moto server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from serverless_remediation.remediation.guards import GuardSettings
from serverless_remediation.remediation.models import Outcome
from tests.reliability.helpers import alias_version, delivery, rollback_target, transition

DEFAULTS = GuardSettings()


def run(stack, playbook, name, states_and_minutes):
    """Deliver one transition per (state, minutes after start); the pipeline's clock follows."""
    start = stack.now
    results = []
    for state, minutes in states_and_minutes:
        at = start + timedelta(minutes=minutes)
        pipeline = stack.pipeline(playbook, clock=lambda at=at: at)
        results.extend(pipeline.handle(delivery(transition(name, state, at=at))))
    return results


def count(figures, results, wrong: int) -> None:
    figures.add("flap_transitions", len(results))
    figures.add("flap_actions", sum(r.outcome is Outcome.EXECUTED for r in results))
    escalated = [r for r in results if r.outcome is Outcome.ESCALATED]
    figures.add("breaker_escalations", sum("circuit breaker" in r.reason for r in escalated))
    figures.add("cooldown_escalations", sum("still alarming after" in r.reason for r in escalated))
    figures.add("wrong_actions", wrong)


def test_alarm_ok_alarm_inside_the_cooldown_acts_once(stack, figures):
    stack.now = datetime.now(UTC)
    target = rollback_target(stack.clients, "flappy", versions=4)
    playbook = {"alarms": {"rel-flappy": {"action": "rollback", "target": target}}}
    flaps = [("ALARM", 0), ("OK", 2), ("ALARM", 4), ("OK", 6), ("ALARM", 8), ("ALARM", 14)]
    results = run(stack, playbook, "rel-flappy", flaps)

    acted = [r for r in results if r.outcome is Outcome.EXECUTED]
    count(
        figures, results, wrong=abs(len(acted) - 1) + abs(alias_version(stack.clients, target) - 3)
    )
    assert len(acted) == 1
    assert alias_version(stack.clients, target) == 3  # 4 -> 3, once
    later_alarms = [r for r, (state, _) in zip(results, flaps, strict=True) if state == "ALARM"][1:]
    # Still alarming after the rollback: a human looks (once per re-fire, each with a notice).
    for refire in later_alarms:
        assert refire.outcome is Outcome.ESCALATED, refire
        assert "still alarming after rollback at" in refire.reason
        assert acted[0].audit_id in refire.reason
    notices = stack.notices()
    assert sum("needs a human" in (n["subject"] or "") for n in notices) == len(later_alarms)
    assert sum("did rollback" in (n["subject"] or "") for n in notices) == 1
    assert len(stack.audit_items()) == len(flaps)  # every transition audited


def test_breaker_trips_at_its_limit_and_escalates(stack, figures):
    stack.now = datetime.now(UTC)
    target = rollback_target(stack.clients, "breaker", versions=6)
    playbook = {"alarms": {"rel-breaker": {"action": "rollback", "target": target}}}
    # An ALARM each time the cooldown has run out: the 4th inside the hour meets the breaker.
    step = DEFAULTS.cooldown_seconds // 60 + 1
    flaps = []
    for n in range(DEFAULTS.breaker_max + 1):
        flaps += [("ALARM", n * step), ("OK", n * step + 1)]
    results = run(stack, playbook, "rel-breaker", flaps)

    alarms = [r for r, (state, _) in zip(results, flaps, strict=True) if state == "ALARM"]
    acted = [r for r in alarms if r.outcome is Outcome.EXECUTED]
    version = alias_version(stack.clients, target)
    count(figures, results, wrong=abs(len(acted) - DEFAULTS.breaker_max) + abs(version - 3))
    assert len(acted) == DEFAULTS.breaker_max
    assert version == 6 - DEFAULTS.breaker_max
    last = alarms[-1]
    assert last.outcome is Outcome.ESCALATED
    assert "circuit breaker open" in last.reason
    escalations = [n for n in stack.notices() if "needs a human" in (n["subject"] or "")]
    assert len(escalations) == 1
    assert last.audit_id in escalations[0]["message"]


def test_breaker_closes_again_after_its_window(stack, figures):
    stack.now = datetime.now(UTC) - timedelta(minutes=30)
    target = rollback_target(stack.clients, "reopen", versions=6)
    playbook = {"alarms": {"rel-reopen": {"action": "rollback", "target": target}}}
    step = DEFAULTS.cooldown_seconds // 60 + 1
    window = DEFAULTS.breaker_window_seconds // 60
    flaps = [("ALARM", n * step) for n in range(DEFAULTS.breaker_max)]
    flaps.append(("ALARM", window + 1))  # the first stamp has left the window
    results = run(stack, playbook, "rel-reopen", flaps)
    count(figures, results, wrong=0)
    assert [r.outcome for r in results] == [Outcome.EXECUTED] * (DEFAULTS.breaker_max + 1)


def test_a_temporary_flag_flip_is_restored_on_ok_and_not_refired_inside_the_cooldown(
    stack, figures
):
    """flip-flag recovers on OK: ALARM flips, OK restores, the next ALARM in the cooldown
    is held back and escalates (so a flapping webhook alarm cannot toggle the flag every
    minute, and a human hears that it is still failing)."""
    stack.now = datetime.now(UTC)
    name = "/orders/webhook-enabled"
    stack.clients("ssm").put_parameter(Name=name, Value="true", Type="String", Overwrite=True)
    target = f"arn:aws:ssm:eu-west-1:123456789012:parameter{name}"
    playbook = {"alarms": {"rel-webhook": {"action": "flip-flag", "target": target}}}
    flaps = [("ALARM", 0), ("OK", 2), ("ALARM", 4), ("OK", 6)]
    results = run(stack, playbook, "rel-webhook", flaps)

    outcomes = [r.outcome for r in results]
    value = stack.clients("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    alarm_actions = sum(
        r.outcome is Outcome.EXECUTED
        for r, (s, _) in zip(results, flaps, strict=True)
        if s == "ALARM"
    )
    count(figures, results, wrong=abs(alarm_actions - 1) + int(value != "true"))
    assert outcomes[:3] == [Outcome.EXECUTED, Outcome.EXECUTED, Outcome.ESCALATED], results
    assert "still alarming after flip-flag at" in results[2].reason
    assert outcomes[3] is not Outcome.EXECUTED  # nothing left to restore
    assert value == "true"
