"""One benchmark scenario per action: how to make a fresh target in the emulator, the route
parameters, the event that triggers it, and the AWS calls the action logically needs.

``minimum`` counts the calls the action cannot do without: the reads it needs to decide, the
writes that make the change, and one read-back (the design requires verify). The pipeline's
own calls (audit, notice, idempotency, guards, switch) are counted apart.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from serverless_remediation.remediate.drill.world import alarm_transitions
from serverless_remediation.remediate.emulator import (
    ACCOUNT,
    REGION,
    create_function,
    create_ip_set,
    put_parameter,
    put_plain_alarm,
)
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.targets import build, partition_of

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.literals import StateValueType

PARTITION = partition_of(REGION)

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "events"


class World(Protocol):
    """What a scenario may use: the emulator's clients, the stand-ins for moto's gaps, and
    the handler (to make an audit record a revert can undo)."""

    clients: Clients
    gaps: Any

    def deliver(self, event: dict) -> list[dict]: ...


@dataclass(frozen=True)
class Scenario:
    action: str
    #: what the scenario does, for the table
    does: str
    #: (world, name) -> (target ARN, route params), made fresh in the emulator per event
    make_target: Callable[[World, str], tuple[str, dict]]
    #: the logically needed AWS calls (see the module docstring)
    minimum: int
    minimum_why: str
    #: (world, alarm name, target) -> the event; default: the alarm going to ALARM
    event: Callable[[World, str, str], dict] | None = None
    #: the action the playbook routes the alarm to (revert undoes a rollback)
    route_action: str = ""
    #: every event acts on the same target: clear its cooldown between events (untimed)
    shared_target: bool = False


def _alias(world: World, name: str) -> tuple[str, dict]:
    return create_function(world.clients, name, versions=3), {}


def _function(world: World, name: str) -> tuple[str, dict]:
    return create_function(world.clients, name, versions=1, alias=None), {"kind": "lambda-memory"}


def _flag(world: World, name: str) -> tuple[str, dict]:
    parameter = f"/bench/{name}/webhook-enabled"
    put_parameter(world.clients, parameter, "true")
    return build(PARTITION, "ssm", REGION, ACCOUNT, f"parameter{parameter}"), {"value": "false"}


def _sheddable(world: World, name: str) -> tuple[str, dict]:
    create_function(world.clients, name, versions=1, alias=None)
    target = build(PARTITION, "lambda", REGION, ACCOUNT, "function:*")
    return target, {"sheddable": [name], "max_reserved": 1}


def _ip_set(world: World, name: str) -> tuple[str, dict]:
    summary = create_ip_set(world.clients, name)
    log_group = f"/aws/apigateway/{name}-access"
    # Two offenders over the default threshold (100 denied requests), one below it.
    lines = [
        json.dumps({"ip": f"203.0.113.{n}", "status": 401}) for n in (7, 8) for _ in range(150)
    ]
    lines += [json.dumps({"ip": "198.51.100.9", "status": 403})] * 20
    world.gaps.log_lines[log_group] = lines
    return summary["ARN"], {"log_group": log_group}


def _revert_event(world: World, alarm: str, target: str) -> dict:
    """Roll ``target`` back through the handler (untimed), then ask to revert that."""
    event = alarm_delivery(alarm)
    confirm_alarms(world.clients, event)
    (result,) = world.deliver(event)
    if result["outcome"] != "executed":
        raise RuntimeError(f"revert scenario: the rollback it undoes was {result['outcome']}")
    return {
        "action": "revert",
        "target": result["audit_id"],
        "reason": "bench: undo the rollback",
        "requested_by": "bench@example.com",
    }


SCENARIOS: dict[str, Scenario] = {
    s.action: s
    for s in [
        Scenario(
            "rollback",
            "Lambda alias -> previous version",
            _alias,
            minimum=4,
            minimum_why="GetAlias, ListVersionsByFunction, UpdateAlias, GetAlias (verify)",
        ),
        Scenario(
            "capacity-bump",
            "Lambda memory x1.5",
            _function,
            minimum=4,
            minimum_why="GetFunctionConfiguration, ListAliases (does the new memory reach live "
            "traffic: an alias on a published version never sees it), "
            "UpdateFunctionConfiguration, GetFunctionConfiguration (verify)",
        ),
        Scenario(
            "flip-flag",
            "SSM flag true -> false",
            _flag,
            minimum=3,
            minimum_why="GetParameter, PutParameter, GetParameter (verify)",
        ),
        Scenario(
            "cost-guard",
            "one sheddable function: reserved concurrency -> 1",
            _sheddable,
            minimum=4,
            minimum_why="GetFunctionConcurrency, ListProvisionedConcurrencyConfigs, "
            "PutFunctionConcurrency, GetFunctionConcurrency (verify)",
            shared_target=True,
        ),
        Scenario(
            "waf-block",
            "2 offenders from the access log -> IP set",
            _ip_set,
            minimum=7,
            minimum_why="StartQuery, GetQueryResults, GetIPSet, Query (which entries are this "
            "action's blocks), TransactWriteItems (the blocks' expiry records, written before "
            "the block so none outlives its expiry), UpdateIPSet, GetIPSet (verify)",
        ),
        Scenario(
            "revert",
            "manual revert of an executed rollback",
            _alias,
            minimum=4,
            minimum_why="GetItem (audit record), GetAlias, UpdateAlias, GetAlias (verify)",
            event=_revert_event,
            route_action="rollback",
        ),
    ]
}


def available(registered: set[str]) -> list[Scenario]:
    """The scenarios whose actions are registered, in table order."""
    return [
        s
        for name, s in SCENARIOS.items()
        if name in registered and (s.route_action or name) in registered
    ]


# -- events ---------------------------------------------------------------------------------


def alarm_arn(name: str) -> str:
    return build(PARTITION, "cloudwatch", REGION, ACCOUNT, f"alarm:{name}")


def confirm_alarms(clients: Clients, *events: dict) -> None:
    """Make the (remote) emulator's CloudWatch show every alarm in ``events`` in its state,
    as CloudWatch does when it sent the event itself: remediators read each alarm back with
    DescribeAlarms before acting. moto stamps the state change with its own clock, after the
    events were made, which the confirmation accepts (the alarm is in that state since at
    least the event's time). Untimed setup: call it with the recorder paused."""
    cloudwatch = clients("cloudwatch")
    seen: dict[str, StateValueType] = {}
    for event in events:
        for arn, state, _ in alarm_transitions(event):
            seen[arn.split(":", 6)[6]] = state
    for name, state in seen.items():
        put_plain_alarm(cloudwatch, name, namespace="Bench")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="bench")


def alarm_delivery(name: str, *, changed: datetime | None = None) -> dict:
    """One SNS -> Lambda delivery of ``name`` going to ALARM at ``changed`` (default now).

    Delivering the same dict twice is a duplicate delivery (same transition, same message id).
    """
    envelope = json.loads((EVENTS / "sns_alarm_single_metric.json").read_text())
    record = envelope["Records"][0]["Sns"]
    alarm = json.loads(record["Message"])
    when = changed or datetime.now(UTC)
    alarm.update(
        AlarmName=name,
        AlarmArn=alarm_arn(name),
        StateChangeTime=when.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}+0000",
    )
    record["Message"] = json.dumps(alarm)
    record["MessageId"] = str(uuid.uuid4())
    record["Subject"] = f'ALARM: "{name}" in EU (Ireland)'[:100]
    return envelope


#: the alarm storm: 250 transitions on 50 targets, each delivered 4 times (SNS is at least once)
STORM_TARGETS, STORM_TRANSITIONS, STORM_DELIVERIES = 50, 250, 1000


def storm_setup(world: World, action: str, seed: int) -> tuple[dict[str, dict], list[dict]]:
    """The storm's routes (one fresh target each) and its deliveries, shuffled by ``seed``:
    transitions of the last few seconds (fresh: an event older than 15 min, or dated in the
    future, is refused), each alarm in ALARM since after its last one, confirmed in the
    emulator's CloudWatch."""
    scenario = SCENARIOS[action]
    routes = {}
    for t in range(STORM_TARGETS):
        name = f"storm-{t}"
        target, params = scenario.make_target(world, name)
        routes[name] = {"action": action, "target": target, "params": params}
    names = sorted(routes)
    start = datetime.now(UTC) - timedelta(seconds=STORM_TRANSITIONS // STORM_TARGETS + 1)
    transitions = [
        alarm_delivery(
            names[i % STORM_TARGETS], changed=start + timedelta(seconds=i // STORM_TARGETS)
        )
        for i in range(STORM_TRANSITIONS)
    ]
    confirm_alarms(world.clients, *transitions)
    per = STORM_DELIVERIES // STORM_TRANSITIONS
    deliveries = [event for event in transitions for _ in range(per)]
    random.Random(seed).shuffle(deliveries)
    return routes, deliveries
