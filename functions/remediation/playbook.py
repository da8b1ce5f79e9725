"""Playbook: which action on which target answers an alarm, a budget or a manual request.

The CDK app writes it, from the environment's config, into ``playbook.json`` bundled with
each remediator (environment variables cap at 4 KB; a 150-service playbook does not fit).
Pure: no AWS calls.

Shape::

    {"alarms":   {"<alarm name>":  {"action": ..., "target": ..., "params": {...}}},
     "budgets":  {"<budget name>": {"action": ..., "target": ..., "params": {...}}},
     "inventory": [{"action": ..., "target": ..., "params": {...}}]}

``inventory`` lists extra targets open to manual requests; every alarm and budget route is
in the inventory too. A manual ``revert`` names an audit id instead: the revert action checks
that the record's own action and target are in the inventory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediation.models import RejectedError, Request, Route, Source

REVERT = "revert"  # manual only; its target is an audit id (see actions/revert.py)


@dataclass(frozen=True)
class Playbook:
    alarms: dict[str, Route]
    budgets: dict[str, Route]
    inventory: dict[tuple[str, str], Route]

    @classmethod
    def from_dict(cls, data: Any) -> Playbook:
        if not isinstance(data, dict):
            raise ValueError("playbook must be a JSON object")
        alarms = {name: _route(v, f"alarms.{name}") for name, v in data.get("alarms", {}).items()}
        budgets = {
            name: _route(v, f"budgets.{name}") for name, v in data.get("budgets", {}).items()
        }
        extra = [_route(v, f"inventory[{i}]") for i, v in enumerate(data.get("inventory", []))]
        inventory: dict[tuple[str, str], Route] = {}
        for route in [*alarms.values(), *budgets.values(), *extra]:
            inventory.setdefault((route.action, route.target), route)
        return cls(alarms=alarms, budgets=budgets, inventory=inventory)

    @classmethod
    def load(cls, path: str | Path) -> Playbook:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def resolve(self, request: Request, served: Iterable[str]) -> Route:
        """The route for ``request``, or ``RejectedError`` saying why there is none."""
        if request.source is Source.ALARM:
            route = self.alarms.get(request.key)
            if route is None:
                raise RejectedError(f"no playbook entry for alarm {request.key[:255]!r}")
        elif request.source is Source.BUDGET:
            route = self.budgets.get(request.key)
            if route is None:
                raise RejectedError(f"no playbook entry for budget {request.key[:255]!r}")
        else:
            action, target = request.action or "", request.target or ""
            if action == REVERT:
                # A revert names an audit id, not an inventory target: the revert action
                # checks the record's own action and target against the inventory.
                route = Route(action, target, dict(request.params))
            else:
                route = self.inventory.get((action, target))
                if route is None:
                    raise RejectedError(
                        f"target {target[:200]!r} is not in the inventory for action {action!r}"
                    )
                route = Route(route.action, route.target, {**route.params, **request.params})
        served = sorted(served)
        if route.action not in served:
            raise RejectedError(f"this remediator runs {served}, not {route.action!r}")
        return route


def _route(value: Any, where: str) -> Route:
    if not isinstance(value, dict):
        raise ValueError(f"playbook {where}: expected an object")
    action, target, params = value.get("action"), value.get("target"), value.get("params", {})
    if not isinstance(action, str) or not isinstance(target, str) or not isinstance(params, dict):
        raise ValueError(f"playbook {where}: needs string action, string target, object params")
    return Route(action=action, target=target, params=dict(params))
