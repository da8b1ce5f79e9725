"""Adding an action is one module plus its config (docs/extending.md), proved end to end.

A small action, ``purge-queue``, is written to a temporary module and imported (which
registers it); no file of the repository changes. Then, from that module and a cdk.json
route alone:

- the pipeline runs it against the emulator (read, plan, apply, verify, audit record);
- the CDK app builds its remediator, whose role grants exactly its declared permissions on
  its target and nothing else of that service;
- ``remediate plan`` lists the alarm routed to it, with its remediator;
- ``remediate drill`` runs a scenario that fires that alarm, once the action's resource kind
  (queues) is registered with the drill (``remediate.drill.kinds``, from a second module).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serverless_remediation.remediate import cli
from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation import actions as actions_package
from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.targets import build, partition_of

ROOT = Path(__file__).resolve().parents[2]
NAME = "purge-queue"
QUEUE = "reports-jobs"
MODULE = "purge_queue_action"

#: the whole action, as a user would write it in functions/remediation/actions/
ACTION_SOURCE = textwrap.dedent(
    '''
    """purge-queue: empty a queue that keeps feeding a failing consumer poisoned messages."""

    from __future__ import annotations

    from dataclasses import dataclass
    from datetime import datetime
    from typing import ClassVar, TypedDict

    from .base import Action, ActionParams, Limit, Plan, VerifyError, register


    @dataclass(frozen=True)
    class PurgeParams(ActionParams):
        #: more messages than this waiting: a human looks first (a cap)
        max_messages: int = 1000

        def __post_init__(self) -> None:
            if self.max_messages < 1:
                raise ValueError("max_messages must be at least 1")


    class QueueState(TypedDict):
        messages: int


    @register
    class PurgeQueue(Action[PurgeParams, QueueState, QueueState]):
        """Purge an SQS queue, up to a cap of waiting messages."""

        name = "purge-queue"
        Params = PurgeParams
        permissions = ("sqs:GetQueueAttributes", "sqs:PurgeQueue")
        limits: ClassVar[dict[str, Limit]] = {"max_messages": Limit.AT_MOST}

        def read(self, target: str, params: PurgeParams) -> QueueState:
            sqs = self.clients("sqs")
            url = sqs.get_queue_url(QueueName=self.ctx.targets[0].name)["QueueUrl"]
            got = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            return {"messages": int(got["Attributes"]["ApproximateNumberOfMessages"])}

        def plan(
            self, current: QueueState, params: PurgeParams, now: datetime
        ) -> Plan[QueueState]:
            waiting = current["messages"]
            if waiting == 0:
                return Plan.noop("the queue is empty", current)
            if waiting > params.max_messages:
                return Plan.escalate(
                    f"{waiting} messages waiting, over the {params.max_messages} cap", current
                )
            return Plan.change(f"purge {waiting} messages", current, {"messages": 0})

        def apply(self, target: str, plan: Plan[QueueState]) -> None:
            sqs = self.clients("sqs")
            url = sqs.get_queue_url(QueueName=self.ctx.targets[0].name)["QueueUrl"]
            sqs.purge_queue(QueueUrl=url)

        def verify(self, target: str, plan: Plan[QueueState]) -> QueueState:
            seen = self.read(target, PurgeParams())
            if seen["messages"] != plan.after["messages"]:
                raise VerifyError(f"{seen['messages']} messages still waiting")
            return seen
    '''
)


def queue_arn(account: str = ACCOUNT, region: str = REGION) -> str:
    return build(partition_of(region), "sqs", region, account, QUEUE)


@pytest.fixture
def purge_queue(tmp_path: Path) -> Iterator[Any]:
    """The action's module, written outside the repository and imported as a module of the
    actions package (as if it were in functions/remediation/actions/): it registers."""
    path = tmp_path / f"{MODULE}.py"
    path.write_text(ACTION_SOURCE, encoding="utf-8")
    name = f"{actions_package.__name__}.{MODULE}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    assert NAME not in REGISTRY
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        REGISTRY.pop(NAME, None)
        sys.modules.pop(name, None)


def test_the_new_action_registers_complete(purge_queue):
    action = REGISTRY[NAME]
    assert action is purge_queue.PurgeQueue
    assert action.Params.schema() == {"max_messages": "int"}
    planner = action.__new__(action)  # ``plan`` is pure: no context needed
    plan = planner.plan({"messages": 3}, action.Params(), datetime.now(UTC))
    assert (plan.verdict, plan.after) == ("change", {"messages": 0})


def test_the_pipeline_runs_it_and_records_it(purge_queue, stack):
    url = stack.clients("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
    for n in range(3):
        stack.clients("sqs").send_message(QueueUrl=url, MessageBody=f"poison {n}")
    playbook = {"inventory": [{"action": NAME, "target": queue_arn(), "params": {}}]}
    request = {
        "action": NAME,
        "target": queue_arn(),
        "reason": "poisoned messages",
        "requested_by": "alice",
    }

    (result,) = stack.pipeline(playbook).handle(request)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert (result.before, result.after) == ({"messages": 3}, {"messages": 0})
    (record,) = stack.audit_items()
    assert (record["action"], record["outcome"]) == (NAME, "executed")
    # a manual request may only move towards caution, as for every action
    raised = {**request, "params": {"max_messages": 5000}}
    (refused,) = stack.pipeline(playbook).handle(raised)
    assert refused.outcome is Outcome.REJECTED
    assert "beyond the configured limit" in refused.reason


@pytest.fixture
def assembly(purge_queue, tmp_path: Path) -> tuple[Path, Any]:
    """The drill environment with one alarm routed to the new action, synthesized."""
    from aws_cdk import App

    from serverless_remediation.stacks.config import load
    from serverless_remediation.stacks.stacks import add_environment

    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    context = copy.deepcopy(context)
    drill = context["environments"]["drill"]
    target = queue_arn(drill["account"], drill["region"])
    route = {"action": NAME, "target": target, "params": {"max_messages": 500}}
    drill["services"]["reports-worker"]["routes"] = {"error-rate": route}
    config = load(context, "drill")
    flags = {k: v for k, v in context.items() if k.startswith("@aws-cdk")}
    out = tmp_path / "cdk.out"
    # Asset metadata: the assembly names each remediator's bundle, where its playbook is.
    app = App(outdir=str(out), context={**flags, "aws:cdk:enable-asset-metadata": True})
    stacks = add_environment(app, config)
    app.synth()
    return out, (stacks, target)


def _resources(out: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("*.template.json")):
        template = json.loads(path.read_text(encoding="utf-8"))
        found.update({f"{path.name}/{k}": v for k, v in template.get("Resources", {}).items()})
    return found


def _role_of(resources: dict[str, dict[str, Any]], action: str) -> str:
    """The logical id of the role of the remediator that runs ``action``."""
    (role,) = {
        body["Properties"]["Role"]["Fn::GetAtt"][0]
        for body in resources.values()
        if body["Type"] == "AWS::Lambda::Function"
        and body["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .get("REMEDIATION_ACTIONS")
        == action
    }
    return str(role)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.slow
def test_the_cdk_app_grants_exactly_its_permissions_on_its_target(assembly):
    out, (_, target) = assembly
    resources = _resources(out)
    functions = {
        logical: body
        for logical, body in resources.items()
        if body["Type"] == "AWS::Lambda::Function"
        and body["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .get("REMEDIATION_ACTIONS")
        == NAME
    }
    assert len(functions) == 1, "one remediator for the new action"
    (function,) = functions.values()
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    # revert re-applies any action from its record, so its remediator holds them all
    revert = _role_of(resources, "revert")

    declared = set(REGISTRY[NAME].permissions)
    grants = [
        (owner, statement)
        for owner, body in resources.items()
        if body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for statement in body["Properties"]["PolicyDocument"]["Statement"]
        if declared & set(_as_list(statement["Action"]))
        or target in _as_list(statement.get("Resource", []))
    ]
    assert grants, "the new action's permissions are granted nowhere"
    granted: dict[str, set[str]] = {role: set(), revert: set()}
    for owner, statement in grants:
        (holder,) = resources[owner]["Properties"].get("Roles", [])
        # only its own remediator (and revert's), only on the target, only what it declared
        assert holder["Ref"] in granted, f"{owner} grants them to {holder}"
        assert statement["Effect"] == "Allow"
        assert _as_list(statement["Resource"]) == [target], statement
        assert set(_as_list(statement["Action"])) <= declared, statement
        granted[holder["Ref"]] |= set(_as_list(statement["Action"]))
    assert granted == {role: declared, revert: declared}


@pytest.mark.slow
def test_remediate_plan_lists_the_alarm_routed_to_it(assembly):
    out, (_, target) = assembly
    result = CliRunner().invoke(
        cli.app, ["plan", "--env", "drill", "--cdk-out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("action") == NAME]
    assert len(ours) == 1, lines
    (row,) = ours
    assert row["target"] == target
    assert row["params"] == {"max_messages": 500}
    assert row["remediator"], "the plan names the remediator that runs it"


#: the drill's side of the new action, also outside the repository: its resource kind
DRILL_SOURCE = textwrap.dedent(
    '''
    """Queues on the drill's emulator, for purge-queue scenarios."""

    from serverless_remediation.remediate.drill.kinds import ResourceKind, register


    def create(clients, name, spec):
        url = clients("sqs").create_queue(QueueName=name)["QueueUrl"]
        for n in range(int(spec.get("messages", 0))):
            clients("sqs").send_message(QueueUrl=url, MessageBody=f"poison {n}")


    def read(clients, name, spec):
        sqs = clients("sqs")
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        names = ["ApproximateNumberOfMessages"]
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return {"messages": int(found["ApproximateNumberOfMessages"])}


    def targets(target):
        if target.service == "sqs" and target.resource_type == "queue":
            return [(target.name, {"messages": 0})]
        return []


    QUEUES = register(ResourceKind("queues", ("messages",), ("messages",), create, read, targets))
    '''
)

SCENARIO = textwrap.dedent(
    f"""
    name: purge-queue-error-rate
    summary: the added action, drilled from its alarm
    env: drill
    switch: on
    resources:
      queues:
        {QUEUE}: {{messages: 3}}
    steps:
      - alarm: reports-worker-error-rate
        expect:
          outcomes: [executed]
          state: {{queues: {{{QUEUE}: {{messages: 0}}}}}}
      - alarm: reports-worker-error-rate
        state: OK
        expect:
          outcomes: [skipped]
          state: {{queues: {{{QUEUE}: {{messages: 0}}}}}}
    """
)


@pytest.fixture
def drill_queues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from serverless_remediation.remediate.drill import kinds

    (tmp_path / "purge_queue_drill.py").write_text(DRILL_SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module("purge_queue_drill")
    finally:
        kinds.unregister("queues")
        sys.modules.pop("purge_queue_drill", None)


@pytest.mark.slow
def test_remediate_drill_runs_a_scenario_of_it(assembly, drill_queues, tmp_path: Path):
    out, _ = assembly
    scenario = tmp_path / "purge-queue.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    report = tmp_path / "drill.md"

    result = CliRunner().invoke(
        cli.app, ["drill", str(scenario), "--cdk-out", str(out), "--report", str(report)]
    )

    assert result.exit_code == 0, result.output
    text = report.read_text(encoding="utf-8")
    assert "purge-queue-error-rate" in text
    assert "**1/1 scenarios passed**" in text
    # the alarm went to the new action's own remediator, which purged the queue it targets
    assert "-> autorem-drill-purge-queue" in text
    assert "sqs:PurgeQueue" in text
    assert "queues.reports-jobs.messages: 3 -> 0" in text
