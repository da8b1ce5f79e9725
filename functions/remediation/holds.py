"""People in the loop: what holds a planned change for a human, as pipeline steps.

Four steps the pipeline calls (``pipeline.py`` keeps one line for each):

- ``route``: a decision request (approve / reject, ``approvals.py``) takes its route from the
  stored approval, after the pure checks (known id, an allowed caller, still pending, not
  expired). Any other request: None (the playbook decides).
- ``admit``: first thing in ``_act``: a decision uses its approval once (a conditional
  write). A rejection stops here (skipped, noticed); an approval goes on through the switch,
  the guards, the plan, apply and verify like any alarm.
- ``hold``: after the plan, before the guards are claimed:

  * an approved plan goes ahead only while the alarm that asked is still in ALARM (the
    pipeline's confirm step reads it: ``Approval.origin_alarm``) and only if the target
    still reads as the approval's before-state and the plan is the same; otherwise it
    asks again (a new approval, answering the same alarm);
  * an automatic ALARM on a silenced target, or in its service's maintenance window, is
    held (outcome ``silenced``, noticed); a manual request is not held, but its summary says
    the target is silenced;
  * route mode ``notify`` plans and tells (outcome ``dry-run``); ``approve`` checks the
    guards read-only, stores a pending approval and notices how to decide (outcome
    ``awaiting-approval``). An OK that restores a temporary change is never held.

- ``step``: what holds a follow-up step of an executed action (its own action's switch,
  manual-only actions, silences), so a step is held by the same rules as any action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .actions.base import get_action
from .approvals import (
    APPROVE,
    Approval,
    Approvals,
    Policy,
    Status,
    build_approval,
    check_decision,
    same_state,
)
from .clients import error_code
from .errors import RejectedError, SkippedError
from .models import Mode, Outcome, Request, Result, Route, RouteMode, Source
from .notify import FIELD_LIMIT, build_chat_notice, command, one_line
from .silences import Silences

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from .actions.base import Plan
    from .config import Settings
    from .gate import Switch
    from .guards import Guards
    from .notify import Notifier
    from .run import Run


class Holds:
    def __init__(
        self,
        dynamodb_client: DynamoDBClient,
        settings: Settings,
        guards: Guards,
        notifier: Notifier,
        clock: Callable[[], datetime],
    ) -> None:
        self.env = settings.env
        #: a hub's notices name the account (``Run.account``)
        self.hub = bool(settings.deployment.spokes)
        self.playbook = settings.playbook
        self.policy: Policy = settings.playbook.people
        self.served = settings.actions
        self.approvals = Approvals(dynamodb_client, settings.table)
        self.silences = Silences(dynamodb_client, settings.table, self.policy.max_silence)
        self.guards = guards
        self.notifier = notifier
        self.clock = clock

    # -- a decision request ----------------------------------------------------------------

    def route(self, request: Request) -> Route | None:
        """The stored approval's route for a decision request; None for any other."""
        if request.source is not Source.APPROVAL:
            return None
        approval = check_decision(self._stored(request.key), request, self.clock(), self.policy)
        asked = approval.route
        # the route as configured now (its follow-up steps too); changed since: refused
        configured = self.playbook.routes.get((asked.action, asked.target), ())
        route = next((r for r in configured if same_state(r.params, asked.params)), None)
        if route is None:
            raise RejectedError(
                f"approval {approval.approval_id}: {asked.action} on {asked.target} with "
                "these parameters is no longer configured: nothing changed"
            )
        if route.action not in self.served:
            raise RejectedError(
                f"approval {approval.approval_id} is for {route.action}: send it to the "
                f"remediator that runs it (this one runs {sorted(self.served)})"
            )
        return route

    def _stored(self, approval_id: str) -> Approval | None:
        """The stored approval; one that cannot be read is a refusal with a record (this
        runs before the decision's audit record is written), never a crash."""
        try:
            return self.approvals.get(approval_id)
        except Exception as exc:
            raise RejectedError(
                f"approval {approval_id}: the stored approval cannot be read "
                f"({error_code(exc)}: {str(exc)[:200]}); nothing changed, try again"
            ) from None

    def admit(self, run: Run) -> Approval | None:
        """Use a decision's approval once; a rejection stops here. The approval used, for a
        decision request (its alarm is confirmed still in ALARM next); else None."""
        request = run.request
        if request.source is not Source.APPROVAL:
            return None
        now = self.clock()
        approval = check_decision(self._stored(request.key), request, now, self.policy)
        decision = str(request.details.get("decision"))
        via = str(request.details.get("via", "unknown"))
        decided = self.approvals.decide(
            approval, decision, by=request.requested_by, via=via, now=now
        )
        if decision != APPROVE:
            reason = (
                f"approval {decided.approval_id} rejected by {decided.decided_by} via {via} "
                f"at {decided.decided_at}: {request.reason}; nothing changed"
            )
            what = f"rejected {run.route.action} on {run.route.target}"
            self._tell(what, reason, decided, run, Outcome.SKIPPED)
            raise SkippedError(reason)
        return decided

    # -- after the plan ----------------------------------------------------------------------

    def hold(self, run: Run, plan: Plan[Any]) -> Result | Plan[Any]:
        """A result when the change waits (for a person or a silence), else the plan."""
        request, route = run.request, run.route
        now = self.clock()
        if request.source is Source.APPROVAL:
            return self._approved(run, plan, now)
        if run.recovery:
            return plan
        held = self._silenced(run, now)
        if not request.automatic:  # a human acting on purpose: told, not held
            if held:
                return replace(plan, summary=f"{plan.summary} (target silenced: {held})")
            return plan
        if held:
            reason = f"held by {held}; would {plan.summary}"
            what = f"silenced {route.action} on {route.target}"
            self._tell(what, reason, None, run, Outcome.SILENCED)
            return run.result(Outcome.SILENCED, reason)
        if route.mode is RouteMode.NOTIFY:
            return run.result(
                Outcome.DRY_RUN, f"would {plan.summary} (route mode notify: plans, never acts)"
            )
        if route.mode is RouteMode.APPROVE:
            if run.guarded:
                self.guards.check(route.target, now)  # a guard that says no: no one is asked
            asked = self._ask(run, plan, now)
            return run.result(
                Outcome.AWAITING_APPROVAL,
                f"awaiting approval {asked.approval_id} until {asked.deadline.isoformat()}: "
                f"{plan.summary}",
            )
        return plan

    def _silenced(self, run: Run, now: datetime) -> str | None:
        """What silences ``run``'s target: the marker its record's transaction read
        (``Pipeline._open``), else its service's maintenance window."""
        return run.silenced or self.silences.window(run.route.maintenance, now)

    def _approved(self, run: Run, plan: Plan[Any], now: datetime) -> Result | Plan[Any]:
        """An approved plan goes ahead only on the target as it was when asked."""
        approval = self.approvals.get(run.request.key)
        if (
            approval is not None
            and approval.status is Status.APPROVED
            and same_state(approval.before, plan.before)
            and same_state(approval.after, plan.after)
        ):
            # a person decided on purpose: a silence is told, not obeyed (as for a manual
            # request)
            held = self._silenced(run, now)
            silenced = f"; target silenced: {held}" if held else ""
            return replace(
                plan,
                summary=f"{plan.summary} (approved by {approval.decided_by} via "
                f"{approval.decided_via} at {approval.decided_at}, approval "
                f"{approval.approval_id}{silenced})",
            )
        was = approval.before if approval else None
        asked = self._ask(run, plan, now, replaces=approval)
        return run.result(
            Outcome.AWAITING_APPROVAL,
            f"the target changed since approval {run.request.key} was asked (before was "
            f"{one_line(_brief(was), 300)}, now {one_line(_brief(plan.before), 300)}): nothing "
            f"changed; asking again as approval {asked.approval_id} until "
            f"{asked.deadline.isoformat()}: {plan.summary}",
        )

    def _ask(
        self, run: Run, plan: Plan[Any], now: datetime, replaces: Approval | None = None
    ) -> Approval:
        """A new pending approval; one that replaces another answers the same alarm."""
        request = run.request
        alarm = request.requested_by if request.source is Source.ALARM else ""
        asked = build_approval(
            run.route,
            before=plan.before,
            after=plan.after,
            summary=plan.summary,
            now=now,
            expiry=self.policy.expiry,
            origin_audit_id=run.audit_id,
            origin_key=replaces.origin_key if replaces else request.key,
            replaces=replaces.approval_id if replaces else "",
            origin_alarm=replaces.origin_alarm if replaces else alarm,
        )
        self.approvals.ask(asked)
        self._tell(
            f"approval needed: {run.route.action} on {run.route.target}", plan.summary, asked, run
        )
        return asked

    # -- a follow-up step --------------------------------------------------------------------

    def step(self, run: Run, step: Route, switch: Switch) -> tuple[Outcome, str] | None:
        """What holds a follow-up step of ``run``'s executed action (``followups.py``), or
        None: a manual-only action never follows an automatic request; the step's own
        action switch (``switch``: off skips, a faulty one escalates, dry-run plans and
        says); a silence or maintenance window on its target, for an automatic request."""
        if run.request.automatic and not get_action(step.action).automatic:
            return Outcome.REJECTED, f"{step.action} is manual only: no alarm runs it"
        if switch.mode is Mode.OFF:
            return (Outcome.ESCALATED if switch.faulty else Outcome.SKIPPED), switch.why
        if run.request.automatic:
            held = self.silences.holding(step.target, step.maintenance, self.clock())
            if held:
                return Outcome.SILENCED, f"held by {held}"
        if switch.mode is Mode.DRY_RUN:
            return Outcome.DRY_RUN, switch.why
        return None

    # -- notices -----------------------------------------------------------------------------

    def _tell(
        self,
        what: str,
        why: str,
        approval: Approval | None,
        run: Run,
        outcome: Outcome = Outcome.AWAITING_APPROVAL,
    ) -> None:
        """One notice: what waits or was decided, and the commands to answer an approval;
        for chat, the custom notification with ``approvalId`` in its additional context
        (what an Approve / Reject button reads)."""
        subject = f"[auto-remediation {self.env}] {what}"
        subject = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)[:100]
        lines = [
            f"Why:        {one_line(why)}",
            f"Trigger:    {one_line(run.request.key)}",
            f"Audit id:   {one_line(run.audit_id)}",
        ]
        steps: list[str] = []
        pending = approval is not None and approval.status is Status.PENDING
        if approval is not None:
            lines += [
                f"Approval:   {approval.approval_id} ({approval.status})",
                f"Expires:    {approval.deadline.isoformat()}",
                f"Before:     {one_line(_brief(approval.before), FIELD_LIMIT)}",
                f"After:      {one_line(_brief(approval.after), FIELD_LIMIT)}",
            ]
            if pending:
                for verb in ("approve", "reject"):
                    line = command("remediate", verb, approval.approval_id, "--env", self.env)
                    lines.append(f"{verb.capitalize() + ':':<11} {line}")
                    steps.append(line or f"remediate {verb} {approval.approval_id}")
        result = run.result(outcome, why)
        chat = build_chat_notice(
            self.env,
            result,
            key=run.request.key,
            reason=run.request.reason,
            next_steps=steps or None,
            context=_chat_context(approval, pending),
            buttons=pending,
            account=run.account if self.hub else None,
        )
        self.notifier.publish(subject, "\n".join(lines), chat)


def _chat_context(approval: Approval | None, pending: bool) -> dict[str, str] | None:
    """What the chat buttons read: ``approvalId`` (a button attaches where it has a value)
    only on a pending approval's notice; a decided one names its approval otherwise."""
    if approval is None:
        return None
    return {"approvalId" if pending else "approval": approval.approval_id}


def _brief(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)
