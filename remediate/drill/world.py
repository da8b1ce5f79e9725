"""The drill's world: the emulator holding what the template deploys plus the targets, and
the remediators run in-process against it.

``World.build()`` creates the topics, audit table, switch and alarms from the synthesized
template, the targets the playbook names (shaped by the scenario), and a queue that catches
every human notice. ``World.show_alarm()`` sets what the emulated CloudWatch shows for an
alarm (by default what CloudWatch would show had it sent the event: the pipeline confirms
every alarm with ``DescribeAlarms``). ``World.deliver()`` runs one remediator's Lambda
handler on one event with the environment variables the template gives that function.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import boto3

from serverless_remediation.remediate import emulator as emu
from serverless_remediation.remediate.drill import (
    kinds,
    resources_data,  # noqa: F401 (registers its resource kinds)
    resources_edge,  # noqa: F401 (registers its resource kinds)
)
from serverless_remediation.remediate.drill.faults import Faults
from serverless_remediation.remediate.drill.gaps import Gaps
from serverless_remediation.remediate.drill.scenario import (
    ABSENT,
    AGREE,
    AS_DEPLOYED,
    AS_IS,
    MISSING,
)
from serverless_remediation.remediate.drill.template import Deployment, Remediator
from serverless_remediation.remediation.audit import parse_item
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import RejectedError
from serverless_remediation.remediation.store import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from serverless_remediation.remediation.targets import build, parse

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_application_autoscaling.literals import ScalableDimensionType
    from mypy_boto3_cloudwatch.literals import StateValueType

# A switch flip reaches a warm remediator within this long (the gate's cache max age).
SWITCH_CACHE = timedelta(seconds=30)
NOTICE_QUEUE = "drill-notices"
# AWS calls the pipeline makes for its own bookkeeping, shown apart from calls on targets.
BOOKKEEPING = {
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "Query"),
    ("dynamodb", "DeleteItem"),
    ("ssm", "GetParameter"),
    ("sns", "Publish"),
}


class Clock:
    """The drill's clock: real time plus whatever the scenario has advanced."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


class FakeContext:
    """Enough of ``LambdaContext`` for Powertools' logger and the handler's deadline."""

    def __init__(self, function: Remediator, arn: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "drill"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Delivery:
    """One event handed to one remediator, and what came of it."""

    function: str
    event: Any
    records: list[dict] = field(default_factory=list)  # audit records it wrote
    calls: list[str] = field(default_factory=list)  # "service:Operation", in order
    error: str | None = None
    logs: list[dict] = field(default_factory=list)

    def target_calls(self) -> list[str]:
        return [c for c in self.calls if tuple(c.split(":", 1)) not in BOOKKEEPING]


class World:
    def __init__(
        self,
        emulator: emu.Emulator,
        deployment: Deployment,
        clock: Clock | None = None,
    ) -> None:
        self.emulator = emulator
        self.deployment = deployment
        self.clock = clock or Clock()
        harness = _harness(deployment.region, deployment.account, emulator.endpoint_url)
        self.session, self.gaps, self.faults, self.recorder = harness[:4]
        self.clients, self._remediator_clients = harness[4:]
        self.table = deployment.setting("AUDIT_TABLE")
        self.switch = deployment.setting("SWITCH_PARAMETER")
        self.notice_topic = deployment.setting("NOTICE_TOPIC_ARN")
        self.targets: dict[str, dict[str, dict[str, Any]]] = {}
        #: clients acting in a hub's spoke accounts (account -> clients), per build
        self._accounts: dict[str, Clients] = {}
        self._warm: dict[str, Any] = {}  # function name -> its warm Pipeline
        self._queue_url = ""
        self._seen_audit: set[str] = set()
        self.alarm_states: dict[str, str] = {}

    # -- build ------------------------------------------------------------------------

    def build(
        self,
        resources: dict[str, dict[str, Any]],
        switch: str | dict[str, str],
        only: set[tuple[str, str]] | None = None,
    ) -> None:
        """Reset the emulator; create what the template deploys, then the targets: every
        one the playbook names (or those in ``only``), shaped by ``resources``."""
        self.emulator.reset()
        self.gaps.reset()
        self.faults.reset()
        self._warm.clear()
        self._seen_audit.clear()
        sns, sqs = self.clients("sns"), self.clients("sqs")
        for topic in self.deployment.topics.values():
            sns.create_topic(Name=topic.physical)
        emu.create_audit_table(self.clients("dynamodb"), self.table)
        self._queue_url = sqs.create_queue(QueueName=NOTICE_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.notice_topic, Protocol="sqs", Endpoint=queue_arn)
        self.set_switch(self.deployed_switch() if switch == AS_DEPLOYED else switch)
        self._accounts.clear()  # an emulator reset forgets assumed sessions
        for alarm in self.deployment.alarms.values():
            with self.acting_in(alarm.arn.split(":")[4]):
                self.clients("cloudwatch").put_metric_alarm(**_alarm_api_params(alarm.properties))
            self.alarm_states[alarm.name] = "OK"
        defaults = default_targets(self.deployment.playbook())
        if only is not None:
            defaults = {
                kind: {n: spec for n, spec in named.items() if (kind, n) in only}
                for kind, named in defaults.items()
            }
        self.targets = merge_targets(defaults, resources)
        self._create_targets()

    def deployed_switch(self) -> str:
        """The switch's value in the template (the env's configured initial mode)."""
        for resource in self.deployment.by_type("AWS::SSM::Parameter"):
            if resource.physical == self.switch:
                return str(resource.properties.get("Value", "missing"))
        return "missing"  # the template does not create it

    def set_switch(self, mode: str | dict[str, str]) -> None:
        """A mode (``on``, ``off``, ``dry-run``; ``missing`` deletes the parameter), or
        ``{"value": text}``: exactly that text (a typo such as ``"ON "``)."""
        ssm = self.clients("ssm")
        if mode == MISSING:
            with contextlib.suppress(ssm.exceptions.ParameterNotFound):
                ssm.delete_parameter(Name=self.switch)
        else:
            text = mode["value"] if isinstance(mode, dict) else mode
            emu.put_parameter(self.clients, self.switch, text)
        # The flip reaches warm remediators once their cached read expires (30 s): the
        # drill starts them fresh instead of waiting.
        self._warm.clear()

    def advance(self, by: timedelta) -> None:
        self.clock.advance(by)
        if by >= SWITCH_CACHE:
            self._warm.clear()
        self._expire_items()

    def _expire_items(self) -> None:
        """What DynamoDB's TTL does as time passes: items whose TTL attribute is behind the
        drill's clock are gone (idempotency records after 24 h, so a redelivery then is a new
        delivery). moto does not expire items, and the clock here is the drill's."""
        db = self.clients("dynamodb")
        now = int(self.clock().timestamp())
        for page in db.get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                ttl = item.get(TTL_ATTRIBUTE, {}).get("N")
                if ttl is not None and int(ttl) <= now:
                    key = {k: item[k] for k in (PARTITION_KEY, SORT_KEY)}
                    db.delete_item(TableName=self.table, Key=key)

    @contextlib.contextmanager
    def acting_in(self, account: str | None) -> Iterator[None]:
        """``self.clients`` act in ``account`` (a hub's spoke) meanwhile: a role there, as an
        operator would assume it; the deployment's own account (or None) changes nothing."""
        if account is None or account == self.deployment.account:
            yield
            return
        if account not in self._accounts:
            self._accounts[account] = emu.clients_in(
                self.clients,
                account,
                region=self.deployment.region,
                partition=self.deployment.partition,
                who="drill-operator",
            )
        own, self.clients = self.clients, self._accounts[account]
        try:
            yield
        finally:
            self.clients = own

    def _create_targets(self) -> None:
        for account, targets in by_account(self.targets).items():
            with self.acting_in(account):
                self._create_targets_in(targets)

    def _create_targets_in(self, targets: dict[str, dict[str, dict[str, Any]]]) -> None:
        for name, spec in targets.get("functions", {}).items():
            emu.create_function(
                self.clients,
                name,
                versions=int(spec.get("versions", 2)),
                alias=spec.get("alias", "live"),
                environment=spec.get("environment"),
                memory=int(spec.get("memory", 512)),
                timeout=int(spec.get("timeout", 30)),
                alias_version=str(spec["alias_version"]) if spec.get("alias_version") else None,
                weights={str(k): float(v) for k, v in (spec.get("weights") or {}).items()},
            )
            if spec.get("provisioned"):
                self.gaps.provisioned[(name, spec.get("alias") or "")] = int(spec["provisioned"])
            if spec.get("reserved_concurrency") is not None:
                self.clients("lambda").put_function_concurrency(
                    FunctionName=name,
                    ReservedConcurrentExecutions=int(spec["reserved_concurrency"]),
                )
        for name, spec in targets.get("parameters", {}).items():
            emu.put_parameter(self.clients, name, str(spec["value"]))
        for name, spec in targets.get("tables", {}).items():
            emu.create_table(
                self.clients,
                name,
                read=int(spec.get("read", 5)),
                write=int(spec.get("write", 5)),
                on_demand=bool(spec.get("on_demand", False)),
            )
            scaling = spec.get("autoscaling")
            if scaling:
                dimensions: tuple[ScalableDimensionType, ...] = (
                    "dynamodb:table:ReadCapacityUnits",
                    "dynamodb:table:WriteCapacityUnits",
                )
                for dimension in dimensions:
                    self.clients("application-autoscaling").register_scalable_target(
                        ServiceNamespace="dynamodb",
                        ResourceId=f"table/{name}",
                        ScalableDimension=dimension,
                        MinCapacity=int(scaling.get("min", 1)),
                        MaxCapacity=int(scaling.get("max", 100)),
                    )
        for name, spec in targets.get("ip_sets", {}).items():
            emu.create_ip_set(
                self.clients,
                name,
                ip_set_id=spec.get("id"),
                scope=spec.get("scope", "REGIONAL"),
                addresses=list(spec.get("addresses", [])),
                version=spec.get("version", "IPV4"),
            )
        for api_id, spec in targets.get("rest_apis", {}).items():
            emu.create_rest_stage(
                self.clients,
                api_id,
                spec.get("stage", "prod"),
                name=spec.get("name", ""),
                deployments=int(spec.get("deployments", 2)),
                rate_limit=spec.get("rate"),
                burst_limit=spec.get("burst"),
                other_stages={
                    str(stage): _deployment_number(on)
                    for stage, on in (spec.get("stages") or {}).items()
                },
            )
        for api_id, spec in targets.get("http_apis", {}).items():
            self.gaps.add_http_api(
                api_id,
                spec.get("stage", "prod"),
                int(spec.get("deployments", 2)),
                bool(spec.get("auto_deploy", True)),
                {
                    str(stage): _deployment_number(on)
                    for stage, on in (spec.get("stages") or {}).items()
                },
            )
        now_ms = int(self.clock().timestamp() * 1000)
        for name, spec in targets.get("log_groups", {}).items():
            lines = access_log_lines(spec)
            self.gaps.log_lines[name] = lines
            emu.create_log_group(self.clients, name, lines, at_ms=now_ms - 60_000)
        for kind in kinds.KINDS.values():  # kinds an extension registered
            for name, spec in targets.get(kind.name, {}).items():
                kind.create(self.clients, name, spec or {})

    # -- observe ----------------------------------------------------------------------

    def snapshot(
        self, only: set[tuple[str, str]] | None = None
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """The state of every target (or those in ``only``: (kind, name)), by kind and name
        (a spoke's as ``name@account``)."""
        state: dict[str, dict[str, dict[str, Any]]] = {}
        for account, targets in by_account(self.targets).items():
            with self.acting_in(account):
                found = self._snapshot_in(targets, only, f"{AT}{account}" if account else "")
            for kind, named in found.items():
                state.setdefault(kind, {}).update(named)
        return state

    def _snapshot_in(
        self,
        targets: dict[str, dict[str, dict[str, Any]]],
        only: set[tuple[str, str]] | None,
        suffix: str,
    ) -> dict[str, dict[str, dict[str, Any]]]:
        state: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, reader in (
            ("functions", self._function_state),
            ("parameters", self._parameter_state),
            ("tables", self._table_state),
            ("ip_sets", self._ip_set_state),
            ("rest_apis", self._rest_stage_state),
            ("http_apis", self._http_stage_state),
        ):
            for name, spec in targets.get(kind, {}).items():
                if only is None or (kind, name + suffix) in only:
                    state.setdefault(kind, {})[name + suffix] = reader(name, spec)
        for extra in kinds.KINDS.values():
            for name, spec in targets.get(extra.name, {}).items():
                if only is None or (extra.name, name + suffix) in only:
                    state.setdefault(extra.name, {})[name + suffix] = extra.read(
                        self.clients, name, spec or {}
                    )
        return state

    def _function_state(self, name: str, spec: dict) -> dict[str, Any]:
        lam = self.clients("lambda")
        config = lam.get_function_configuration(FunctionName=name)
        state: dict[str, Any] = {
            "memory": config["MemorySize"],
            "timeout": config["Timeout"],
            "environment": config.get("Environment", {}).get("Variables", {}),
            "reserved_concurrency": lam.get_function_concurrency(FunctionName=name).get(
                "ReservedConcurrentExecutions"
            ),
        }
        alias = spec.get("alias", "live")
        if alias:
            found = lam.get_alias(FunctionName=name, Name=alias)
            weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            state["alias"] = found["FunctionVersion"]
            state["provisioned"] = self.gaps.provisioned.get((name, alias), 0)
            state["weights"] = {k: float(v) for k, v in weights.items()}
        return state

    def _parameter_state(self, name: str, spec: dict) -> dict[str, Any]:
        ssm = self.clients("ssm")
        try:
            return {"value": ssm.get_parameter(Name=name)["Parameter"]["Value"]}
        except ssm.exceptions.ParameterNotFound:
            return {"value": None}

    def _table_state(self, name: str, spec: dict) -> dict[str, Any]:
        table = self.clients("dynamodb").describe_table(TableName=name)["Table"]
        billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        throughput = table.get("ProvisionedThroughput", {})
        scaling = self.clients("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="dynamodb", ResourceIds=[f"table/{name}"]
        )["ScalableTargets"]
        return {
            "billing": billing,
            "read": throughput.get("ReadCapacityUnits"),
            "write": throughput.get("WriteCapacityUnits"),
            "autoscaling": {
                t["ScalableDimension"].split(":")[-1].removesuffix("CapacityUnits").lower(): {
                    "min": t["MinCapacity"],
                    "max": t["MaxCapacity"],
                }
                for t in scaling
            }
            or None,
        }

    def _ip_set_state(self, name: str, spec: dict) -> dict[str, Any]:
        waf = self.clients("wafv2")
        scope = spec.get("scope", "REGIONAL")
        for found in waf.list_ip_sets(Scope=scope).get("IPSets", []):
            if found["Name"] == name:
                got = waf.get_ip_set(Name=name, Scope=scope, Id=found["Id"])["IPSet"]
                return {"addresses": sorted(got["Addresses"])}
        return {"addresses": None}

    def _rest_stage_state(self, api_id: str, spec: dict) -> dict[str, Any]:
        gateway = self.clients("apigateway")
        stage = gateway.get_stage(restApiId=api_id, stageName=spec.get("stage", "prod"))
        # deployment id (None: a stage without one) -> description
        names: dict[str | None, str] = {
            d["id"]: d.get("description", d["id"])
            for d in gateway.get_deployments(restApiId=api_id).get("items", [])
        }
        throttle = (stage.get("methodSettings") or {}).get("*/*", {})
        stages = gateway.get_stages(restApiId=api_id).get("item", [])
        return {
            "deployment": names.get(stage.get("deploymentId"), stage.get("deploymentId")),
            "rate": throttle.get("throttlingRateLimit"),
            "burst": throttle.get("throttlingBurstLimit"),
            "stages": {
                s["stageName"]: names.get(s.get("deploymentId"), s.get("deploymentId"))
                for s in stages
            },
        }

    def _http_stage_state(self, api_id: str, spec: dict) -> dict[str, Any]:
        gateway = self.clients("apigatewayv2")
        stage = gateway.get_stage(ApiId=api_id, StageName=spec.get("stage", "prod"))
        stages = gateway.get_stages(ApiId=api_id).get("Items", [])
        return {
            "deployment": stage.get("DeploymentId"),
            "auto_deploy": stage.get("AutoDeploy"),
            "stages": {s["StageName"]: s.get("DeploymentId") for s in stages},
        }

    def notices(self) -> list[dict[str, str]]:
        """Notices published since the last call (drained from the queue on the topic)."""
        sqs = self.clients("sqs")
        found: list[dict[str, str]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject") or "", "message": body["Message"]})
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def audit(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first."""
        db = self.clients("dynamodb")
        items: list[dict] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            page = db.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = [parse_item(i) for i in items if i["pk"]["S"].startswith("audit#")]
        return sorted(records, key=lambda r: (r["created_at"], r["updated_at"]))

    def new_audit(self) -> list[dict[str, Any]]:
        fresh = [r for r in self.audit() if r["audit_id"] not in self._seen_audit]
        self._seen_audit.update(r["audit_id"] for r in fresh)
        return fresh

    # -- act --------------------------------------------------------------------------

    def show_alarm(self, arn: str, state: StateValueType, at: datetime, how: Any = AGREE) -> str:
        """Set what the emulated CloudWatch shows for alarm ``arn``, whose event says it
        went to ``state`` at ``at``; return a note for the timeline ('' when it agrees).

        ``how``: ``agree`` (as CloudWatch shows it when it sent the event itself),
        ``as-is`` (leave CloudWatch as it is: a forged event), ``absent`` (no such alarm),
        or ``{"state": S, "since": timedelta}`` (in S since ``at`` + since; either key
        defaults to the event's).
        """
        with self.acting_in(arn.split(":")[4]):  # a hub's spoke alarm: in the spoke
            return self._show_alarm(arn, state, at, how)

    def _show_alarm(self, arn: str, state: StateValueType, at: datetime, how: Any) -> str:
        name, account = arn.split(":", 6)[-1], arn.split(":")[4]
        if how == AGREE:
            emu.agree_alarm(self.clients, arn, state, at, account=account)
            return ""
        if how == AS_IS:
            found = self.clients("cloudwatch").describe_alarms(AlarmNames=[name])
            shown: list[str] = [a["StateValue"] for a in found["MetricAlarms"]] or ["absent"]
            return f"CloudWatch left as it is: {name} is {shown[0]}"
        if how == ABSENT:
            self.clients("cloudwatch").delete_alarms(AlarmNames=[name])
            return f"CloudWatch has no alarm {name}"
        shown_state = how.get("state", state)
        since = at + how.get("since", timedelta())
        emu.agree_alarm(self.clients, arn, shown_state, since, account=account)
        offset = _offset(since - at)
        return f"CloudWatch shows {name} {shown_state} since {offset} the event's time"

    def show_alarms(self, event: Any, how: Any = AGREE) -> list[str]:
        """``show_alarm`` for every CloudWatch alarm message in ``event``."""
        return [
            note
            for arn, state, at in alarm_transitions(event)
            if (note := self.show_alarm(arn, state, at, how))
        ]

    def deliver(self, function: Remediator, event: Any) -> Delivery:
        """Run ``function``'s Lambda handler on ``event`` in this process."""
        import serverless_remediation.remediation.handler as handler  # the Lambda code

        delivery = Delivery(function=function.name, event=event)
        logs = io.StringIO()
        with self._function_environment(function), _capture(logs), self._recording(delivery):
            handler._pipeline = self._pipeline_for(function)
            context = FakeContext(function, self._function_arn(function))
            try:
                # FakeContext has what the handler reads of a LambdaContext
                handler.lambda_handler(event, cast("LambdaContext", context))
            except Exception as exc:  # the handler raises so Lambda retries / DLQs the event
                delivery.error = f"{type(exc).__name__}: {str(exc)[:300]}"
            finally:
                handler._pipeline = None
        delivery.records = self.new_audit()
        delivery.logs = _json_lines(logs.getvalue())
        return delivery

    def sweep(self, function: Remediator) -> Delivery:
        """One scheduled run of the WAF sweeper at the drill's time (its handler reads the
        wall clock; the drill calls the ``Sweeper`` it builds with the clock instead)."""
        from serverless_remediation.remediation.sweeper import Sweeper, SweeperSettings

        delivery = Delivery(function=function.name, event={"source": "aws.events"})
        logs = io.StringIO()
        with self._function_environment(function), _capture(logs), self._recording(delivery):
            sweeper = Sweeper(SweeperSettings.from_env(), self._remediator_clients)
            try:
                sweeper.sweep(self.clock(), correlation_id=str(uuid.uuid4()))
            except Exception as exc:
                delivery.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        delivery.records = self.new_audit()
        delivery.logs = _json_lines(logs.getvalue())
        return delivery

    def _function_arn(self, function: Remediator) -> str:
        return build(
            self.deployment.partition,
            "lambda",
            function.region,
            function.account,
            f"function:{function.name}",
        )

    def _pipeline_for(self, function: Remediator) -> Any:
        """The function's warm container (its Pipeline), or a cold start."""
        from serverless_remediation.remediation.config import Settings
        from serverless_remediation.remediation.pipeline import Pipeline

        warm = self._warm.get(function.name)
        if warm is None:
            # A cold start builds a new Pipeline; the boto3 clients are shared (they cost
            # the drill CPU time and hold no remediator state).
            warm = Pipeline(Settings.from_env(), self._remediator_clients, clock=self.clock)
            self._warm[function.name] = warm
        return warm

    @contextlib.contextmanager
    def _function_environment(self, function: Remediator) -> Iterator[None]:
        """os.environ as Lambda would set it for ``function``, restored afterwards."""
        saved = dict(os.environ)
        variables = {k: v for k, v in function.environment.items() if not k.startswith("_")}
        playbook = function.playbook_path
        if playbook is not None:
            variables["PLAYBOOK_PATH"] = str(playbook)
        variables.update(
            {
                "AWS_ENDPOINT_URL": self.emulator.endpoint_url,
                # Lambda sets these to the region the function runs in (its stack's).
                "AWS_REGION": function.region,
                "AWS_DEFAULT_REGION": function.region,
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "POWERTOOLS_METRICS_NAMESPACE": "AutoRemediation",
            }
        )
        os.environ.update(variables)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @contextlib.contextmanager
    def _recording(self, delivery: Delivery) -> Iterator[None]:
        self.recorder.current = delivery.calls
        try:
            yield
        finally:
            self.recorder.current = None


class Recorder:
    """Collects ``service:Operation`` of every call made while ``current`` is a list.

    Registered on the session before any client exists: clients copy the session's event
    hooks when they are made, so a hook added later would not see their calls."""

    def __init__(self) -> None:
        self.current: list[str] | None = None

    def __call__(self, model: Any, **_: Any) -> None:
        if self.current is not None:
            self.current.append(f"{model.service_model.service_name}:{model.name}")


Harness = tuple[Any, Gaps, Faults, Recorder, Clients, Clients]
_HARNESSES: dict[tuple[str, str], Harness] = {}


def _harness(region: str, account: str, endpoint_url: str) -> Harness:
    """One boto3 session per region and endpoint for every world of a run (loading service
    models is most of a client's cost), with the stand-ins for moto's gaps registered once."""
    key = (region, endpoint_url)
    if key not in _HARNESSES:
        session = boto3.session.Session(region_name=region)
        faults = Faults()
        faults.register(session)  # before the stand-ins: an armed fault answers first
        gaps = Gaps(region, account)
        gaps.register(session)
        recorder = Recorder()
        faults.active = lambda: recorder.current is not None  # only the remediators' calls
        # Not before-call: a stand-in answering there stops the hooks after it.
        session.events.register("before-parameter-build", recorder)
        _HARNESSES[key] = (
            session,
            gaps,
            faults,
            recorder,
            Clients(session, endpoint_url=endpoint_url),
            Clients(session, endpoint_url=endpoint_url),
        )
    return _HARNESSES[key]


# -- targets ------------------------------------------------------------------------------


def default_targets(playbook: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """A target for every playbook route, shaped from its ARN (a scenario can override)."""
    routes = [
        *playbook.get("alarms", {}).values(),
        *playbook.get("budgets", {}).values(),
        *playbook.get("inventory", []),
    ]
    routes += [step for route in routes for step in route.get("then", [])]  # follow-ups
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for route in routes:
        account = route.get("account")  # a hub's spoke route: the target lives there
        for kind, name, spec in target_specs(route.get("target", ""), route.get("params", {})):
            name = f"{name}{AT}{account}" if account else name
            known = found.setdefault(kind, {}).setdefault(name, spec)
            if kind == "functions" and known is not spec:  # routes to one function: merge
                known["alias"] = known.get("alias") or spec.get("alias")
                known["versions"] = max(known.get("versions", 1), spec.get("versions", 1))
                known["environment"] = {
                    **spec.get("environment", {}),
                    **known.get("environment", {}),
                }
    return found


#: a target of another account (a hub's spoke) is named ``<name>@<account>``
AT = "@"


def split_account(name: str) -> tuple[str, str | None]:
    """``orders-api@222222222222`` -> ("orders-api", "222222222222"); no account: None."""
    base, _, account = name.partition(AT)
    return base, account or None


def by_account(
    targets: dict[str, dict[str, dict[str, Any]]],
) -> dict[str | None, dict[str, dict[str, dict[str, Any]]]]:
    """Targets grouped by the account they live in (None: the deployment's own)."""
    out: dict[str | None, dict[str, dict[str, dict[str, Any]]]] = {}
    for kind, named in targets.items():
        for name, spec in named.items():
            base, account = split_account(name)
            out.setdefault(account, {}).setdefault(kind, {})[base] = spec
    return out


def target_specs(target: str, params: dict[str, Any]) -> list[tuple[str, str, dict]]:
    """(kind, name, default spec) for the resources behind one target."""
    specs: list[tuple[str, str, dict]] = []
    for one in target.split(","):  # waf-block takes an IPv4 and an IPv6 set
        specs.extend(_target_spec(one.strip()))
    variable = params.get("variable")
    if isinstance(variable, str) and specs and specs[0][0] == "functions":
        specs[0][2]["environment"] = {variable: "true"}  # flip-flag on one variable
    sheddable = [*(params.get("sheddable") or []), *(params.get("functions") or [])]
    for name in sheddable:  # cost-guard: names or function ARNs
        name = _parsed(str(name)).name if str(name).startswith("arn:") else str(name)
        specs.append(("functions", name, {"versions": 2, "alias": "live"}))
    log_group = params.get("log_group")
    if isinstance(log_group, str) and log_group:
        specs.append(("log_groups", log_group, {}))
    return specs


def _parsed(arn: str) -> Any:
    # Only the resource part matters here; API Gateway ARNs carry no account at all.
    return parse(arn, default_account="000000000000")


def _target_spec(target: str) -> list[tuple[str, str, dict]]:
    try:
        t = _parsed(target)
    except RejectedError:
        return []
    if t.service == "lambda" and t.resource_type == "function":
        if t.name == "*":
            return []
        if t.member:  # flip-flag on one environment variable
            return [("functions", t.name, {"alias": None, "environment": {t.member: "true"}})]
        alias = t.qualifier if t.qualifier and not t.qualifier.isdigit() else None
        return [("functions", t.name, {"versions": 2, "alias": alias})]
    if t.service == "ssm" and t.resource_type == "parameter":
        return [("parameters", t.name, {"value": "true"})]
    if t.service == "dynamodb" and t.resource_type == "table":
        return [("tables", t.name.split("/")[0], {})]
    if t.service == "apigateway" and t.resource_type in ("apis", "restapis") and t.qualifier:
        kind = "http_apis" if t.resource_type == "apis" else "rest_apis"
        return [(kind, t.name, {"stage": t.qualifier, "deployments": 2})]
    if t.service == "wafv2" and t.resource_type == "ipset":
        return [("ip_sets", t.name, {"id": t.qualifier, "scope": t.scope or "REGIONAL"})]
    return kinds.default_specs(t)


def merge_targets(
    defaults: dict[str, dict[str, dict[str, Any]]], given: dict[str, dict[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    merged = {kind: {n: dict(s) for n, s in named.items()} for kind, named in defaults.items()}
    for kind, named in given.items():
        for name, spec in named.items():
            if kind == "parameters" and not isinstance(spec, dict):
                spec = {"value": spec}
            merged.setdefault(kind, {}).setdefault(name, {}).update(spec or {})
    return merged


def access_log_lines(spec: dict[str, Any]) -> list[str]:
    """Sample API Gateway access-log lines: ``lines`` as given, plus ``hits`` (ip -> count)
    requests answered with ``status`` (default 429)."""
    lines = [
        json.dumps(line) if isinstance(line, dict) else str(line) for line in spec.get("lines", [])
    ]
    status = int(spec.get("status", 429))
    for ip, count in (spec.get("hits") or {}).items():
        for n in range(int(count)):
            lines.append(
                json.dumps(
                    {
                        "requestId": f"drill-{ip}-{n}",
                        "ip": ip,
                        "httpMethod": "POST",
                        "resourcePath": "/login",
                        "status": str(status),
                    }
                )
            )
    return lines


# -- helpers ------------------------------------------------------------------------------


def alarm_transitions(event: Any) -> list[tuple[str, StateValueType, datetime]]:
    """(alarm ARN, state, state change time) of every CloudWatch alarm message in ``event``,
    read the way the remediators read it (events they would refuse are left out)."""
    import serverless_remediation.remediation.intake as intake
    from serverless_remediation.remediation.models import Source

    try:
        messages = intake.split(event)
    except RejectedError:
        return []
    found: list[tuple[str, StateValueType, datetime]] = []
    for message in messages:
        try:
            request = intake.parse(message)
        except RejectedError:
            continue
        if request.source is Source.ALARM and request.occurred_at is not None:
            # intake admits only CloudWatch's states (ALARM_STATES)
            state = cast("StateValueType", request.state)
            found.append((request.requested_by, state, request.occurred_at))
    return found


def _deployment_number(on: Any) -> int:
    """``v2`` or ``2`` -> 2 (deployments are v1, v2, ... oldest first)."""
    return int(str(on).lstrip("v"))


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "exactly"
    sign = "after" if seconds > 0 else "before"
    return f"{abs(seconds) // 60} min {abs(seconds) % 60} s {sign}"


_ALARM_KEYS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def _alarm_api_params(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation alarm properties -> PutMetricAlarm parameters (same names, mostly)."""
    params = {k: v for k, v in properties.items() if k in _ALARM_KEYS and v is not None}
    if "Threshold" in params:
        params["Threshold"] = float(params["Threshold"])
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in params:
            params[key] = int(params[key])
    return params


@contextlib.contextmanager
def _capture(buffer: io.StringIO) -> Iterator[None]:
    """Powertools logs (and EMF lines) into ``buffer``, not the drill's terminal; stderr
    too (a record no handler takes goes to Python's last-resort handler, on stderr, as it
    does in Lambda, where stderr is logged as well)."""
    loggers = [
        logging.getLogger(n) for n in ("auto-remediation", "remediation", "serverless_remediation")
    ]
    handlers = [h for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)]
    # Swapped, not ``setStream``: that flushes the old stream first, and a handler made under
    # a CLI test runner may hold the runner's stdout, closed since.
    saved = [h.stream for h in handlers]
    for h in handlers:
        h.stream = buffer
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        for h, stream in zip(handlers, saved, strict=True):
            h.stream = stream


def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out


def count_calls(calls: list[str]) -> str:
    """``lambda:GetAlias x2, lambda:UpdateAlias``."""
    counts = Counter(calls)
    return ", ".join(f"{c} x{n}" if n > 1 else c for c, n in counts.items()) or "-"


Reader = Callable[[str, dict], dict]
