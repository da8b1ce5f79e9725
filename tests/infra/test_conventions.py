"""CDK conventions: the app as the CLI runs it (a config mistake is one line and exit status 2;
no ``-c env=`` lists every environment), the recommended feature flags, retained resources a
redeploy cannot collide with, no remediator nothing routes to, the Environment dimension on the
suite's own metric, and a LICENSE that matches pyproject."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.stacks.constructs import permissions
from tests.infra.conftest import ROOT, Synth, feature_flags, synthesize
from tests.infra.test_config import env

#: where cdk.json deliberately differs from what aws-cdk-lib recommends, and why
FLAG_CHOICES = {
    # the partitions the suite supports (stacks.config.SUPPORTED_PARTITIONS), GovCloud too
    "@aws-cdk/core:target-partitions": ["aws", "aws-cn", "aws-us-gov"],
}


def run_app(context: dict[str, Any], out: Path) -> subprocess.CompletedProcess[str]:
    """``app.py`` as the CDK CLI runs it: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR."""
    environ = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(out),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(  # noqa: S603 (this interpreter, this repository's app)
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# -- the app as the CLI runs it -------------------------------------------------------------


def test_a_config_mistake_ends_synth_with_one_line_and_status_2(
    context: dict[str, Any], tmp_path: Path
) -> None:
    bad = copy.deepcopy(context)
    bad["environments"]["drill"]["thresholds"] = {"error_rate_percent": 120}
    done = run_app({**bad, "env": "drill"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "config error: environments.drill.thresholds.error_rate_percent: 120 is out of range; "
        "allowed: >= 0 and < 100 (errors / invocations (or 5XX / requests), percent)"
    ]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "manifest.json").exists()


def test_an_unknown_environment_names_the_valid_ones(
    context: dict[str, Any], tmp_path: Path
) -> None:
    done = run_app({**context, "env": "prod"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "config error: unknown environment 'prod'; valid: drill, drill-org, prod-example"
    ]


@pytest.mark.slow
def test_without_an_environment_the_app_lists_every_one(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """What `npx cdk ls` shows without `-c env=`: every environment's stacks."""
    done = run_app(context, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    stacks = {
        name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"
    }
    for name, raw in context["environments"].items():
        assert f"autorem-{name}-core" in stacks
        if raw.get("services"):  # a hub of spokes only has no alarms of its own
            assert f"autorem-{name}-alarms-1" in stacks
        for spoke in (raw.get("organization") or {}).get("spokes", {}):
            assert any(s.startswith(f"autorem-{name}-spoke-{spoke}") for s in stacks)


# -- feature flags --------------------------------------------------------------------------


def recommended_flags() -> dict[str, Any]:
    """aws-cdk-lib's own recommended-feature-flags.json, from the installed library."""
    import aws_cdk

    (bundle,) = Path(aws_cdk.__file__).parent.glob("_jsii/aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.loads(member.read())


def test_cdk_json_sets_every_recommended_feature_flag() -> None:
    recommended = recommended_flags()
    configured = feature_flags()
    assert len(recommended) > 80
    assert sorted(set(recommended) - set(configured)) == []
    for flag, value in recommended.items():
        assert configured[flag] == FLAG_CHOICES.get(flag, value), flag


def test_the_tests_synthesize_with_the_flags_the_cli_passes(drill: Synth) -> None:
    assert drill.app.node.try_get_context("@aws-cdk/core:enablePartitionLiterals") is True


# -- retained resources and unused ones ------------------------------------------------------


def test_the_retained_table_and_key_have_no_name_to_collide_with(drill: Synth) -> None:
    log_groups = drill.resources("AWS::Logs::LogGroup").values()
    assert log_groups
    for group in log_groups:  # retained too: a fixed name would collide after cdk destroy
        assert group["DeletionPolicy"] == "Retain"
        assert "LogGroupName" not in group["Properties"]
    (table,) = drill.resources("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Retain"
    assert "TableName" not in table["Properties"]
    (key,) = drill.resources("AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Retain"  # keys carry no name; the alias goes with the stack
    for alias in drill.resources("AWS::KMS::Alias").values():
        assert alias.get("DeletionPolicy", "Delete") == "Delete"
    # the remediators still get the table's (generated) name
    for fn in drill.resources("AWS::Lambda::Function").values():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "AUDIT_TABLE" in variables:
            assert variables["AUDIT_TABLE"] == {"Ref": _logical(drill, "AWS::DynamoDB::Table")}


def _logical(synth: Synth, kind: str) -> str:
    (found,) = synth.resources(kind)
    return found.split("/", 1)[1]


@pytest.fixture(scope="module")
def lambda_only() -> Synth:
    """One aliased Lambda service, no budget: no webhook, WAF or cost routes."""
    from serverless_remediation.stacks.config import parse_env

    raw = env()
    del raw["budgets"]
    return synthesize(parse_env("autorem", "lean", raw), nag=True)


def test_no_remediator_for_an_action_nothing_routes_to(lambda_only: Synth) -> None:
    functions = {
        fn["Properties"]["FunctionName"]
        for fn in lambda_only.resources("AWS::Lambda::Function").values()
    }
    assert functions == {
        "autorem-lean-rollback",
        "autorem-lean-capacity-bump",
        "autorem-lean-revert",
    }
    topics = {
        t["Properties"]["TopicName"] for t in lambda_only.resources("AWS::SNS::Topic").values()
    }
    assert not {n for n in topics if any(a in n for a in ("waf-block", "flip-flag", "cost-guard"))}
    assert not lambda_only.resources("AWS::Events::Rule")  # no WAF, no sweeper schedule
    playbook = lambda_only.core.suite.catalog
    assert permissions.routed_actions(playbook, list(REGISTRY)) == [
        "capacity-bump",
        "revert",
        "rollback",
    ]


def test_revert_alone_gets_no_remediator() -> None:
    from serverless_remediation.stacks.catalog import Catalog

    assert permissions.routed_actions(Catalog((), (), ()), list(REGISTRY)) == []


# -- metrics --------------------------------------------------------------------------------


def _dashboard(synth: Synth) -> dict[str, Any]:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # {"Fn::Join": ["", [text, {"Ref": ...}, text]]}
        _, parts = body["Fn::Join"]
        body = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(body)


def test_the_dashboard_reads_this_environments_remediations(drill: Synth, prod: Synth) -> None:
    from serverless_remediation.stacks.constructs.dashboard import METRIC_DIMENSIONS

    assert "Environment" in METRIC_DIMENSIONS
    for synth in (drill, prod):
        lines = [
            metric
            for widget in _dashboard(synth)["widgets"]
            for metric in widget["properties"].get("metrics", [])
        ]
        assert len(lines) >= 6
        for line in lines:
            # [namespace, "Remediations", dimension, value, ..., {options}]
            pairs = [part for part in line[2:] if isinstance(part, str)]
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            assert line[1] == "Remediations"
            assert set(dimensions) == set(METRIC_DIMENSIONS), line
            assert dimensions["Environment"] == synth.config.env


# -- license --------------------------------------------------------------------------------


def test_the_license_file_is_the_one_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text.splitlines()[1]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
