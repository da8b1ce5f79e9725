"""The chat's one entry point: Approve and Reject on an approval notice, and revert.

A chat channel (Amazon Q Developer in chat applications) may invoke this function and no
remediator. An approval notice in chat carries ``approvalId`` in its additional context, and
the channel shows two buttons (``AWS::Chatbot::CustomAction``) that invoke this function with
``{"approve": ID}`` or ``{"reject": ID}``; a person may also type ``{"revert": AUDIT_ID}``
(undo an executed action, as ``remediate revert`` does; only where the approvers admit the
channel: the CDK app then lists the revert remediator). It does three things:

1. It names who asks itself: ``CHAT_IDENTITY`` (``chat:<app>-<env>``, the channel), never a
   name from the payload. Amazon Q Developer runs a command as the channel's IAM role and
   tells the function nothing about the person who pressed or typed it, so the audit record
   says "the channel", and the chat thread shows who it was. Chat decides approvals only if
   the environment's ``people.approvers`` admit that identity (the CDK app creates the
   buttons only then, and the remediator checks it again).
2. It picks the remediator: for a decision, the one that runs the pending approval's action
   (``REMEDIATOR_FUNCTIONS``: action -> function name; an id nobody knows still goes to one
   remediator, which refuses it and records the refusal); for a revert, the revert
   remediator.
3. It sends that remediator a decision ``{verb: ID, requested_by, reason, via: "chat"}`` or a
   revert request ``{action: "revert", target: AUDIT_ID, requested_by, reason}``, nothing
   else: a payload with any other key (a plan, a target, a person's name) is refused here,
   with an audit record, and never forwarded. The remediator does every check and records
   the outcome; its answer is this function's, which the chat thread shows.

Pure: ``forward``. The handler reads the approval, invokes the remediator once (no retry:
a second send would be a second request; each carries a request id besides) and records a
refused or failed one. Environment: ``CHAT_IDENTITY``, ``REMEDIATOR_FUNCTIONS`` (JSON),
``REMEDIATOR_TIMEOUT_SECONDS``, ``AUDIT_TABLE``, ``REMEDIATION_ENV``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.config import Config

from .approvals import APPROVE, ID_PATTERN, REJECT, Approval, Approvals
from .audit import AuditLog, Entry
from .clients import Clients
from .config import required
from .errors import ConfigurationError, DeliveryFailed, RejectedError
from .models import Outcome, Source
from .playbook import REVERT

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="auto-remediation")

#: what every decision from a chat button says it came from
VIA_CHAT = "chat"
_ID = re.compile(ID_PATTERN)
_RAW_LIMIT = 1000
#: what of a remediator's error reaches the chat thread
_ERROR_LIMIT = 300


def chat_identity(prefix: str) -> str:
    """Who decides when a chat button is pressed: the channels of environment ``prefix``
    (the CDK app sets it; ``people.approvers`` must admit it for chat to decide)."""
    return f"chat:{prefix}"


@dataclass(frozen=True)
class Forward:
    """Which remediator a request from chat goes to, and what is sent."""

    function: str
    payload: dict[str, str]


def forward(
    event: Any,
    *,
    identity: str,
    remediators: Mapping[str, str],
    find: Callable[[str], Approval | None],
    request_id: str,
) -> Forward:
    """Pure: what to send for ``event`` from chat, or ``RejectedError`` for anything but
    ``{"approve": ID}``, ``{"reject": ID}`` or ``{"revert": AUDIT_ID}`` (the latter only where
    ``remediators`` lists revert). ``find`` reads a stored approval; when it
    cannot (the read fails, the record is unreadable) the id is treated as unknown and the
    receiving remediator reads it again, refuses what it cannot use, and records that.
    ``request_id`` makes a repeated send of the same press one decision (the remediator's
    idempotency key for a decision)."""
    verbs = [v for v in (APPROVE, REJECT, REVERT) if isinstance(event, dict) and v in event]
    if (
        not isinstance(event, dict)
        or len(verbs) != 1
        or set(event) != set(verbs)
        or not isinstance(event[verbs[0]], str)
    ):
        raise RejectedError(
            'from chat: {"approve": ID}, {"reject": ID} or {"revert": AUDIT_ID}, nothing '
            "else: who asks is the channel, and the plan comes from the stored record",
            raw=_excerpt(event),
        )
    verb, approval_id = verbs[0], event[verbs[0]]
    if verb == REVERT:
        if REVERT not in remediators:
            raise RejectedError(
                f"revert from chat is not enabled here: people.approvers must admit {identity}",
                raw=_excerpt(event),
            )
        request = {
            "action": REVERT,
            "target": approval_id,  # the revert remediator checks it names an executed record
            "reason": "reverted from chat",
            "requested_by": identity,
            "request_id": request_id,
        }
        return Forward(remediators[REVERT], request)
    found: Approval | None = None
    if _ID.match(approval_id):
        try:
            found = find(approval_id)
        except Exception:  # any failure to read: the remediator reads again and decides
            logger.exception("could not read approval %s: sent on as unknown", approval_id)
    # an id nobody knows still goes to one remediator: it refuses it, and records that
    function = remediators.get(found.route.action) if found else None
    deciding = sorted(a for a in remediators if a != REVERT) or sorted(remediators)
    payload = {
        verb: approval_id,
        "requested_by": identity,
        "reason": f"{verb}d from chat",
        "via": VIA_CHAT,
        "request_id": request_id,
    }
    return Forward(function or remediators[deciding[0]], payload)


def _excerpt(event: Any) -> str:
    return json.dumps(event, default=str, sort_keys=True)[:_RAW_LIMIT]


@dataclass(frozen=True)
class DecisionSettings:
    env: str
    identity: str
    table: str
    remediators: dict[str, str]
    #: the remediators' Lambda timeout: how long a decision may take
    remediator_timeout: int = 120

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DecisionSettings:
        def need(name: str) -> str:
            return required(environ, name, "chat decisions")

        try:
            remediators = json.loads(need("REMEDIATOR_FUNCTIONS"))
        except ValueError:
            remediators = None
        if (
            not isinstance(remediators, dict)
            or not remediators
            or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in remediators.items()
            )
        ):
            raise ConfigurationError(
                "chat decisions misconfigured: REMEDIATOR_FUNCTIONS is not a non-empty JSON "
                "object of action -> function name"
            )
        try:
            timeout = int(need("REMEDIATOR_TIMEOUT_SECONDS"))
        except ValueError:
            timeout = 0
        if timeout < 1:
            raise ConfigurationError(
                "chat decisions misconfigured: REMEDIATOR_TIMEOUT_SECONDS is not a whole "
                "number of seconds"
            )
        return cls(
            env=need("REMEDIATION_ENV"),
            identity=need("CHAT_IDENTITY"),
            table=need("AUDIT_TABLE"),
            remediators=remediators,
            remediator_timeout=timeout,
        )

    def invoke_config(self) -> Config:
        """The remediator is invoked once and waited for: a read timeout shorter than its run
        or a retry would send the decision again (the second is then refused as used, and
        the person who pressed sees an error for a change that was made)."""
        return Config(
            retries={"total_max_attempts": 1},
            connect_timeout=3,
            read_timeout=self.remediator_timeout + 5,
        )


class Decider:
    """Forward one button press; a refused press gets its own audit record."""

    def __init__(self, settings: DecisionSettings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        dynamodb = clients("dynamodb")
        self.approvals = Approvals(dynamodb, settings.table)
        self.audit = AuditLog(dynamodb, settings.table)

    def decide(self, event: Any, correlation_id: str) -> dict[str, Any]:
        """Forward one press (or typed revert) and return the remediator's answer. A refused
        one is recorded here; one that could not be delivered or answered is recorded as
        failed here and raises, so the person in the channel sees the error in the thread."""
        s = self.settings
        try:
            sent = forward(
                event,
                identity=s.identity,
                remediators=s.remediators,
                find=self.approvals.get,
                request_id=correlation_id,
            )
        except RejectedError as exc:
            audit_id = self._record(Outcome.REJECTED, str(exc), correlation_id, raw=exc.raw)
            return {"results": [{"audit_id": audit_id, "outcome": "rejected", "reason": str(exc)}]}
        try:
            response = self.clients("lambda").invoke(
                FunctionName=sent.function,
                InvocationType="RequestResponse",
                Payload=json.dumps(sent.payload).encode(),
            )
            raw = response["Payload"].read()
            if response.get("FunctionError"):
                raise DeliveryFailed(f"{raw[:_ERROR_LIMIT].decode(errors='replace')}")
            answer = json.loads(raw or b"{}")
            if not isinstance(answer, dict):
                raise DeliveryFailed(f"not an answer: {raw[:_ERROR_LIMIT]!r}")
        except Exception as exc:
            why = f"{sent.function} did not answer: {str(exc)[:_ERROR_LIMIT]}"
            audit_id = self._record(Outcome.FAILED, why, correlation_id, raw=_excerpt(sent.payload))
            raise DeliveryFailed(
                f"{why} (audit {audit_id}; see remediate history before asking again)"
            ) from exc
        return answer

    def _record(self, outcome: Outcome, detail: str, correlation_id: str, *, raw: Any) -> str:
        entry = Entry(
            audit_id=uuid.uuid4().hex,
            correlation_id=correlation_id,
            created_at=datetime.now(UTC),
            source=Source.APPROVAL,
            key="chat",
            state="-",
            requested_by=self.settings.identity,
            reason="a request from chat",
            raw=raw,
        )
        self.audit.open(entry, outcome, detail)
        logger.warning("chat decision %s", outcome, extra={"audit_id": entry.audit_id})
        return entry.audit_id


_decider: Decider | None = None


def decider() -> Decider:
    """Built once per container, on first use."""
    global _decider
    if _decider is None:
        settings = DecisionSettings.from_env()
        invoker = Clients(config=settings.invoke_config())("lambda")
        _decider = Decider(settings, Clients(overrides={"lambda": invoker}))
    return _decider


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return decider().decide(event, correlation_id=context.aws_request_id)
