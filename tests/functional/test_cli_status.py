"""``remediate status`` through the command line, on the drill environment's template and
the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from serverless_remediation.remediate.drill import template
from serverless_remediation.remediation.audit import AuditLog, Entry
from serverless_remediation.remediation.models import Outcome, Source
from tests.functional.test_cli import run
from tests.functional.test_drill import ALIAS, ROOT


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


def test_status_json_after_an_escalation(emulator, drill_assembly):
    common = ["--env", "drill", "--cdk-out", str(drill_assembly)]
    common += ["--endpoint-url", emulator.endpoint_url]
    # The drill's world (table, switch) as `invoke --local` leaves it.
    code, output = run("invoke", "rollback", ALIAS, "--local", "--dry-run", *common)
    assert code == 0, output
    deployment = template.load(drill_assembly, "drill")
    db = emulator.clients()("dynamodb")
    audit = AuditLog(db, deployment.setting("AUDIT_TABLE"))
    now = datetime.now(UTC)
    entry = Entry(
        audit_id="cli-status-1",
        correlation_id="c",
        created_at=now,
        source=Source.ALARM,
        key="autorem-drill-orders-api-error-rate",
        state="ALARM",
        requested_by="cloudwatch",
        reason="spike",
        action="rollback",
        target=ALIAS,
    )
    audit.open(entry)
    audit.close(entry.audit_id, Outcome.ESCALATED, "still alarming", now)

    code, output = run("status", "--local", "--json", *common)
    assert code == 0, output
    (line,) = output.splitlines()
    found = json.loads(line)
    assert found["env"] == "drill"
    switch = emulator.clients()("ssm").get_parameter(Name=deployment.setting("SWITCH_PARAMETER"))
    assert found["switch"]["value"] == switch["Parameter"]["Value"]
    incidents = [i for i in found["incidents"] if i["audit_id"] == "cli-status-1"]
    assert incidents == [
        {
            "alarm": "autorem-drill-orders-api-error-rate",
            "target": ALIAS,
            "action": "rollback",
            "outcome": "escalated",
            "since": incidents[0]["since"],
            "audit_id": "cli-status-1",
            "detail": "still alarming",
        }
    ]

    code, output = run("status", "--local", *common)
    assert code == 0, output
    assert "open incidents" in output
    assert "cli-status-1" in output
