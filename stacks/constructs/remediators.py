"""One Lambda remediator per registered action kind, each with its own least-privilege role,
an encrypted dead-letter queue for failed async events, reserved concurrency and log retention.

Every function runs the same code (``functions/remediation``) with the environment's playbook
staged beside it as ``playbook.json``; ``REMEDIATION_ACTIONS`` says which action it serves.
A new action needs no change here: register it, and it gets a function, a topic and a role
built from its declared ``permissions`` and ``resources(target)`` for the configured targets.

Deployed = tested: the Lambda code runs on the Powertools, boto3 and botocore the tests ran.
Their files are copied, at synth and offline, from this environment's installed distributions
(installed from the pins in requirements.txt / constraints.txt) into one layer of our own;
no public layer, whose numbering follows upstream's publications, not the pinned release.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import metadata
from pathlib import Path
from typing import Any

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from serverless_remediation import remediation
from serverless_remediation.remediation.actions import MODULES_VARIABLE, module_of
from serverless_remediation.remediation.playbook import REVERT, Playbook
from serverless_remediation.remediation.quotas import RATES, quota
from serverless_remediation.remediation.store import APPROVALS, PARTITION_KEY, audit_key
from serverless_remediation.stacks.config import ConfigError
from serverless_remediation.stacks.constructs.nag import acknowledge
from serverless_remediation.stacks.constructs.permissions import grant

HANDLER = "remediation.handler.lambda_handler"
#: the sweeper runs one environment at a time
SWEEPER_CONCURRENCY = 1
#: the Powertools service name of every remediator and the sweeper (handler.py's Logger)
SERVICE_NAME = "auto-remediation"
SWEEPER_HANDLER = "remediation.sweeper.lambda_handler"
#: the chat's entry point: approve, reject, revert (remediation.decisions)
DECIDER_HANDLER = "remediation.decisions.lambda_handler"

# The newest Python runtime (cdk-nag AwsSolutions-L1), on x86_64 and arm64 alike; the pinned
# Powertools declares it (classifier "Python :: 3.14"): test_deploy_bundle checks both.
RUNTIME = lambda_.Runtime.PYTHON_3_14
#: ``remediators.architecture`` in an environment's config -> Lambda's architecture, and the
#: ``platform_machine`` the dependencies' markers are evaluated for
ARCHITECTURES = {
    "x86_64": (lambda_.Architecture.X86_64, "x86_64"),
    "arm64": (lambda_.Architecture.ARM_64, "aarch64"),
}
DEFAULT_ARCHITECTURE = "x86_64"
#: what ``functions/remediation`` imports, as requirements.txt pins it (names and extras; the
#: versions are the installed ones, which make installs from those pins)
LAMBDA_REQUIREMENTS = ("aws-lambda-powertools[validation]", "boto3")
#: how ``bundle`` lays the layer out: a change here must change the cached layer's key
LAYOUT = "python/ + lambda-dependencies.json, v1"
#: the pipeline's own calls on the audit table (audit, guards, transitions). IAM authorizes
#: TransactWriteItems as the PutItem, UpdateItem, DeleteItem and ConditionCheckItem it holds
TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: the pipeline reads every alarm back before acting on it (remediation.confirm)
CONFIRM_ACTIONS = ("cloudwatch:DescribeAlarms",)
#: the automation switch (and its overrides)
SWITCH_ACTIONS = ("ssm:GetParameter",)
#: what every remediator's pipeline calls, whatever its action
REMEDIATOR_ACTIONS = (*SWITCH_ACTIONS, *CONFIRM_ACTIONS)
#: why CONFIRM_ACTIONS take the environment's alarm-name wildcard
CONFIRM_WILDCARD_REASON = (
    "cloudwatch:DescribeAlarms: the remediator confirms each alarm at its source before acting "
    "(remediation.confirm reads metric alarms by name). Scoped to this environment's alarms: "
    "their names all start with its prefix. Read-only: alarm definitions and states."
)


def package_dir() -> Path:
    """``functions/remediation``: found from the installed package, so a team's own CDK app
    that installs this project stages the same code."""
    return Path(remediation.__file__).resolve().parent


def stage_asset(playbook: Mapping[str, Any]) -> str:
    """A directory holding ``remediation/`` and ``playbook.json`` at its root: the Lambda asset.

    CDK copies it into the cloud assembly (hashed by content), so the temporary directory is
    removed when the process exits.
    """
    root = Path(tempfile.mkdtemp(prefix="remediator-asset-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    shutil.copytree(
        package_dir(), root / "remediation", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (root / "playbook.json").write_text(
        json.dumps(playbook, indent=1, sort_keys=True), encoding="utf-8"
    )
    return str(root)


def has_sweeper() -> bool:
    return (package_dir() / "sweeper.py").exists()


# -- the dependency layer ---------------------------------------------------------------------


class BundleError(RuntimeError):
    """The Lambda dependencies cannot be bundled from this environment as they were tested."""


@dataclass(frozen=True)
class Bundle:
    """The Lambda code's dependencies, staged as a layer's content (``python/`` at its root)."""

    path: Path
    #: the content's hash, from each distribution's name, version and RECORD (CDK takes it as
    #: the asset hash instead of reading 2,500 files at every synth)
    key: str
    #: distribution name -> version, every one in the layer
    versions: dict[str, str]

    @property
    def description(self) -> str:
        """The layer's description (Lambda keeps 256 characters): the tested versions."""
        pinned = ", ".join(f"{name} {version}" for name, version in sorted(self.versions.items()))
        return f"auto-remediation dependencies as tested: {pinned}"[:256]


def lambda_markers(runtime: lambda_.Runtime, architecture: str) -> dict[str, str]:
    """PEP 508 marker values of the Lambda runtime (Amazon Linux, CPython)."""
    python = runtime.name.removeprefix("python")
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": ARCHITECTURES[architecture][1],
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_release": "",
        "platform_version": "",
    }


def lambda_distributions(
    requirements: Iterable[str], markers: Mapping[str, str]
) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need on the Lambda runtime (``markers``),
    each checked against every specifier that asks for it. ``BundleError`` names what is
    missing or does not match."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, metadata.Distribution] = {}
    extras: dict[str, set[str]] = {}
    queue = [(Requirement(raw), "the Lambda code") for raw in requirements]
    while queue:
        requirement, wanted_by = queue.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = found.get(name) or metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise BundleError(
                f"{requirement.name} (needed by {wanted_by}) is not installed: run `make install`"
            ) from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise BundleError(
                f"{wanted_by} needs {requirement}, but {requirement.name} {dist.version} is "
                "installed: install the pins (`make install`) before synthesizing"
            )
        new_extras = set(requirement.extras) - extras.get(name, set())
        if name in found and not new_extras:
            continue
        found[name] = dist
        extras.setdefault(name, set()).update(new_extras)
        for raw in dist.requires or []:
            needed = Requirement(raw)
            if needed.marker is None or any(
                needed.marker.evaluate({**markers, "extra": extra})
                for extra in sorted(extras[name]) or [""]
            ):
                queue.append((needed, f"{dist.metadata['Name']} {dist.version}"))
    return [found[name] for name in sorted(found)]


def _name(dist: metadata.Distribution) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(dist.metadata["Name"]))


def _pure(dist: metadata.Distribution) -> None:
    """``BundleError`` unless ``dist`` runs on any machine (the layer is built on this one)."""
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    compiled = [str(f) for f in dist.files or [] if f.suffix in (".so", ".pyd", ".dylib")]
    if (
        "Root-Is-Purelib: true" not in wheel
        or not tags
        or compiled
        or any(not tag.endswith("-none-any") for tag in tags)
    ):
        raise BundleError(
            f"{dist.metadata['Name']} {dist.version} is not pure Python (tags {tags or '?'}"
            f"{', ' + compiled[0] if compiled else ''}): the layer copies installed files, "
            "which then would be built for this machine, not Lambda's"
        )


def _copy(dist: metadata.Distribution, target: Path) -> None:
    root = Path(str(dist.locate_file(""))).resolve()
    for entry in dist.files or []:
        source = Path(str(dist.locate_file(entry))).resolve()
        if "__pycache__" in entry.parts or entry.suffix == ".pyc" or not source.is_file():
            continue
        if not source.is_relative_to(root):  # scripts in bin/: not importable code
            continue
        destination = target / source.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "serverless-auto-remediation" / "lambda-layer"


def bundle(
    architecture: str = DEFAULT_ARCHITECTURE,
    requirements: Sequence[str] = LAMBDA_REQUIREMENTS,
    cache: Path | None = None,
) -> Bundle:
    """The layer content for ``architecture``: built once per set of installed versions (in a
    cache outside the repository), offline; every later synth reuses it."""
    if architecture not in ARCHITECTURES:
        raise BundleError(f"architecture {architecture!r}: expected one of {sorted(ARCHITECTURES)}")
    dists = lambda_distributions(requirements, lambda_markers(RUNTIME, architecture))
    for dist in dists:
        _pure(dist)
    versions = {_name(d): d.version for d in dists}
    # What the content depends on: the layout (LAYOUT), the runtime, each distribution's files.
    digest = hashlib.sha256(f"{LAYOUT}\n{RUNTIME.name}\n".encode())
    digest.update(json.dumps(versions, sort_keys=True).encode())
    for dist in dists:
        digest.update((dist.read_text("RECORD") or "").encode())
    # Pure distributions: one content for both architectures (the key says which was checked).
    key = digest.hexdigest()[:32]
    root = (cache or cache_dir()) / key
    if not (root / "python").is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root.parent))
        try:
            for dist in dists:
                _copy(dist, staging / "python")
            (staging / "python" / "lambda-dependencies.json").write_text(
                json.dumps(versions, indent=1, sort_keys=True), encoding="utf-8"
            )
            try:
                staging.rename(root)  # atomic: a concurrent synth may have won; it is the same
            except OSError:
                if not (root / "python").is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Bundle(path=root, key=key, versions=versions)


@dataclass(frozen=True)
class Wiring:
    """What every remediator is given: the suite's shared resources."""

    env: str
    table_name: str
    table_arns: list[str]
    notice_topic: sns.ITopic
    switch_name: str
    switch_arn: str
    override_prefix: str
    override_arn: Any  # action -> ARN
    key: kms.IKey
    cooldown_seconds: int
    breaker_max: int
    #: where the remediators have authority, for ``remediation.config.deployment_from_env``:
    #: DEPLOYMENT_ACCOUNT, DEPLOYMENT_PARTITION, SERVED_REGIONS (when any), and the freshness
    #: limit MAX_EVENT_AGE_SECONDS
    deployment: Mapping[str, str]
    #: every alarm of this environment (their names share its prefix): what the pipeline
    #: may read back to confirm an alarm
    alarm_arns: Sequence[str] = ()
    #: a hub's per-account switches (``remediation.gate``)
    account_switch_arns: Sequence[str] = ()
    #: a hub's remediator role names (action -> name): its spokes' roles trust them by ARN
    role_names: Callable[[str], str] | None = None


def action_modules(action: str, playbook: Mapping[str, Any]) -> dict[str, str]:
    """``REMEDIATION_ACTION_MODULES`` for ``action``'s remediator: the modules of its action
    and of its routes' follow-up steps, read from the playbook as the remediator parses it,
    so a cold start imports only those. Nothing for revert (it may undo any action): it
    imports every module."""
    if action == REVERT:
        return {}
    routes = Playbook.from_dict(playbook).routes
    needed = {action} | {
        step.action for (a, _), found in routes.items() if a == action
        for route in found for step in route.then
    }  # fmt: skip
    return {MODULES_VARIABLE: ",".join(sorted({module_of(a) for a in needed}))}


class Remediators(Construct):
    """``functions[action]`` for each action in ``grants`` (action -> IAM statements)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        wiring: Wiring,
        grants: Mapping[str, list[iam.PolicyStatement]],
        alarm_topics: Mapping[str, sns.ITopic],
        spoke_calls: Mapping[str, Iterable[str]] | None = None,
        playbook: Mapping[str, Any],
        reserved_concurrency: int,
        log_retention_days: int,
        timeout_seconds: int,
        memory_mb: int,
        sweep_minutes: int,
        sweeper_grants: list[iam.PolicyStatement] | None = None,
        architecture: str = DEFAULT_ARCHITECTURE,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._wiring = wiring
        self._playbook = playbook
        self._retention = _retention(log_retention_days)
        try:
            dependencies = bundle(architecture)
        except BundleError as exc:
            raise ConfigError(f"remediators: {exc}") from None
        self.dependencies = dependencies
        self.architecture = ARCHITECTURES[architecture][0]
        self.code = lambda_.Code.from_asset(stage_asset(playbook))
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(dependencies.path),
                asset_hash=dependencies.key,
                asset_hash_type=AssetHashType.CUSTOM,
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[self.architecture],
            description=dependencies.description,
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{prefix}-remediator-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=wiring.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # what each remediator may call: its own grants, and in a hub what it does in the
        # spoke accounts through their roles (their rates are per account: counted alike)
        callers = [
            (
                reserved_concurrency,
                [
                    *REMEDIATOR_ACTIONS,
                    *granted(statements),
                    *(spoke_calls or {}).get(action, ()),
                ],
            )
            for action, statements in grants.items()
        ]
        if sweeper_grants is not None and has_sweeper():
            callers.append((SWEEPER_CONCURRENCY, granted(sweeper_grants)))
        self._pace = json.dumps(pace_environments(callers), sort_keys=True)
        self.functions: dict[str, lambda_.Function] = {}
        for action, statements in grants.items():
            fn = self._build_function(
                action,
                statements,
                reserved_concurrency=reserved_concurrency,
                timeout_seconds=timeout_seconds,
                memory_mb=memory_mb,
            )
            # An action no alarm routes to (revert: manual only) has no alarm topic.
            if (topic := alarm_topics.get(action)) is not None:
                topic.add_subscription(subs.LambdaSubscription(fn))
            self.functions[action] = fn
        self.sweeper: lambda_.Function | None = None
        if sweeper_grants is not None and has_sweeper():
            self.sweeper = self._build_sweeper(sweeper_grants, sweep_minutes, memory_mb)

    # -- builders ---------------------------------------------------------------------------

    def _environment(self, action: str) -> dict[str, str]:
        w = self._wiring
        return {
            **w.deployment,
            "REMEDIATION_ENV": w.env,
            # Powertools names every logger after it (child loggers too): JSON logs, one service.
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "REMEDIATION_ACTIONS": action,
            "AUDIT_TABLE": w.table_name,
            "NOTICE_TOPIC_ARN": w.notice_topic.topic_arn,
            "SWITCH_PARAMETER": w.switch_name,
            "SWITCH_OVERRIDE_PREFIX": w.override_prefix,
            "COOLDOWN_SECONDS": str(w.cooldown_seconds),
            "BREAKER_MAX_PER_HOUR": str(w.breaker_max),
            "REMEDIATION_PACE": self._pace,
            **action_modules(action, self._playbook),
        }

    def _build_role(
        self, construct_id: str, name: str, log_group: logs.LogGroup, action: str | None
    ) -> iam.Role:
        """The pipeline's own needs; ``action`` None: no switch (the sweeper ignores it)."""
        w = self._wiring
        role = iam.Role(
            self,
            construct_id,
            role_name=w.role_names(action) if w.role_names and action else None,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            # sqs:SendMessage on the dead-letter queue is added by the function itself.
            description=f"{name}: its own log group, the audit table, the switch, notices",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AuditTable", actions=list(TABLE_ACTIONS), resources=w.table_arns
            )
        )
        if action is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="Switch",
                    actions=list(SWITCH_ACTIONS),
                    resources=[w.switch_arn, w.override_arn(action), *w.account_switch_arns],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ConfirmAlarms", actions=list(CONFIRM_ACTIONS), resources=list(w.alarm_arns)
                )
            )
            for alarms in w.alarm_arns:
                acknowledge(
                    role,
                    f"AwsSolutions::AwsSolutions-IAM5[Resource::{alarms}]",
                    CONFIRM_WILDCARD_REASON,
                )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Notices", actions=["sns:Publish"], resources=[w.notice_topic.topic_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptedTopicAndQueue", actions=list(KEY_ACTIONS), resources=[w.key.key_arn]
            )
        )
        return role

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=self._retention,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_function(
        self,
        action: str,
        statements: list[iam.PolicyStatement],
        *,
        reserved_concurrency: int,
        timeout_seconds: int,
        memory_mb: int,
    ) -> lambda_.Function:
        name = self._function_name(action)
        log_group = self._log_group(f"Logs-{action}", name)
        role = self._build_role(f"Role-{action}", name, log_group, action)
        policies = grant(self, f"Role-{action}", role, statements)
        return self._function(
            f"Remediator-{action}",
            policies,
            function_name=name,
            description=f"auto-remediation: runs {action} for {self._prefix} alarms",
            handler=HANDLER,
            role=role,
            log_group=log_group,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            environment=self._environment(action),
            # The handler raises after recording a failure: the event must go straight to
            # the DLQ. A retry would be deduplicated by the idempotency record and lost.
            retry_attempts=0,
            dead_letter_queue=self.dead_letters,
            max_event_age=Duration.hours(1),
        )

    def _build_sweeper(
        self, statements: list[iam.PolicyStatement], minutes: int, memory_mb: int
    ) -> lambda_.Function:
        name = f"{self._prefix}-waf-sweeper"
        log_group = self._log_group("Logs-sweeper", name)
        role = self._build_role("Role-sweeper", name, log_group, None)
        policies = grant(self, "Role-sweeper", role, statements)
        w = self._wiring
        # Not REMEDIATION_ACTIONS: the sweeper is not a remediator (see remediation.sweeper).
        environment = {
            **w.deployment,
            "REMEDIATION_ENV": w.env,
            # Powertools names every logger after it (child loggers too): JSON logs, one service.
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "AUDIT_TABLE": w.table_name,
            "NOTICE_TOPIC_ARN": w.notice_topic.topic_arn,
            MODULES_VARIABLE: module_of("waf-block"),  # the blocks it sweeps
            "REMEDIATION_PACE": self._pace,
        }
        fn = self._function(
            "WafSweeper",
            policies,
            function_name=name,
            description=f"auto-remediation: removes expired WAF blocks for {self._prefix}",
            handler=SWEEPER_HANDLER,
            role=role,
            log_group=log_group,
            timeout=Duration.seconds(120),
            memory_size=memory_mb,
            reserved_concurrent_executions=SWEEPER_CONCURRENCY,
            environment=environment,
            retry_attempts=0,
            dead_letter_queue=self.dead_letters,
        )
        events.Rule(
            self,
            "SweepSchedule",
            description=f"{self._prefix}: sweep expired WAF blocks",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            targets=[targets.LambdaFunction(fn, retry_attempts=0)],
        )
        return fn

    def add_decider(
        self, identity: str, actions: Iterable[str], *, timeout_seconds: int, memory_mb: int
    ) -> lambda_.Function:
        """The chat's entry point (``remediation.decisions``): it may read approvals, record a
        refused or failed request and invoke the remediators of ``actions``, nothing else.
        It waits for the remediator (``timeout_seconds``, theirs) and a little more."""
        name = f"{self._prefix}-chat-decisions"
        log_group = self._log_group("Logs-decisions", name)
        remediators = {a: self.functions[a] for a in sorted(actions)}
        w = self._wiring
        role = iam.Role(
            self,
            "Role-decisions",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{name}: its log group, approvals in the audit table, the remediators",
        )
        statements = [
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            # the table, not its index: read approvals, write audit records, nothing else
            iam.PolicyStatement(
                sid="ReadApprovals",
                actions=["dynamodb:GetItem"],
                resources=w.table_arns[:1],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [APPROVALS]}},
            ),
            iam.PolicyStatement(
                sid="RecordPresses",
                actions=["dynamodb:PutItem"],
                resources=w.table_arns[:1],
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [audit_key("*")[PARTITION_KEY]]
                    }
                },
            ),
            iam.PolicyStatement(
                sid="InvokeRemediators",
                actions=["lambda:InvokeFunction"],
                resources=[fn.function_arn for fn in remediators.values()],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        return self._function(
            "ChatDecisions",
            [role.node.find_child("DefaultPolicy")],
            function_name=name,
            description=f"auto-remediation: approvals and reverts from chat for {self._prefix}",
            handler=DECIDER_HANDLER,
            role=role,
            log_group=log_group,
            timeout=Duration.seconds(timeout_seconds + 15),
            memory_size=memory_mb,
            reserved_concurrent_executions=2,
            environment={
                "REMEDIATION_ENV": w.env,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "AUDIT_TABLE": w.table_name,
                "CHAT_IDENTITY": identity,
                "REMEDIATOR_TIMEOUT_SECONDS": str(timeout_seconds),
                "REMEDIATOR_FUNCTIONS": json.dumps(
                    {a: self._function_name(a) for a in remediators}, sort_keys=True
                ),
            },
        )

    def _function_name(self, action: str) -> str:
        return f"{self._prefix}-{action}"

    def _function(
        self, construct_id: str, policies: Iterable[IConstruct], **props: Any
    ) -> lambda_.Function:
        """A function of the shared code and dependency layer; ``policies`` (its grants)
        exist before it can be invoked."""
        fn = lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=self.architecture,
            code=self.code,
            layers=[self.layer],
            **props,
        )
        for policy in policies:
            fn.node.add_dependency(policy)  # no invocation before its grants exist
        return fn


_R = logs.RetentionDays
RETENTION = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS,
    30: _R.ONE_MONTH, 60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS,
    150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS, 365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS,
    545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1827: _R.FIVE_YEARS, 3653: _R.TEN_YEARS,
}  # fmt: skip


def granted(statements: Iterable[iam.PolicyStatement]) -> list[str]:
    """The IAM actions ``statements`` allow (an Allow of ``NotAction``: any, as far as the
    count goes)."""
    allowed = [s for s in statements if s.effect is iam.Effect.ALLOW]
    return [a for s in allowed for a in (["*"] if s.not_actions else s.actions)]


def pace_environments(callers: Iterable[tuple[int, Iterable[str]]]) -> dict[str, int]:
    """``REMEDIATION_PACE`` (see ``remediation.quotas``): for each documented rate, how many
    execution environments may make a call that counts against it. ``callers``: per function,
    its reserved concurrency and the IAM actions it is granted (wildcards as IAM reads them)."""
    counts: dict[str, int] = {}
    for environments, actions in callers:
        patterns = [a.lower() for a in actions]
        rates = {quota(r) for r in RATES if any(fnmatchcase(r.lower(), p) for p in patterns)}
        for rate in rates:
            counts[rate] = counts.get(rate, 0) + environments
    return counts


def _retention(days: int) -> logs.RetentionDays:
    if days not in RETENTION:
        raise ValueError(f"log_retention_days={days}: expected one of {sorted(RETENTION)}")
    return RETENTION[days]
