"""Pure pieces of the ECS actions: parameters, the target, the plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions.base import Limit
from serverless_remediation.remediation.actions.ecs import (
    EcsRestart,
    EcsRollback,
    EcsScale,
    plan_ecs_rollback,
    plan_restart,
    plan_scale,
    service_parts,
)
from serverless_remediation.remediation.actions.ecs.plans import (
    RESTART_NOT_REVERTABLE,
    EcsDeployment,
    ScaleParams,
    ServiceCurrent,
)
from serverless_remediation.remediation.models import RejectedError, Verdict
from serverless_remediation.remediation.targets import parse

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
SERVICE = "arn:aws:ecs:eu-west-1:123456789012:service/aureus/bridge"
TD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/bridge"


def deployment(**over) -> EcsDeployment:
    d: EcsDeployment = {
        "id": "ecs-svc/1",
        "status": "PRIMARY",
        "rollout": "COMPLETED",
        "task_definition": f"{TD}:7",
        "desired": 2,
        "running": 2,
    }
    d.update(over)  # type: ignore[typeddict-item]
    return d


def service(**over) -> ServiceCurrent:
    current: ServiceCurrent = {
        "service": "bridge",
        "status": "ACTIVE",
        "desired": 2,
        "running": 2,
        "task_definition": f"{TD}:7",
        "deployment": "ecs-svc/1",
        "deployments": [deployment()],
        "min_capacity": None,
        "max_capacity": None,
        "registered": (NOW - timedelta(minutes=20)).isoformat(),
        "previous": f"{TD}:6",
    }
    current.update(over)  # type: ignore[typeddict-item]
    return current


# -- target -----------------------------------------------------------------------------


def test_service_arn_names_cluster_and_service():
    assert service_parts(SERVICE) == ("aureus", "bridge")
    parsed = parse(SERVICE)
    assert (parsed.resource_type, parsed.name, parsed.qualifier) == ("service", "bridge", "aureus")
    with pytest.raises(RejectedError, match="with its cluster"):
        parse("arn:aws:ecs:eu-west-1:123456789012:service/bridge")
    with pytest.raises(RejectedError):
        service_parts("arn:aws:ecs:eu-west-1:123456789012:cluster/aureus")


def test_resources():
    assert EcsRestart.resources(SERVICE) == [SERVICE]
    assert EcsRollback.resources(SERVICE) == [SERVICE]
    assert EcsScale.resources(SERVICE) == [
        SERVICE,
        "arn:aws:application-autoscaling:eu-west-1:123456789012:scalable-target/*",
    ]


# -- restart ----------------------------------------------------------------------------


def test_restart_replaces_the_only_deployment():
    plan = plan_restart(service())
    assert plan.verdict is Verdict.CHANGE
    assert plan.before == {"task_definition": f"{TD}:7", "deployment": "ecs-svc/1", "note": None}
    assert plan.after == {
        "task_definition": f"{TD}:7",
        "deployment": None,
        "note": RESTART_NOT_REVERTABLE,
    }
    assert "replacing ecs-svc/1" in plan.summary


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"status": "DRAINING"}, "not ACTIVE"),
        ({"desired": 0}, "wants 0 tasks"),
        (
            {"deployments": [deployment(), deployment(id="ecs-svc/2", status="ACTIVE")]},
            "2 deployments",
        ),
        ({"deployments": [deployment(rollout="IN_PROGRESS")]}, "IN_PROGRESS"),
    ],
)
def test_restart_escalates(over, words):
    plan = plan_restart(service(**over))
    assert plan.verdict is Verdict.ESCALATE
    assert words in plan.summary


# -- scale --------------------------------------------------------------------------------


def test_scale_multiplies_rounding_up():
    plan = plan_scale(service(desired=3), 1.5, 10)
    assert plan.verdict is Verdict.CHANGE
    assert plan.after == {"desired": 5, "min_capacity": None}


def test_scale_is_capped_by_max_count_and_the_auto_scaling_maximum():
    assert plan_scale(service(desired=4), 2.0, 6).after["desired"] == 6
    plan = plan_scale(service(desired=4, min_capacity=2, max_capacity=5), 2.0, 10)
    assert plan.after == {"desired": 5, "min_capacity": 5}
    assert "(capped)" in plan.summary
    assert "min 2 -> 5" in plan.summary


def test_scale_raises_the_minimum_only_upwards():
    plan = plan_scale(service(desired=2, min_capacity=6, max_capacity=20), 2.0, 10)
    assert plan.after == {"desired": 4, "min_capacity": 6}


@pytest.mark.parametrize(
    ("over", "cap", "words"),
    [
        ({"desired": 10}, 10, "at the cap 10"),
        ({"desired": 5, "min_capacity": 1, "max_capacity": 5}, 10, "at the cap 5"),
        ({"desired": 0}, 10, "wants 0 tasks"),
        ({"status": "INACTIVE"}, 10, "not ACTIVE"),
        ({"deployments": [deployment(rollout="IN_PROGRESS")]}, 10, "rollout in flight"),
    ],
)
def test_scale_escalates(over, cap, words):
    plan = plan_scale(service(**over), 2.0, cap)
    assert plan.verdict is Verdict.ESCALATE
    assert words in plan.summary


@pytest.mark.parametrize("bad", [{"factor": 1.0}, {"factor": 11.0}, {"max_count": 0}])
def test_scale_params_ranges(bad):
    with pytest.raises(RejectedError):
        ScaleParams.from_dict(bad)


def test_scale_manual_limits_only_ask_for_fewer():
    assert EcsScale.limits == {"factor": Limit.AT_MOST, "max_count": Limit.AT_MOST}
    EcsScale.check_manual(ScaleParams(), {"factor": 1.5})
    with pytest.raises(RejectedError):
        EcsScale.check_manual(ScaleParams(), {"max_count": 50})


# -- rollback -------------------------------------------------------------------------------


def test_rollback_to_the_previous_revision():
    plan = plan_ecs_rollback(service(), 60, NOW)
    assert plan.verdict is Verdict.CHANGE
    assert plan.before == {"task_definition": f"{TD}:7"}
    assert plan.after == {"task_definition": f"{TD}:6"}
    assert "bridge:7 -> bridge:6" in plan.summary


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"registered": (NOW - timedelta(minutes=61)).isoformat()}, "more than 60 min ago"),
        ({"registered": None}, "cannot tell"),
        ({"registered": "soon"}, "cannot read"),
        ({"registered": "2026-11-23T10:20:00"}, "more than 60 min"),
        ({"previous": None}, "no earlier ACTIVE revision"),
        ({"status": "DRAINING"}, "not ACTIVE"),
    ],
)
def test_rollback_escalates(over, words):
    plan = plan_ecs_rollback(service(**over), 60, NOW)
    assert plan.verdict is Verdict.ESCALATE
    assert words in plan.summary


def test_a_verify_wait_the_remediator_timeout_cannot_hold_fails_synth():
    import json
    from pathlib import Path

    from serverless_remediation.remediation.actions import REGISTRY
    from serverless_remediation.stacks import catalog
    from serverless_remediation.stacks.config import ConfigError, load

    context = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]
    raw = context["environments"]["drill"]
    raw["services"]["bridge"]["params"]["ecs-scale"]["verify_seconds"] = 100
    with pytest.raises(ConfigError, match=r"ecs-scale verify_seconds 100 s \+ 30 s"):
        catalog.build(load(context, "drill"), dict(REGISTRY))
    raw["services"]["bridge"]["params"]["ecs-scale"]["verify_seconds"] = 60
    built = catalog.build(load(context, "drill"), dict(REGISTRY))
    assert any(a.route.action == "ecs-scale" for a in built.alarms)
