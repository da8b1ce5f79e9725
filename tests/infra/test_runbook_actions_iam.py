"""The second round's remediators (db-failover, the ECS actions) in the drill's synthesized
template: each role grants exactly its action's declared permissions, on exactly the
configured targets (the cluster, the service, its scalable targets), and "*" only for what
IAM cannot scope; their alarms read the real CloudWatch metrics."""

from __future__ import annotations

from typing import Any

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.stacks.constructs.permissions import UNSCOPABLE
from tests.infra.conftest import Synth
from tests.infra.test_templates import _list, _remediators, _role_statements

CLUSTER = "arn:aws:rds:eu-west-1:123456789012:cluster:leads-db"
INSTANCES = "arn:aws:rds:eu-west-1:123456789012:db:*"
SERVICE = "arn:aws:ecs:eu-west-1:123456789012:service/aureus/bridge"
SCALABLE = "arn:aws:application-autoscaling:eu-west-1:123456789012:scalable-target/*"

EXPECTED: dict[str, dict[str, set[str]]] = {
    # action -> {resource: actions granted on it}
    "db-failover": {
        CLUSTER: set(REGISTRY["db-failover"].permissions),
        INSTANCES: set(REGISTRY["db-failover"].permissions),
    },
    "ecs-restart": {SERVICE: {"ecs:DescribeServices", "ecs:UpdateService"}},
    "ecs-scale": {
        SERVICE: {"ecs:DescribeServices", "ecs:UpdateService"},
        SCALABLE: {"application-autoscaling:RegisterScalableTarget"},
        "*": {"application-autoscaling:DescribeScalableTargets"},
    },
    "ecs-rollback": {
        SERVICE: {"ecs:DescribeServices", "ecs:UpdateService"},
        "*": {"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"},
    },
}


def _grants(drill: Synth, action: str) -> dict[str, set[str]]:
    """resource -> the target actions the role of ``action``'s remediator grants on it."""
    _, fn = _remediators(drill)[action]
    _, managed = _role_statements(drill, fn)
    found: dict[str, set[str]] = {}
    for statement in managed:
        assert statement["Effect"] == "Allow"
        for resource in _list(statement["Resource"]):
            found.setdefault(resource, set()).update(_list(statement["Action"]))
    return found


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_role_grants_exactly_the_declared_permissions_on_the_configured_target(
    drill: Synth, action: str
) -> None:
    grants = _grants(drill, action)
    declared = set(REGISTRY[action].permissions)
    assert set().union(*grants.values()) == declared
    if action == "db-failover":
        # The cluster, and the account's instances in the Region (DescribeDBInstances reads
        # the readers' health; their names are not known at synth). Permissions are granted
        # per service, so the rds actions share both resources: FailoverDBCluster and
        # DescribeDBClusters authorize against the cluster only, so on db:* they allow nothing.
        assert set(grants) == {CLUSTER, INSTANCES}
        assert grants[CLUSTER] == grants[INSTANCES] == declared
    else:
        assert set(grants) == set(EXPECTED[action])
        for resource, actions in EXPECTED[action].items():
            if resource == "*":
                assert grants["*"] == actions
                assert actions <= UNSCOPABLE
            else:
                assert actions <= grants[resource]
                assert not (grants[resource] & UNSCOPABLE)


def _alarm(drill: Synth, suffix: str) -> dict[str, Any]:
    (found,) = [
        a["Properties"]
        for a in drill.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName", "").endswith(suffix)
    ]
    return found


def _metric_names(props: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in props.get("Metrics", [])
        if "MetricStat" in m
    }


def test_the_new_alarms_read_real_metrics(drill: Synth) -> None:
    assert _metric_names(_alarm(drill, "-leads-db-db-connections")) == {
        ("AWS/RDS", "DatabaseConnections")
    }
    assert _metric_names(_alarm(drill, "-bridge-service-down")) == {
        ("ECS/ContainerInsights", "RunningTaskCount")
    }
    assert _metric_names(_alarm(drill, "-bridge-error-rate")) == {
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("AWS/ApplicationELB", "RequestCount"),
    }
    latency = _alarm(drill, "-bridge-latency")
    assert (latency["Namespace"], latency["MetricName"]) == (
        "AWS/ApplicationELB",
        "TargetResponseTime",
    )
    assert latency["Threshold"] == 0.5  # the drill's 500 ms override, in seconds
