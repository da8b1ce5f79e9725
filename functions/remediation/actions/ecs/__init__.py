"""ECS services: restart, scale out, roll back (runbook: Aureus Sentinel "ServiceDown",
"HighLatency", "HighErrorRate").

Three registered actions, not one with a ``kind``: each needs its own IAM (only ``ecs-scale``
touches Application Auto Scaling, only ``ecs-rollback`` reads task definitions), its own
parameters and limits, and each reverts differently. Registered apart, each gets its own
remediator and least-privilege role, and a route names exactly what it may do.

The target is the service's ARN with its cluster
(``arn:PARTITION:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE``).

- ``ecs-restart``: force a new deployment of the same task definition. Escalates when a
  rollout is already in flight (more than one deployment, or the primary one not
  ``COMPLETED``) or the service wants no task. Not revertable (the after-state's ``note``
  says why; ``revert`` escalates).
- ``ecs-scale``: desired count x ``factor`` (rounded up), at most ``max_count`` and never
  above the service's Application Auto Scaling maximum when it is registered; the scalable
  target's minimum is raised to the new count first, so a scale-in does not undo it. At the
  cap: escalate. Revert restores the desired count and the minimum.
- ``ecs-rollback``: back to the newest ACTIVE revision of the task definition's family before
  the live one, when the live one was registered within ``window_minutes`` (a revision cannot
  go live before it is registered, so this never blames an old revision). Revert goes back to
  the revision it replaced.

Verify: the change reads back (a new PRIMARY deployment, the desired count and minimum, the
task definition) AND the rollout completed: the primary deployment ``COMPLETED`` and the
service running as many tasks as it wants, polled for up to ``verify_seconds``. A rollout
still in progress at the deadline is not success: ``VerifyError`` with what was seen (the
change is made and recorded; a human confirms it), and a ``FAILED`` rollout fails at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ...errors import EscalatedError, RejectedError
from ...targets import build, parse
from ..base import (
    Action,
    ActionContext,
    Limit,
    Plan,
    S,
    VerifyError,
    register,
)
from .plans import (
    RESTART_NOT_REVERTABLE,
    EcsDeployment,
    EcsRollbackParams,
    RestartParams,
    RestartState,
    ScaleParams,
    ScaleState,
    ServiceCurrent,
    TaskDefinitionState,
    WaitParams,
    plan_ecs_rollback,
    plan_restart,
    plan_scale,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_ecs.type_defs import ServiceTypeDef

__all__ = [
    "EcsRestart",
    "EcsRollback",
    "EcsScale",
    "plan_ecs_rollback",
    "plan_restart",
    "plan_scale",
    "service_parts",
]

SCALABLE_DIMENSION: Final = "ecs:service:DesiredCount"


def service_parts(target: str) -> tuple[str, str]:
    """(cluster, service) of an ECS service ARN; ``RejectedError`` for anything else."""
    parsed = parse(target)
    if parsed.service != "ecs" or parsed.resource_type != "service" or not parsed.qualifier:
        raise RejectedError(f"needs an ECS service ARN with its cluster, got {target[:200]!r}")
    return parsed.qualifier, parsed.name


def scaling_resource_id(target: str) -> str:
    cluster, service = service_parts(target)
    return f"service/{cluster}/{service}"


class _EcsAction(Action[Any, ServiceCurrent, S]):
    """What the three share: reading the service, and waiting for its rollout."""

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        defaults = WaitParams()
        #: (verify_seconds, poll_seconds): verify gets no params, so ``read`` keeps the route's
        self._timing = (defaults.verify_seconds, defaults.poll_seconds)

    def _service(self, target: str) -> ServiceTypeDef:
        cluster, service = service_parts(target)
        found = self.clients("ecs").describe_services(cluster=cluster, services=[service])
        services = found.get("services", [])
        if len(services) != 1:
            raise RejectedError(f"service {service} not found in cluster {cluster}")
        return services[0]

    def _read(self, target: str, params: WaitParams) -> ServiceCurrent:
        self._timing = (params.verify_seconds, params.poll_seconds)
        found = self._service(target)
        deployments: list[EcsDeployment] = [
            {
                "id": d.get("id", ""),
                "status": d.get("status", ""),
                "rollout": d.get("rolloutState"),
                "task_definition": d.get("taskDefinition", ""),
                "desired": int(d.get("desiredCount", 0)),
                "running": int(d.get("runningCount", 0)),
            }
            for d in found.get("deployments", [])
        ]
        return {
            "service": found.get("serviceName", service_parts(target)[1]),
            "status": found.get("status", "unknown"),
            "desired": int(found.get("desiredCount", 0)),
            "running": int(found.get("runningCount", 0)),
            "task_definition": found.get("taskDefinition", ""),
            "deployment": next((d["id"] for d in deployments if d["status"] == "PRIMARY"), None),
            "deployments": deployments,
            "min_capacity": None,
            "max_capacity": None,
            "registered": None,
            "previous": None,
        }

    def _wait(self, target: str, check: Callable[[ServiceCurrent], str | None]) -> ServiceCurrent:
        """Read the service until ``check`` (the change read back) passes and the rollout
        completed, for up to ``verify_seconds``; ``VerifyError`` with what was seen."""
        wait, poll = self._timing
        deadline = time.monotonic() + wait
        while True:
            seen = self._read(target, WaitParams(*self._timing))
            problem = check(seen) or _rollout_problem(seen)
            if problem is None:
                return seen
            if problem.startswith("FAILED") or time.monotonic() >= deadline:
                raise VerifyError(f"service {seen['service']}: {problem}")
            time.sleep(poll)


def _primary(current: ServiceCurrent) -> EcsDeployment | None:
    primaries = [d for d in current["deployments"] if d["status"] == "PRIMARY"]
    return primaries[0] if len(primaries) == 1 else None


def _rollout_problem(current: ServiceCurrent) -> str | None:
    """Why the rollout is not (yet) done, or None."""
    primary = _primary(current)
    if primary is None:
        return "no single PRIMARY deployment"
    if primary["rollout"] == "FAILED":
        return f"FAILED: deployment {primary['id']} rollout failed"
    if primary["rollout"] not in (None, "COMPLETED"):
        return (
            f"deployment {primary['id']} still {primary['rollout']} "
            f"({current['running']}/{current['desired']} running): not confirmed"
        )
    if current["running"] != current["desired"]:
        return f"{current['running']}/{current['desired']} tasks running: not confirmed"
    return None


@register
class EcsRestart(_EcsAction[RestartState]):
    """Restart an ECS service: force a new deployment of the same task definition."""

    name = "ecs-restart"
    not_revertable = RESTART_NOT_REVERTABLE
    Params = RestartParams
    permissions = ("ecs:DescribeServices", "ecs:UpdateService")

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        service_parts(target)
        return [target]

    def read(self, target: str, params: RestartParams) -> ServiceCurrent:
        return self._read(target, params)

    def plan(
        self, current: ServiceCurrent, params: RestartParams, now: datetime
    ) -> Plan[RestartState]:
        return plan_restart(current)

    def apply(self, target: str, plan: Plan[RestartState]) -> None:
        if plan.after.get("note") != RESTART_NOT_REVERTABLE or not plan.before["deployment"]:
            raise EscalatedError(RESTART_NOT_REVERTABLE)  # a revert's plan: nothing to undo
        cluster, service = service_parts(target)
        self.clients("ecs").update_service(
            cluster=cluster, service=service, forceNewDeployment=True
        )

    def verify(self, target: str, plan: Plan[RestartState]) -> RestartState:
        after, replaced = plan.after, plan.before["deployment"]

        def check(seen: ServiceCurrent) -> str | None:
            primary = _primary(seen)
            if primary is None or primary["id"] == replaced:
                return f"no new deployment replaced {replaced}"
            if primary["task_definition"] != after["task_definition"]:
                return f"new deployment runs {primary['task_definition']}"
            return None

        seen = self._wait(target, check)
        return {**after, "deployment": seen["deployment"]}


@register
class EcsScale(_EcsAction[ScaleState]):
    """Scale an ECS service out by a factor, capped, within its auto scaling range."""

    name = "ecs-scale"
    Params = ScaleParams
    # A manual request may only ask for fewer tasks.
    limits: ClassVar[dict[str, Limit]] = {"factor": Limit.AT_MOST, "max_count": Limit.AT_MOST}
    permissions = (
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
    )

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        service_parts(target)
        parsed = parse(target)
        # Scalable target ARNs end in an id AWS assigns: ``scalable-target/*`` is the
        # narrowest pattern IAM takes.
        scalable = build(
            parsed.partition,
            "application-autoscaling",
            parsed.region,
            parsed.account,
            "scalable-target/*",
        )
        return [target, scalable]

    def read(self, target: str, params: ScaleParams) -> ServiceCurrent:
        current = self._read(target, params)
        current["min_capacity"], current["max_capacity"] = self._range(target)
        return current

    def plan(self, current: ServiceCurrent, params: ScaleParams, now: datetime) -> Plan[ScaleState]:
        return plan_scale(current, params.factor, params.max_count)

    def apply(self, target: str, plan: Plan[ScaleState]) -> None:
        after = plan.after
        minimum = after["min_capacity"]
        if minimum is not None:
            # The minimum first: raised, auto scaling does not scale in below the new count;
            # lowered (a revert), it no longer holds the count up.
            self.clients("application-autoscaling").register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=scaling_resource_id(target),
                ScalableDimension=SCALABLE_DIMENSION,
                MinCapacity=minimum,
            )
        cluster, service = service_parts(target)
        self.clients("ecs").update_service(
            cluster=cluster, service=service, desiredCount=after["desired"]
        )

    def verify(self, target: str, plan: Plan[ScaleState]) -> ScaleState:
        after = plan.after
        minimum, _ = self._range(target)
        if minimum != after["min_capacity"]:
            raise VerifyError(
                f"auto scaling minimum reads back as {minimum}, expected {after['min_capacity']}"
            )

        def check(seen: ServiceCurrent) -> str | None:
            if seen["desired"] != after["desired"]:
                return f"desired count reads back as {seen['desired']}, expected {after['desired']}"
            return None

        seen = self._wait(target, check)
        return {"desired": seen["desired"], "min_capacity": minimum}

    def _range(self, target: str) -> tuple[int | None, int | None]:
        """The service's scalable target (min, max), or (None, None) when not registered."""
        found = self.clients("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs",
            ResourceIds=[scaling_resource_id(target)],
            ScalableDimension=SCALABLE_DIMENSION,
        )["ScalableTargets"]
        if not found:
            return None, None
        return int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"])


@register
class EcsRollback(_EcsAction[TaskDefinitionState]):
    """Roll an ECS service back to the previous task definition revision after a recent
    rollout."""

    name = "ecs-rollback"
    Params = EcsRollbackParams
    # A manual request may only narrow the window a rollout is suspected in.
    limits: ClassVar[dict[str, Limit]] = {"window_minutes": Limit.AT_MOST}
    permissions = (
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitions",
    )

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        service_parts(target)
        return [target]

    def read(self, target: str, params: EcsRollbackParams) -> ServiceCurrent:
        current = self._read(target, params)
        ecs = self.clients("ecs")
        live = current["task_definition"]
        described = ecs.describe_task_definition(taskDefinition=live)["taskDefinition"]
        family = described.get("family", "")
        revision = int(described.get("revision", 0))
        registered = described.get("registeredAt")
        current["registered"] = registered.astimezone(UTC).isoformat() if registered else None
        earlier: dict[int, str] = {}
        pages = ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE"
        )
        for page in pages:
            for arn in page.get("taskDefinitionArns", []):
                name, _, number = arn.rsplit("/", 1)[-1].rpartition(":")
                # familyPrefix matches prefixes: keep this family's own revisions only
                if name == family and number.isdigit() and int(number) < revision:
                    earlier[int(number)] = arn
        current["previous"] = earlier[max(earlier)] if earlier else None
        return current

    def plan(
        self, current: ServiceCurrent, params: EcsRollbackParams, now: datetime
    ) -> Plan[TaskDefinitionState]:
        return plan_ecs_rollback(current, params.window_minutes, now)

    def apply(self, target: str, plan: Plan[TaskDefinitionState]) -> None:
        cluster, service = service_parts(target)
        self.clients("ecs").update_service(
            cluster=cluster, service=service, taskDefinition=plan.after["task_definition"]
        )

    def verify(self, target: str, plan: Plan[TaskDefinitionState]) -> TaskDefinitionState:
        wanted = plan.after["task_definition"]

        def check(seen: ServiceCurrent) -> str | None:
            primary = _primary(seen)
            if seen["task_definition"] != wanted:
                return f"service runs {seen['task_definition']}, expected {wanted}"
            if primary is None or primary["task_definition"] != wanted:
                return f"no PRIMARY deployment of {wanted} yet"
            return None

        seen = self._wait(target, check)
        return {"task_definition": seen["task_definition"]}
