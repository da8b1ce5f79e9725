"""Scenario files: YAML describing an environment, its initial resources, steps and expectations.

Loaded into frozen dataclasses; a malformed file fails with the file, the step and the key.
The format is documented in docs/drill.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

SWITCH_MODES = ("on", "off", "dry-run", "missing")
#: the scenario's initial switch: what the template deploys (the env's configured mode)
AS_DEPLOYED = "as-deployed"
ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
RESOURCE_KINDS = (
    "functions",
    "parameters",
    "tables",
    "ip_sets",
    "rest_apis",
    "http_apis",
    "log_groups",
)
STEP_KINDS = ("alarm", "duplicate", "invoke", "switch", "advance", "budget", "deliver", "sweep")
EXPECT_KEYS = ("outcomes", "reason", "state", "notices", "calls")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Expect:
    outcomes: tuple[str, ...] | None = None
    reason: str | None = None
    state: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notices: tuple[str, ...] | int | None = None
    calls: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Step:
    kind: str
    value: Any
    options: dict[str, Any]
    expect: Expect
    title: str


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    summary: str
    env: str
    switch: str
    resources: dict[str, dict[str, Any]]
    steps: tuple[Step, ...]
    totals: dict[str, int]


def duration(text: Any, where: str) -> timedelta:
    """``90s``, ``20m``, ``2h``, ``1d`` -> timedelta."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ScenarioError(f"{where}: duration {text!r} must look like 90s, 20m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def load(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, path)


def discover(target: Path) -> list[Path]:
    """A scenario file, or every ``*.yaml``/``*.yml`` under a directory, sorted."""
    if target.is_dir():
        found = sorted([*target.rglob("*.yaml"), *target.rglob("*.yml")])
        if not found:
            raise ScenarioError(f"{target}: no scenario files (*.yaml)")
        return found
    if not target.exists():
        raise ScenarioError(f"{target}: no such file or directory")
    return [target]


def parse(data: Any, path: Path) -> Scenario:
    where = str(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a YAML mapping")
    _known(data, ("name", "summary", "env", "switch", "resources", "steps", "expect"), where)
    # YAML 1.1 reads a bare `on` as true and `off` as false.
    switch = {True: "on", False: "off"}.get(data.get("switch"), data.get("switch", AS_DEPLOYED))
    if switch not in (*SWITCH_MODES, AS_DEPLOYED):
        raise ScenarioError(f"{where}: switch must be one of {SWITCH_MODES}, got {switch!r}")
    resources = data.get("resources") or {}
    if not isinstance(resources, dict):
        raise ScenarioError(f"{where}: resources must be a mapping of kind -> name -> spec")
    _known(resources, RESOURCE_KINDS, f"{where}: resources")
    for kind, named in resources.items():
        if not isinstance(named, dict):
            raise ScenarioError(f"{where}: resources.{kind} must map a name to its spec")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError(f"{where}: steps must be a non-empty list")
    totals = data.get("expect", {}).get("audit", {}) if data.get("expect") else {}
    if not isinstance(totals, dict) or not all(isinstance(v, int) for v in totals.values()):
        raise ScenarioError(f"{where}: expect.audit maps an outcome to a count")
    return Scenario(
        path=path,
        name=str(data.get("name") or path.stem),
        summary=str(data.get("summary", "")),
        env=str(data.get("env", "drill")),
        switch=switch,
        resources={k: dict(v) for k, v in resources.items()},
        steps=tuple(_step(s, f"{where}: step {i}") for i, s in enumerate(steps, 1)),
        totals=dict(totals),
    )


def _step(data: Any, where: str) -> Step:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a step is a mapping")
    kinds = [k for k in STEP_KINDS if k in data]
    if len(kinds) != 1:
        raise ScenarioError(f"{where}: a step has exactly one of {STEP_KINDS}, got {sorted(data)}")
    kind = kinds[0]
    value = data[kind]
    options = {k: v for k, v in data.items() if k not in (kind, "expect", "title")}
    allowed = {
        "alarm": ("state", "old_state"),
        "duplicate": (),
        "invoke": (),
        "switch": (),
        "advance": (),
        "budget": ("actual", "limit"),
        "deliver": ("to",),
        "sweep": (),
    }[kind]
    _known(options, allowed, where)
    if kind == "alarm":
        options.setdefault("state", "ALARM")
        if options["state"] not in ALARM_STATES:
            raise ScenarioError(f"{where}: state must be one of {ALARM_STATES}")
    elif kind == "switch":
        value = {True: "on", False: "off"}.get(value, value)
        if value not in SWITCH_MODES:
            raise ScenarioError(f"{where}: switch must be one of {SWITCH_MODES}, got {value!r}")
    elif kind == "advance":
        value = duration(value, where)
    elif kind == "invoke":
        if not isinstance(value, dict) or not {"action", "target"} <= set(value):
            raise ScenarioError(f"{where}: invoke needs action and target")
        _known(value, ("action", "target", "params", "dry_run", "reason", "requested_by"), where)
    elif kind == "deliver" and "to" not in options:
        raise ScenarioError(f"{where}: deliver needs `to: <action>` (the remediator)")
    title = str(data.get("title") or _title(kind, value, options))
    return Step(kind, value, options, _expect(data.get("expect") or {}, where), title)


def _title(kind: str, value: Any, options: dict) -> str:
    if kind == "alarm":
        return f"alarm {value} -> {options['state']}"
    if kind == "duplicate":
        return "the same delivery again (SNS at-least-once)"
    if kind == "invoke":
        dry = " --dry-run" if value.get("dry_run") else ""
        return f"invoke {value['action']} {value['target']}{dry}"
    if kind == "switch":
        return f"switch -> {value}"
    if kind == "advance":
        return f"advance clock {value}"
    if kind == "budget":
        return f"budget {value} over threshold"
    if kind == "sweep":
        return "scheduled WAF sweeper run"
    return f"deliver a raw event to the {options.get('to')} remediator"


def _expect(data: Any, where: str) -> Expect:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expect must be a mapping")
    _known(data, EXPECT_KEYS, f"{where}: expect")
    outcomes = data.get("outcomes")
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    notices = data.get("notices")
    if isinstance(notices, str):
        notices = [notices]
    state = data.get("state") or {}
    if not isinstance(state, dict):
        raise ScenarioError(f"{where}: expect.state maps kind -> name -> fields")
    _known(state, RESOURCE_KINDS, f"{where}: expect.state")
    calls = data.get("calls")
    return Expect(
        outcomes=tuple(str(o) for o in outcomes) if outcomes is not None else None,
        reason=str(data["reason"]) if "reason" in data else None,
        state={k: dict(v) for k, v in state.items()},
        notices=notices if isinstance(notices, int) or notices is None else tuple(notices),
        calls=tuple(calls) if calls is not None else None,
    )


def _known(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {unknown}; expected some of {list(allowed)}")
