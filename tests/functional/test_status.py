"""``remediate status`` on the emulator: incidents from real audit records, guards the
real ``Guards`` took, WAF blocks the real ``BlockRecords`` wrote, the DLQ and the switch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from serverless_remediation.remediate import status as status_
from serverless_remediation.remediation.actions.waf_block.expiries import BlockRecords
from serverless_remediation.remediation.audit import AuditLog, Entry
from serverless_remediation.remediation.guards import Guards, GuardSettings
from serverless_remediation.remediation.models import Outcome, Source
from serverless_remediation.remediation.store import Table

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/leads"
IP_SET = "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/blocked-ips/1111"


def record(audit, n, *, key, target, state, outcome, at, source=Source.ALARM, action="rollback"):
    entry = Entry(
        audit_id=f"id{n}",
        correlation_id="c",
        created_at=at,
        source=source,
        key=key,
        state=state,
        requested_by="cloudwatch",
        reason="spike",
        action=action,
        target=target,
    )
    audit.open(entry)
    audit.close(entry.audit_id, outcome, f"why {n}", at)


@pytest.fixture
def world(stack):
    db = stack.clients("dynamodb")
    audit = AuditLog(db, stack.table)
    minute = timedelta(minutes=1)
    # orders: executed, then still alarming -> escalated: open
    record(
        audit,
        1,
        key="orders-errors",
        target=ALIAS,
        state="ALARM",
        outcome=Outcome.EXECUTED,
        at=NOW - 20 * minute,
    )
    record(
        audit,
        2,
        key="orders-errors",
        target=ALIAS,
        state="ALARM",
        outcome=Outcome.ESCALATED,
        at=NOW - 5 * minute,
    )
    # leads: executed, then back to OK: closed
    record(
        audit,
        3,
        key="leads-throttles",
        target=TABLE_ARN,
        state="ALARM",
        outcome=Outcome.EXECUTED,
        at=NOW - 30 * minute,
        action="capacity-bump",
    )
    record(
        audit,
        4,
        key="leads-throttles",
        target=TABLE_ARN,
        state="OK",
        outcome=Outcome.SKIPPED,
        at=NOW - 10 * minute,
        action="capacity-bump",
    )
    # a manual request is not an incident
    record(
        audit,
        5,
        key="manual",
        target=TABLE_ARN,
        state="ALARM",
        source=Source.MANUAL,
        outcome=Outcome.FAILED,
        at=NOW - minute,
        action="capacity-bump",
    )
    guards = Guards(db, stack.table, GuardSettings(cooldown_seconds=900, breaker_max=2))
    Table(db, stack.table).transact(
        [
            guards.claim(ALIAS, NOW - 10 * minute, audit_id="id1", action="rollback"),
            guards.claim(TABLE_ARN, NOW - 30 * minute, audit_id="id3", action="capacity-bump"),
        ]
    )
    Table(db, stack.table).transact(
        [guards.claim(TABLE_ARN, NOW - 14 * minute, audit_id="id6", action="capacity-bump")]
    )
    blocks = BlockRecords(db, stack.table)
    blocks.record(IP_SET, ["203.0.113.7/32"], NOW + 50 * minute, IP_SET)
    blocks.record(IP_SET, ["198.51.100.1/32"], NOW - minute, IP_SET)  # expired: swept
    sqs = stack.clients("sqs")
    dlq = sqs.create_queue(QueueName="autorem-test-remediator-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    stack.set_switch("dry-run")
    stack.clients("ssm").put_parameter(
        Name=f"{stack.override_prefix}rollback", Value="off", Type="String"
    )
    return stack


def collect(stack, **kw):
    return status_.collect(
        "test",
        db=stack.clients("dynamodb"),
        table=stack.table,
        ssm=stack.clients("ssm"),
        switch_name=stack.switch,
        override_prefix=stack.override_prefix,
        sqs=stack.clients("sqs"),
        dead_letter_queue="autorem-test-remediator-dlq",
        breaker_max=2,
        now=NOW,
        **kw,
    )


def test_status_shows_open_incidents_guards_blocks_dlq_and_switch(world):
    found = collect(world)
    (incident,) = found.incidents
    assert incident["alarm"] == "orders-errors"
    assert incident["target"] == ALIAS
    assert incident["outcome"] == "escalated"
    assert incident["audit_id"] == "id2"
    guards = {g["target"]: g for g in found.guards}
    assert guards[ALIAS]["cooldown_until"] == "2026-11-23T10:35:00Z"
    assert guards[ALIAS]["cooldown_after"] == "rollback (audit id1)"
    assert guards[ALIAS]["breaker"] == "closed"
    assert guards[TABLE_ARN]["breaker_count"] == 2
    assert guards[TABLE_ARN]["breaker"] == "open"
    assert [b["address"] for b in found.blocks] == ["203.0.113.7/32"]
    assert found.dead_letters["depth"] == 2
    assert found.switch["value"] == "dry-run"
    assert found.switch["overrides"] == {f"{world.override_prefix}rollback": "off"}
    json.dumps(found.as_json())  # scripts get plain JSON


def test_registered_sections_read_their_own_items(world):
    world.clients("dynamodb").put_item(
        TableName=world.table,
        Item={"pk": {"S": "approval#a1"}, "sk": {"S": "pending"}, "expires": {"N": "1"}},
    )

    def approvals(items, now):
        return [{"id": i["pk"][9:]} for i in items if str(i["pk"]).startswith("approval#")]

    found = status_.build(
        "test",
        status_.scan(world.clients("dynamodb"), world.table),
        NOW,
        switch={},
        dead_letters={},
        breaker_max=2,
        sections={"pending approvals": approvals},
    )
    assert found.sections == {"pending approvals": [{"id": "a1"}]}


def test_a_missing_switch_and_queue_are_shown_not_raised(stack):
    stack.clients("ssm").delete_parameter(Name=stack.switch)
    found = status_.collect(
        "test",
        db=stack.clients("dynamodb"),
        table=stack.table,
        ssm=stack.clients("ssm"),
        switch_name=stack.switch,
        override_prefix=None,
        sqs=stack.clients("sqs"),
        dead_letter_queue="no-such-queue",
        breaker_max=3,
        now=NOW,
    )
    assert found.switch["value"].startswith("missing")
    assert found.dead_letters["depth"] is None
    assert found.incidents == []
    assert found.guards == []
    assert found.blocks == []


def test_the_table_view_names_every_section(world):
    console = Console(record=True, width=300)
    status_.render(collect(world), console)
    text = console.export_text()
    for expected in (
        "open incidents",
        "guards",
        "active WAF blocks",
        "2 waiting",
        "dry-run",
        "orders-errors",
        "203.0.113.7/32",
    ):
        assert expected in text
