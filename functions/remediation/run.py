"""One delivery past its opened audit record: what it asks, how far it got, and the result
it makes. The pipeline (``pipeline.py``) and the holds (``holds.py``) pass it along."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .actions.base import ActionParams, AnyAction, Plan
from .approvals import Approval
from .clients import error_code
from .models import Outcome, Request, Result, Route


@dataclass
class Run:
    """One delivery past its opened record: what it asks, and how far it got."""

    request: Request
    route: Route
    action: AnyAction
    params: ActionParams
    audit_id: str
    #: when the action looks at the guards, plans and claims (one time for all three)
    now: datetime | None = None
    plan: Plan[Any] | None = None
    #: the guards were claimed with the record (``Pipeline._open``): given back unless it
    #: executes
    claimed: bool = False
    #: the silence the record's transaction found on the target (the hold step holds the
    #: change)
    silenced: str | None = None
    #: the cooldown or breaker that refused the claim (escalates before the change)
    blocked: str | None = None
    #: the approval a decision request used (``holds.admit``)
    approval: Approval | None = None
    #: CloudWatch confirmed this OK transition: the incident it ends may be resolved
    resolves: bool = False

    @property
    def account(self) -> str | None:
        """The account the action acts in, as its record names it (a hub's): the route's
        (a spoke's, or a revert's record's), else the context's."""
        return self.route.account or self.action.ctx.account

    @property
    def recovery(self) -> bool:
        """An OK transition that undoes a temporary change (a flag flipped on ALARM)."""
        return self.request.state == "OK" and self.action.recovers_on_ok

    @property
    def guarded(self) -> bool:
        """Guards limit the changes alarms make. A recovery on OK only puts back what an
        executed ALARM change replaced: the cooldown that change took must not block it."""
        return self.request.automatic and self.request.is_alarm

    def result(self, outcome: Outcome, reason: str, after: Any = None) -> Result:
        """The result so far: a failure still carries the plan, so the audit shows what was
        attempted."""
        plan = self.plan
        return Result(
            self.audit_id,
            outcome,
            reason,
            self.route.action,
            self.route.target,
            before=dict(plan.before) if plan else None,
            after=after if after is not None else (dict(plan.after) if plan else None),
            resolves=self.resolves,
        )

    def failed(self, exc: BaseException) -> Result:
        return self.result(Outcome.FAILED, f"{error_code(exc)}: {str(exc)[:500]}")
