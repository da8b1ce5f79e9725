"""revert: undo one executed action from its audit record, by manual request.

Request: ``{"action": "revert", "target": "<audit id>", "reason": ..., "requested_by": ...}``.
The target is an audit id, not an inventory entry (``Playbook.resolve`` lets it through);
the record itself must name an action and target in this remediator's inventory.

The revert runs the ORIGINAL action's ``apply``/``verify`` with the plan
current state -> the record's before-state (every action's ``apply`` makes its target look
like ``plan.after``: that contract is what makes this generic). It escalates and changes
nothing when:

- there is no such record, it is itself a revert, or it is not ``executed``;
- its action cannot be undone (the action's ``not_revertable`` says why: a failover, a
  restart, a cache invalidation), checked here once for every action, before any read;
- its action and target are not in this remediator's inventory;
- the target changed since: what the original action reads now differs from the record's
  after-state (compared on the after-state's keys). Reverting over someone else's change
  would silently undo it.

Already as before (reverted before): skip. The revert's own audit record keeps
``{"action", "target", "state"}`` as its before and after, so it says what was reverted.
A revert cannot itself be reverted: ask for the original action again.

Permissions: ``dynamodb:GetItem`` on the audit table, plus each reverted action's own
permissions on its inventory targets (the CDK app grants those; ``resources`` is empty
because an audit id names no AWS resource).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from ..errors import RejectedError
from ..models import Outcome, Route
from .base import REGISTRY, Action, ActionParams, AnyAction, Plan, get_action, register

if TYPE_CHECKING:
    from ..audit import AuditRecord

_AUDIT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class RevertParams(ActionParams):
    """No parameters: what to undo and how come from the audit record."""


class RevertCurrent(TypedDict):
    """The record to revert and the original target's state now; or why not (``refusal``)."""

    audit_id: str
    refusal: NotRequired[str]
    action: NotRequired[str]
    target: NotRequired[str]
    record_before: NotRequired[dict[str, Any]]
    record_after: NotRequired[dict[str, Any]]
    state: NotRequired[dict[str, Any]]
    #: the account the record acted in (a hub's record); absent: the deployment's own
    account: NotRequired[str]


class RevertState(TypedDict, total=False):
    """The revert's before/after: which action on which target, and that action's own state
    (its keys are the original action's: any of them)."""

    action: str
    target: str
    state: dict[str, Any]
    account: str


def plain(value: Any) -> Any:
    """``value`` as it looks after a round trip through the audit record (JSON)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def refusal(
    audit_id: str,
    record: AuditRecord | None,
    inventory: Mapping[tuple[str, str], Route],
) -> str | None:
    """Pure: why ``record`` cannot be reverted, or None."""
    if record is None:
        return f"no audit record {audit_id}"
    action, target = record.get("action"), record.get("target")
    if action == Revert.name:
        return f"audit {audit_id} is itself a revert: request the original action again"
    if (action, target) not in inventory:
        return (
            f"audit {audit_id} records {action} on {target}, which is not in this "
            "remediator's inventory"
        )
    if record.get("outcome") != Outcome.EXECUTED:
        return (
            f"audit {audit_id} is {record.get('outcome')}, not executed: "
            "only executed actions can be reverted"
        )
    original = REGISTRY.get(str(action))
    if original is not None and original.not_revertable:
        return f"audit {audit_id} records {action}: {original.not_revertable}"
    if not isinstance(record.get("before_state"), dict) or not isinstance(
        record.get("after_state"), dict
    ):
        return f"audit {audit_id} holds no before/after state"
    return None


def plan_revert(current: RevertCurrent) -> Plan[RevertState]:
    """Pure: the original target's state now + the record -> back to the record's before."""
    audit_id = current["audit_id"]
    if current.get("refusal"):
        return Plan.escalate(current["refusal"], {})
    state, was, left = current["state"], current["record_before"], current["record_after"]
    action, target = current["action"], current["target"]

    def wrap(values: dict[str, Any]) -> RevertState:
        found: RevertState = {"action": action, "target": target, "state": values}
        if current.get("account"):
            found["account"] = current["account"]
        return found

    now = {key: state.get(key) for key in left}
    if {key: state.get(key) for key in was} == was:
        return Plan.noop(f"{target} is already as it was before audit {audit_id}", wrap(now))
    if now != left:
        return Plan.escalate(
            f"{target} changed since audit {audit_id}: it is now {_compact(now)}, the "
            f"record left it at {_compact(left)}; not reverting over that change",
            wrap(now),
        )
    return Plan.change(
        f"revert {action} of audit {audit_id} on {target}: {_compact(left)} -> {_compact(was)}",
        wrap(now),
        wrap(was),
    )


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def check_audit_id(target: str) -> str:
    if not _AUDIT_ID.match(target):
        raise RejectedError(
            f"revert target must be an audit id (32 hex digits), got {target[:80]!r}"
        )
    return target


@register
class Revert(Action[RevertParams, RevertCurrent, RevertState]):
    """Undo an executed action from its audit record's before-state, by manual request."""

    name = "revert"
    Params = RevertParams
    target_is_arn = False
    permissions = ("dynamodb:GetItem",)

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        check_audit_id(target)
        return []

    def read(self, target: str, params: RevertParams) -> RevertCurrent:
        audit_id = check_audit_id(target)
        record = self.audit.get(audit_id)
        why = refusal(audit_id, record, self.inventory)
        if why is not None:
            return {"audit_id": audit_id, "refusal": why}
        assert record is not None
        account = record.get("account")
        try:
            original = self._build(record["action"], record["target"], account)
        except RejectedError as exc:
            return {"audit_id": audit_id, "refusal": f"audit {audit_id}: {exc.reason}"}
        try:
            original_params = original.Params.from_dict(record.get("params") or {})
        except RejectedError as exc:
            why = f"audit {audit_id}: its parameters no longer parse ({exc.reason})"
            return {"audit_id": audit_id, "refusal": why}
        current: RevertCurrent = {
            "audit_id": audit_id,
            "action": record["action"],
            "target": record["target"],
            "record_before": record["before_state"],
            "record_after": record["after_state"],
            "state": plain(original.read(record["target"], original_params)),
        }
        if account:
            current["account"] = account
        return current

    def plan(
        self, current: RevertCurrent, params: RevertParams, now: datetime
    ) -> Plan[RevertState]:
        return plan_revert(current)

    def apply(self, target: str, plan: Plan[RevertState]) -> None:
        original, inner = self._original(plan)
        original.apply(plan.after["target"], inner)

    def verify(self, target: str, plan: Plan[RevertState]) -> RevertState:
        original, inner = self._original(plan)
        seen = original.verify(plan.after["target"], inner)
        return {**plan.after, "state": plain(seen)}

    def _original(self, plan: Plan[RevertState]) -> tuple[AnyAction, Plan[Any]]:
        after = plan.after
        original = self._build(after["action"], after["target"], after.get("account"))
        inner = Plan.change(plan.summary, plan.before["state"], plan.after["state"])
        return original, inner

    def _build(self, action: str, target: str, account: str | None) -> AnyAction:
        """The original action, built like any other: its target passes the scope check, in
        the account the record acted in."""
        ctx = dataclasses.replace(self.ctx, account=account) if account else self.ctx
        return get_action(action)(ctx.for_target(target))
