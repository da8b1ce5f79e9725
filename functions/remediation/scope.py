"""Scope: may this event touch this target? One place decides, for every action and path.

A deployment (one environment of the suite) has authority over its own account, in its own
partition and region, plus any region its configuration explicitly serves (CLOUDFRONT-scope
WAF lives in us-east-1). A hub (an environment with ``organization.spokes``) also has
authority over each enrolled spoke account, in that spoke's regions, and nowhere else.

``check_target`` refuses any ARN outside that, and, given the event's account, any ARN of
another account: an alarm of spoke A never changes spoke B (nor the hub). ``check_request``
refuses an alarm (SNS message, EventBridge event or direct alarm action: the account and
region it claims beside its ARN must agree with it) of an account or region not enrolled, or
a budget notice from elsewhere. Both raise ``ScopeError`` (a ``RejectedError``), so the
pipeline records, notifies and changes nothing.

Callers: the pipeline (every alarm, budget and manual request, before anything is read),
``ActionContext.for_target`` (so a revert's recorded target and the sweeper's IP sets pass
the same check), and the CDK app at synth (a config naming another account fails early).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .models import RejectedError, Request, Source
from .targets import GLOBAL_SERVICES, Target, parse, parse_all

_BUDGET_ACCOUNT = re.compile(r"^\s*AWS Account:?\s*(?P<account>\d{12})\s*$", re.MULTILINE)


class ScopeError(RejectedError):
    """The event or its target is outside this deployment's account, region or partition."""


@dataclass(frozen=True)
class Deployment:
    """Where this suite has authority: one account and partition, its region and any others
    the environment explicitly serves; for a hub, also each enrolled spoke account in its
    own regions (``spokes``: account -> regions)."""

    account: str
    region: str
    partition: str = "aws"
    extra_regions: frozenset[str] = field(default_factory=frozenset)
    spokes: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)

    @property
    def regions(self) -> frozenset[str]:
        return frozenset({self.region, *self.extra_regions})

    def regions_of(self, account: str) -> frozenset[str] | None:
        """The regions this deployment serves in ``account``; None if it is not enrolled."""
        if account == self.account:
            return self.regions
        return self.spokes.get(account)

    def is_spoke(self, account: str) -> bool:
        return account != self.account and account in self.spokes

    def check_target(self, target: str, account: str | None = None) -> list[Target]:
        """Every ARN in ``target``, parsed; ``ScopeError`` if any is outside the deployment,
        or, with ``account`` (the event's), in any other account than that one."""
        parsed = parse_all(target, default_account=account or self.account)
        for one in parsed:
            problems = []
            if one.partition != self.partition:
                problems.append(f"partition {one.partition}, not {self.partition}")
            regions = self.regions_of(one.account)
            if account is not None and one.account != account:
                problems.append(f"account {one.account}, not the event's account {account}")
            elif regions is None:
                problems.append(self._not_enrolled(one.account))
            # a global resource (a CloudFront distribution) has no region: its account
            # and partition still decide (``targets.parse`` refuses one that names a region)
            served = regions or frozenset()
            if one.region not in served and one.service not in GLOBAL_SERVICES and regions:
                shown = ", ".join(sorted(served))
                problems.append(f"region {one.region or '(none)'}, not {shown}")
            if problems:
                raise ScopeError(
                    f"target {one.arn[:200]!r} is outside this deployment: {'; '.join(problems)}"
                )
        return parsed

    def _not_enrolled(self, account: str) -> str:
        spokes = " nor an enrolled spoke" if self.spokes else ""
        return f"account {account}, not {self.account}{spokes}"

    def check_request(self, request: Request) -> None:
        """``ScopeError`` unless an alarm or budget notice comes from this deployment."""
        if request.source is Source.ALARM:
            self._check_alarm(request)
        elif request.source is Source.BUDGET:
            self._check_budget(request)

    def _check_alarm(self, request: Request) -> None:
        alarm = parse(request.requested_by)
        claimed = request.details.get("account_id")
        region_code = request.details.get("region_code")
        problems = []
        # An EventBridge event always names its account and region beside the alarm ARN
        # (resources[0]); the SNS message names only the account.
        its = "its"
        if request.details.get("delivery") == "eventbridge":
            its = "its EventBridge"
            if claimed is None or region_code is None:
                problems.append("its EventBridge envelope names no account or region")
        if claimed is not None and claimed != alarm.account:
            problems.append(f"{its} account id {str(claimed)[:20]!r} disagrees with its ARN")
        if region_code is not None and region_code != alarm.region:
            problems.append(f"{its} region {str(region_code)[:20]!r} disagrees with its ARN")
        if alarm.partition != self.partition:
            problems.append(f"partition {alarm.partition}, not {self.partition}")
        regions = self.regions_of(alarm.account)
        if regions is None:
            problems.append(self._not_enrolled(alarm.account))
        # An alarm of a region the environment explicitly serves (AWS/Billing and
        # CloudFront metrics exist only in us-east-1) is confirmed in that region.
        elif alarm.region not in regions:
            problems.append(f"region {alarm.region}, not {', '.join(sorted(regions))}")
        if problems:
            raise ScopeError(
                f"alarm {request.key[:100]!r} is not this deployment's: {'; '.join(problems)}"
            )

    def _check_budget(self, request: Request) -> None:
        notice = str(request.details.get("notice", ""))
        found = _BUDGET_ACCOUNT.search(notice)
        if found is None:
            raise ScopeError(
                f"budget notice {request.key[:100]!r} names no AWS account: "
                "cannot tell it is this deployment's"
            )
        if found["account"] != self.account:
            raise ScopeError(
                f"budget notice {request.key[:100]!r} is for account {found['account']}, "
                f"not {self.account}"
            )
