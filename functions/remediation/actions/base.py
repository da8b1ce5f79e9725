"""What every action is: a registered class with typed parameters, IAM needs and
``read`` -> ``plan`` (pure) -> ``apply`` -> ``verify``.

Contract for ``apply``: make the target look like ``plan.after``. That is what lets
``revert`` undo any executed action from its audit record's before-state.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Self, TypeVar

from ..errors import FailedError, RejectedError
from ..models import Verdict
from ..scope import ScopeError

if typing.TYPE_CHECKING:
    from ..audit import AuditLog, AuditRecord
    from ..clients import Clients
    from ..models import Route
    from ..scope import Deployment
    from ..targets import Target

#: an action's parameters (a frozen ``ActionParams`` dataclass)
P = TypeVar("P", bound="ActionParams")
#: what an action's ``read`` returns (a TypedDict)
C = TypeVar("C", bound=Mapping[str, Any])
#: an action's state in a plan and the audit's before/after (a TypedDict)
S = TypeVar("S", bound=Mapping[str, Any])
#: a plan's state: a ``Plan[AliasState]`` is a ``Plan[AliasState | StageState]``
S_co = TypeVar("S_co", bound=Mapping[str, Any], covariant=True)

REGISTRY: dict[str, type[AnyAction]] = {}


def register(cls: type[A]) -> type[A]:
    """Class decorator: make an action available by its ``name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"action {cls.name!r} registered twice")
    if not dataclasses.is_dataclass(cls.Params):
        raise TypeError(f"{cls.__name__}.Params must be a dataclass")
    REGISTRY[cls.name] = cls
    return cls


def get_action(name: str) -> type[AnyAction]:
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise RejectedError(f"unknown action {name!r}; valid actions: {valid}") from None


class Limit(StrEnum):
    """Which way a manual request may move a configured parameter: only towards caution."""

    AT_MOST = "at most"
    AT_LEAST = "at least"
    SUBSET = "a subset of"
    SUPERSET = "a superset of"


@dataclass(frozen=True)
class ActionContext:
    """What every action is built with, on every path (alarm, manual, revert, sweeper).

    ``targets`` is the action's target, parsed and already inside the deployment's scope.
    Build one with ``for_target``: it is the only way a target reaches an action, so the
    scope check cannot be skipped by a path that forgot it.
    """

    clients: Clients
    audit: AuditLog
    deployment: Deployment
    clock: Callable[[], datetime]
    inventory: Mapping[tuple[str, str], Route] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    #: the account the request acts in (its route's, else the deployment's): the target
    #: must be in it (None: a revert's context, whose recorded target's own account must be
    #: enrolled; ``actions/revert.py`` sets the record's account)
    account: str | None = None
    #: (account, region) -> clients acting in that enrolled spoke (``accounts.Spokes``, bound
    #: to the action and the record); None where this path has no way into a spoke
    reach: Callable[[str, str], Clients] | None = None

    def for_target(self, target: str) -> ActionContext:
        """This context for ``target``, with clients acting in the target's account;
        ``ScopeError`` if the deployment may not touch it from this event."""
        found = tuple(self.deployment.check_target(target, self.account))
        accounts = {t.account for t in found}
        if len(accounts) != 1:
            raise ScopeError(f"target {target[:200]!r} names {len(accounts)} accounts, not one")
        (account,) = accounts
        clients = self.clients
        if self.deployment.is_spoke(account):
            if self.reach is None:
                raise ScopeError(f"this path cannot act in spoke account {account}")
            region = next((t.region for t in found if t.region), self.deployment.region)
            clients = self.reach(account, region)
        return dataclasses.replace(self, targets=found, clients=clients, account=account)


class VerifyError(FailedError):
    """The change was applied but reading it back does not show it."""


@dataclass(frozen=True)
class Plan(Generic[S_co]):
    """The intended change: ``before`` -> ``after``; or why nothing should change."""

    verdict: Verdict
    summary: str
    before: S_co
    after: S_co

    @staticmethod
    def change(summary: str, before: S, after: S) -> Plan[S]:
        return Plan(Verdict.CHANGE, summary, before, after)

    @staticmethod
    def noop(summary: str, before: S) -> Plan[S]:
        return Plan(Verdict.NOOP, summary, before, copy.copy(before))

    @staticmethod
    def escalate(summary: str, before: S) -> Plan[S]:
        return Plan(Verdict.ESCALATE, summary, before, copy.copy(before))


@dataclass(frozen=True)
class ActionParams:
    """Base for parameter dataclasses. ``from_dict`` checks names and types.

    Subclasses add range checks in ``__post_init__`` raising ``ValueError``.
    """

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            raise RejectedError("params must be an object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise RejectedError(
                f"unknown parameter(s) {unknown}; {cls.__qualname__} takes {sorted(fields)}"
            )
        hints = typing.get_type_hints(cls)
        for name, value in data.items():
            if not _matches(value, hints[name]):
                raise RejectedError(f"parameter {name!r} must be {_describe(hints[name])}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise RejectedError(f"parameters invalid: {exc}") from None

    @classmethod
    def schema(cls) -> dict[str, str]:
        """Parameter name -> type, for docs and the registry test."""
        hints = typing.get_type_hints(cls)
        return {f.name: _describe(hints[f.name]) for f in dataclasses.fields(cls)}


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, list | tuple) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return hint is Any


def _within(wanted: Any, have: Any, limit: Limit) -> bool:
    """True if ``wanted`` is as careful as ``have`` in ``limit``'s direction."""
    try:
        if limit is Limit.AT_MOST:
            return bool(wanted <= have)
        if limit is Limit.AT_LEAST:
            return bool(wanted >= have)
        if limit is Limit.SUBSET:
            return set(wanted) <= set(have)
        return set(wanted) >= set(have)
    except TypeError:
        return False  # a value of the wrong type: ``from_dict`` says which


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


class Action(ABC, Generic[P, C, S]):
    """One kind of remediation: ``Action[Params, Current, State]``, registered with
    ``@register``. ``read`` returns a ``Current``; ``plan`` turns it into a ``Plan[State]``;
    ``apply`` makes the target look like ``plan.after``; ``verify`` returns the ``State``
    read back. ``Current`` and ``State`` are TypedDicts: plain data, so a plan is recorded
    in the audit as it is and a revert rebuilds it from the record.
    """

    #: name used in playbooks, manual requests and the audit
    name: ClassVar[str]
    #: the parameters dataclass (its fields are the parameter schema)
    Params: ClassVar[type[ActionParams]]
    #: IAM actions the remediator's role needs (the CDK app scopes them to the targets)
    permissions: ClassVar[tuple[str, ...]]
    #: parameters a manual request may change, and in which direction (towards caution);
    #: every other parameter is fixed by configuration
    limits: ClassVar[Mapping[str, Limit]] = {}
    #: true when an OK transition should restore what the ALARM changed (a temporary action)
    recovers_on_ok: ClassVar[bool] = False
    #: false when the target is not an AWS resource (revert names an audit record); such an
    #: action scope-checks the resources it reaches through ``ctx.for_target`` itself
    target_is_arn: ClassVar[bool] = True
    #: false for an action a human must ask for (containment): the pipeline rejects an
    #: alarm or budget request for it, and the CDK app refuses to route an alarm to it
    automatic: ClassVar[bool] = True
    #: why an executed change of this action cannot be undone ("" when it can): ``revert``
    #: refuses such a record before it reads anything (one check for every action)
    not_revertable: ClassVar[str] = ""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.clients = ctx.clients
        self.audit = ctx.audit
        self.inventory = ctx.inventory

    @classmethod
    def check_manual(cls, configured: ActionParams, requested: Mapping[str, Any]) -> None:
        """``RejectedError`` unless every requested parameter is as careful as configured."""
        fields = {f.name for f in dataclasses.fields(configured)}
        for name, wanted in sorted(requested.items()):
            if name not in fields:
                continue  # ``Params.from_dict`` names unknown parameters
            have = getattr(configured, name)
            limit = cls.limits.get(name)
            if limit is None:
                if wanted != have:
                    raise RejectedError(
                        f"parameter {name!r} is fixed by configuration at {have!r}; "
                        f"a manual request cannot change it"
                    )
                continue
            if not _within(wanted, have, limit):
                raise RejectedError(
                    f"parameter {name!r} = {wanted!r} is beyond the configured limit: "
                    f"a manual request may set it to {limit} {have!r}"
                )

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        """The IAM resource ARNs ``permissions`` apply to for ``target`` (and its params)."""
        return [target]

    @abstractmethod
    def read(self, target: str, params: P) -> C:
        """The target's current state, as plain data."""

    @abstractmethod
    def plan(self, current: C, params: P, now: datetime) -> Plan[S]:
        """Pure: current state -> the intended change. No AWS calls."""

    @abstractmethod
    def apply(self, target: str, plan: Plan[S]) -> None:
        """Make the target look like ``plan.after``."""

    @abstractmethod
    def verify(self, target: str, plan: Plan[S]) -> S:
        """Read the target back; return its state, or raise ``VerifyError``."""

    def plan_recovery(
        self,
        current: C,
        params: P,
        now: datetime,
        executed: AuditRecord | None,
    ) -> Plan[S]:
        """Pure: on OK, the change that restores what ``executed`` (the last executed audit
        record for this action and target) changed. Only for ``recovers_on_ok`` actions."""
        raise NotImplementedError(f"{self.name} does not recover on OK")


#: an action of any kind, as the registry and the pipeline hold it
AnyAction = Action[Any, Any, Any]
A = TypeVar("A", bound=AnyAction)
