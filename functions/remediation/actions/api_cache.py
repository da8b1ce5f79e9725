"""api-cache: turn on a REST API stage's cache cluster when its latency alarm fires.

Runbook: OMNIX AI "High latency" -> "Enable API Gateway caching" (``update-stage`` with
``/cacheClusterEnabled`` true and ``/cacheClusterSize`` 0.5). With the cache on, API Gateway
answers GET requests from it (only GET methods cache by default, AWS's own safety choice:
this action leaves method settings alone).

Only for a stage its service marks ``cacheable: true`` in cdk.json: a cached answer can be
stale, and only the owner knows whether that is acceptable. The CDK app routes a latency
alarm here only for such a stage and refuses any other route to this action at synth.

Preconditions (escalate, change nothing): the cache cluster is being created, deleted or
flushed; the cache is already on (the cap: this action has nothing more to give, the latency
has another cause).

Verified means: the stage reads back with the cache enabled at the configured size and the
cluster ``CREATE_IN_PROGRESS`` or ``AVAILABLE``. AWS takes minutes to create a cluster: the
action does not wait for ``AVAILABLE`` (a remediator has two minutes); the notice says the
cluster is still being created. ``NOT_AVAILABLE`` or ``DELETE_IN_PROGRESS`` after the call
fails the verify.

Revert (from the audit record) turns the cache off again (``/cacheClusterEnabled`` false).

Approval: a cache costs by the hour and may serve stale data, so once approvals exist this
action's routes default to approval (``approval_by_default``); nothing reads it yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from ..errors import RejectedError
from .arns import REST_STAGE, parse_stage_arn
from .base import Action, ActionParams, Limit, Plan, VerifyError, register

if TYPE_CHECKING:
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef

#: the cache sizes API Gateway offers, in GB
CACHE_SIZES = (0.5, 1.6, 6.1, 13.5, 28.4, 58.2, 118.0, 237.0)
#: a cluster in these states is changing: wait for it, do not touch it
BUSY = frozenset({"CREATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "FLUSH_IN_PROGRESS"})
#: a cluster that reads back in these after the cache was turned on is there (or coming)
ENABLED_OK = frozenset({"CREATE_IN_PROGRESS", "AVAILABLE"})


def size_text(size_gb: float) -> str:
    """0.5 -> "0.5", 118.0 -> "118": the strings ``cacheClusterSize`` takes."""
    return f"{size_gb:g}"


@dataclass(frozen=True)
class CacheParams(ActionParams):
    #: the cluster's size, GB (one of ``CACHE_SIZES``); a manual request may ask less
    size_gb: float = 0.5

    def __post_init__(self) -> None:
        if self.size_gb not in CACHE_SIZES:
            raise ValueError(f"size_gb must be one of {list(CACHE_SIZES)}")


class CacheState(TypedDict):
    """The stage's cache: on or off, and its size while on (None when off)."""

    enabled: bool
    size: str | None


class CacheCurrent(CacheState):
    #: ``cacheClusterStatus`` (None when the stage has never had a cache)
    status: str | None


def plan_cache(current: CacheCurrent, params: CacheParams) -> Plan[CacheState]:
    """Pure: cache off -> on at the configured size; escalate when busy or already on."""
    before: CacheState = {"enabled": current["enabled"], "size": current["size"]}
    status = current.get("status")
    if status in BUSY:
        return Plan.escalate(f"the stage's cache cluster is {status}: wait for it", before)
    if current["enabled"]:
        return Plan.escalate(
            f"the stage's cache is already on ({current['size']} GB): the latency has "
            "another cause; a human decides",
            before,
        )
    size = size_text(params.size_gb)
    after: CacheState = {"enabled": True, "size": size}
    return Plan.change(
        f"enable the stage cache cluster ({size} GB; AWS takes minutes to create it)",
        before,
        after,
    )


@register
class ApiCache(Action[CacheParams, CacheCurrent, CacheState]):
    """Enable a cacheable REST API stage's cache cluster on a latency alarm."""

    name = "api-cache"
    Params = CacheParams
    permissions = ("apigateway:GET", "apigateway:PATCH")
    limits: ClassVar[dict[str, Limit]] = {"size_gb": Limit.AT_MOST}
    #: once approvals exist, a route to this action waits for a human by default
    approval_by_default: ClassVar[bool] = True

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        if parse_stage_arn(target).kind != REST_STAGE:
            raise RejectedError(f"api-cache takes REST API stages only: {target[:200]!r}")
        return [target]

    def read(self, target: str, params: CacheParams) -> CacheCurrent:
        stage = parse_stage_arn(target)
        found = self.clients("apigateway").get_stage(restApiId=stage.api_id, stageName=stage.stage)
        enabled = bool(found.get("cacheClusterEnabled"))
        return {
            "enabled": enabled,
            # AWS may report a size while the cache is off: only a running cache has one
            "size": found.get("cacheClusterSize") if enabled else None,
            "status": found.get("cacheClusterStatus"),
        }

    def plan(self, current: CacheCurrent, params: CacheParams, now: datetime) -> Plan[CacheState]:
        return plan_cache(current, params)

    def apply(self, target: str, plan: Plan[CacheState]) -> None:
        stage = parse_stage_arn(target)
        after = plan.after
        operations: list[PatchOperationTypeDef] = [
            {
                "op": "replace",
                "path": "/cacheClusterEnabled",
                "value": str(after["enabled"]).lower(),
            }
        ]
        if after["enabled"] and after["size"]:
            operations.append(
                {"op": "replace", "path": "/cacheClusterSize", "value": after["size"]}
            )
        self.clients("apigateway").update_stage(
            restApiId=stage.api_id, stageName=stage.stage, patchOperations=operations
        )

    def verify(self, target: str, plan: Plan[CacheState]) -> CacheState:
        seen = self.read(target, CacheParams())
        status = seen["status"]
        state: CacheState = {"enabled": seen["enabled"], "size": seen["size"]}
        if state != plan.after:
            raise VerifyError(f"the stage's cache reads back as {state}, expected {plan.after}")
        if plan.after["enabled"] and status not in ENABLED_OK:
            raise VerifyError(f"the cache is on but its cluster is {status}")
        return state
