"""Playbook: which action on which target answers an alarm, a budget or a manual request.

The CDK app writes it, from the environment's config, into ``playbook.json`` bundled with
each remediator (environment variables cap at 4 KB; a 150-service playbook does not fit).
Pure: no AWS calls.

Shape::

    {"alarms":   {"<alarm name>":  {"action": ..., "target": ..., "params": {...}}},
     "budgets":  {"<budget name>": {"action": ..., "target": ..., "params": {...}}},
     "inventory": [{"action": ..., "target": ..., "params": {...}}],
     "people": {"approval_seconds": 900, "approvers": [...], "max_silence_seconds": 86400},
     "spokes": {"<account>": ["<region>", ...]}}

A route may also carry ``mode`` (``auto`` when absent, ``approve`` or ``notify``),
``maintenance`` (weekly UTC windows, ``silences.py``) and, in a hub, ``account``: the
enrolled spoke its alarm and target live in (absent: the deployment's own account);
``people`` is ``approvals.Policy``.

``inventory`` lists extra targets open to manual requests; every alarm and budget route is
in the inventory too. A manual ``revert`` names an audit id instead: the revert action checks
that the record's own action and target are in the inventory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .approvals import Policy
from .models import RejectedError, Request, Route, RouteMode, Source
from .silences import parse_window

_ACCOUNT = re.compile(r"^\d{12}$")
REVERT = "revert"  # manual only; its target is an audit id (see actions/revert.py)


@dataclass(frozen=True)
class Playbook:
    alarms: dict[str, Route]
    budgets: dict[str, Route]
    inventory: dict[tuple[str, str], Route]
    #: every route of each (action, target): one target may be configured more than once
    #: (capacity-bump on a function: memory for latency, reserved concurrency for throttles)
    routes: dict[tuple[str, str], tuple[Route, ...]] = field(default_factory=dict)
    people: Policy = field(default_factory=Policy)
    #: a hub's enrolled spoke accounts and their regions (``scope.Deployment.spokes``)
    spokes: dict[str, frozenset[str]] = field(default_factory=dict)

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
        routes: dict[tuple[str, str], tuple[Route, ...]] = {}
        for route in [*alarms.values(), *budgets.values(), *extra]:
            key = (route.action, route.target)
            inventory.setdefault(key, route)
            routes[key] = (*routes.get(key, ()), route)
        people = Policy.from_dict(data.get("people"))
        return cls(alarms, budgets, inventory, routes, people, _spokes(data.get("spokes", {})))

    def configured(self, action: str, target: str, requested: Mapping[str, Any]) -> Route:
        """The configured route a manual request on (action, target) is measured against:
        the first whose own parameters the request does not contradict (a request naming
        ``kind: lambda-reserved-concurrency`` gets that route), else the first route."""
        found = self.routes.get((action, target)) or (self.inventory[(action, target)],)
        for route in found:
            if all(route.params.get(k, v) == v for k, v in requested.items()):
                return route
        return found[0]

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
                if (action, target) not in self.inventory:
                    raise RejectedError(
                        f"target {target[:200]!r} is not in the inventory for action {action!r}"
                    )
                route = self.configured(action, target, request.params)
                params = {**route.params, **request.params}
                route = Route(route.action, route.target, params, account=route.account)
        served = sorted(served)
        if route.action not in served:
            raise RejectedError(f"this remediator runs {served}, not {route.action!r}")
        return route


def _spokes(value: Any) -> dict[str, frozenset[str]]:
    """``{"<account>": ["<region>", ...]}``: anything else is a broken bundle."""
    if not isinstance(value, dict) or not all(
        isinstance(account, str)
        and _ACCOUNT.match(account)
        and isinstance(regions, list)
        and regions
        and all(isinstance(r, str) and r for r in regions)
        for account, regions in value.items()
    ):
        raise ValueError("playbook spokes: 12-digit accounts, each to a list of regions")
    return {account: frozenset(regions) for account, regions in value.items()}


def _route(value: Any, where: str) -> Route:
    if not isinstance(value, dict):
        raise ValueError(f"playbook {where}: expected an object")
    action, target, params = value.get("action"), value.get("target"), value.get("params", {})
    if not isinstance(action, str) or not isinstance(target, str) or not isinstance(params, dict):
        raise ValueError(f"playbook {where}: needs string action, string target, object params")
    mode, maintenance = value.get("mode", "auto"), value.get("maintenance", [])
    if mode not in set(RouteMode) or not isinstance(maintenance, list):
        raise ValueError(f"playbook {where}: mode one of {[str(m) for m in RouteMode]}")
    for window in maintenance:
        parse_window(window)
    # follow-up steps (``followups.py``): routes of their own, without steps of their own
    steps = value.get("then", [])
    if not isinstance(steps, list) or any(isinstance(s, dict) and s.get("then") for s in steps):
        raise ValueError(f"playbook {where}.then: a list of routes without steps of their own")
    then = tuple(_route(step, f"{where}.then[{i}]") for i, step in enumerate(steps))
    account = value.get("account")
    if account is not None and not (isinstance(account, str) and _ACCOUNT.match(account)):
        raise ValueError(f"playbook {where}.account: a 12-digit account id")
    return Route(action, target, dict(params), RouteMode(mode), tuple(maintenance), then, account)
