"""Resource kinds the drill's emulator can hold, beyond the built-in ones: an extension point.

A new action whose targets the drill does not know yet brings them with one ``register``
call (from any module imported before the drill runs): how a scenario's spec creates the
resource on the emulator, how to read its state back for ``expect.state``, and which
resources a route's target needs when the scenario does not name them. The scenario
grammar (``resources.<kind>`` and ``expect.state.<kind>``) then accepts the kind, and the
world creates and snapshots it like any built-in kind. See docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serverless_remediation.remediate.drill import scenario
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.targets import Target

Spec = dict[str, Any]


@dataclass(frozen=True)
class ResourceKind:
    #: the key under a scenario's ``resources:`` and ``expect.state:``, e.g. ``queues``
    name: str
    #: keys a scenario's spec of one resource may hold
    spec_keys: tuple[str, ...]
    #: fields ``read`` returns, which ``expect.state`` may check
    state_fields: tuple[str, ...]
    #: create one resource on the emulator from its name and (merged) spec
    create: Callable[[Clients, str, Spec], None]
    #: read one resource's state back
    read: Callable[[Clients, str, Spec], dict[str, Any]]
    #: the (name, default spec) pairs a route's parsed target needs; [] when not this kind
    targets: Callable[[Target], list[tuple[str, Spec]]]


KINDS: dict[str, ResourceKind] = {}


def register(kind: ResourceKind) -> ResourceKind:
    """Add ``kind`` to the drill (idempotent for the same object)."""
    if kind.name in scenario.RESOURCE_SPECS and KINDS.get(kind.name) is not kind:
        raise ValueError(f"drill resource kind {kind.name!r} exists already")
    KINDS[kind.name] = kind
    scenario.RESOURCE_SPECS[kind.name] = kind.spec_keys
    scenario.STATE_FIELDS[kind.name] = kind.state_fields
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (tests that register a temporary one)."""
    if KINDS.pop(name, None) is not None:
        scenario.RESOURCE_SPECS.pop(name, None)
        scenario.STATE_FIELDS.pop(name, None)


def default_specs(target: Target) -> list[tuple[str, str, Spec]]:
    """(kind, name, spec) of the registered kinds that hold ``target``."""
    return [
        (kind.name, name, spec) for kind in KINDS.values() for name, spec in kind.targets(target)
    ]
