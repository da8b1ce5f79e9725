"""rollback's parameters, states and pure plans: what is live now -> what to go back to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NotRequired, TypedDict

from ..arns import HTTP_STAGE, LAMBDA_ALIAS, REST_STAGE
from ..base import ActionParams, Plan


@dataclass(frozen=True)
class RollbackParams(ActionParams):
    #: only roll back when what is live went live at most this long ago
    window_minutes: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.window_minutes <= 7 * 24 * 60:
            raise ValueError("window_minutes must be between 1 and 10080")


class Deployment(TypedDict):
    """One deployment of an API: its id, when it was created (ISO 8601) and, for HTTP APIs,
    its status."""

    id: str
    created: str | None
    status: NotRequired[str | None]


class AliasCurrent(TypedDict):
    """A Lambda alias as read: its primary version, the weights of any other versions, when
    the primary was published, the newest version before it, and when each weighted version
    was published."""

    kind: Literal["lambda-alias"]
    version: str
    weights: dict[str, float]
    live_since: str | None
    previous: str | None
    published: dict[str, str | None]


class RestStageCurrent(TypedDict):
    kind: Literal["rest-stage"]
    stage: str
    #: every stage of the API (its deployments are theirs too)
    stages: list[str]
    deployment_id: str | None
    canary_percent: float
    deployments: list[Deployment]


class HttpStageCurrent(TypedDict):
    kind: Literal["http-stage"]
    stage: str
    stages: list[str]
    deployment_id: str | None
    auto_deploy: bool
    deployments: list[Deployment]


class AliasState(TypedDict):
    version: str
    weights: dict[str, float]


class RestStageState(TypedDict):
    deployment_id: str | None


class HttpStageState(TypedDict):
    deployment_id: str | None
    auto_deploy: bool


RollbackCurrent = AliasCurrent | RestStageCurrent | HttpStageCurrent
RollbackState = AliasState | RestStageState | HttpStageState
StageCurrent = RestStageCurrent | HttpStageCurrent


def plan_alias_rollback(
    current: AliasCurrent, window_minutes: int, now: datetime
) -> Plan[AliasState]:
    """Pure decision for a Lambda alias (see the package docstring).

    ``current``: ``{"version": primary, "weights": {version: weight}, "live_since": when the
    primary was published, "previous": the newest published version before the primary,
    "published": {version: when published} for the versions the weights name}``.
    """
    weights = {str(v): float(w) for v, w in current["weights"].items()}
    before: AliasState = {"version": current["version"], "weights": weights}
    if weights:
        return _plan_canary_rollback(current, before, window_minutes, now)
    live_since = current.get("live_since")
    if live_since is None:
        return Plan.escalate("cannot tell when the live version was published", before)
    outside = _outside_window(live_since, window_minutes, now)
    if outside:
        return Plan.escalate(
            f"live version {current['version']} went live {outside}: no recent deploy to blame",
            before,
        )
    previous = current.get("previous")
    if previous is None:
        return Plan.escalate(f"version {current['version']} has no predecessor", before)
    after: AliasState = {"version": previous, "weights": {}}
    return Plan.change(f"alias {current['version']} -> {previous}", before, after)


def _plan_canary_rollback(
    current: AliasCurrent, before: AliasState, window_minutes: int, now: datetime
) -> Plan[AliasState]:
    """A weighted alias: drop the weight and keep the primary, only in the normal canary shape
    (one newer version, published within the window, takes the weight)."""
    primary, weights = before["version"], before["weights"]
    shown = ", ".join(f"{v} ({_percent(w)})" for v, w in sorted(weights.items()))
    if len(weights) > 1:
        return Plan.escalate(
            f"the alias routes weights to {len(weights)} versions ({shown}) besides "
            f"{primary}: cannot tell which one is stable",
            before,
        )
    ((canary, weight),) = weights.items()
    if not (primary.isdigit() and canary.isdigit()):
        return Plan.escalate(
            f"the alias serves {primary} with {canary} weighted in: not both published "
            "version numbers, so which came first cannot be told",
            before,
        )
    if int(canary) <= int(primary):
        return Plan.escalate(
            f"weighted version {canary} ({_percent(weight)}) is not newer than the primary "
            f"{primary}: not a canary of a new version (a rollback or shift in progress?); "
            "which one is stable needs a human",
            before,
        )
    published = (current.get("published") or {}).get(canary)
    if published is None:
        return Plan.escalate(f"cannot tell when canary version {canary} was published", before)
    outside = _outside_window(published, window_minutes, now)
    if outside:
        return Plan.escalate(
            f"canary version {canary} was published {outside}: no recent deploy to blame",
            before,
        )
    return Plan.change(
        f"drop canary version {canary} ({_percent(weight)} of traffic): all traffic to "
        f"version {primary}",
        before,
        {"version": primary, "weights": {}},
    )


def _outside_window(since: str, window_minutes: int, now: datetime) -> str:
    """'N min ago, outside the W min window' if ``since`` is older than the window; else ''."""
    age = now - datetime.fromisoformat(since)
    if age <= timedelta(minutes=window_minutes):
        return ""
    minutes = int(age.total_seconds() // 60)
    return f"{minutes} min ago, outside the {window_minutes} min window"


def _percent(weight: float) -> str:
    return f"{weight * 100:g} %"


def previous_deployment(
    live_id: str, deployments: list[Deployment], window_minutes: int, now: datetime
) -> tuple[str | None, str]:
    """Pure: the deployment to go back to, or (None, why not).

    ``deployments`` are ``{"id", "created" (ISO 8601 or None), "status" (optional)}``; only
    those without a status or with status ``DEPLOYED`` can be gone back to. Two deployments
    created in the same second cannot be ordered (the API gives whole seconds): escalate.
    """
    usable = [
        d
        for d in deployments
        if d.get("created") and d.get("status") in (None, "DEPLOYED") and d["id"] != live_id
    ]
    live = next((d for d in deployments if d["id"] == live_id), None)
    live_created = live.get("created") if live else None
    if not live_created:
        return None, f"cannot tell when deployment {live_id} was created"
    live_at = datetime.fromisoformat(live_created)
    age = now - live_at
    if age > timedelta(minutes=window_minutes):
        minutes = int(age.total_seconds() // 60)
        return None, (
            f"live deployment {live_id} went live {minutes} min ago, outside the "
            f"{window_minutes} min window: no recent deploy to blame"
        )
    created = {d["id"]: datetime.fromisoformat(d["created"] or "") for d in usable}
    same_time = sorted(i for i, at in created.items() if at == live_at)
    if same_time:
        return None, (
            f"deployment(s) {', '.join(same_time)} were created in the same second as the live "
            f"{live_id}: cannot tell which came first"
        )
    earlier = {i: at for i, at in created.items() if at < live_at}
    if not earlier:
        return None, f"deployment {live_id} has no predecessor"
    newest = max(earlier.values())
    candidates = sorted(i for i, at in earlier.items() if at == newest)
    if len(candidates) > 1:
        return None, (
            f"deployments {', '.join(candidates)} were created in the same second: "
            "cannot tell which was live before"
        )
    return candidates[0], ""


def _shared_history(current: StageCurrent) -> str:
    """Why the API's deployments are not this stage's own history, or ''.

    GetDeployments lists the deployments of every stage: only when the stage is the API's
    only one is that list its history. ``current["stages"]`` names every stage of the API.
    """
    stages: list[str] | None = current.get("stages")
    if stages is None:
        return "cannot tell which stages the API has: its deployments may be another stage's"
    others = sorted(s for s in stages if s != current["stage"])
    if not others:
        return ""
    shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
    return (
        f"the API has other stages ({shown}) besides {current['stage']}: API Gateway keeps no "
        "deployment history per stage, so the deployment this stage ran before cannot be "
        "known; roll it back by hand"
    )


def plan_rest_stage_rollback(
    current: RestStageCurrent, window_minutes: int, now: datetime
) -> Plan[RestStageState]:
    """Pure decision for an API Gateway REST stage (see the package docstring)."""
    live = current["deployment_id"]
    before: RestStageState = {"deployment_id": live}
    if not live:
        return Plan.escalate("the stage has no deployment", before)
    if current.get("canary_percent"):
        # Rolling back under a live canary would change what two deployments serve at once.
        return Plan.escalate(
            f"a canary takes {current['canary_percent']} % of the stage's traffic: "
            "promote or remove it by hand",
            before,
        )
    shared = _shared_history(current)
    if shared:
        return Plan.escalate(shared, before)
    previous, why = previous_deployment(live, current["deployments"], window_minutes, now)
    if previous is None:
        return Plan.escalate(why, before)
    return Plan.change(
        f"stage deployment {live} -> {previous}", before, {"deployment_id": previous}
    )


def plan_http_stage_rollback(
    current: HttpStageCurrent, window_minutes: int, now: datetime
) -> Plan[HttpStageState]:
    """Pure decision for an HTTP API stage (see the package docstring)."""
    live = current["deployment_id"]
    before: HttpStageState = {"deployment_id": live, "auto_deploy": current["auto_deploy"]}
    if not live:
        return Plan.escalate("the stage has no deployment", before)
    shared = _shared_history(current)
    if shared:
        return Plan.escalate(shared, before)
    previous, why = previous_deployment(live, current["deployments"], window_minutes, now)
    if previous is None:
        return Plan.escalate(why, before)
    summary = f"stage deployment {live} -> {previous}"
    if current["auto_deploy"]:
        summary += " and auto-deploy off (the next API change would redeploy the suspect)"
    return Plan.change(summary, before, {"deployment_id": previous, "auto_deploy": False})


def plan_rollback(
    current: RollbackCurrent, window_minutes: int, now: datetime
) -> Plan[RollbackState]:
    """The plan for whichever kind of target ``current`` was read from."""
    if current["kind"] == LAMBDA_ALIAS:
        return plan_alias_rollback(current, window_minutes, now)
    if current["kind"] == REST_STAGE:
        return plan_rest_stage_rollback(current, window_minutes, now)
    return plan_http_stage_rollback(current, window_minutes, now)


__all__ = ["HTTP_STAGE", "LAMBDA_ALIAS", "REST_STAGE"]
