"""150 services synthesize, split so that no stack exceeds CloudFormation's 500 resources,
and no role's grants outgrow what IAM lets one role carry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serverless_remediation.stacks.config import parse_env
from serverless_remediation.stacks.constructs.permissions import MAX_POLICIES_PER_ROLE
from tests.infra.conftest import Synth, synthesize

CFN_MAX_RESOURCES = 500
IAM_MANAGED_POLICY_CHARS = 6144


def big_environment(count: int = 150) -> dict[str, Any]:
    """``count`` services, mostly Lambda functions (three alarms each), some of every kind."""
    services: dict[str, Any] = {}
    for i in range(count):
        name = f"svc-{i:03d}"
        slot = i % 10
        if slot < 8:
            services[name] = {
                "kind": "lambda",
                "function": f"fn-{i:03d}",
                "alias": "live",
                "sheddable": slot == 0,
            }
        elif slot == 8:
            services[name] = {
                "kind": "rest-api",
                "api_name": f"api-{i:03d}",
                "api_id": f"r{i:09d}",
                "stage": "prod",
                "function": f"fn-{i - 1:03d}",
                "throttle_metric": {"namespace": "Api", "name": "Http429"},
            }
        elif i % 30 == 9:
            services[name] = {"kind": "dynamodb", "table": f"table-{i:03d}"}
        elif i % 30 == 19:
            services[name] = {
                "kind": "webhook",
                "flag_parameter": f"/flags/hook-{i:03d}",
                "success": {"namespace": "Hooks", "name": "Ok", "dimensions": {"Hook": name}},
                "failure": {"namespace": "Hooks", "name": "Failed", "dimensions": {"Hook": name}},
            }
        else:
            services[name] = {
                "kind": "http-api",
                "api_id": f"h{i:09d}",
                "stage": "prod",
                "function": f"fn-{i - 3:03d}",
            }
    services["edge-waf"] = {
        "kind": "waf",
        "ip_set_name": "blocked",
        "ip_set_id": "11111111-2222-3333-4444-555555555555",
        "log_group": "/access/edge",
        "metric": {"namespace": "Edge", "name": "RateLimitHits"},
    }
    return {
        "account": "123456789012",
        "region": "eu-west-1",
        "services": services,
        "budgets": {"monthly": {"limit_usd": 10000}},
    }


@pytest.fixture(scope="module")
def big() -> Synth:
    return synthesize(parse_env("autorem", "big", big_environment()))


@pytest.mark.slow
def test_150_services_split_into_stacks_under_500_resources(big: Synth) -> None:
    assert len(big.config.services) == 151
    counts = {name: len(t["Resources"]) for name, t in big.templates.items()}
    assert all(n <= CFN_MAX_RESOURCES for n in counts.values()), counts
    assert len(counts) >= 3, counts  # the core stack and more than one alarm stack
    service_alarms = {spec.name for spec in big.core.suite.catalog.alarms}
    alarms = {
        key: alarm
        for key, alarm in big.resources("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"]["AlarmName"] in service_alarms
    }
    assert len(alarms) == len(service_alarms)
    # one stack could not have held them all
    assert len(alarms) + counts["autorem-big-core"] > CFN_MAX_RESOURCES
    # a service's alarms stay in one stack
    service_of = {spec.name: spec.service for spec in big.core.suite.catalog.alarms}
    stack_of: dict[str, set[str]] = {}
    for key, alarm in alarms.items():
        service = service_of[alarm["Properties"]["AlarmName"]]
        stack_of.setdefault(service, set()).add(key.split("/", 1)[0])
    assert all(len(stacks) == 1 for stacks in stack_of.values())


@pytest.mark.slow
def test_150_services_grants_fit_iam_limits(big: Synth) -> None:
    policies: dict[str, int] = {}
    for body in big.resources("AWS::IAM::ManagedPolicy").values():
        document = body["Properties"]["PolicyDocument"]
        assert len(json.dumps(document, separators=(",", ":"))) <= IAM_MANAGED_POLICY_CHARS
        for role in body["Properties"]["Roles"]:
            policies[role["Ref"]] = policies.get(role["Ref"], 0) + 1
    assert max(policies.values()) <= MAX_POLICIES_PER_ROLE
    assert max(policies.values()) > 1  # the biggest role (revert) needed the split
