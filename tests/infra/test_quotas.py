"""Each function's share of AWS's documented rates (``remediation.quotas``), as synthesized:
``REMEDIATION_PACE`` counts, for each rate, the execution environments of every function whose
role may make a call against it."""

from __future__ import annotations

import json
from collections import defaultdict
from fnmatch import fnmatchcase
from typing import Any

from serverless_remediation.remediation.quotas import RATES, quota
from serverless_remediation.stacks.constructs.remediators import pace_environments
from tests.infra.conftest import Synth


def _allowed(synth: Synth) -> dict[str, set[str]]:
    """role logical id -> the IAM actions its policies (inline and managed) allow."""
    actions: dict[str, set[str]] = defaultdict(set)
    policies = {
        **synth.resources("AWS::IAM::Policy"),
        **synth.resources("AWS::IAM::ManagedPolicy"),
    }
    for policy in policies.values():
        granted = set()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                listed = statement["Action"]
                granted |= {listed} if isinstance(listed, str) else set(listed)
        for role in policy["Properties"].get("Roles", []):
            actions[role["Ref"]] |= granted
    return actions


def test_every_function_that_makes_a_paced_call_carries_the_count_of_all_its_callers(
    drill: Synth,
) -> None:
    allowed = _allowed(drill)
    expected: dict[str, int] = defaultdict(int)
    paced: list[dict[str, Any]] = []
    for function in drill.resources("AWS::Lambda::Function").values():
        props = function["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        rates = {
            quota(r) for r in RATES if any(fnmatchcase(r.lower(), a.lower()) for a in allowed[role])
        }
        for rate in rates:
            expected[rate] += props.get("ReservedConcurrentExecutions", 0)
        if rates:
            paced.append(props)
    assert paced, "no function makes a paced call"
    for props in paced:
        carried = json.loads(props["Environment"]["Variables"]["REMEDIATION_PACE"])
        assert carried == expected, props.get("FunctionName")
    # a storm's Lambda control-plane calls come from several remediators at once
    assert expected["lambda:UpdateAlias"] > max(p["ReservedConcurrentExecutions"] for p in paced)


def test_pace_counts_wildcards_and_shared_rates_once_per_function() -> None:
    counts = pace_environments(
        [
            (5, ["lambda:Get*", "ssm:GetParameter", "ssm:GetParameters"]),
            (1, ["wafv2:UpdateIPSet", "dynamodb:PutItem"]),
            (2, ["sns:Publish"]),
        ]
    )
    assert counts["lambda:GetAlias"] == 5
    assert counts["lambda:GetFunction"] == 5
    assert "lambda:UpdateAlias" not in counts
    # GetParameters counts against GetParameter's rate, once per function
    assert counts["ssm:GetParameter"] == 5
    assert "ssm:GetParameters" not in counts
    assert counts["wafv2:UpdateIPSet"] == 1
    assert set(counts) <= set(RATES)


def test_a_hub_counts_what_its_remediators_call_in_the_spoke_accounts() -> None:
    """A hub's remediator of an action routed only in a spoke holds no grant for it (it acts
    through the spoke's role), yet makes the calls: they are counted."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from serverless_remediation.stacks.config import parse_env
    from serverless_remediation.stacks.stacks import add_environment

    lam = {"kind": "lambda", "function": "api", "alias": "live"}
    raw = {
        "account": "111111111111",
        "region": "eu-west-1",
        "organization": {
            "spokes": {"payments": {"account": "333333333333", "services": {"api": lam}}}
        },
    }
    stacks = add_environment(App(), parse_env("autorem", "hub", raw))
    paces = [
        json.loads(props["Environment"]["Variables"]["REMEDIATION_PACE"])
        for stack in stacks
        for resource in Template.from_stack(stack).to_json()["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        for props in [resource["Properties"]]
        if "REMEDIATION_PACE" in props.get("Environment", {}).get("Variables", {})
    ]
    assert paces
    for pace in paces:
        # the rollback remediator's alias calls, and the capacity ones, made in the spoke
        assert pace["lambda:UpdateAlias"] >= 5
        assert pace["lambda:GetAlias"] >= 5
