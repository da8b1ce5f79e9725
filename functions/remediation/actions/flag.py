"""flip-flag: set a feature flag to its safe position (switch off a failing outgoing webhook,
switch to the backup payment processor) and put the old value back when the alarm recovers.

The target is one flag, in one of two forms:

- an SSM parameter, ``arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME``. A hierarchical name keeps
  its leading slash (``parameter/app/webhook`` is ``/app/webhook``); a flat one has none
  (``parameter/flag`` is ``flag``). String and StringList only: a SecureString's value would
  land in the audit record, so it escalates.
- one Lambda environment variable, ``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME#VARIABLE``.
  UpdateFunctionConfiguration replaces the whole variable map, so ``apply`` reads the map,
  changes that one variable and writes the map back with the ``RevisionId`` it read (a
  concurrent update then fails the write instead of being lost): every other variable is
  kept byte for byte.

On ALARM the flag is set to ``value``; the value it had is the plan's before-state, kept in
the audit record. On OK it is restored from the last executed ``flip-flag`` record of the
target, if the flag still shows what that record left (else a human changed it since:
escalate) and at least ``hold_minutes`` have passed since the flip. An OK that arrives
during the hold escalates and leaves the flag as it is (the OK transition is delivered once:
nothing would come back to restore it later): the notice names the audit record, and a
manual ``revert`` of it restores the flag. A manual ``flip-flag`` request flips the flag
like an alarm; ``value`` is a cap, so it always sets the configured value.

Preconditions (else escalate, change nothing): the flag exists (this action never creates
a parameter or a variable), the target is in the remediator's region, the function's
environment is readable and no update of the function is in progress.

Runbooks: Nigredo "Webhook Failures" (``WEBHOOK_ENABLED=false``), OMNIX "switch to backup
payment processor".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from ..clients import error_code
from ..errors import RejectedError
from .base import Action, ActionParams, Plan, VerifyError, register

if TYPE_CHECKING:
    from ..audit import AuditRecord

MAX_VALUE = 4096  # SSM standard parameters and a Lambda environment both hold 4 KB

_SSM_ARN = re.compile(
    r"^arn:aws[a-z-]*:ssm:(?P<region>[a-z0-9-]+):\d{12}:parameter/(?P<path>[A-Za-z0-9_.\-/]+)$"
)
_LAMBDA_VARIABLE = re.compile(
    r"^(?P<function>arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):\d{12}:function:"
    r"[A-Za-z0-9_-]{1,64})#(?P<variable>[A-Za-z][A-Za-z0-9_]{0,127})$"
)


@dataclass(frozen=True)
class FlagTarget:
    """A parsed target: an SSM parameter (``variable`` None) or one function variable."""

    kind: Literal["ssm", "lambda"]
    region: str
    name: str  # the parameter name, or the function ARN
    variable: str | None = None

    def describe(self) -> str:
        if self.kind == "ssm":
            return f"parameter {self.name}"
        return f"{self.variable} on {self.name.rsplit(':', 1)[1]}"


def parse_target(target: str) -> FlagTarget:
    """A flip-flag target string -> ``FlagTarget`` (see the module docstring)."""
    ssm = _SSM_ARN.match(target)
    if ssm:
        path = ssm["path"]
        if path.startswith("/") or path.endswith("/") or "//" in path:
            raise RejectedError(f"not an SSM parameter ARN: {target[:200]!r}")
        name = f"/{path}" if "/" in path else path
        return FlagTarget("ssm", ssm["region"], name)
    variable = _LAMBDA_VARIABLE.match(target)
    if variable:
        return FlagTarget("lambda", variable["region"], variable["function"], variable["variable"])
    raise RejectedError(
        "flip-flag target must be arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME or "
        f"arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME#VARIABLE, got {target[:200]!r}"
    )


@dataclass(frozen=True)
class FlagParams(ActionParams):
    #: the flag's safe position, set on ALARM (a cap: only configuration sets it)
    value: str = "false"
    #: on OK, restore only once the flag has been flipped this long (0: at once)
    hold_minutes: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.value) <= MAX_VALUE:
            raise ValueError(f"value must be 1 to {MAX_VALUE} characters")
        if not 0 <= self.hold_minutes <= 7 * 24 * 60:
            raise ValueError("hold_minutes must be between 0 and 10080")


def _show(value: str | None) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class FlagState(TypedDict):
    """The flag's value (None when it could not be read)."""

    value: str | None


class FlagCurrent(FlagState):
    """The flag as read, and why it may not be touched (``refusal``), if so."""

    refusal: NotRequired[str]


def plan_flip(current: FlagCurrent, value: str) -> Plan[FlagState]:
    """Pure: ALARM (or a manual request) -> set the flag to ``value``."""
    before: FlagState = {"value": current.get("value")}
    if current.get("refusal"):
        return Plan.escalate(current["refusal"], before)
    if current["value"] == value:
        return Plan.noop(f"flag already {_show(value)}", before)
    return Plan.change(
        f"flag {_show(current['value'])} -> {_show(value)}", before, {"value": value}
    )


def plan_restore(
    current: FlagCurrent,
    value: str,
    hold_minutes: int,
    now: datetime,
    executed: AuditRecord | None,
) -> Plan[FlagState]:
    """Pure: OK -> put back the value the last executed flip (``executed``) replaced."""
    before: FlagState = {"value": current.get("value")}
    if current.get("refusal"):
        return Plan.escalate(current["refusal"], before)
    if executed is None:
        return Plan.noop("no executed flip of this flag on record: nothing to restore", before)
    audit_id = executed.get("audit_id", "?")
    previous = (executed.get("before_state") or {}).get("value")
    flipped_to = (executed.get("after_state") or {}).get("value")
    if previous is None or flipped_to is None:
        return Plan.escalate(f"audit {audit_id} holds no before/after value to restore", before)
    if flipped_to != value:
        # The last executed change already was a restore (or set another value).
        return Plan.noop(
            f"last change on record (audit {audit_id}) set {_show(flipped_to)}, not the "
            f"flag's safe value {_show(value)}: nothing to restore",
            before,
        )
    if current["value"] == previous:
        return Plan.noop(f"flag already back to {_show(previous)}", before)
    if current["value"] != flipped_to:
        return Plan.escalate(
            f"flag is {_show(current['value'])}, not {_show(flipped_to)} as audit {audit_id} "
            "left it: changed since, leaving it to a human",
            before,
        )
    flipped_at = datetime.fromisoformat(executed.get("updated_at") or executed["created_at"])
    until = flipped_at + timedelta(minutes=hold_minutes)
    if now < until:
        return Plan.escalate(
            f"flag flipped at {flipped_at.isoformat()} is held until {until.isoformat()} "
            f"({hold_minutes} min): not restoring it now; after that, restore it with a "
            f"manual revert of audit {audit_id}",
            before,
        )
    return Plan.change(
        f"restore flag {_show(flipped_to)} -> {_show(previous)} (flipped by audit {audit_id})",
        before,
        {"value": previous},
    )


@register
class FlipFlag(Action[FlagParams, FlagCurrent, FlagState]):
    """Set a feature flag (SSM parameter or one Lambda environment variable) to its safe
    value on ALARM and restore the previous value on OK."""

    name = "flip-flag"
    Params = FlagParams
    permissions = (
        "ssm:GetParameter",
        "ssm:PutParameter",
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
    )
    recovers_on_ok = True

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        flag = parse_target(target)
        return [target] if flag.kind == "ssm" else [flag.name]

    def read(self, target: str, params: FlagParams) -> FlagCurrent:
        flag = parse_target(target)
        client = self.clients("ssm" if flag.kind == "ssm" else "lambda")
        if client.meta.region_name != flag.region:
            return {
                "value": None,
                "refusal": f"{flag.describe()} is in {flag.region}, this remediator in "
                f"{client.meta.region_name}",
            }
        return self._read_flag(flag)

    def plan(self, current: FlagCurrent, params: FlagParams, now: datetime) -> Plan[FlagState]:
        return plan_flip(current, params.value)

    def plan_recovery(
        self,
        current: FlagCurrent,
        params: FlagParams,
        now: datetime,
        executed: AuditRecord | None,
    ) -> Plan[FlagState]:
        return plan_restore(current, params.value, params.hold_minutes, now, executed)

    def apply(self, target: str, plan: Plan[FlagState]) -> None:
        flag = parse_target(target)
        value = plan.after["value"]
        if value is None:
            raise ValueError("the plan holds no value to set")
        if flag.kind == "ssm":
            # No Type: an overwrite keeps the parameter's type.
            self.clients("ssm").put_parameter(Name=flag.name, Value=value, Overwrite=True)
            return
        lam = self.clients("lambda")
        config = lam.get_function_configuration(FunctionName=flag.name)
        environment = config.get("Environment") or {}
        if environment.get("Error"):
            raise RuntimeError(f"environment of {flag.name} unreadable: {environment['Error']}")
        variables = dict(environment.get("Variables") or {})
        variables[flag.variable or ""] = value
        # RevisionId: a concurrent update between our read and write fails the write
        # (PreconditionFailedException) instead of being overwritten. moto omits it.
        revision = config.get("RevisionId")
        if revision:
            lam.update_function_configuration(
                FunctionName=flag.name, Environment={"Variables": variables}, RevisionId=revision
            )
        else:
            lam.update_function_configuration(
                FunctionName=flag.name, Environment={"Variables": variables}
            )

    def verify(self, target: str, plan: Plan[FlagState]) -> FlagState:
        flag = parse_target(target)
        seen = self._read_flag(flag)
        if seen.get("value") != plan.after["value"]:
            raise VerifyError(
                f"{flag.describe()} reads back as {_show(seen.get('value'))}, "
                f"expected {_show(plan.after['value'])}"
            )
        return {"value": seen["value"]}

    def _read_flag(self, flag: FlagTarget) -> FlagCurrent:
        if flag.kind == "ssm":
            return self._read_parameter(flag)
        return self._read_variable(flag)

    def _read_parameter(self, flag: FlagTarget) -> FlagCurrent:
        try:
            found = self.clients("ssm").get_parameter(Name=flag.name)["Parameter"]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return {"value": None, "refusal": f"{flag.describe()} does not exist"}
            raise
        if found["Type"] == "SecureString":
            return {
                "value": None,
                "refusal": f"{flag.describe()} is a SecureString: its value would be "
                "written to the audit record",
            }
        return {"value": found["Value"]}

    def _read_variable(self, flag: FlagTarget) -> FlagCurrent:
        config = self.clients("lambda").get_function_configuration(FunctionName=flag.name)
        environment = config.get("Environment") or {}
        if environment.get("Error"):
            code = environment["Error"].get("ErrorCode", "error")
            return {"value": None, "refusal": f"environment unreadable ({code})"}
        variables = environment.get("Variables") or {}
        if flag.variable not in variables:
            return {"value": None, "refusal": f"{flag.describe()} does not exist"}
        if config.get("LastUpdateStatus") == "InProgress":
            return {
                "value": variables[flag.variable],
                "refusal": "an update of the function is in progress",
            }
        return {"value": variables[flag.variable]}
