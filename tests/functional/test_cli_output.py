"""Readable output: piped tables keep every ARN whole on one line (to paste), a terminal
shortens them in the middle, ``--output json`` is one object a line, and the drill timeline
shows whole API names."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.drill import report, template
from serverless_remediation.remediate.drill.runner import Event, Run
from serverless_remediation.remediate.drill.scenario import Scenario
from serverless_remediation.remediate.drill.world import Delivery
from tests.functional.test_drill import ROOT

runner = CliRunner()


@pytest.fixture(scope="module")
def drill_assembly():
    return template.synth(ROOT, "drill")


def test_a_piped_plan_table_keeps_every_target_whole_on_its_line(drill_assembly):
    deployment = template.load(drill_assembly, "drill")
    result = runner.invoke(cli.app, ["plan", "--env", "drill", "--cdk-out", str(drill_assembly)])
    assert result.exit_code == 0, result.output
    targets = {route["target"] for route in deployment.playbook()["alarms"].values()}
    assert any(len(t) > 80 for t in targets)  # longer than a default 80-column pipe
    lines = result.output.splitlines()
    for target in targets:
        assert any(target in line for line in lines), target


def test_output_json_is_one_object_a_line_with_whole_arns(drill_assembly):
    deployment = template.load(drill_assembly, "drill")
    result = runner.invoke(
        cli.app, ["plan", "--env", "drill", "--output", "json", "--cdk-out", str(drill_assembly)]
    )
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert {line["target"] for line in lines if "alarm" in line} == {
        route["target"] for route in deployment.playbook()["alarms"].values()
    }


def test_short_arn_drops_account_and_region_then_the_middle_of_the_resource():
    short = "arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert cli.short_arn(short) == short
    ip_set = (
        "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/blocked-ips/"
        "11111111-2222-3333-4444-555555555555"
    )
    assert cli.short_arn(ip_set, width=90) == (
        "arn:aws:wafv2:…:regional/ipset/blocked-ips/11111111-2222-3333-4444-555555555555"
    )
    shown = cli.short_arn(ip_set)
    assert len(shown) == 64
    assert shown.startswith("arn:aws:wafv2:…:regional/ipset/")
    assert shown.endswith("-4444-555555555555")
    alias = "arn:aws:lambda:eu-west-1:123456789012:function:" + "x" * 100 + ":live"
    shown = cli.short_arn(alias, width=40)
    assert len(shown) == 40
    assert shown.startswith("arn:aws:lambda:…:function:")
    assert shown.endswith("x:live")


def test_the_drill_timeline_shows_whole_api_names_in_a_narrow_log():
    delivery = Delivery(function="autorem-drill-capacity-bump", event={})
    delivery.calls = [
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        "dynamodb:PutItem",  # bookkeeping: not a call on a target
    ]
    scenario = Scenario(Path("s.yaml"), "narrow", "", "drill", "on", {}, (), {})
    run = Run(scenario, events=[Event(1, timedelta(), "alarm x -> ALARM", [delivery])])
    out = io.StringIO()
    report.print_run(Console(file=out, width=100), run)
    text = out.getvalue()
    assert "lambda:GetProvisionedConcurrencyConfig x2" in text
    assert "lambda:PutProvisionedConcurrencyConfig" in text
    assert "dynamodb:PutItem" not in text
    assert "Concurrenc…" not in text
    markdown = report.markdown([run], 1.0, "header")
    assert (
        "lambda:GetProvisionedConcurrencyConfig x2<br>lambda:PutProvisionedConcurrencyConfig"
        in markdown
    )


def test_a_terminal_gets_arns_shortened_in_the_middle_not_folded(monkeypatch, drill_assembly):
    screen = io.StringIO()
    monkeypatch.setattr(
        cli, "console", Console(file=screen, force_terminal=True, width=200, color_system=None)
    )
    result = runner.invoke(cli.app, ["plan", "--env", "drill", "--cdk-out", str(drill_assembly)])
    assert result.exit_code == 0
    text = screen.getvalue()
    assert "arn:aws:wafv2:…:regional/ipset/blocked" in text  # a third of the width
    assert "4444-555555555555" in text
    assert "arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live" in text  # fits
