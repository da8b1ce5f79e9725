"""Follow-up steps: what a route says to do after its action executed.

A route's ``then`` lists routes of their own (action, target, params): the CDK app adds a
CloudFront invalidation (``cdn-invalidate``) of a distribution's configured paths to the
rollback routes of the services the distribution fronts. After the main action executed and
its record was closed, each step runs in order, in the same remediator:

- each step has its own audit record, linked to the main one by ``parent`` (its audit id),
  with the main record's correlation id, source, key and requester;
- a step's target passes the same scope check as any target (``ActionContext.for_target``);
- a step reads, plans (pure), applies and verifies like any action; a plan that says
  nothing to do is recorded skipped, one that says a human decides is recorded escalated;
- a step's failure never undoes the main action: it is recorded failed and noticed (the
  recorder's notice), and the steps after it still run;
- a step passes no confirmation or guard of its own (its main action's alarm was confirmed,
  its cooldown taken), but it is held like any action (``hold``, from the pipeline): its
  own action's switch (a per-action ``off`` skips it, ``dry-run`` plans it and says what it
  would do), a manual-only action never follows an automatic request, and an automatic
  request's step on a silenced target (or in its maintenance window) is held; a dry-run of
  the main action executes nothing, so it has no follow-ups, and an OK that restored a
  temporary change runs none either (they follow an alarm's action).

Without a written record a step does not run ("never act without a record").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from .actions.base import get_action
from .audit import Entry
from .clients import error_code
from .models import Outcome, Result, Route, Verdict

if TYPE_CHECKING:
    from .actions.base import ActionContext, AnyAction
    from .recorder import Recorder

logger = Logger(child=True)

#: how the pipeline builds an action's context: the target is scope-checked on the way
#: (the step's route, its action, its audit id: a spoke session is named after it)
ContextFor = Callable[[Route, "type[AnyAction]", str], "ActionContext"]
#: why a step must not change anything now: (outcome, reason), or None when it may act;
#: ``Outcome.DRY_RUN`` plans the step and records what it would do
HoldFor = Callable[[Route], "tuple[Outcome, str] | None"]


def step_entry(parent: Entry, step: Route, now: datetime) -> Entry:
    """Pure: a follow-up step's audit entry, linked to its parent's."""
    return Entry(
        audit_id=uuid.uuid4().hex,
        correlation_id=parent.correlation_id,
        created_at=now,
        source=parent.source,
        key=parent.key,
        state=parent.state,
        requested_by=parent.requested_by,
        reason=f"follow-up of audit {parent.audit_id}: {parent.reason}"[:500],
        action=step.action,
        target=step.target,
        params=step.params,
        parent=parent.audit_id,
        account=parent.account,
    )


def run(
    steps: Sequence[Route],
    parent: Entry,
    recorder: Recorder,
    context_for: ContextFor,
    clock: Callable[[], datetime],
    hold: HoldFor,
) -> list[Result]:
    """Run ``steps`` after ``parent``'s action executed; one closed record each."""
    results = []
    for step in steps:
        entry = step_entry(parent, step, clock())
        try:
            recorder.open(entry)
        except Exception:  # no record, no step: the main action stands as recorded
            logger.exception("follow-up not recorded: not run", extra={"parent": parent.audit_id})
            continue
        try:
            result = _run_step(step, entry.audit_id, context_for, clock, hold(step))
        except Exception as exc:  # recorded failed, and noticed; the main action stands
            logger.exception("follow-up failed", extra={"audit_id": entry.audit_id})
            reason = f"{error_code(exc)}: {str(exc)[:500]}"
            result = Result(entry.audit_id, Outcome.FAILED, reason, step.action, step.target)
        try:
            recorder.close(entry, result)
        except Exception:
            logger.exception("follow-up record not completed", extra={"audit_id": entry.audit_id})
        results.append(result)
    return results


def _run_step(
    step: Route,
    audit_id: str,
    context_for: ContextFor,
    clock: Callable[[], datetime],
    held: tuple[Outcome, str] | None,
) -> Result:
    if held is not None and held[0] is not Outcome.DRY_RUN:
        return Result(audit_id, held[0], held[1], step.action, step.target)
    action_cls = get_action(step.action)
    params = action_cls.Params.from_dict(step.params)
    action = action_cls(context_for(step, action_cls, audit_id))
    plan = action.plan(action.read(step.target, params), params, clock())

    def result(outcome: Outcome, reason: str, after: Any = None) -> Result:
        after = dict(plan.after) if after is None else after
        return Result(audit_id, outcome, reason, step.action, step.target, dict(plan.before), after)

    if plan.verdict is Verdict.NOOP:
        return result(Outcome.SKIPPED, plan.summary)
    if plan.verdict is Verdict.ESCALATE:
        return result(Outcome.ESCALATED, plan.summary)
    if held is not None:
        return result(Outcome.DRY_RUN, f"would {plan.summary} ({held[1]})")
    action.apply(step.target, plan)
    seen = action.verify(step.target, plan)
    return result(Outcome.EXECUTED, plan.summary, dict(seen))
