"""The flow of one event: intake -> playbook -> gate -> guards -> plan -> apply -> verify -> record.

Every message leaves an audit record, whatever happens to it. Nothing changes unless:
the message parsed, the playbook names an action this remediator runs on a known target,
the audit entry was written, the transition was not handled before, the switch is ``on``,
the guards let it through and the plan says a change is needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from remediation import confirm, intake
from remediation.actions import Action, Plan, get_action
from remediation.actions.base import ActionContext, ActionParams
from remediation.audit import TTL_ATTRIBUTE, AuditLog, Entry
from remediation.clients import Clients, error_code
from remediation.config import Settings
from remediation.gate import Gate
from remediation.guards import Blocked, Guards
from remediation.models import Mode, Outcome, RejectedError, Request, Result, Route, Source
from remediation.notify import NOTIFY, Notifier, build_notice

logger = Logger(child=True)
METRICS_NAMESPACE = "AutoRemediation"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def utcnow() -> datetime:
    return datetime.now(UTC)


class RemediationFailed(RuntimeError):
    """Raised by the handler after recording a failure, so the event reaches the DLQ."""


class _Failed(Exception):
    """Carries a failed result out of the idempotent section (which then forgets the key,
    so a redrive from the dead-letter queue is not mistaken for a duplicate)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        clients: Clients,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        dynamodb = clients("dynamodb")
        self.gate = Gate(
            clients("ssm"),
            settings.switch_parameter,
            override_prefix=settings.switch_override_prefix,
        )
        self.guards = Guards(dynamodb, settings.table, settings.guards)
        self.audit = AuditLog(dynamodb, settings.table)
        self.notifier = Notifier(clients("sns"), settings.notice_topic)
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="key",
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            response_hook=_mark_duplicate,
        )
        if settings.max_event_age_seconds >= IDEMPOTENCY_TTL_SECONDS:
            # A redelivery after its idempotency record expired must be refused as stale.
            raise RuntimeError(
                "remediator misconfigured: MAX_EVENT_AGE_SECONDS must be below the "
                f"idempotency record's lifetime ({IDEMPOTENCY_TTL_SECONDS} s)"
            )
        self._idempotency_store = DynamoDBPersistenceLayer(
            table_name=settings.table,
            key_attr="pk",
            sort_key_attr="sk",
            # The table's TTL attribute: Powertools' own default ("expiration") would never
            # expire, and the table would grow with every alarm forever.
            expiry_attr=TTL_ATTRIBUTE,
            static_pk_value=f"idempotency#{settings.env}",
            boto3_client=dynamodb,
        )

    # -- entry points -------------------------------------------------------------------

    def handle(self, event: Any, correlation_id: str | None = None) -> list[Result]:
        """Every message in ``event`` -> one result each (and one audit record each)."""
        correlation_id = correlation_id or uuid.uuid4().hex
        try:
            messages = intake.split(event)
        except RejectedError as exc:
            return [self._reject(exc, correlation_id)]
        return [self.handle_message(message, correlation_id) for message in messages]

    def handle_message(self, message: Any, correlation_id: str) -> Result:
        request: Request | None = None
        try:
            request = intake.parse(message)
            self._check_scope(request)
            route, action_cls, params = self._resolve(request)
            ctx = self._context(route, action_cls)
        except RejectedError as exc:
            if exc.raw is None:
                exc.raw = intake.excerpt(message)
            return self._reject(exc, correlation_id, request=request)
        entry = Entry(
            audit_id=uuid.uuid4().hex,
            correlation_id=correlation_id,
            created_at=self.clock(),
            source=str(request.source),
            key=request.key,
            state=request.state,
            requested_by=request.requested_by,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            action=route.action,
            target=route.target,
            params=route.params,
        )
        # Never act without a record: if this write fails, the event fails (and reaches the DLQ).
        self.audit.open(entry)
        try:
            result = self._run_once(request, route, action_cls(ctx), params, entry.audit_id)
        except Exception as exc:  # the record must be completed whatever went wrong
            logger.exception("remediation failed unexpectedly", extra={"audit_id": entry.audit_id})
            result = Result(
                entry.audit_id,
                Outcome.FAILED,
                f"{error_code(exc)}: {str(exc)[:500]}",
                route.action,
                route.target,
            )
        self._record(entry, request, result)
        return result

    # -- steps ----------------------------------------------------------------------------

    def _check_scope(self, request: Request) -> None:
        """Only this deployment's alarms and budgets, and only while they are fresh."""
        self.settings.deployment.check_request(request)
        confirm.check_fresh(request, self.clock(), self.settings.max_event_age_seconds)

    def _resolve(self, request: Request) -> tuple[Route, type[Action], ActionParams]:
        if request.action:
            get_action(request.action)  # an unknown action is named before the inventory
        route = self.settings.playbook.resolve(request, self.settings.actions)
        action_cls = get_action(route.action)
        params = action_cls.Params.from_dict(route.params)  # names and types first
        if request.source is Source.MANUAL and action_cls.target_is_arn:
            configured = self.settings.playbook.inventory[(route.action, route.target)]
            action_cls.check_manual(action_cls.Params.from_dict(configured.params), request.params)
        action_cls.resources(route.target, route.params)  # rejects a target of the wrong shape
        return route, action_cls, params

    def _context(self, route: Route, action_cls: type[Action]) -> ActionContext:
        """The one way an action gets its clients and target: the target is scope-checked."""
        ctx = ActionContext(
            clients=self.clients,
            audit=self.audit,
            deployment=self.settings.deployment,
            clock=self.clock,
            inventory=self.settings.playbook.inventory,
        )
        return ctx.for_target(route.target) if action_cls.target_is_arn else ctx

    def _confirm(self, request: Request) -> None:
        """An alarm is acted on only if CloudWatch shows it as the event says."""
        if request.source is Source.ALARM:
            region = request.details["region"]  # the alarm ARN's, inside the scope
            cloudwatch = self.clients("cloudwatch")
            if cloudwatch.meta.region_name != region:
                cloudwatch = self.clients("cloudwatch", region=region)
            alarm = confirm.describe_alarm(cloudwatch, request.key)
            confirm.check_alarm(request, alarm)

    def _run_once(
        self,
        request: Request,
        route: Route,
        action: Action,
        params: ActionParams,
        audit_id: str,
    ) -> Result:
        """``_act``, at most once per alarm transition (Powertools idempotency in DynamoDB)."""

        def act() -> Result:
            return self._act(request, route, action, params, audit_id)

        if not request.idempotency_key:
            return act()

        acted: list[Result] = []

        def once(transition: dict) -> dict:
            result = act()
            acted.append(result)
            if result.outcome is Outcome.FAILED:
                raise _Failed(result)
            return result.as_dict()

        guarded = idempotent_function(
            once,
            data_keyword_argument="transition",
            persistence_store=self._idempotency_store,
            config=self.idempotency_config,
        )
        try:
            data = guarded(transition={"key": request.idempotency_key})
        except _Failed as failed:
            return failed.result
        except IdempotencyAlreadyInProgressError:
            return Result(
                audit_id,
                Outcome.SKIPPED,
                "duplicate delivery: this alarm transition is being handled right now",
                route.action,
                route.target,
            )
        except Exception as exc:
            if not acted:
                raise
            # The action ran but the idempotency store could not save its result: keep the
            # result (before/after) so the change is recorded, and fail so a human looks.
            done = acted[0]
            code = error_code(exc.__cause__ or exc)
            return replace(
                done,
                outcome=Outcome.FAILED,
                reason=f"{done.outcome}: {done.reason}; idempotency record not saved ({code})",
            )
        if data.get("duplicate"):
            return Result(
                audit_id,
                Outcome.SKIPPED,
                f"duplicate delivery: already handled by audit {data['audit_id']} "
                f"({data['outcome']})",
                route.action,
                route.target,
            )
        return Result(**{**data, "outcome": Outcome(data["outcome"])})

    def _act(
        self,
        request: Request,
        route: Route,
        action: Action,
        params: ActionParams,
        audit_id: str,
    ) -> Result:
        """Gate, confirm, guards, plan, (dry-run stops here), claim, apply, verify.

        Any AWS error becomes a failed result that still carries the plan, so the audit
        shows what was attempted; a failed action gives back the guards it claimed.
        """
        plan: Plan | None = None

        def result(outcome: Outcome, reason: str, after: dict | None = None) -> Result:
            return Result(
                audit_id,
                outcome,
                reason,
                route.action,
                route.target,
                before=plan.before if plan else None,
                after=after if after is not None else (plan.after if plan else None),
            )

        recovery = request.state == "OK" and action.recovers_on_ok
        if not request.is_alarm and not recovery:
            return result(Outcome.SKIPPED, f"{request.state} transition: only ALARM acts")
        switch = self.gate.mode(route.action)
        if switch.mode is Mode.OFF and not recovery:
            return result(Outcome.ESCALATED if switch.faulty else Outcome.SKIPPED, switch.why)
        # A recovery only undoes a temporary change an executed ALARM made: it proceeds
        # whatever the switch says (as the sweeper does), or the change would stay forever.
        dry_run = not recovery and (switch.mode is Mode.DRY_RUN or request.dry_run)
        now = self.clock()
        # Guards limit the changes alarms make. A recovery on OK only puts back what an
        # executed ALARM change replaced (once per change, and only while the target still
        # shows it): the cooldown that change took must not block its undoing.
        guarded = request.automatic and request.is_alarm
        claimed = False
        try:
            self._confirm(request)
        except RejectedError as exc:
            return result(Outcome.REJECTED, exc.reason)
        try:
            if guarded and dry_run:
                # Read-only look at the guards; when acting, ``claim`` below checks the same
                # things atomically, so a plain ``check`` first would only cost calls.
                self.guards.check(route.target, now)
            current = action.read(route.target, params)
            if request.is_alarm:
                plan = action.plan(current, params, now)
            else:
                executed = self._last_executed(route)
                plan = action.plan_recovery(current, params, now, executed)
            if plan.verdict == "noop":
                return result(Outcome.SKIPPED, plan.summary)
            if plan.verdict == "escalate":
                return result(Outcome.ESCALATED, plan.summary)
            if dry_run:
                requested = request.dry_run and switch.mode is Mode.ON
                by = "dry-run requested" if requested else switch.why
                return result(Outcome.DRY_RUN, f"would {plan.summary} ({by})")
            if guarded:
                self.guards.claim(route.target, now, audit_id=audit_id, action=route.action)
                claimed = True
            action.apply(route.target, plan)
            seen = action.verify(route.target, plan)
        except Blocked as blocked:
            outcome = Outcome.ESCALATED if blocked.escalate else Outcome.SKIPPED
            return result(outcome, blocked.reason)
        except Exception as exc:
            logger.exception("remediation step failed", extra={"audit_id": audit_id})
            if claimed:
                self._release(route.target, now, audit_id)
            return result(Outcome.FAILED, f"{error_code(exc)}: {str(exc)[:500]}")
        summary = plan.summary
        if recovery and switch.mode is not Mode.ON:
            summary += f" (a restore proceeds although {switch.why})"
        return result(Outcome.EXECUTED, summary, after=seen)

    def _release(self, target: str, now: datetime, audit_id: str) -> None:
        try:
            self.guards.release(target, now, audit_id=audit_id)
        except Exception:  # the failure is what gets recorded; this is only housekeeping
            logger.exception("could not release the guards", extra={"audit_id": audit_id})

    def _last_executed(self, route: Route) -> dict | None:
        for item in self.audit.history(route.target):
            if item.get("action") == route.action and item.get("outcome") == Outcome.EXECUTED:
                return item
        return None

    # -- record ---------------------------------------------------------------------------

    def _reject(
        self, exc: RejectedError, correlation_id: str, request: Request | None = None
    ) -> Result:
        audit_id = uuid.uuid4().hex
        entry = Entry(
            audit_id=audit_id,
            correlation_id=correlation_id,
            created_at=self.clock(),
            source=str(request.source) if request else "unknown",
            key=request.key if request else "-",
            state=request.state if request else "-",
            requested_by=request.requested_by if request else "-",
            reason=request.reason if request else "-",
            action=request.action if request else None,
            target=request.target if request else None,
            raw=exc.raw,
        )
        result = Result(audit_id, Outcome.REJECTED, exc.reason, entry.action, entry.target)
        logger.warning("rejected", extra={"audit_id": audit_id, "reason": exc.reason})
        self.audit.open(entry, Outcome.REJECTED, exc.reason)
        self._notify_and_count(result, key=entry.key, reason=entry.reason)
        return result

    def _record(self, entry: Entry, request: Request, result: Result) -> None:
        try:
            self.audit.close(
                entry.audit_id,
                result.outcome,
                result.reason,
                self.clock(),
                before=result.before,
                after=result.after,
            )
        except Exception as exc:
            # The record stays pending: the notice must still carry what changed, then the
            # event fails (and is retried or reaches the dead-letter queue).
            unsaved = f"; audit record not completed ({error_code(exc)})"
            self._notify_and_count(
                replace(result, reason=result.reason + unsaved),
                key=request.key,
                reason=request.reason,
            )
            raise
        logger.info(
            "remediation",
            extra={
                "audit_id": entry.audit_id,
                "correlation_id": entry.correlation_id,
                "outcome": str(result.outcome),
                "action": result.action,
                "target": result.target,
                "detail": result.reason,
            },
        )
        self._notify_and_count(result, key=request.key, reason=request.reason)

    def _notify_and_count(self, result: Result, *, key: str, reason: str) -> None:
        # One EMF line per result: its own dimensions, no state shared between threads.
        metric = AmazonCloudWatchEMFProvider(namespace=METRICS_NAMESPACE)
        metric.add_dimension(name="Action", value=result.action or "none")
        metric.add_dimension(name="Outcome", value=str(result.outcome))
        metric.add_metric(name="Remediations", unit=MetricUnit.Count, value=1)
        metric.flush_metrics()
        if result.outcome in NOTIFY:
            subject, message = build_notice(self.settings.env, result, key=key, reason=reason)
            self.notifier.publish(subject, message)


def _mark_duplicate(response: dict, _record: Any) -> dict:
    """Powertools calls this only when it returns a stored result: a duplicate delivery."""
    return {**response, "duplicate": True}
