"""containment: shut the door during a security incident, by a human's request only.

Runbook: OMNIX AI "Critical Security Response" -> "Immediate containment": throttle the API
stage to (almost) nothing, or switch the WAF web ACL's default action to Block.

Never automatic (``automatic = False``): the pipeline rejects an alarm or budget request for
it wherever it comes from, and the CDK app refuses to route an alarm or budget to it. Its
parameters are fixed by configuration: a manual request cannot change the floor.

``kind``:

- ``stage-throttle``: a REST API stage (``.../restapis/ID/stages/S``) -> its stage-wide
  (``*/*``) rate and burst limits set to ``rate_limit`` / ``burst_limit`` (the floor;
  0 rejects every request with 429). Already at or below the floor: nothing to do.
- ``web-acl-block``: a WAFv2 web ACL (``...:regional|global/webacl/NAME/ID``) -> its default
  action Block. ``UpdateWebACL`` replaces every mutable setting of the ACL with what the call
  sends, so the action reads the ACL (``GetWebACL``, with its ``LockToken``) and sends every
  setting back as read, the default action alone changed. Another change between the read
  and the write fails the call (``WAFOptimisticLockException``): recorded failed, nothing
  half-done. Already Block: nothing to do.

Revert restores the exact previous settings: the recorded rate and burst (a stage without a
throttle of its own gets -1 back, API Gateway's "not set"), or the recorded default action
as it was (Allow with its custom request handling, if any).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from ..errors import RejectedError
from ..targets import parse
from .arns import REST_STAGE, parse_stage_arn
from .base import Action, ActionParams, Plan, VerifyError, register

if TYPE_CHECKING:
    from mypy_boto3_wafv2 import WAFV2Client
    from mypy_boto3_wafv2.type_defs import UpdateWebACLRequestTypeDef

STAGE_THROTTLE = "stage-throttle"
WEB_ACL_BLOCK = "web-acl-block"
KINDS = (STAGE_THROTTLE, WEB_ACL_BLOCK)
#: API Gateway's value for "no throttle of this method setting's own"
UNSET = -1
#: CLOUDFRONT-scope WAF is managed in this region
GLOBAL_WAF_REGION = "us-east-1"


@dataclass(frozen=True)
class ContainmentParams(ActionParams):
    #: which door to shut (see the module docstring)
    kind: str
    #: stage-throttle: requests per second and burst the stage is held to
    rate_limit: float = 0.0
    burst_limit: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, not {self.kind!r}")
        if self.rate_limit < 0 or self.burst_limit < 0:
            raise ValueError("rate_limit and burst_limit must be at least 0")
        # JSON's 0 is an int: the stage reads back a float rate
        object.__setattr__(self, "rate_limit", float(self.rate_limit))


class ContainmentState(TypedDict, total=False):
    """stage-throttle: ``rate_limit``/``burst_limit`` (None: not set); web-acl-block:
    ``default_action`` exactly as WAF returns it (``{"Allow": {...}}`` or ``{"Block": {}}``)."""

    kind: str
    rate_limit: float | None
    burst_limit: int | None
    default_action: dict[str, Any]


def plan_containment(
    current: ContainmentState, params: ContainmentParams
) -> Plan[ContainmentState]:
    """Pure: the stage held to the floor, or the web ACL's default action Block."""
    before = current
    if params.kind == STAGE_THROTTLE:
        rate, burst = current.get("rate_limit"), current.get("burst_limit")
        floor_rate, floor_burst = params.rate_limit, params.burst_limit
        if _at_most(rate, floor_rate) and _at_most(burst, floor_burst):
            return Plan.noop(f"the stage is already held to {rate}/s burst {burst}", before)
        after: ContainmentState = {
            "kind": STAGE_THROTTLE,
            "rate_limit": floor_rate,
            "burst_limit": floor_burst,
        }
        return Plan.change(
            f"contain: stage throttle {rate}/s burst {burst} -> {floor_rate}/s burst {floor_burst}",
            before,
            after,
        )
    action = current.get("default_action") or {}
    if "Block" in action:
        return Plan.noop("the web ACL's default action is Block already", before)
    blocked: ContainmentState = {"kind": WEB_ACL_BLOCK, "default_action": {"Block": {}}}
    return Plan.change(
        f"contain: web ACL default action {'/'.join(sorted(action)) or 'none'} -> Block",
        before,
        blocked,
    )


def _at_most(value: float | None, floor: float) -> bool:
    # None or -1: no throttle of the stage's own, so not held at all
    return value is not None and 0 <= value <= floor


def web_acl_update(
    found: Mapping[str, Any], lock_token: str, default_action: dict[str, Any], client: Any
) -> UpdateWebACLRequestTypeDef:
    """Pure: the UpdateWebACL request that sends ``found`` (GetWebACL's ``WebACL``) back
    unchanged but for its default action. Every mutable setting the API model lists is
    copied: whatever the call leaves out, WAF deletes."""
    members = client.meta.service_model.operation_model("UpdateWebACL").input_shape.members
    request: dict[str, Any] = {
        name: found[name]
        for name in members
        if name in found and name not in ("DefaultAction", "LockToken")
    }
    request["DefaultAction"] = default_action
    request["LockToken"] = lock_token
    return request  # type: ignore[return-value]


@register
class Containment(Action[ContainmentParams, ContainmentState, ContainmentState]):
    """Hold a REST stage to a throttle floor or switch a web ACL's default action to
    Block: by a human's request only, never automatic."""

    name = "containment"
    Params = ContainmentParams
    automatic = False
    permissions = ("apigateway:GET", "apigateway:PATCH", "wafv2:GetWebACL", "wafv2:UpdateWebACL")

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        kind = (params or {}).get("kind")
        if target.startswith("arn:") and ":apigateway:" in target:
            if parse_stage_arn(target).kind != REST_STAGE or kind not in (None, STAGE_THROTTLE):
                raise RejectedError(f"stage-throttle takes a REST API stage: {target[:200]!r}")
            return [target]
        parsed = parse(target)
        if parsed.service != "wafv2" or parsed.resource_type != "webacl":
            raise RejectedError(f"containment takes a REST stage or a web ACL: {target[:200]!r}")
        if kind not in (None, WEB_ACL_BLOCK):
            raise RejectedError(f"web-acl-block takes a WAFv2 web ACL: {target[:200]!r}")
        return [target]

    def read(self, target: str, params: ContainmentParams) -> ContainmentState:
        self.resources(target, {"kind": params.kind})
        if params.kind == STAGE_THROTTLE:
            return self._read_stage(target)
        found = self._get_acl(target)["WebACL"]
        return {"kind": WEB_ACL_BLOCK, "default_action": dict(found["DefaultAction"])}

    def plan(
        self, current: ContainmentState, params: ContainmentParams, now: datetime
    ) -> Plan[ContainmentState]:
        return plan_containment(current, params)

    def apply(self, target: str, plan: Plan[ContainmentState]) -> None:
        after = plan.after
        if after.get("kind") == STAGE_THROTTLE:
            stage = parse_stage_arn(target)
            rate, burst = after.get("rate_limit"), after.get("burst_limit")
            self.clients("apigateway").update_stage(
                restApiId=stage.api_id,
                stageName=stage.stage,
                patchOperations=[
                    {
                        "op": "replace",
                        "path": "/*/*/throttling/rateLimit",
                        "value": str(UNSET if rate is None else rate),
                    },
                    {
                        "op": "replace",
                        "path": "/*/*/throttling/burstLimit",
                        "value": str(UNSET if burst is None else burst),
                    },
                ],
            )
            return
        waf, ref = self._waf(target)
        got = self._get_acl(target)
        request = web_acl_update(
            got["WebACL"], got["LockToken"], dict(after["default_action"]), waf
        )
        waf.update_web_acl(**{**request, "Scope": ref[0], "Name": ref[1], "Id": ref[2]})

    def verify(self, target: str, plan: Plan[ContainmentState]) -> ContainmentState:
        seen = self.read(target, ContainmentParams(kind=plan.after.get("kind", STAGE_THROTTLE)))
        wanted = dict(plan.after)
        if wanted.get("kind") == STAGE_THROTTLE:
            # "not set" goes back as -1 and reads back as -1 or absent: both are None here
            wanted = {**wanted, **{k: _none(wanted.get(k)) for k in ("rate_limit", "burst_limit")}}
        if dict(seen) != wanted:
            raise VerifyError(f"reads back as {seen}, expected {plan.after}")
        return seen

    # -- reads ------------------------------------------------------------------------------

    def _read_stage(self, target: str) -> ContainmentState:
        stage = parse_stage_arn(target)
        found = self.clients("apigateway").get_stage(restApiId=stage.api_id, stageName=stage.stage)
        settings = (found.get("methodSettings") or {}).get("*/*") or {}
        rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
        return {
            "kind": STAGE_THROTTLE,
            "rate_limit": _none(float(rate) if rate is not None else None),
            "burst_limit": _none(int(burst) if burst is not None else None),
        }

    def _waf(self, target: str) -> tuple[WAFV2Client, tuple[Any, str, str]]:
        parsed = self.ctx.targets[0] if self.ctx.targets else parse(target)
        scope = parsed.scope or "REGIONAL"
        region = GLOBAL_WAF_REGION if scope == "CLOUDFRONT" else parsed.region
        default = self.clients("wafv2")
        waf = (
            default if default.meta.region_name == region else self.clients("wafv2", region=region)
        )
        return waf, (scope, parsed.name, parsed.qualifier or "")

    def _get_acl(self, target: str) -> Any:
        waf, (scope, name, acl_id) = self._waf(target)
        return waf.get_web_acl(Scope=scope, Name=name, Id=acl_id)


def _none(value: Any) -> Any:
    """API Gateway's -1 ("not set") as None."""
    return None if value is not None and value < 0 else value
