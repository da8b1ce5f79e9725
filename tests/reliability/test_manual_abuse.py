"""Manual invoke abuse, through the whole pipeline against the moto server: a target not in
the inventory, parameters over the caps, an unknown action, a forged source. Each must be
rejected with a clear error naming what is wrong, audited, notified, and change nothing.

The inventory holds a rollback alias and a capacity-bump (memory) function; a second alias
outside the inventory exists too, so a wrongful action on it would show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from serverless_remediation.remediate.emulator import ACCOUNT, REGION, create_function
from serverless_remediation.remediation.audit import AuditLog
from serverless_remediation.remediation.models import Outcome
from tests.conftest import load_event
from tests.reliability.helpers import alias_version, delivery, rollback_target, transition
from tests.reliability.strategies import envelope

ALIAS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders:live"
# Not served through an alias: a memory bump reaches its traffic (on an aliased function it
# would only change $LATEST and escalates instead).
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:worker"
OUTSIDER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments:live"
KNOWN_ALARM = "rel-orders-errors"
PLAYBOOK = {
    "alarms": {KNOWN_ALARM: {"action": "rollback", "target": ALIAS}},
    "inventory": [
        {"action": "rollback", "target": ALIAS, "params": {"window_minutes": 60}},
        {
            "action": "capacity-bump",
            "target": FUNCTION,
            "params": {"kind": "lambda-memory", "max_memory_mb": 1024},
        },
    ],
}


def manual(action="rollback", target=ALIAS, **extra) -> dict:
    request = {"action": action, "target": target, "reason": "abuse test", "requested_by": "eve"}
    return {**request, **extra}


CASES = {
    # a target not in the inventory
    "another alias": (manual(target=OUTSIDER), "not in the inventory"),
    "inventory target plus a suffix": (manual(target=ALIAS + "x"), "not in the inventory"),
    "wildcard target": (manual(target="*"), "not in the inventory"),
    "inventory target, other action": (manual("capacity-bump", ALIAS), "not in the inventory"),
    # parameters over the caps
    "raise a cap": (
        manual("capacity-bump", FUNCTION, params={"max_memory_mb": 10240}),
        "beyond the configured limit: a manual request may set it to at most 1024",
    ),
    "switch the dimension": (
        manual("capacity-bump", FUNCTION, params={"kind": "lambda-reserved-concurrency"}),
        "fixed by configuration",
    ),
    "a bigger step than configured": (
        manual("capacity-bump", FUNCTION, params={"factor": 2.0}),
        "a manual request may set it to at most 1.5",
    ),
    "factor out of range": (
        manual("capacity-bump", FUNCTION, params={"factor": 100}),
        "factor must be above 1 and at most 4",
    ),
    "factor of the wrong type": (
        manual("capacity-bump", FUNCTION, params={"factor": "2"}),
        "parameter 'factor' must be float",
    ),
    "window out of range": (
        manual(params={"window_minutes": 100_000}),
        "window_minutes must be between",
    ),
    "unknown parameter": (manual(params={"force": True}), "unknown parameter(s) ['force']"),
    # an unknown action
    "unknown action": (manual("teleport"), "unknown action 'teleport'"),
    "action in capitals": (manual("ROLLBACK"), "manual request invalid"),
    "action with a shell suffix": (manual("rollback; rm -rf /"), "manual request invalid"),
    # a forged source
    "manual request dressed as a CloudWatch payload": (
        manual(source="aws.cloudwatch"),
        "alarmArn missing",
    ),
    "manual request claiming a source field": (manual(state="ALARM"), "manual request invalid"),
    "manual request inside an SNS envelope": (
        envelope(json.dumps(manual()), "ALARM"),
        "AlarmName missing",
    ),
    "alarm payload with a topic ARN for an alarm ARN": (
        {
            **load_event("lambda_alarm_action.json"),
            "alarmArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:autorem-rollback-alarms",
        },
        "not a CloudWatch alarm ARN",
    ),
    "known alarm from another account": (
        delivery(
            {
                **transition(KNOWN_ALARM),
                "AlarmArn": f"arn:aws:cloudwatch:{REGION}:999999999999:alarm:{KNOWN_ALARM}",
            }
        ),
        "account 999999999999, not 123456789012",
    ),
    "manual request in a budget notice": (
        envelope(json.dumps(manual()), "AWS Budgets: x has exceeded your alert threshold"),
        "names no AWS account",
    ),
}


@pytest.fixture
def inventory(stack):
    stack.now = datetime.now(UTC)
    rollback_target(stack.clients, "orders")
    rollback_target(stack.clients, "payments")
    create_function(stack.clients, "worker", versions=1, alias=None)
    return stack


def memory(stack) -> int:
    return stack.clients("lambda").get_function_configuration(FunctionName="worker")["MemorySize"]


def test_abuse_is_rejected_audited_and_changes_nothing(inventory, figures):
    """Every case against one inventory (one emulator setup, not one per case)."""
    stack = inventory
    pipeline = stack.pipeline(PLAYBOOK)
    audit = AuditLog(stack.clients("dynamodb"), stack.table)
    failures = []
    for name, (request, expected) in CASES.items():
        figures.add("bad_requests_tried")
        (result,) = pipeline.handle(request)
        record = audit.get(result.audit_id)
        notices = stack.notices()
        changed = (
            alias_version(stack.clients, ALIAS) != 3
            or alias_version(stack.clients, OUTSIDER) != 3
            or memory(stack) != 512
        )
        figures.add("wrong_actions", int(changed or result.outcome is Outcome.EXECUTED))
        figures.add("records_lost", int(record is None))
        problems = [
            what
            for what, bad in [
                (f"outcome {result.outcome}", result.outcome is not Outcome.REJECTED),
                (f"reason {result.reason[:200]!r}", expected not in result.reason),
                ("no rejected record", not record or record["outcome"] != "rejected"),
                ("record detail differs", not record or record.get("detail") != result.reason),
                ("no raw excerpt", not record or not record.get("raw")),
                (
                    "no rejected notice",
                    len(notices) != 1 or "rejected" not in notices[0]["subject"],
                ),
                ("a target changed", changed),
            ]
            if bad
        ]
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
        else:
            figures.add("bad_requests_rejected")
    assert not failures, "\n".join(failures)


def test_the_same_alarm_from_its_own_account_acts(inventory):
    """The control for the cross-account case."""
    (result,) = inventory.pipeline(PLAYBOOK).handle(delivery(transition(KNOWN_ALARM)))
    assert result.outcome is Outcome.EXECUTED, result


def test_a_good_manual_request_still_works(inventory):
    """The control: the same inventory and pipeline do act on a valid request (a smaller
    step than configured: a manual request may only be more careful)."""
    request = manual("capacity-bump", FUNCTION, params={"factor": 1.25})
    (result,) = inventory.pipeline(PLAYBOOK).handle(request)
    assert result.outcome is Outcome.EXECUTED, result
    assert memory(inventory) == 640  # 512 * 1.25
