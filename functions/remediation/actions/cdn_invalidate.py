"""cdn-invalidate: invalidate a CloudFront distribution's configured paths.

Runbooks: OMNIX AI "Clear CloudFront cache" and Nigredo's rollback steps
(``cloudfront create-invalidation --paths "/*"``) after a rollback of what the distribution
serves: without it, the edge keeps serving the bad version's answers until they expire.

It runs as a follow-up step (``remediation/followups.py``) of a route that names it: the
CDK app adds it, for each ``distribution`` service, to the rollback routes of the services
the distribution fronts (``origins``). Its target is the distribution's ARN,
``arn:PARTITION:cloudfront::ACCOUNT:distribution/ID`` (global: no region).

Cap: at most ``max_in_progress`` invalidations of the distribution in progress (CloudFront
itself limits wildcard paths in progress); more: escalate, create none.

Verified means CloudFront accepted the invalidation: ``GetInvalidation`` finds it
``InProgress`` or ``Completed`` with the paths asked (completing takes minutes; nothing
waits for it).

Not revertable: an invalidation removes cached copies, and nothing can put them back
(``read`` reports ``invalidation: "cannot be undone"``, so ``revert`` escalates).

Each ``distribution`` service's invalidation is also in the inventory: an engineer can run
it by hand (OMNIX "Clear CloudFront cache"), with the same cap.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypedDict

from ..errors import RejectedError
from ..targets import parse
from .base import Action, ActionParams, Limit, Plan, VerifyError, register

#: CloudFront: at most 3,000 paths per invalidation (15 with a wildcard in progress at once)
MAX_PATHS = 15


@dataclass(frozen=True)
class InvalidateParams(ActionParams):
    #: the paths to invalidate (each starts with "/"; "*" only at the end)
    paths: tuple[str, ...] = ("/*",)
    #: more invalidations of the distribution in progress than this: escalate (the cap)
    max_in_progress: int = 3

    def __post_init__(self) -> None:
        if not self.paths or len(self.paths) > MAX_PATHS:
            raise ValueError(f"paths must hold 1 to {MAX_PATHS} paths")
        for path in self.paths:
            if not path.startswith("/") or "*" in path[:-1]:
                raise ValueError(f"path {path!r} must start with '/' and end any '*'")
        if not 1 <= self.max_in_progress <= 15:
            raise ValueError("max_in_progress must be between 1 and 15")


class InvalidateCurrent(TypedDict):
    in_progress: int
    paths: list[str]
    #: what a revert compares with the record: an invalidation is never "as before"
    invalidation: str


class InvalidateState(TypedDict):
    """The paths, and the invalidation created for them (None before)."""

    paths: list[str]
    invalidation: str | None


def plan_invalidation(
    current: InvalidateCurrent, params: InvalidateParams
) -> Plan[InvalidateState]:
    """Pure: invalidate ``params.paths`` unless too many invalidations are in progress."""
    paths = sorted(params.paths)
    before: InvalidateState = {"paths": paths, "invalidation": None}
    if current["in_progress"] >= params.max_in_progress:
        return Plan.escalate(
            f"{current['in_progress']} invalidations of the distribution are in progress "
            f"(cap {params.max_in_progress}): not adding one",
            before,
        )
    after: InvalidateState = {"paths": paths, "invalidation": "requested"}
    return Plan.change(f"invalidate {', '.join(paths)}", before, after)


def distribution_id(target: str) -> str:
    found = parse(target)
    if found.service != "cloudfront" or found.resource_type != "distribution" or not found.name:
        raise RejectedError(f"not a CloudFront distribution ARN: {target[:200]!r}")
    return found.name


@register
class CdnInvalidate(Action[InvalidateParams, InvalidateCurrent, InvalidateState]):
    """Invalidate a CloudFront distribution's configured paths (a rollback's follow-up)."""

    name = "cdn-invalidate"
    not_revertable = "an invalidation cannot be undone: the cached copies it removed are gone"
    Params = InvalidateParams
    permissions = (
        "cloudfront:ListInvalidations",
        "cloudfront:CreateInvalidation",
        "cloudfront:GetInvalidation",
    )
    limits: ClassVar[dict[str, Limit]] = {"max_in_progress": Limit.AT_MOST}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._created: str | None = None

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        distribution_id(target)
        return [target]

    def read(self, target: str, params: InvalidateParams) -> InvalidateCurrent:
        cloudfront = self.clients("cloudfront")
        found = cloudfront.list_invalidations(DistributionId=distribution_id(target))
        items = (found.get("InvalidationList") or {}).get("Items") or []
        running = sum(1 for item in items if str(item.get("Status")).lower() == "inprogress")
        return {
            "in_progress": running,
            "paths": sorted(params.paths),
            "invalidation": "cannot be undone",
        }

    def plan(
        self, current: InvalidateCurrent, params: InvalidateParams, now: datetime
    ) -> Plan[InvalidateState]:
        return plan_invalidation(current, params)

    def apply(self, target: str, plan: Plan[InvalidateState]) -> None:
        if not plan.after.get("invalidation"):
            raise RejectedError("an invalidation cannot be undone: nothing to revert")
        paths = list(plan.after["paths"])
        created = self.clients("cloudfront").create_invalidation(
            DistributionId=distribution_id(target),
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": f"autorem-{uuid.uuid4().hex}",
            },
        )
        self._created = created["Invalidation"]["Id"]

    def verify(self, target: str, plan: Plan[InvalidateState]) -> InvalidateState:
        if self._created is None:
            raise VerifyError("no invalidation was created")
        found = self.clients("cloudfront").get_invalidation(
            DistributionId=distribution_id(target), Id=self._created
        )["Invalidation"]
        status = found.get("Status")
        # AWS says InProgress / Completed (moto: COMPLETED)
        if str(status).lower() not in ("inprogress", "completed"):
            raise VerifyError(f"invalidation {self._created} is {status}")
        seen = sorted(found["InvalidationBatch"]["Paths"].get("Items") or [])
        if seen != plan.after["paths"]:
            raise VerifyError(f"invalidation {self._created} holds {seen}, not the paths asked")
        return {"paths": seen, "invalidation": self._created}
