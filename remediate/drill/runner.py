"""Run scenarios: drive each step against the world, check its expectations, keep a timeline."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from serverless_remediation.remediate.drill import messages
from serverless_remediation.remediate.drill.scenario import AGREE, VIAS, Expect, Scenario, Step
from serverless_remediation.remediate.drill.template import Remediator, TemplateError
from serverless_remediation.remediate.drill.world import AT, Delivery, World, target_specs
from serverless_remediation.remediate.replay import retime


@dataclass
class Failure:
    """An expectation that did not hold: what was expected and what was seen."""

    scenario: str
    step: int  # 0 for scenario-wide expectations
    title: str
    expected: str
    seen: str

    def __str__(self) -> str:
        where = f"step {self.step} ({self.title})" if self.step else self.title
        return f"{self.scenario}: {where}: expected {self.expected}; saw {self.seen}"


@dataclass
class Event:
    """One step on the timeline."""

    index: int
    at: timedelta
    title: str
    deliveries: list[Delivery] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    note: str = ""


@dataclass
class Run:
    scenario: Scenario
    events: list[Event] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


class Runner:
    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.scenario = scenario
        self.run = Run(scenario)
        self._last: list[tuple[Any, Any]] = []  # (remediator, event) of the last delivery
        #: the last alarm step's (alarm, state, old state, reason, time): `duplicate: <via>`
        #: delivers that transition again by another path
        self._transition: tuple[Any, str, str, str, datetime] | None = None

    def execute(self) -> Run:
        world, scenario = self.world, self.scenario
        watched = self._watched()
        world.build(scenario.resources, scenario.switch, only=watched)
        world.notices()
        state = world.snapshot(watched)
        for index, step in enumerate(scenario.steps, 1):
            event = Event(index, world.clock.offset, self._fill(step.title))
            fired = len(world.faults.fired)
            try:
                self._do(step, event)
            except TemplateError as exc:
                event.failures.append(
                    Failure(scenario.name, index, step.title, "the step to run", str(exc))
                )
            if len(world.faults.fired) > fired:
                injected = ", ".join(world.faults.fired[fired:])
                event.note = "; ".join(filter(None, [event.note, f"injected: {injected}"]))
            # Only deliveries change targets: a switch flip or a clock advance reuses the state.
            after = world.snapshot(watched) if event.deliveries else state
            event.changes = diff(state, after)
            event.notices = world.notices()
            event.failures.extend(self._check(index, step, step.expect, event, after))
            self.run.events.append(event)
            self.run.failures.extend(event.failures)
            state = after
        self.run.failures.extend(self._totals())
        return self.run

    def _watched(self) -> set[tuple[str, str]]:
        """The targets this scenario can touch or looks at: those its resources and
        expectations name, and those behind the alarms, budgets and invokes it uses."""
        watched = {(k, n) for k, named in self.scenario.resources.items() for n in named}
        playbook = self.world.deployment.playbook()
        for step in self.scenario.steps:
            watched |= {(k, n) for k, named in step.expect.state.items() for n in named}
            routes = []
            try:
                if step.kind == "alarm":
                    routes.append(
                        playbook["alarms"].get(self.world.deployment.alarm(step.value).name)
                    )
                elif step.kind == "budget":
                    routes.append(playbook["budgets"].get(self._budget(step.value)[0]))
                elif step.kind == "invoke":
                    routes.append({**step.value, "target": self._fill(step.value["target"])})
                elif step.kind in ("deliver", "replay"):
                    routes.extend(self._routes(self._event(step)))
            except TemplateError:
                pass  # reported when the step runs
            routes += [s for r in filter(None, routes) for s in r.get("then", [])]  # follow-ups
            for route in filter(None, routes):
                specs = target_specs(route.get("target", ""), route.get("params") or {})
                at = f"{AT}{route['account']}" if route.get("account") else ""  # a spoke's
                watched |= {(kind, name + at) for kind, name, _ in specs}
        return watched

    # -- steps --------------------------------------------------------------------------

    def _do(self, step: Step, event: Event) -> None:
        world, deployment = self.world, self.world.deployment
        if step.kind == "alarm":
            alarm = deployment.alarm(step.value)
            state = step.options["state"]
            when = world.clock() + step.options.get("at", timedelta())
            reason = messages.state_reason(alarm.properties, state, when)
            old = step.options.get("old_state", world.alarm_states.get(alarm.name, "OK"))
            world.alarm_states[alarm.name] = state
            self._transition = (alarm, state, old, reason, when)
            shown = world.show_alarm(alarm.arn, state, when, step.options.get("cloudwatch", AGREE))
            event.note = self._alarm_deliveries(step.options.get("via", "sns")) or shown
            self._deliver_last(event)
        elif step.kind == "duplicate":
            if step.value in VIAS:  # the same transition, by another path
                if self._transition is None:
                    raise TemplateError(f"duplicate: {step.value}: no earlier alarm transition")
                event.note = self._alarm_deliveries(step.value)
            if not self._last:
                raise TemplateError("duplicate: no earlier delivery to repeat")
            self._deliver_last(event)
        elif step.kind == "invoke":
            request = {
                "action": step.value["action"],
                "target": self._fill(step.value["target"]),
                "params": step.value.get("params", {}),
                "dry_run": bool(step.value.get("dry_run", False)),
                "reason": step.value.get("reason", "drill: manual request"),
                "requested_by": step.value.get("requested_by", "drill@example.com"),
            }
            self._last = [(deployment.remediator_for(request["action"]), request)]
            self._deliver_last(event)
        elif step.kind == "switch":
            world.set_switch(step.value)
        elif step.kind == "advance":
            world.advance(step.value)
        elif step.kind == "budget":
            name, topic = self._budget(step.value)
            when = world.clock() + step.options.get("at", timedelta())
            subject, body = messages.budget_notice(
                name,
                deployment.account,
                float(step.options.get("limit", 1000)),
                float(step.options.get("actual", 1200)),
                when,
            )
            envelope = messages.sns_envelope(topic, subject, body, when)
            self._last = [(f, envelope) for f in deployment.subscribers(topic)]
            self._deliver_last(event)
        elif step.kind == "sweep":
            if not deployment.sweepers:
                raise TemplateError("sweep: the template has no WAF sweeper function")
            for function in deployment.sweepers:
                event.deliveries.append(world.sweep(function))
        elif step.kind in ("deliver", "replay"):
            raw = self._event(step)
            notes = world.show_alarms(raw, step.options.get("cloudwatch", AGREE))
            event.note = "; ".join(notes)
            self._last = [(self._remediator(step, raw), raw)]
            self._deliver_last(event)
        elif step.kind == "fault":
            world.faults.arm(step.value, step.options["error"], step.options["times"])
        elif step.kind in ("approve", "reject", "silence"):
            from serverless_remediation.remediate.people import drill_step  # people in the loop

            drill_step(self, step, event)

    def _alarm_deliveries(self, via: str) -> str:
        """Set ``_last`` to the deliveries of the last alarm transition by ``via``: SNS, to
        the remediators subscribed to the alarm's action topic for that state; EventBridge,
        to the targets of the rules matching the alarm (else to its route's remediator, as
        ``trigger: eventbridge`` would deploy that rule). A note when that is not plain."""
        assert self._transition is not None
        deployment = self.world.deployment
        alarm, state, old, reason, when = self._transition
        shape = messages.alarm_event if via == "eventbridge" else messages.alarm_message
        message = shape(
            alarm.properties,
            arn=alarm.arn,
            region=deployment.region,
            account=alarm.arn.split(":")[4],  # a hub's spoke alarm: the spoke's event
            new_state=state,
            old_state=old,
            reason=reason,
            when=when,
        )
        self._last = []
        if via == "eventbridge":
            targets = deployment.rule_targets(alarm.name)
            if targets:
                self._last = [(function, message) for function in targets]
                return ""
            route = deployment.playbook()["alarms"].get(alarm.name)
            if route is None:
                return f"no rule or route for {alarm.name}: nothing delivered"
            self._last = [(deployment.remediator_for(route["action"]), message)]
            return f"by EventBridge, as the rule for {route['action']} would (none in the template)"
        topics = {
            "ALARM": alarm.alarm_topics,
            "OK": alarm.ok_topics,
            "INSUFFICIENT_DATA": [
                a for a in alarm.properties.get("InsufficientDataActions") or [] if ":sns:" in a
            ],
        }[state]
        for topic in topics:
            envelope = messages.alarm_envelope(topic, message, when)
            for function in deployment.subscribers(topic):
                self._last.append((function, envelope))
        if not self._last:
            return f"alarm {alarm.name} has no SNS action for {state}: nothing delivered"
        return ""

    def _event(self, step: Step) -> Any:
        """A deliver or replay step's event: placeholders filled, and with ``at`` its
        timestamps moved to the drill's clock (plus the offset)."""
        value = step.value["event"] if step.kind == "replay" else step.value
        raw = json.loads(self._fill(json.dumps(value)))
        if "at" in step.options:
            raw = retime(raw, self.world.clock() + step.options["at"])
        return raw

    def _routes(self, raw: Any) -> list[dict]:
        """The playbook routes of the alarms and budgets in ``raw`` (as the remediator would
        read them), and the manual request it is."""
        from serverless_remediation.remediation import intake
        from serverless_remediation.remediation.models import RejectedError, Source

        playbook = self.world.deployment.playbook()
        routes = []
        try:
            parts = intake.split(raw)
        except RejectedError:
            return []
        for part in parts:
            try:
                request = intake.parse(part)
            except RejectedError:
                continue
            if request.source is Source.ALARM:
                routes.append(playbook["alarms"].get(request.key))
            elif request.source is Source.BUDGET:
                routes.append(playbook["budgets"].get(request.key))
            else:
                routes.append({"action": request.action, "target": request.target or ""})
        return [r for r in routes if r]

    def _remediator(self, step: Step, raw: Any) -> Remediator:
        """``to:``, else the remediator of the action the playbook routes the event to."""
        deployment = self.world.deployment
        if step.options.get("to"):
            return deployment.remediator_for(step.options["to"])
        actions = sorted({str(r["action"]) for r in self._routes(raw)})
        if len(actions) != 1:
            found = f"its routes name {actions}" if actions else "the playbook routes none of it"
            raise TemplateError(
                f"{step.kind}: cannot tell which remediator gets this event ({found}): "
                "say `to: <action>`"
            )
        return deployment.remediator_for(actions[0])

    def _deliver_last(self, event: Event) -> None:
        for function, payload in self._last:
            event.deliveries.append(self.world.deliver(function, payload))

    def _budget(self, name: str) -> tuple[str, str]:
        budgets = self.world.deployment.budgets
        if name in budgets:
            return name, budgets[name]
        matches = [(n, t) for n, t in budgets.items() if n.endswith(f"-{name}")]
        if len(matches) != 1:
            raise TemplateError(f"budget {name!r} not in the template; budgets: {sorted(budgets)}")
        return matches[0]

    def _fill(self, text: str) -> str:
        """``{account}``, ``{region}``, ``{partition}``, ``{env}``, ``{alarm:NAME}`` and
        ``{alarm_arn:NAME}`` (an alarm's full name and ARN, named as in an alarm step), and
        ``{audit:N}``: the id of the first audit record step N wrote (what ``revert`` takes)."""
        d = self.world.deployment

        def audit_id(match: re.Match) -> str:
            index = int(match.group(1))
            events = [e for e in self.run.events if e.index == index]
            records = [r for e in events for dl in e.deliveries for r in dl.records]
            return records[0]["audit_id"] if records else match.group(0)

        text = re.sub(r"\{audit:(\d+)\}", audit_id, text)
        text = re.sub(r"\{alarm:([^{}\"]+)\}", lambda m: d.alarm(m.group(1)).name, text)
        text = re.sub(r"\{alarm_arn:([^{}\"]+)\}", lambda m: d.alarm(m.group(1)).arn, text)
        return (
            text.replace("{account}", d.account)
            .replace("{region}", d.region)
            .replace("{partition}", d.partition)
            .replace("{env}", d.env)
        )

    # -- expectations -------------------------------------------------------------------

    def _check(
        self, index: int, step: Step, expect: Expect, event: Event, state: dict
    ) -> list[Failure]:
        failures: list[Failure] = []

        def fail(expected: str, seen: str) -> None:
            failures.append(Failure(self.scenario.name, index, step.title, expected, seen))

        records = [r for d in event.deliveries for r in d.records]
        seen_records = ", ".join(f"{r['outcome']} ({r.get('detail', '')[:120]})" for r in records)
        if expect.outcomes is not None:
            outcomes = [r["outcome"] for r in records]
            if outcomes != list(expect.outcomes):
                fail(f"outcomes {list(expect.outcomes)}", f"{outcomes}: {seen_records or 'none'}")
        if expect.reason is not None:
            wanted = self._fill(expect.reason)
            if not any(wanted.lower() in str(r.get("detail", "")).lower() for r in records):
                fail(f"a record whose reason contains {wanted!r}", seen_records or "none")
        for kind, named in expect.state.items():
            for name, fields in named.items():
                actual = state.get(kind, {}).get(name)
                if actual is None:
                    fail(
                        f"{kind}.{name} to exist",
                        f"no such target (have {sorted(state.get(kind, {}))})",
                    )
                    continue
                for key, wanted in fields.items():
                    got = actual.get(key)
                    if not matches(got, wanted):
                        fail(f"{kind}.{name}.{key} = {wanted!r}", f"{got!r}")
        if expect.notices is not None:
            texts = [f"{n['subject']}\n{n['message']}" for n in event.notices]
            subjects = [n["subject"] for n in event.notices]
            if isinstance(expect.notices, int):
                if len(texts) != expect.notices:
                    fail(f"{expect.notices} notice(s)", f"{len(texts)}: {subjects}")
            else:
                unmatched = list(texts)
                for wanted in map(self._fill, expect.notices):
                    hit = next((t for t in unmatched if wanted.lower() in t.lower()), None)
                    if hit is None:
                        fail(f"a notice containing {wanted!r}", f"{subjects or 'no notices'}")
                    else:
                        unmatched.remove(hit)
                if len(texts) != len(expect.notices):
                    fail(f"{len(expect.notices)} notice(s)", f"{len(texts)}: {subjects}")
        if expect.calls is not None:
            calls = [c for d in event.deliveries for c in d.target_calls()]
            missing = [c for c in expect.calls if c not in calls]
            if missing:
                fail(f"AWS calls {missing}", f"{calls or 'no calls on targets'}")
        return failures

    def _totals(self) -> list[Failure]:
        if not self.scenario.totals:
            return []
        counts = Counter(r["outcome"] for r in self.world.audit())
        seen = {k: counts.get(k, 0) for k in self.scenario.totals}
        if seen == self.scenario.totals:
            return []
        return [
            Failure(
                self.scenario.name,
                0,
                "audit totals",
                f"{self.scenario.totals}",
                f"{seen} (all records: {dict(counts)})",
            )
        ]


def matches(got: Any, wanted: Any) -> bool:
    """Equality, with dicts compared on the wanted keys only (``{}`` wants an empty dict)
    and numbers/strings leniently."""
    if isinstance(wanted, dict) and isinstance(got, dict):
        if not wanted:
            return not got
        return all(matches(got.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(got, list):
        return sorted(map(str, got)) == sorted(map(str, wanted))
    if wanted is None or got is None:
        return wanted is got
    if isinstance(wanted, bool) or isinstance(got, bool):
        return str(wanted).lower() == str(got).lower()
    return got == wanted or str(got) == str(wanted)


def diff(before: dict, after: dict) -> list[str]:
    """``functions.orders.alias: 3 -> 2`` for every field that changed."""
    lines = []
    for kind, named in after.items():
        for name, fields in named.items():
            old_fields = before.get(kind, {}).get(name, {})
            for key, value in fields.items():
                old = old_fields.get(key)
                if old == value:
                    continue
                if isinstance(old, dict) and isinstance(value, dict):
                    for sub in sorted(set(old) | set(value)):
                        if old.get(sub) != value.get(sub):
                            lines.append(
                                f"{kind}.{name}.{key}.{sub}: {old.get(sub)!r} -> {value.get(sub)!r}"
                            )
                else:
                    lines.append(f"{kind}.{name}.{key}: {_short(old)} -> {_short(value)}")
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
