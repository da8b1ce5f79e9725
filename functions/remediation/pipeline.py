"""The flow of one event, as the README draws it, one step per method:

    intake -> scope -> playbook -> switch -> (record: intent + the alarm transition + the
    guards, one transaction) -> gate -> confirm -> plan -> (dry-run stops here) -> hold
    (``holds.py``: silences, route modes, approvals) -> guards -> apply -> verify ->
    (record: outcome + the transition handled + the guards given back unless executed, one
    transaction)

Every message leaves an audit record, whatever happens to it. Nothing changes unless:
the message parsed, the event is this deployment's and fresh, the playbook names an action
this remediator runs on a known target, the audit entry was written with the transition's
claim (it was not handled before) and the guards' claim (no silence, cooldown or open
breaker), the switch is ``on``, CloudWatch confirms the alarm and the plan says a change is
needed. Bookkeeping is one write before and one after, whatever the action (issue 16).

A step that stops the flow raises: the type of what it raises is the outcome
(``errors.py``): ``RejectedError`` rejected, ``SkippedError`` skipped, ``EscalatedError``
escalated, anything else failed.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from . import confirm, followups, intake, once, targets
from .accounts import Spokes
from .actions import get_action
from .actions.base import ActionContext, ActionParams, AnyAction, Plan
from .audit import AuditLog, AuditRecord, Entry
from .clients import Clients, error_code
from .config import Settings
from .errors import (
    ConfigurationError,
    DeliveryFailed,
    EscalatedError,
    RejectedError,
    SkippedError,
)
from .gate import Gate, Switch
from .guards import Blocked, Guards
from .holds import Holds
from .models import Mode, Outcome, Request, Result, Route, RouteMode, Source, Verdict
from .notify import Notifier, OutcomeEvents
from .once import IDEMPOTENCY_TTL_SECONDS, Once
from .playbook import REVERT
from .recorder import METRICS_NAMESPACE, Recorder
from .run import Run
from .scope import ScopeError
from .store import Canceled, Write

__all__ = ["IDEMPOTENCY_TTL_SECONDS", "METRICS_NAMESPACE", "Pipeline", "RemediationFailed"]

logger = Logger(child=True)
#: an audit id (a revert's target): what ``actions/revert.py`` accepts
AUDIT_ID = re.compile(r"[0-9a-f]{32}")


#: how long a run may hold its alarm transition when no deadline is given: Lambda's longest
MAX_RUN = timedelta(seconds=900)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RemediationFailed(DeliveryFailed):
    """Raised by the handler after recording a failure, so the event reaches the DLQ."""


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if settings.max_event_age_seconds >= IDEMPOTENCY_TTL_SECONDS:
            # A redelivery after its idempotency record expired must be refused as stale.
            raise ConfigurationError(
                "remediator misconfigured: MAX_EVENT_AGE_SECONDS must be below the "
                f"idempotency record's lifetime ({IDEMPOTENCY_TTL_SECONDS} s)"
            )
        if settings.deployment.spokes and not (
            settings.spoke_role_prefix and settings.switch_account_prefix
        ):
            raise ConfigurationError(
                "remediator misconfigured: the playbook enrols spokes but SPOKE_ROLE_PREFIX or "
                "SWITCH_ACCOUNT_PREFIX is unset"
            )
        self.settings = settings
        self.clients = clients
        self.clock = clock
        dynamodb = clients("dynamodb")
        self.gate = Gate(
            clients("ssm"),
            settings.switch_parameter,
            override_prefix=settings.switch_override_prefix,
            account_prefix=settings.switch_account_prefix,
        )
        self.guards = Guards(dynamodb, settings.table, settings.guards)
        self.audit = AuditLog(dynamodb, settings.table)
        self.notifier = Notifier(clients("sns"), settings.notice_topic)
        outcomes = OutcomeEvents(clients("events")) if settings.outcome_events else None
        self.recorder = Recorder(
            self.audit, self.notifier, env=settings.env, clock=clock, outcomes=outcomes
        )
        self.once = Once(settings.env)
        self.holds = Holds(dynamodb, settings, self.guards, self.notifier, clock)
        #: a hub's way into its enrolled spokes (``accounts.py``); None: one account
        self.spokes = (
            Spokes(
                clients,
                partition=settings.deployment.partition,
                role_prefix=settings.spoke_role_prefix,
            )
            if settings.deployment.spokes
            else None
        )

    # -- entry points -------------------------------------------------------------------

    def handle(
        self,
        event: Any,
        correlation_id: str | None = None,
        *,
        deadline: datetime | None = None,
    ) -> list[Result]:
        """Every message in ``event`` -> one result each (and one audit record each).
        ``deadline``: when this invocation ends (Lambda's), how long a transition it takes
        stays its own."""
        correlation_id = correlation_id or uuid.uuid4().hex
        try:
            messages = intake.split(event)
        except RejectedError as exc:
            return [self._reject(exc, correlation_id)]
        return [self.handle_message(m, correlation_id, deadline) for m in messages]

    def handle_message(
        self, message: Any, correlation_id: str, deadline: datetime | None = None
    ) -> Result:
        request: Request | None = None
        audit_id = uuid.uuid4().hex
        try:
            request = intake.parse(message)
            self._check_scope(request)
            route, action_cls, params = self._resolve(request)
            ctx = self._context(route, action_cls, audit_id, request.key)
        except RejectedError as exc:
            if exc.raw is None:
                exc.raw = intake.excerpt(message)
            return self._reject(exc, correlation_id, request=request)
        entry = self._entry(request, route, correlation_id, audit_id)
        run = Run(request, route, action_cls(ctx), params, entry.audit_id)
        # the switch first (cached): whether this run claims the guards with its record
        switch = self.gate.mode(route.action, run.account)
        # Never act without a record: if it cannot be written, nothing is done.
        settled = self._open(entry, run, switch, deadline or self._now(run) + MAX_RUN)
        if settled is not None:
            return settled
        try:
            result = self._act(run, switch)
        except Exception as exc:  # the record must be completed whatever went wrong
            logger.exception("remediation failed unexpectedly", extra={"audit_id": run.audit_id})
            result = run.failed(exc)
        try:
            self._close(entry, run, result)
        finally:  # what the action changed is done: its follow-ups too, even if telling failed
            if result.outcome is Outcome.EXECUTED and route.then and not run.recovery:

                def context(step: Route, action_cls: type[AnyAction], audit_id: str) -> Any:
                    # a step runs in its main route's remediator: in a spoke, through that
                    # remediator's role (which holds the step's permissions there)
                    return self._context(
                        step, action_cls, audit_id, request.key, runner=route.action
                    )

                followups.run(
                    route.then, entry, self.recorder, context, self.clock, self._hold(run)
                )
        return result

    # -- before the record: what is asked, and may it be -----------------------------------

    def _check_scope(self, request: Request) -> None:
        """Only this deployment's alarms and budgets (a hub's: its enrolled spokes' too)."""
        self.settings.deployment.check_request(request)

    def _resolve(self, request: Request) -> tuple[Route, type[AnyAction], ActionParams]:
        """The playbook's route, its action and parameters (a manual request only towards
        caution)."""
        if request.action:
            get_action(request.action)  # an unknown action is named before the inventory
        route = self.holds.route(request) or self.settings.playbook.resolve(
            request, self.settings.actions
        )
        if request.source is Source.ALARM:
            # an alarm answers for its own account only: spoke A's alarm under the name of
            # spoke B's (or the hub's) never reaches B's targets
            came_from = targets.parse(request.requested_by).account
            belongs = route.account or self.settings.deployment.account
            if came_from != belongs:
                raise ScopeError(
                    f"alarm {request.key[:100]!r} of account {came_from} names a route of "
                    f"account {belongs}: an alarm acts in its own account only"
                )
        if route.action == REVERT and self.settings.deployment.spokes:
            route = self._revert_account(route)
        action_cls = get_action(route.action)
        if request.source in (Source.ALARM, Source.BUDGET) and not action_cls.automatic:
            raise RejectedError(f"{route.action} is manual only: an alarm or budget never runs it")
        params = action_cls.Params.from_dict(route.params)  # names and types first
        if request.source is Source.MANUAL and action_cls.target_is_arn:
            configured = self.settings.playbook.configured(
                route.action, route.target, request.params
            )
            action_cls.check_manual(action_cls.Params.from_dict(configured.params), request.params)
        return route, action_cls, params

    def _revert_account(self, route: Route) -> Route:
        """A hub's revert acts in the account its record names: that account's switch holds
        it, and its own record names it too. A record that cannot be read is refused here
        (the revert would refuse it anyway)."""
        if not AUDIT_ID.fullmatch(route.target):
            return route  # the revert refuses it, with its reason
        try:
            record = self.audit.get(route.target)
        except Exception as exc:
            raise RejectedError(
                f"audit {route.target[:40]!r} could not be read ({error_code(exc)}): "
                "nothing reverted"
            ) from None
        account = (record or {}).get("account")
        return dataclasses.replace(route, account=account) if account else route

    def _context(
        self,
        route: Route,
        action_cls: type[AnyAction],
        audit_id: str,
        asked_by: str,
        *,
        runner: str | None = None,
    ) -> ActionContext:
        """The one way an action gets its clients and target: the target is scope-checked
        (in the route's account, the event's), and clients act in that account."""
        deployment = self.settings.deployment
        ctx = ActionContext(
            clients=self.clients,
            audit=self.audit,
            deployment=deployment,
            clock=self.clock,
            inventory=self.settings.playbook.inventory,
            account=route.account or deployment.account if action_cls.target_is_arn else None,
            reach=self._reach(runner or route.action, audit_id, asked_by),
        )
        if action_cls.target_is_arn:
            ctx = ctx.for_target(route.target)  # scope first: it names the real problem
        action_cls.resources(route.target, route.params)  # then the shape the action takes
        return ctx

    def _reach(
        self, action: str, audit_id: str, asked_by: str
    ) -> Callable[[str, str], Clients] | None:
        """How this record's action acts in an enrolled spoke: its role there, in a session
        named after the record (``accounts.Spokes``); None where nothing is enrolled."""
        spokes = self.spokes
        if spokes is None:
            return None
        return lambda account, region: spokes.clients(
            account, region, action=action, record=audit_id, asked_by=asked_by
        )

    def _entry(self, request: Request, route: Route, correlation_id: str, audit_id: str) -> Entry:
        deployment = self.settings.deployment
        return Entry(
            audit_id=audit_id,
            correlation_id=correlation_id,
            created_at=self.clock(),
            source=request.source,
            key=request.key,
            state=request.state,
            requested_by=request.requested_by,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            action=route.action,
            target=route.target,
            params=route.params,
            account=(route.account or deployment.account) if deployment.spokes else None,
        )

    # -- the record, the transition and the guards: one write before, one after -----------

    def _open(self, entry: Entry, run: Run, switch: Switch, deadline: datetime) -> Result | None:
        """The record's intent, the alarm transition's claim (``once.py``) and the target's
        guard item (``guards.py``: claimed by an automatic ALARM about to act, else only
        checked for a silence): one transaction, before anything is read or changed. A
        duplicate delivery is recorded as skipped here (its result returned). Guards that
        say no do not stop the record: it is written again without them, and the run is
        held or escalated at the step that would have needed them."""
        now = self._now(run)
        key = run.request.idempotency_key
        target = run.route.target
        transition = self.once.claim(key, run.audit_id, now, deadline) if key else None
        claiming = self._acts(run, switch)
        guard: Write | None = (
            self.guards.claim(target, now, audit_id=run.audit_id, action=run.route.action)
            if claiming
            else self.guards.look(target, now)
        )
        while True:
            writes = [w for w in (transition, guard) if w is not None]
            try:
                self.recorder.open(entry, also=writes)
            except Canceled as canceled:
                found = canceled.failed[1:]  # one per write of ``writes``
                if transition is not None and found[0] is not None:
                    skipped = run.result(Outcome.SKIPPED, once.duplicate(found[0]))
                    return self.recorder.record(entry, skipped)
                if guard is None or found[-1] is None:
                    raise
                refused = self.guards.refusal(found[-1], now)
                run.silenced = refused.silenced
                run.blocked = refused.blocked if claiming else None
                guard = None
                continue
            except Exception as exc:
                return self._unopened(entry, run, exc)
            run.claimed = claiming and guard is not None
            return None

    def _unopened(self, entry: Entry, run: Run, exc: Exception) -> Result:
        """The record's transaction could not be written (after the clients' retries):
        nothing was claimed and nothing is done. The record alone, failed, so the event
        leaves a trace and reaches the dead-letter queue; if even that cannot be written,
        the event fails without one (and still reaches the dead-letter queue)."""
        logger.exception("could not write the record's intent", extra={"audit_id": run.audit_id})
        failed = run.failed(exc)
        try:
            return self.recorder.record(entry, failed)
        except Exception:
            raise exc from None

    def _close(self, entry: Entry, run: Run, result: Result) -> None:
        """The outcome, with the transition and the guards settled (one transaction). If
        that cannot be written, the notice says so (``Recorder.close``) and the event
        fails; the transition is given back first, so the retry is not taken for a
        duplicate of a run that is still going, and the guards too unless it executed."""
        try:
            self.recorder.close(entry, result, also=self._settle(run, result))
        except Exception:
            for write in self._unsettle(run, result):
                try:
                    self.audit.store.transact([write])
                except Exception:  # best effort: the failure raised below is what counts
                    logger.exception("could not settle", extra={"audit_id": run.audit_id})
            raise

    def _acts(self, run: Run, switch: Switch) -> bool:
        """Whether this run will act if its checks pass: an automatic ALARM, the switch on,
        no dry-run asked, a route that acts by itself or a person's approval of one
        (``notify`` routes, and ``approve`` routes asking, only look at the guards)."""
        approved = run.request.source is Source.APPROVAL  # a decision on an approve route
        return (
            run.guarded
            and switch.mode is Mode.ON
            and not run.request.dry_run
            and (run.route.mode is RouteMode.AUTO or approved)
        )

    def _settle(self, run: Run, result: Result) -> list[Write]:
        """What completes with the record: the transition handled (or given back, when it
        failed, so a redrive acts again), and the guards given back when nothing was
        executed."""
        writes = []
        key = run.request.idempotency_key
        if key:
            failed = result.outcome is Outcome.FAILED
            writes.append(
                self.once.forget(key, run.audit_id)
                if failed
                else self.once.done(key, run.audit_id, result.outcome)
            )
        if run.claimed:
            target, mine = run.route.target, run.audit_id
            executed = result.outcome is Outcome.EXECUTED
            writes.append(
                self.guards.executed(target, audit_id=mine)
                if executed
                else self.guards.release(target, audit_id=mine)
            )
        return writes

    def _unsettle(self, run: Run, result: Result) -> list[Write]:
        """When the outcome could not be written: the transition given back, and the
        guards unless the action executed (its cooldown must hold the retry)."""
        writes = []
        if run.request.idempotency_key:
            writes.append(self.once.forget(run.request.idempotency_key, run.audit_id))
        if run.claimed and result.outcome is not Outcome.EXECUTED:
            writes.append(self.guards.release(run.route.target, audit_id=run.audit_id))
        return writes

    # -- the action ----------------------------------------------------------------------

    def _act(self, run: Run, switch: Switch) -> Result:
        """Gate, confirm, guards, plan, (dry-run stops here), hold, guards, apply, verify."""
        try:
            run.approval = self.holds.admit(run)  # an approve or reject uses its approval once
            self._only_alarms_act(run)
            self._gate(run, switch)
            run.now = self.clock()
            self._check_fresh(run)
            self._confirm(run)
            self._refused_early(run)
        except (RejectedError, SkippedError, EscalatedError) as exc:
            return run.result(_outcome(exc), exc.reason)
        try:
            dry_run = self._dry_run(run, switch)
            if dry_run:
                self._look_at_guards(run)
            plan = self._plan(run)
            if dry_run:
                return run.result(Outcome.DRY_RUN, self._would(run, plan, switch))
            held = self.holds.hold(run, plan)  # silences, route modes, approvals
            if isinstance(held, Result):
                return held
            plan = held
            self._guards_allow(run)
            seen = self._apply_and_verify(run, plan)
        except (SkippedError, EscalatedError) as exc:
            return run.result(_outcome(exc), exc.reason)
        except Exception as exc:
            # Past the checks, anything else is a failure, a ``RejectedError`` from the action
            # too (a target its route should not have named): recorded, guards given back
            # (``_settle``), and the event goes to the dead-letter queue.
            logger.exception("remediation step failed", extra={"audit_id": run.audit_id})
            return run.failed(exc)
        summary = plan.summary
        if run.recovery and switch.mode is not Mode.ON:
            summary += f" (a restore proceeds although {switch.why})"
        return run.result(Outcome.EXECUTED, summary, after=seen)

    def _only_alarms_act(self, run: Run) -> None:
        """ALARM acts; OK only restores a temporary change; anything else is skipped. Where
        outcomes page, an OK is confirmed first: only CloudWatch's own OK resolves a page
        (a late OK of an alarm that fired again, or a forged one, is refused instead)."""
        if not run.request.is_alarm and not run.recovery:
            if self.recorder.outcomes is not None:
                self._confirm(run)
            raise SkippedError(f"{run.request.state} transition: only ALARM acts")

    def _gate(self, run: Run, switch: Switch) -> None:
        """The automation switch (read before the record). A recovery only undoes a temporary
        change an executed ALARM made: it proceeds whatever the switch says (as the
        sweeper does), or the change would stay forever. A faulty switch (missing,
        unreadable, a typo) escalates."""
        if switch.mode is Mode.OFF and not run.recovery:
            if switch.faulty:
                raise EscalatedError(switch.why)
            raise SkippedError(switch.why)

    def _check_fresh(self, run: Run) -> None:
        """An ALARM (or budget) transition older than the limit is not acted on: a human
        looks instead. Checked after the duplicate check, so a late duplicate of a handled
        transition stays a quiet skip. An OK that restores a temporary change is not held
        to it (a late OK must still put the flag back); it is confirmed like any alarm."""
        if not run.recovery:
            confirm.check_fresh(run.request, self._now(run), self.settings.max_event_age_seconds)

    def _confirm(self, run: Run) -> None:
        """An alarm is acted on only if CloudWatch shows it as the event says; an approved
        change only while the alarm that asked is still in ALARM."""
        request = run.request
        if request.source is Source.ALARM:
            alarm = targets.parse(request.requested_by)  # the alarm ARN, inside the scope
            confirm.check_alarm(request, self._describe_alarm(run, alarm))
            run.resolves = request.state == "OK"
        elif run.approval is not None and run.approval.origin_alarm:
            asked = targets.parse(run.approval.origin_alarm)  # in scope when the alarm asked
            found = self._describe_alarm(run, asked)
            confirm.check_still_alarming(asked.arn, asked.name, found)

    def _describe_alarm(self, run: Run, alarm: targets.Target) -> dict[str, Any] | None:
        """The alarm as CloudWatch shows it, read in its own account and region (a spoke's
        through the action's role there)."""
        if self.settings.deployment.is_spoke(alarm.account):
            reach = run.action.ctx.reach
            if reach is None:
                raise ScopeError(f"this path cannot read alarms of account {alarm.account}")
            spoke = reach(alarm.account, alarm.region)
            return confirm.describe_alarm(spoke("cloudwatch"), alarm.name)
        cloudwatch = self.clients("cloudwatch")
        if cloudwatch.meta.region_name != alarm.region:
            cloudwatch = self.clients("cloudwatch", region=alarm.region)
        return confirm.describe_alarm(cloudwatch, alarm.name)

    def _hold(self, run: Run) -> followups.HoldFor:
        """What holds each follow-up step of ``run``'s action (``Holds.step``)."""
        return lambda step: self.holds.step(run, step, self.gate.mode(step.action, run.account))

    def _dry_run(self, run: Run, switch: Switch) -> bool:
        return not run.recovery and (switch.mode is Mode.DRY_RUN or run.request.dry_run)

    def _look_at_guards(self, run: Run) -> None:
        """Read-only look at the guards for a dry-run; when acting, ``_open`` claims them
        with the record, so a plain look first would only cost calls."""
        if run.guarded:
            self.guards.check(run.route.target, self._now(run))

    def _plan(self, run: Run) -> Plan[Any]:
        """Read the target and plan the change: a noop skips, an escalation escalates."""
        current = run.action.read(run.route.target, run.params)
        now = self._now(run)
        if run.request.is_alarm:
            plan = run.action.plan(current, run.params, now)
        else:
            executed = self._last_executed(run.route)
            plan = run.action.plan_recovery(current, run.params, now, executed)
        run.plan = plan
        if plan.verdict is Verdict.NOOP:
            raise SkippedError(plan.summary)
        if plan.verdict is Verdict.ESCALATE:
            raise EscalatedError(plan.summary)
        return plan

    def _would(self, run: Run, plan: Plan[Any], switch: Switch) -> str:
        requested = run.request.dry_run and switch.mode is Mode.ON
        by = "dry-run requested" if requested else switch.why
        return f"would {plan.summary} ({by})"

    def _refused_early(self, run: Run) -> None:
        """A claim the cooldown or breaker refused escalates before the target is read: the
        answer cannot change, and a storm of refires costs no reads of the target. One a
        silence or maintenance window may hold goes on to the hold step (held, not
        escalated), and escalates at ``_guards_allow`` if nothing holds it."""
        if run.blocked and not run.silenced and not run.route.maintenance:
            raise Blocked(run.blocked)

    def _guards_allow(self, run: Run) -> None:
        """Where the change would be made, the guards' answer to the claim made with the
        record (``_open``): a cooldown or an open breaker escalates."""
        if run.blocked:
            raise Blocked(run.blocked)

    def _apply_and_verify(self, run: Run, plan: Plan[Any]) -> Any:
        run.action.apply(run.route.target, plan)
        return run.action.verify(run.route.target, plan)

    def _now(self, run: Run) -> datetime:
        if run.now is None:
            run.now = self.clock()
        return run.now

    def _last_executed(self, route: Route) -> AuditRecord | None:
        for item in self.audit.history(route.target):
            if item.get("action") == route.action and item.get("outcome") == Outcome.EXECUTED:
                return item
        return None

    # -- refused before an action ----------------------------------------------------------

    def _reject(
        self, exc: RejectedError, correlation_id: str, request: Request | None = None
    ) -> Result:
        entry = Entry(
            audit_id=uuid.uuid4().hex,
            correlation_id=correlation_id,
            created_at=self.clock(),
            source=request.source if request else Source.UNKNOWN,
            key=request.key if request else "-",
            state=request.state if request else "-",
            requested_by=request.requested_by if request else "-",
            reason=request.reason if request else "-",
            action=request.action if request else None,
            target=request.target if request else None,
            raw=exc.raw,
        )
        return self.recorder.reject(entry, exc.reason)


def _outcome(stop: RejectedError | SkippedError | EscalatedError) -> Outcome:
    """The outcome a step's refusal stands for: decided by its type alone."""
    if isinstance(stop, RejectedError):
        return Outcome.REJECTED
    if isinstance(stop, SkippedError):
        return Outcome.SKIPPED
    return Outcome.ESCALATED
