"""At-least-once delivery: 1,000 deliveries of 50 alarm transitions, shuffled, partly from
threads, against the moto server -> exactly one action per transition and target, every
delivery audited.

Design: the 50 transitions are on 50 distinct targets (one Lambda alias each, with three
versions so a second rollback would be visible as version 1), and the cooldown and circuit
breaker are switched off (``cooldown_seconds=0``, a breaker limit no run reaches), so only
the idempotency layer stands between a duplicate and a second action: the cooldown cannot
mask a broken dedupe.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from serverless_remediation.remediation.guards import GuardSettings
from serverless_remediation.remediation.models import Outcome
from tests.reliability.helpers import alias_version, delivery, rollback_target, transition

TRANSITIONS = 50
DELIVERIES = 1000
THREADS = 8
# no cooldown and a breaker window of 0 s: every action passes the guards
NO_COOLDOWN = GuardSettings(cooldown_seconds=0, breaker_max=1, breaker_window_seconds=0)


def test_each_transition_acts_exactly_once_and_every_delivery_is_audited(stack, emulator, figures):
    figures.note(
        "delivery_design",
        f"{TRANSITIONS} transitions on {TRANSITIONS} distinct targets; cooldown 0 and breaker "
        "off, so only idempotency dedupes",
    )
    stack.now = datetime.now(UTC)
    targets = {
        f"rel-svc-{i:02d}-errors": rollback_target(stack.clients, f"svc-{i:02d}")
        for i in range(TRANSITIONS)
    }
    playbook = {
        "alarms": {name: {"action": "rollback", "target": t} for name, t in targets.items()}
    }
    # Seconds apart, all inside the freshness limit of the pipeline's clock.
    alarms = [
        transition(name, at=stack.now - timedelta(seconds=i)) for i, name in enumerate(targets)
    ]
    deliveries = [delivery(alarms[i % TRANSITIONS]) for i in range(DELIVERIES)]
    random.Random(6).shuffle(deliveries)

    results = []
    local = threading.local()

    def deliver(event):
        # One pipeline (one Lambda container) and one set of clients per thread.
        if not hasattr(local, "pipeline"):
            local.pipeline = stack.pipeline(
                playbook, clients=emulator.clients(), guards=NO_COOLDOWN
            )
        return local.pipeline.handle(event)

    # Concurrent first (so first deliveries race each other), then in order, then concurrent.
    with ThreadPoolExecutor(THREADS) as pool:
        for found in pool.map(deliver, deliveries[:500]):
            results.extend(found)
    sequential = stack.pipeline(playbook, guards=NO_COOLDOWN)
    for event in deliveries[500:750]:
        results.extend(sequential.handle(event))
    with ThreadPoolExecutor(THREADS) as pool:
        for found in pool.map(deliver, deliveries[750:]):
            results.extend(found)

    outcomes = Counter(r.outcome for r in results)
    acted = outcomes[Outcome.EXECUTED]
    deduplicated = sum(
        1 for r in results if r.outcome is Outcome.SKIPPED and r.reason.startswith("duplicate")
    )
    figures.add("deliveries_tried", len(deliveries))
    figures.add("deliveries_acted", acted)
    figures.add("deliveries_deduplicated", deduplicated)

    # Wrong actions: a target rolled back other than exactly once (version 3 -> 2).
    versions = {name: alias_version(stack.clients, t) for name, t in targets.items()}
    wrong = sum(abs(3 - v - 1) for v in versions.values())
    executed_per_target = Counter(r.target for r in results if r.outcome is Outcome.EXECUTED)
    wrong += sum(n - 1 for n in executed_per_target.values() if n > 1)
    figures.add("wrong_actions", wrong)

    # Records lost: a delivery without a completed audit record of its own.
    records = {item["audit_id"]: item for item in stack.audit_items()}
    lost = sum(
        1
        for r in results
        if r.audit_id not in records or records[r.audit_id]["outcome"] == "pending"
    )
    lost += len(deliveries) - len(results)
    figures.add("records_lost", lost)
    figures.add("deliveries_audited", sum(1 for r in results if r.audit_id in records))

    assert len(results) == DELIVERIES
    assert wrong == 0, f"targets not rolled back exactly once: {versions}"
    assert lost == 0
    assert acted == TRANSITIONS
    assert set(executed_per_target) == set(targets.values())
    assert deduplicated == DELIVERIES - TRANSITIONS, outcomes
    assert len(records) == DELIVERIES
    assert len(stack.notices()) == TRANSITIONS  # duplicates are audited, not paged


def test_a_late_redelivery_does_not_act_again(stack):
    """While its idempotency record lives (24 h) a redelivery is a duplicate, quietly skipped;
    once DynamoDB's TTL has removed the record, the transition is stale and refused. Neither
    acts."""
    stack.now = datetime.now(UTC)
    target = rollback_target(stack.clients, "late")
    playbook = {"alarms": {"rel-late": {"action": "rollback", "target": target}}}
    alarm = transition("rel-late")
    first = stack.pipeline(playbook, guards=NO_COOLDOWN).handle(delivery(alarm))
    later = stack.now + timedelta(hours=23)
    again = stack.pipeline(playbook, guards=NO_COOLDOWN, clock=lambda: later).handle(
        delivery(alarm)
    )
    db = stack.clients("dynamodb")  # 25 h: the record's TTL has passed and DynamoDB removed it
    for item in db.scan(TableName=stack.table)["Items"]:
        if item["pk"]["S"].startswith("idempotency#"):
            db.delete_item(TableName=stack.table, Key={"pk": item["pk"], "sk": item["sk"]})
    expired = stack.now + timedelta(hours=25)
    stale = stack.pipeline(playbook, guards=NO_COOLDOWN, clock=lambda: expired).handle(
        delivery(alarm)
    )
    assert [r.outcome for r in first] == [Outcome.EXECUTED]
    assert again[0].outcome is Outcome.SKIPPED
    assert again[0].reason.startswith("duplicate")
    assert stale[0].outcome is Outcome.REJECTED
    assert "older than the 15 min" in stale[0].reason
    assert alias_version(stack.clients, target) == 2
