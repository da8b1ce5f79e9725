"""Scenario files: YAML describing an environment, its initial resources, steps and expectations.

Loaded into frozen dataclasses; a malformed file fails with the file, the step and the key.
Every mapping has a fixed set of keys: an unknown one (a typo such as ``outcome:`` for
``outcomes:``, which would otherwise check nothing) is an error naming it and the keys
allowed there. The format is documented in docs/drill.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

MISSING = "missing"
SWITCH_MODES = ("on", "off", "dry-run", MISSING)
#: the scenario's initial switch: what the template deploys (the env's configured mode)
AS_DEPLOYED = "as-deployed"
ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")

#: what the emulated CloudWatch shows for the alarm of an event the drill delivers
AGREE = "agree"  # what CloudWatch shows when it sent the event itself (the default)
AS_IS = "as-is"  # left as the scenario left it: the event is forged
ABSENT = "absent"  # no such alarm
CLOUDWATCH_MODES = (AGREE, AS_IS, ABSENT)
CLOUDWATCH_KEYS = ("state", "since")
#: how an alarm step delivers its transition (``via:``), and what ``duplicate:`` may name
VIAS = ("sns", "eventbridge")

#: keys of each resource kind's spec (``resources.KIND.NAME``)
RESOURCE_SPECS: dict[str, tuple[str, ...]] = {
    "functions": (
        "versions",
        "alias",
        "alias_version",
        "weights",
        "memory",
        "timeout",
        "environment",
        "reserved_concurrency",
        "provisioned",
    ),
    "parameters": ("value",),
    "tables": ("read", "write", "on_demand", "autoscaling"),
    "ip_sets": ("id", "scope", "version", "addresses"),
    "rest_apis": ("stage", "name", "deployments", "rate", "burst", "stages"),
    "http_apis": ("stage", "deployments", "auto_deploy", "stages"),
    "log_groups": ("hits", "status", "lines"),
}
AUTOSCALING_KEYS = ("min", "max")
#: fields ``expect.state`` can check, by kind (what ``World.snapshot`` reads back)
STATE_FIELDS: dict[str, tuple[str, ...]] = {
    "functions": (
        "alias",
        "weights",
        "provisioned",
        "memory",
        "timeout",
        "reserved_concurrency",
        "environment",
    ),
    "parameters": ("value",),
    "tables": ("billing", "read", "write", "autoscaling"),
    "ip_sets": ("addresses",),
    "rest_apis": ("deployment", "rate", "burst", "stages"),
    "http_apis": ("deployment", "auto_deploy", "stages"),
}
STEP_KINDS = (
    "alarm",
    "duplicate",
    "invoke",
    "switch",
    "advance",
    "budget",
    "deliver",
    "replay",
    "sweep",
    "fault",
    # people in the loop (remediate/people.py)
    "approve",
    "reject",
    "silence",
)
#: keys a step may have besides its kind, by kind
STEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "alarm": ("state", "old_state", "at", "cloudwatch", "via"),
    "duplicate": (),
    "invoke": (),
    "switch": (),
    "advance": (),
    "budget": ("actual", "limit", "at"),
    "deliver": ("to", "at", "cloudwatch"),
    "replay": ("to", "at", "cloudwatch"),
    "sweep": (),
    "fault": ("error", "times"),
    # button: pressed in chat (the chat decisions function names who decides)
    "approve": ("requested_by", "reason", "via", "button"),
    "reject": ("requested_by", "reason", "via", "button"),
    "silence": ("for", "reason", "requested_by"),
}
COMMON_STEP_KEYS = ("expect", "title")
INVOKE_KEYS = ("action", "target", "params", "dry_run", "reason", "requested_by")
EXPECT_KEYS = ("outcomes", "reason", "state", "notices", "calls")
SCENARIO_KEYS = ("name", "summary", "env", "switch", "resources", "steps", "expect")
SCENARIO_EXPECT_KEYS = ("audit",)
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_OFFSET = re.compile(r"^([+-]?)(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CALL = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


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
    switch: str | dict[str, str]
    resources: dict[str, dict[str, Any]]
    steps: tuple[Step, ...]
    totals: dict[str, int]


def duration(text: Any, where: str) -> timedelta:
    """``90s``, ``20m``, ``2h``, ``1d`` -> timedelta."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ScenarioError(f"{where}: duration {text!r} must look like 90s, 20m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def offset(text: Any, where: str) -> timedelta:
    """``now`` (0), ``-20m``, ``+1m``, ``90s`` -> a signed timedelta."""
    if str(text).strip() == "now":
        return timedelta()
    match = _OFFSET.match(str(text).strip())
    if not match:
        raise ScenarioError(f"{where}: {text!r} must be now or a signed duration like -20m, +90s")
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(**{_UNITS[match.group(3)]: int(match.group(2))})


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
    _mapping(data, SCENARIO_KEYS, where, "a scenario")
    switch = _switch(data.get("switch", AS_DEPLOYED), f"{where}: switch", initial=True)
    resources = data.get("resources") or {}
    _mapping(
        resources, tuple(RESOURCE_SPECS), f"{where}: resources", "resources (kind -> name -> spec)"
    )
    for kind, named in resources.items():
        _resources(kind, named, f"{where}: resources.{kind}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError(f"{where}: steps must be a non-empty list")
    expect = data.get("expect") or {}
    _mapping(expect, SCENARIO_EXPECT_KEYS, f"{where}: expect", "expect")
    totals = expect.get("audit") or {}
    if not isinstance(totals, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in totals.values()
    ):
        raise ScenarioError(f"{where}: expect.audit maps an outcome to a count")
    return Scenario(
        path=path,
        name=str(data.get("name") or path.stem),
        summary=str(data.get("summary", "")),
        env=str(data.get("env", "drill")),
        switch=switch,
        resources={k: dict(v) for k, v in resources.items()},
        steps=tuple(_step(s, f"{where}: step {i}", path) for i, s in enumerate(steps, 1)),
        totals=dict(totals),
    )


def _resources(kind: str, named: Any, where: str) -> None:
    if not isinstance(named, dict):
        raise ScenarioError(f"{where} must map a name to its spec")
    for name, spec in named.items():
        if kind == "parameters" and not isinstance(spec, dict):
            continue  # a parameter's spec may be its value
        if spec is None:
            continue
        _mapping(spec, RESOURCE_SPECS[kind], f"{where}.{name}", "a resource spec")
        if kind == "tables" and spec.get("autoscaling") is not None:
            _mapping(
                spec["autoscaling"], AUTOSCALING_KEYS, f"{where}.{name}.autoscaling", "autoscaling"
            )
        if kind == "functions" and spec.get("weights") is not None:
            weights = spec["weights"]
            if not isinstance(weights, dict) or not all(
                isinstance(v, int | float) and 0 < v < 1 for v in weights.values()
            ):
                raise ScenarioError(
                    f"{where}.{name}.weights maps a version to a share between 0 and 1 "
                    '(e.g. {"3": 0.1})'
                )


def _step(data: Any, where: str, path: Path) -> Step:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a step is a mapping")
    kinds = [k for k in STEP_KINDS if k in data]
    if len(kinds) != 1:
        unknown = sorted(set(data) - {*STEP_KINDS, *COMMON_STEP_KEYS}) if not kinds else []
        hint = f"; unknown key(s) {unknown}" if unknown else ""
        raise ScenarioError(
            f"{where}: a step has exactly one of {list(STEP_KINDS)}, got {sorted(data)}{hint}"
        )
    kind = kinds[0]
    value = data[kind]
    options = {k: v for k, v in data.items() if k not in (kind, *COMMON_STEP_KEYS)}
    _known(options, STEP_OPTIONS[kind], f"{where} ({kind})")
    if "at" in options:
        options["at"] = offset(options["at"], f"{where}: at")
    if "cloudwatch" in options:
        options["cloudwatch"] = _cloudwatch(options["cloudwatch"], f"{where}: cloudwatch")
    if kind == "alarm":
        options.setdefault("state", "ALARM")
        if options["state"] not in ALARM_STATES:
            raise ScenarioError(f"{where}: state must be one of {ALARM_STATES}")
        if "old_state" in options and options["old_state"] not in ALARM_STATES:
            raise ScenarioError(f"{where}: old_state must be one of {ALARM_STATES}")
        if options.setdefault("via", "sns") not in VIAS:
            raise ScenarioError(f"{where}: via must be one of {VIAS}")
    elif kind == "duplicate":
        if value is not True and value not in VIAS:
            raise ScenarioError(
                f"{where}: duplicate is true (the same delivery again) or one of {VIAS} "
                "(the same transition, delivered that way)"
            )
    elif kind == "switch":
        value = _switch(value, f"{where}: switch")
    elif kind == "advance":
        value = duration(value, where)
    elif kind == "invoke":
        if not isinstance(value, dict) or not {"action", "target"} <= set(value):
            raise ScenarioError(f"{where}: invoke needs action and target")
        _known(value, INVOKE_KEYS, f"{where}: invoke")
    elif kind == "replay":
        value = _capture(value, where, path)
    elif kind == "fault":
        if not isinstance(value, str) or not _CALL.match(value):
            raise ScenarioError(
                f"{where}: fault names one AWS call as service:Operation "
                f"(e.g. lambda:UpdateAlias), got {value!r}"
            )
        options.setdefault("error", "AccessDeniedException")
        times = options.setdefault("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ScenarioError(f"{where}: times must be a whole number of calls, at least 1")
    elif kind in ("approve", "reject") and (isinstance(value, bool) or not value):
        raise ScenarioError(f"{where}: {kind} names the step that asked (a number) or an id")
    elif kind in ("approve", "reject") and "button" in options:
        if options["button"] is not True:
            raise ScenarioError(f"{where}: button is true or absent")
        if set(options) & {"requested_by", "reason", "via"}:
            raise ScenarioError(f"{where}: a chat button sends only the id (no requested_by...)")
    elif kind == "silence" and "for" in options:
        options["for"] = duration(options["for"], where)
    elif kind == "budget":
        for key in ("actual", "limit"):
            if key in options and not isinstance(options[key], int | float):
                raise ScenarioError(f"{where}: {key} must be a number")
    title = str(data.get("title") or _title(kind, value, options))
    return Step(kind, value, options, _expect(data.get("expect") or {}, where), title)


def _switch(value: Any, where: str, *, initial: bool = False) -> str | dict[str, str]:
    """A mode, or ``{value: TEXT}``: exactly that text in the parameter (a typo to test)."""
    if isinstance(value, dict):
        _mapping(value, ("value",), where, "a switch value")
        if not isinstance(value.get("value"), str):
            raise ScenarioError(f'{where}: value must be a string (quote it: "ON ", "true")')
        return {"value": value["value"]}
    # YAML 1.1 reads a bare `on` as true and `off` as false.
    value = {True: "on", False: "off"}.get(value, value)
    allowed = (*SWITCH_MODES, AS_DEPLOYED) if initial else SWITCH_MODES
    if value not in allowed:
        raise ScenarioError(
            f"{where} must be one of {allowed} or {{value: TEXT}} for exactly that text, "
            f"got {value!r}"
        )
    return value


def _cloudwatch(value: Any, where: str) -> str | dict[str, Any]:
    if isinstance(value, dict):
        _mapping(value, CLOUDWATCH_KEYS, where, "cloudwatch")
        shown: dict[str, Any] = {}
        if "state" in value:
            if value["state"] not in ALARM_STATES:
                raise ScenarioError(f"{where}: state must be one of {ALARM_STATES}")
            shown["state"] = value["state"]
        if "since" in value:
            shown["since"] = offset(value["since"], f"{where}: since")
        return shown
    if value not in CLOUDWATCH_MODES:
        raise ScenarioError(
            f"{where} must be one of {list(CLOUDWATCH_MODES)} or a mapping with "
            f"{list(CLOUDWATCH_KEYS)}, got {value!r}"
        )
    return value


def _capture(value: Any, where: str, path: Path) -> dict[str, Any]:
    """``replay: FILE`` (relative to the scenario): the captured event, and where it is."""
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where}: replay names a JSON file (relative to the scenario)")
    file = (path.parent / value).resolve()
    try:
        event = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read {value}: {exc.strerror}") from None
    except ValueError as exc:
        raise ScenarioError(f"{where}: {value} is not JSON: {exc}") from None
    return {"file": value, "event": event}


def _title(kind: str, value: Any, options: dict) -> str:
    if kind == "alarm":
        via = " (by EventBridge)" if options.get("via") == "eventbridge" else ""
        return f"alarm {value} -> {options['state']}{via}"
    if kind == "duplicate":
        if value in VIAS:
            return f"the same transition again, delivered by {value}"
        return "the same delivery again (at-least-once delivery)"
    if kind == "invoke":
        dry = " --dry-run" if value.get("dry_run") else ""
        return f"invoke {value['action']} {value['target']}{dry}"
    if kind == "switch":
        return f"switch -> {value['value']!r}" if isinstance(value, dict) else f"switch -> {value}"
    if kind == "advance":
        return f"advance clock {value}"
    if kind == "budget":
        return f"budget {value} over threshold"
    if kind == "sweep":
        return "scheduled WAF sweeper run"
    if kind in ("approve", "reject"):
        press = "press the chat button to " if options.get("button") else ""
        return press + (
            f"{kind} the approval step {value} asked for"
            if isinstance(value, int)
            else (f"{kind} approval {value}")
        )
    if kind == "silence":
        return f"silence {value} for {options.get('for', '1h')}"
    if kind == "fault":
        times = options["times"]
        return f"{value} fails {'once' if times == 1 else f'{times} times'} ({options['error']})"
    to = f" to the {options['to']} remediator" if options.get("to") else ""
    if kind == "replay":
        return f"replay {value['file']}{to}"
    return f"deliver a raw event{to}"


def _expect(data: Any, where: str) -> Expect:
    _mapping(data, EXPECT_KEYS, f"{where}: expect", "expect")
    outcomes = data.get("outcomes")
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    notices = data.get("notices")
    if isinstance(notices, str):
        notices = [notices]
    state = data.get("state") or {}
    _mapping(state, tuple(STATE_FIELDS), f"{where}: expect.state", "expect.state")
    for kind, named in state.items():
        if not isinstance(named, dict):
            raise ScenarioError(f"{where}: expect.state.{kind} maps a name to fields")
        for name, fields in named.items():
            _mapping(fields, STATE_FIELDS[kind], f"{where}: expect.state.{kind}.{name}", "fields")
    calls = data.get("calls")
    if isinstance(calls, str):
        calls = [calls]
    return Expect(
        outcomes=tuple(str(o) for o in outcomes) if outcomes is not None else None,
        reason=str(data["reason"]) if "reason" in data else None,
        state={k: dict(v) for k, v in state.items()},
        notices=notices if isinstance(notices, int) or notices is None else tuple(notices),
        calls=tuple(calls) if calls is not None else None,
    )


def _mapping(data: Any, allowed: tuple[str, ...], where: str, what: str) -> None:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: {what} must be a mapping with some of {list(allowed)}")
    _known(data, allowed, where)


def _known(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(map(str, set(data) - set(allowed)))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {unknown}; expected some of {list(allowed)}")
