"""The ECS actions' parameters, states and pure plans: a service as read -> the change."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from ..base import ActionParams, Plan

RESTART_NOT_REVERTABLE = (
    "a restart cannot be reverted: it replaced the service's tasks with new ones of the same "
    "task definition; there is nothing to put back"
)


@dataclass(frozen=True)
class WaitParams(ActionParams):
    #: how long verify waits for the rollout to complete (running = desired)
    verify_seconds: int = 60
    #: seconds between reads while verify waits
    poll_seconds: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.verify_seconds <= 600:
            raise ValueError("verify_seconds must be between 0 and 600")
        if not 1 <= self.poll_seconds <= 60:
            raise ValueError("poll_seconds must be between 1 and 60")


@dataclass(frozen=True)
class RestartParams(WaitParams):
    """A restart takes only verify timing."""


@dataclass(frozen=True)
class ScaleParams(WaitParams):
    #: the desired count is multiplied by this (rounded up)
    factor: float = 2.0
    #: never more tasks than this (and never above the auto scaling maximum)
    max_count: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 < self.factor <= 10:
            raise ValueError("factor must be above 1 and at most 10")
        if not 1 <= self.max_count <= 1000:
            raise ValueError("max_count must be between 1 and 1000")


@dataclass(frozen=True)
class EcsRollbackParams(WaitParams):
    #: only roll back when the live revision was registered at most this long ago
    window_minutes: int = 60

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.window_minutes <= 7 * 24 * 60:
            raise ValueError("window_minutes must be between 1 and 10080")


class EcsDeployment(TypedDict):
    id: str
    status: str
    rollout: str | None
    task_definition: str
    desired: int
    running: int


class ServiceCurrent(TypedDict):
    """A service as read. ``deployment``: its PRIMARY deployment's id.
    ``min_capacity``/``max_capacity``: its Application Auto Scaling target's range (None when
    not registered, or not read). ``registered``: when the live task definition revision was
    registered (ISO 8601); ``previous``: the newest ACTIVE revision of its family before it
    (both only for a rollback)."""

    service: str
    status: str
    desired: int
    running: int
    task_definition: str
    deployment: str | None
    deployments: list[EcsDeployment]
    min_capacity: int | None
    max_capacity: int | None
    registered: str | None
    previous: str | None


class RestartState(TypedDict):
    """The task definition and the PRIMARY deployment (a plan's after-state: None, "a new
    one"); ``note``: why a restart is not revertable (read never returns one, so a revert
    never matches the record)."""

    task_definition: str
    deployment: str | None
    note: str | None


class ScaleState(TypedDict):
    desired: int
    min_capacity: int | None


class TaskDefinitionState(TypedDict):
    task_definition: str


def in_flight(current: ServiceCurrent) -> str | None:
    """Why a rollout is in flight, or None: more than one deployment, or the primary one not
    completed."""
    deployments = current["deployments"]
    if len(deployments) != 1:
        return f"{len(deployments)} deployments"
    rollout = deployments[0]["rollout"]
    if rollout not in (None, "COMPLETED"):
        return f"deployment {deployments[0]['id']} is {rollout}"
    return None


def _unusable(current: ServiceCurrent) -> str | None:
    if current["status"] != "ACTIVE":
        return f"service {current['service']} is {current['status']}, not ACTIVE"
    return None


def plan_restart(current: ServiceCurrent) -> Plan[RestartState]:
    """Pure: force a new deployment of the same task definition, or escalate."""
    before: RestartState = {
        "task_definition": current["task_definition"],
        "deployment": current["deployment"],
        "note": None,
    }
    why = _unusable(current)
    if why:
        return Plan.escalate(why, before)
    if current["desired"] < 1:
        return Plan.escalate(
            f"service {current['service']} wants 0 tasks: a restart starts nothing", before
        )
    busy = in_flight(current)
    if busy:
        return Plan.escalate(
            f"service {current['service']} has a rollout in flight ({busy}): not piling a "
            "restart on it",
            before,
        )
    replaced = current["deployments"][0]["id"]
    after: RestartState = {
        "task_definition": current["task_definition"],
        "deployment": None,
        "note": RESTART_NOT_REVERTABLE,
    }
    return Plan.change(
        f"restart service {current['service']}: new deployment replacing {replaced}",
        before,
        after,
    )


def scale_cap(current: ServiceCurrent, max_count: int) -> int:
    """The most tasks a scale may ask for: ``max_count``, and the auto scaling maximum."""
    if current["max_capacity"] is None:
        return max_count
    return min(max_count, current["max_capacity"])


def plan_scale(current: ServiceCurrent, factor: float, max_count: int) -> Plan[ScaleState]:
    """Pure: desired x factor (rounded up), capped; the scalable target's min raised with it."""
    before: ScaleState = {"desired": current["desired"], "min_capacity": current["min_capacity"]}
    why = _unusable(current)
    if why:
        return Plan.escalate(why, before)
    desired = current["desired"]
    if desired < 1:
        return Plan.escalate(
            f"service {current['service']} wants 0 tasks: scaled to zero on purpose?", before
        )
    busy = in_flight(current)
    if busy:
        return Plan.escalate(
            f"service {current['service']} has a rollout in flight ({busy}): scale after it",
            before,
        )
    cap = scale_cap(current, max_count)
    if desired >= cap:
        return Plan.escalate(
            f"service {current['service']} already wants {desired} tasks, at the cap {cap} "
            f"(max_count {max_count}, auto scaling maximum {current['max_capacity']})",
            before,
        )
    wanted = min(math.ceil(desired * factor), cap)
    minimum = current["min_capacity"]
    after: ScaleState = {
        "desired": wanted,
        "min_capacity": None if minimum is None else max(minimum, wanted),
    }
    capped = " (capped)" if wanted < math.ceil(desired * factor) else ""
    floor = "" if minimum is None else f", auto scaling min {minimum} -> {after['min_capacity']}"
    return Plan.change(
        f"scale service {current['service']}: desired {desired} -> {wanted}{capped}{floor}",
        before,
        after,
    )


def plan_ecs_rollback(
    current: ServiceCurrent, window_minutes: int, now: datetime
) -> Plan[TaskDefinitionState]:
    """Pure: back to the previous revision of the family when the live one is recent."""
    before: TaskDefinitionState = {"task_definition": current["task_definition"]}
    why = _unusable(current)
    if why:
        return Plan.escalate(why, before)
    live = current["task_definition"]
    registered = current["registered"]
    if registered is None:
        return Plan.escalate(f"cannot tell when {live} was registered", before)
    try:
        at = datetime.fromisoformat(registered)
    except ValueError:
        return Plan.escalate(f"cannot read when {live} was registered: {registered!r}", before)
    if at.tzinfo is None or now - at > timedelta(minutes=window_minutes):
        return Plan.escalate(
            f"{live} was registered at {registered}, more than {window_minutes} min ago: "
            "no recent rollout to blame",
            before,
        )
    previous = current["previous"]
    if previous is None:
        return Plan.escalate(f"{live} has no earlier ACTIVE revision to go back to", before)
    after: TaskDefinitionState = {"task_definition": previous}
    return Plan.change(
        f"roll back service {current['service']}: {_short(live)} -> {_short(previous)}",
        before,
        after,
    )


def _short(task_definition: str) -> str:
    """``arn:...:task-definition/web:7`` -> ``web:7``."""
    return task_definition.rsplit("/", 1)[-1]
