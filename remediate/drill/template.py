"""Read a synthesized cloud assembly (``cdk.out``): the alarms, topics, subscriptions,
remediator functions (environment and staged asset), switch parameter and audit table.

The drill builds the emulator from this, so what it exercises is what ``cdk deploy`` would
create; there is no second, hand-kept list of alarms. CloudFormation intrinsics are resolved
against the physical names the drill gives each resource.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serverless_remediation.remediation.targets import build, partition_of

DEFAULT_ACCOUNT = "123456789012"  # moto's account
DEFAULT_REGION = "eu-west-1"


class TemplateError(RuntimeError):
    """The cloud assembly is missing, or does not hold what the drill needs."""


@dataclass
class Resource:
    stack: str
    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    physical: str = ""
    arn: str = ""
    named: bool = False  # the template names it (else CloudFormation generates the name)


@dataclass
class Remediator:
    """One remediator Lambda function as the template deploys it."""

    logical_id: str
    name: str
    environment: dict[str, str]
    asset_dir: Path | None
    topics: list[str] = field(default_factory=list)  # topic ARNs it subscribes to
    #: alarm names an EventBridge rule delivers to it (``trigger: eventbridge``)
    rule_alarms: set[str] = field(default_factory=set)
    #: where its stack deploys it: Lambda sets ``AWS_REGION`` to this region
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT

    @property
    def actions(self) -> list[str]:
        raw = self.environment.get("REMEDIATION_ACTIONS", "")
        return [a.strip() for a in raw.split(",") if a.strip()]

    @property
    def playbook_path(self) -> Path | None:
        if self.asset_dir is None:
            return None
        found = sorted(self.asset_dir.rglob("playbook.json"))
        return found[0] if found else None

    @property
    def handler(self) -> str:
        return self.environment.get("_HANDLER", "")


@dataclass
class Alarm:
    name: str
    arn: str
    properties: dict[str, Any]  # resolved CloudFormation properties

    @property
    def alarm_topics(self) -> list[str]:
        return [a for a in self.properties.get("AlarmActions") or [] if ":sns:" in a]

    @property
    def ok_topics(self) -> list[str]:
        return [a for a in self.properties.get("OKActions") or [] if ":sns:" in a]


@dataclass
class Deployment:
    """What one environment deploys, with every name resolved."""

    env: str
    account: str
    region: str
    assembly: Path
    resources: list[Resource]
    alarms: dict[str, Alarm]
    topics: dict[str, Resource]  # ARN -> topic
    remediators: list[Remediator]
    budgets: dict[str, str]  # budget name -> topic ARN
    sweepers: list[Remediator] = field(default_factory=list)  # scheduled WAF sweeper(s)
    #: the chat Approve / Reject buttons' function (remediation.decisions), when deployed
    deciders: list[Remediator] = field(default_factory=list)

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    def by_type(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.type == kind]

    def remediator_for(self, action: str) -> Remediator:
        for remediator in self.remediators:
            if action in remediator.actions:
                return remediator
        served = sorted({a for r in self.remediators for a in r.actions})
        raise TemplateError(f"no remediator runs {action!r}; deployed: {served}")

    def subscribers(self, topic_arn: str) -> list[Remediator]:
        return [r for r in self.remediators if topic_arn in r.topics]

    def rule_targets(self, alarm_name: str) -> list[Remediator]:
        """The remediators an EventBridge rule delivers ``alarm_name``'s state changes to."""
        return [r for r in self.remediators if alarm_name in r.rule_alarms]

    def alarm(self, name: str) -> Alarm:
        """An alarm by its full name, or by the unique full name ending in ``-<name>``."""
        if name in self.alarms:
            return self.alarms[name]
        matches = [a for n, a in self.alarms.items() if n.endswith(f"-{name}")]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(sorted(self.alarms)) or "none"
        raise TemplateError(
            f"alarm {name!r} is {'ambiguous' if matches else 'not in the template'}; "
            f"alarms: {known}"
        )

    def setting(self, name: str) -> str:
        """One environment variable all remediators share (AUDIT_TABLE, SWITCH_PARAMETER...)."""
        values = {r.environment[name] for r in self.remediators if name in r.environment}
        if len(values) != 1:
            raise TemplateError(f"remediators disagree on or lack {name}: {sorted(values)}")
        return values.pop()

    def playbook(self) -> dict[str, Any]:
        """The union of every remediator's playbook (they are the same file in practice)."""
        merged: dict[str, Any] = {"alarms": {}, "budgets": {}, "inventory": []}
        for remediator in self.remediators:
            path = remediator.playbook_path
            if path is None:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            merged["alarms"].update(data.get("alarms", {}))
            merged["budgets"].update(data.get("budgets", {}))
            for item in data.get("inventory", []):
                if item not in merged["inventory"]:
                    merged["inventory"].append(item)
        return merged


# -- synth -------------------------------------------------------------------------------

SOURCES = ("app.py", "cdk.json", "stacks", "functions")


def assembly_dir(root: Path, env: str) -> Path | None:
    """The newest drill assembly of ``env`` (named in ``cdk.out/drill-ENV.current``)."""
    pointer = root / "cdk.out" / f"drill-{env}.current"
    try:
        found = root / "cdk.out" / pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return found if (found / "manifest.json").exists() else None


# A run reads its assembly (templates, playbook.json) for a while: other runs that synth
# meanwhile write a new directory and leave older ones this long before removing them.
KEEP_OLD_SECONDS = 900


def synth(root: Path, env: str, *, force: bool = False) -> Path:
    """``npx cdk synth -c env=ENV`` into a fresh cdk.out/drill-ENV-* directory, unless the
    newest one is newer than the CDK app and the functions. Returns the assembly."""
    if not (root / "app.py").exists() or not (root / "cdk.json").exists():
        raise TemplateError(f"no CDK app in {root} (app.py and cdk.json)")
    current = assembly_dir(root, env)
    if not force and current and (current / "manifest.json").stat().st_mtime >= _newest(root):
        return current
    out = root / "cdk.out" / f"drill-{env}-{time.time_ns()}-{os.getpid()}"
    # The app runs on this CLI's own Python (a `pip install .` venv, or the checkout's .venv),
    # not on the interpreter cdk.json names for `make synth`.
    app = f"{shlex.quote(sys.executable)} app.py"
    command = ["npx", "cdk", "synth", "--quiet", "-a", app, "-c", f"env={env}", "-o", str(out)]
    environ = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    done = subprocess.run(  # noqa: S603 (fixed command)
        command, cwd=root, env=environ, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise TemplateError(f"cdk synth -c env={env} failed:\n" + "\n".join(tail))
    pointer = root / "cdk.out" / f"drill-{env}.current"
    staged = pointer.with_name(f"{pointer.name}.{os.getpid()}")
    staged.write_text(out.name, encoding="utf-8")
    os.replace(staged, pointer)
    for old in (root / "cdk.out").glob(f"drill-{env}-*"):
        if old != out and old.is_dir() and time.time() - old.stat().st_mtime > KEEP_OLD_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return out


def _newest(root: Path) -> float:
    newest = 0.0
    for name in SOURCES:
        path = root / name
        files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
        for item in files:
            if item.is_file() and "__pycache__" not in item.parts:
                newest = max(newest, item.stat().st_mtime)
    return newest


# -- read --------------------------------------------------------------------------------


def load(assembly: Path, env: str) -> Deployment:
    """Every stack template in the assembly, resolved into a ``Deployment``."""
    manifest_path = assembly / "manifest.json"
    if not manifest_path.exists():
        raise TemplateError(f"{assembly}: no manifest.json (run `npx cdk synth -c env={env}`)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    stacks: list[tuple[str, dict, str, str]] = []
    account, region = DEFAULT_ACCOUNT, DEFAULT_REGION
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        stack_name = artifact["properties"].get("stackName", name)
        env_uri = artifact.get("environment", "")
        match = re.match(r"aws://([^/]+)/(.+)", env_uri)
        stack_account, stack_region = account, region
        if match and match.group(1).isdigit():
            stack_account = match.group(1)
        if match and not match.group(2).startswith("unknown"):
            stack_region = match.group(2)
        stacks.append((stack_name, template, stack_account, stack_region))
    if not stacks:
        raise TemplateError(f"{assembly}: the assembly holds no stacks")
    resolver = Resolver(stacks)
    return resolver.deployment(env, assembly)


class Resolver:
    """Gives every resource a physical name and ARN, then resolves intrinsics."""

    def __init__(self, stacks: list[tuple[str, dict, str, str]]) -> None:
        self.stacks = stacks
        self.resources: dict[tuple[str, str], Resource] = {}
        self.stack_env = {name: (account, region) for name, _, account, region in stacks}
        self.exports: dict[str, Any] = {}
        for stack, template, _, _ in stacks:
            for logical, body in template.get("Resources", {}).items():
                resource = Resource(
                    stack,
                    logical,
                    body.get("Type", ""),
                    body.get("Properties", {}) or {},
                    body.get("Metadata", {}) or {},
                )
                self.resources[(stack, logical)] = resource
        for resource in self.resources.values():
            self._name(resource, *self.stack_env[resource.stack])
        for stack, template, _, _ in stacks:
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None:
                    self.exports[self.resolve(export, stack)] = (stack, output["Value"])

    def _name(self, resource: Resource, account: str, region: str) -> None:
        props, kind = resource.properties, resource.type
        base = f"{resource.stack}-{resource.logical_id}"[:64]

        def given(key: str) -> str:
            value = props.get(key)
            if value is None:
                return base
            resource.named = True
            return str(self.resolve(value, resource.stack))

        # Names first (they may be plain strings), ARNs from them.
        partition = partition_of(region)

        def arn(service: str, resource: str) -> str:
            return build(partition, service, region, account, resource)

        if kind == "AWS::SNS::Topic":
            resource.physical = given("TopicName")
            resource.arn = arn("sns", resource.physical)
        elif kind == "AWS::Lambda::Function":
            resource.physical = given("FunctionName")
            resource.arn = arn("lambda", f"function:{resource.physical}")
        elif kind == "AWS::DynamoDB::Table":
            resource.physical = given("TableName")
            resource.arn = arn("dynamodb", f"table/{resource.physical}")
        elif kind == "AWS::SSM::Parameter":
            resource.physical = given("Name")
            resource.arn = arn("ssm", f"parameter/{resource.physical.lstrip('/')}")
        elif kind == "AWS::CloudWatch::Alarm":
            resource.physical = given("AlarmName")
            resource.arn = arn("cloudwatch", f"alarm:{resource.physical}")
        elif kind == "AWS::SQS::Queue":
            resource.physical = given("QueueName")
            resource.arn = arn("sqs", resource.physical)
        else:
            resource.physical = base
            service = kind.split("::")[1].lower() if "::" in kind else "unknown"
            resource.arn = arn(service, base)

    def find(self, stack: str, logical: str) -> Resource:
        try:
            return self.resources[(stack, logical)]
        except KeyError:
            raise TemplateError(f"{stack}: reference to unknown resource {logical}") from None

    def resolve(self, value: Any, stack: str) -> Any:
        """Resolve Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::ImportValue."""
        if isinstance(value, list):
            return [self.resolve(v, stack) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v, stack) for k, v in value.items()}
        ((key, arg),) = value.items()
        account, region = self.stack_env[stack]
        pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": partition_of(region),
            "AWS::URLSuffix": "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com",
            "AWS::StackName": stack,
            "AWS::NoValue": None,
        }
        if key == "Ref":
            if arg in pseudo:
                return pseudo[arg]
            found = self.find(stack, arg)
            return found.arn if found.type == "AWS::SNS::Topic" else found.physical
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            found = self.find(stack, logical)
            if attribute.endswith("Arn"):
                return found.arn
            return found.physical
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(str(self.resolve(i, stack)) for i in self.resolve(items, stack))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items, stack)[int(self.resolve(index, stack))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text, stack)).split(separator)
        if key == "Fn::ImportValue":
            name = self.resolve(arg, stack)
            if name not in self.exports:
                raise TemplateError(f"{stack}: import of unknown export {name!r}")
            source, exported = self.exports[name]
            return self.resolve(exported, source)
        if key == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else arg
            names = {k: self.resolve(v, stack) for k, v in names.items()}

            def sub(match: re.Match) -> str:
                ref = match.group(1)
                if ref in names:
                    return str(names[ref])
                if "." in ref:
                    return str(self.resolve({"Fn::GetAtt": ref.split(".", 1)}, stack))
                return str(self.resolve({"Ref": ref}, stack))

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {key: self.resolve(arg, stack)}

    def deployment(self, env: str, assembly: Path) -> Deployment:
        resources = list(self.resources.values())
        topics = {r.arn: r for r in resources if r.type == "AWS::SNS::Topic"}
        functions: dict[str, Remediator] = {}
        by_arn: dict[str, Remediator] = {}
        sweepers: list[Remediator] = []
        deciders: list[Remediator] = []
        for r in resources:
            if r.type != "AWS::Lambda::Function":
                continue
            variables = (r.properties.get("Environment") or {}).get("Variables") or {}
            environment = {k: str(self.resolve(v, r.stack)) for k, v in variables.items()}
            asset = r.metadata.get("aws:asset:path")
            account, region = self.stack_env[r.stack]
            handler = str(r.properties.get("Handler", ""))
            if handler.endswith(("sweeper.lambda_handler", "decisions.lambda_handler")):
                found = sweepers if handler.endswith("sweeper.lambda_handler") else deciders
                found.append(
                    Remediator(
                        r.logical_id,
                        r.physical,
                        environment,
                        assembly / asset if asset else None,
                        region=region,
                        account=account,
                    )
                )
                continue
            if "REMEDIATION_ACTIONS" not in environment:
                continue  # not a remediator (custom-resource handlers)
            remediator = Remediator(
                logical_id=r.logical_id,
                name=r.physical,
                environment=environment,
                asset_dir=(assembly / asset) if asset else None,
                region=region,
                account=account,
            )
            remediator.environment["_HANDLER"] = str(r.properties.get("Handler", ""))
            functions[f"{r.stack}/{r.logical_id}"] = remediator
            by_arn[r.arn] = remediator
        for r in resources:
            if r.type == "AWS::SNS::Subscription" and r.properties.get("Protocol") == "lambda":
                endpoint = self.resolve(r.properties.get("Endpoint"), r.stack)
                topic = self.resolve(r.properties.get("TopicArn"), r.stack)
                if endpoint in by_arn:
                    by_arn[endpoint].topics.append(topic)
        for r in resources:
            if r.type == "AWS::Events::Rule":
                props = self.resolve(r.properties, r.stack)
                pattern = props.get("EventPattern") or {}
                if pattern.get("source") != ["aws.cloudwatch"]:
                    continue
                names = (pattern.get("detail") or {}).get("alarmName") or []
                for target in props.get("Targets") or []:
                    if target.get("Arn") in by_arn:
                        by_arn[target["Arn"]].rule_alarms.update(names)
        alarms = {}
        for r in resources:
            if r.type == "AWS::CloudWatch::Alarm":
                props = self.resolve(r.properties, r.stack)
                props["AlarmName"] = r.physical
                alarms[r.physical] = Alarm(r.physical, r.arn, props)
        budgets = {}
        for r in resources:
            if r.type == "AWS::Budgets::Budget":
                props = self.resolve(r.properties, r.stack)
                name = props.get("Budget", {}).get("BudgetName", r.physical)
                for notification in props.get("NotificationsWithSubscribers", []):
                    for subscriber in notification.get("Subscribers", []):
                        if subscriber.get("SubscriptionType") == "SNS":
                            budgets[name] = subscriber["Address"]
        account, region = next(iter(self.stack_env.values()))
        if not functions:
            raise TemplateError(f"{assembly}: no remediator functions (REMEDIATION_ACTIONS)")
        return Deployment(
            env=env,
            account=account,
            region=region,
            assembly=assembly,
            resources=resources,
            alarms=alarms,
            topics=topics,
            remediators=list(functions.values()),
            budgets=budgets,
            sweepers=sweepers,
            deciders=deciders,
        )
