"""What every action is: a registered class with typed parameters, IAM needs and
``read`` -> ``plan`` (pure) -> ``apply`` -> ``verify``.

Contract for ``apply``: make the target look like ``plan.after``. That is what lets
``revert`` undo any executed action from its audit record's before-state.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from remediation.models import RejectedError

if typing.TYPE_CHECKING:
    from collections.abc import Mapping

    from remediation.audit import AuditLog
    from remediation.clients import Clients
    from remediation.models import Route

REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: make an action available by its ``name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"action {cls.name!r} registered twice")
    if not dataclasses.is_dataclass(cls.Params):
        raise TypeError(f"{cls.__name__}.Params must be a dataclass")
    REGISTRY[cls.name] = cls
    return cls


def get_action(name: str) -> type[Action]:
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise RejectedError(f"unknown action {name!r}; valid actions: {valid}") from None


class VerifyError(RuntimeError):
    """The change was applied but reading it back does not show it."""


@dataclass(frozen=True)
class Plan:
    """The intended change: ``before`` -> ``after``; or why nothing should change."""

    verdict: Literal["change", "noop", "escalate"]
    summary: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def change(cls, summary: str, before: dict, after: dict) -> Plan:
        return cls("change", summary, before, after)

    @classmethod
    def noop(cls, summary: str, before: dict) -> Plan:
        return cls("noop", summary, before, dict(before))

    @classmethod
    def escalate(cls, summary: str, before: dict) -> Plan:
        return cls("escalate", summary, before, dict(before))


@dataclass(frozen=True)
class ActionParams:
    """Base for parameter dataclasses. ``from_dict`` checks names and types.

    Subclasses add range checks in ``__post_init__`` raising ``ValueError``.
    """

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionParams:
        if not isinstance(data, dict):
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


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


class Action(ABC):
    """One kind of remediation. Subclasses are registered with ``@register``."""

    #: name used in playbooks, manual requests and the audit
    name: ClassVar[str]
    #: the parameters dataclass (its fields are the parameter schema)
    Params: ClassVar[type[ActionParams]]
    #: IAM actions the remediator's role needs (the CDK app scopes them to the targets)
    permissions: ClassVar[tuple[str, ...]]
    #: parameters that are safety caps: only configuration sets them, never a manual request
    caps: ClassVar[frozenset[str]] = frozenset()
    #: true when an OK transition should restore what the ALARM changed (a temporary action)
    recovers_on_ok: ClassVar[bool] = False

    def __init__(
        self,
        clients: Clients,
        *,
        audit: AuditLog | None = None,
        inventory: Mapping[tuple[str, str], Route] | None = None,
    ) -> None:
        """``audit`` and ``inventory`` are the pipeline's; only actions that act on the
        audit trail (revert) use them."""
        self.clients = clients
        self.audit = audit
        self.inventory = inventory or {}

    @classmethod
    def resources(cls, target: str, params: dict[str, Any] | None = None) -> list[str]:
        """The IAM resource ARNs ``permissions`` apply to for ``target`` (and its params)."""
        return [target]

    @abstractmethod
    def read(self, target: str, params: ActionParams) -> dict[str, Any]:
        """The target's current state, as plain data."""

    @abstractmethod
    def plan(self, current: dict[str, Any], params: ActionParams, now: datetime) -> Plan:
        """Pure: current state -> the intended change. No AWS calls."""

    @abstractmethod
    def apply(self, target: str, plan: Plan) -> None:
        """Make the target look like ``plan.after``."""

    @abstractmethod
    def verify(self, target: str, plan: Plan) -> dict[str, Any]:
        """Read the target back; return its state, or raise ``VerifyError``."""

    def plan_recovery(
        self,
        current: dict[str, Any],
        params: ActionParams,
        now: datetime,
        executed: dict[str, Any] | None,
    ) -> Plan:
        """Pure: on OK, the change that restores what ``executed`` (the last executed audit
        record for this action and target) changed. Only for ``recovers_on_ok`` actions."""
        raise NotImplementedError(f"{self.name} does not recover on OK")
