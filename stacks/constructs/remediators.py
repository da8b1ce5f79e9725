"""One Lambda remediator per registered action kind, each with its own least-privilege role,
an encrypted dead-letter queue for failed async events, reserved concurrency and log retention.

Every function runs the same code (``functions/remediation``) with the environment's playbook
staged beside it as ``playbook.json``; ``REMEDIATION_ACTIONS`` says which action it serves.
A new action needs no change here: register it, and it gets a function, a topic and a role
built from its declared ``permissions`` and ``resources(target)`` for the configured targets.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Fn, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import remediation
from remediation.targets import build, partition_of
from stacks.catalog import declared_resources
from stacks.config import ConfigError, Route
from stacks.constructs.nag import acknowledge

HANDLER = "remediation.handler.lambda_handler"
#: the Powertools service name of every remediator and the sweeper (handler.py's Logger)
SERVICE_NAME = "auto-remediation"
SWEEPER_HANDLER = "remediation.sweeper.lambda_handler"
# The newest Python runtime (cdk-nag AwsSolutions-L1); Powertools publishes its layer for it,
# built with aws-lambda-powertools[all] (so fastjsonschema, for [validation], is in it).
RUNTIME = lambda_.Runtime.PYTHON_3_14
POWERTOOLS_LAYER = "AWSLambdaPowertoolsPythonV3-python314-x86_64"
POWERTOOLS_ACCOUNT = "017000801446"
#: the pipeline's own calls on the audit table (audit, guards, Powertools idempotency)
TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: the pipeline reads every alarm back before acting on it (remediation.confirm)
CONFIRM_ACTIONS = ("cloudwatch:DescribeAlarms",)
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
    alarm_arns: str = ""


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
        playbook: Mapping[str, Any],
        reserved_concurrency: int,
        log_retention_days: int,
        timeout_seconds: int,
        memory_mb: int,
        layer_version: int,
        sweep_minutes: int,
        sweeper_grants: list[iam.PolicyStatement] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._wiring = wiring
        self._retention = _retention(log_retention_days)
        self.code = lambda_.Code.from_asset(stage_asset(playbook))
        self.layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            # Region-aware: the public layer is published in every commercial region.
            Fn.sub(
                f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:{POWERTOOLS_ACCOUNT}:layer:"
                f"{POWERTOOLS_LAYER}:{layer_version}"
            ),
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
        self.functions: dict[str, lambda_.Function] = {}
        for action, statements in grants.items():
            fn = self._build_function(
                action,
                statements,
                reserved_concurrency=reserved_concurrency,
                timeout_seconds=timeout_seconds,
                memory_mb=memory_mb,
            )
            alarm_topics[action].add_subscription(subs.LambdaSubscription(fn))
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
        }

    def _build_role(
        self, construct_id: str, name: str, log_group: logs.LogGroup, action: str | None
    ) -> iam.Role:
        """The pipeline's own needs; ``action`` None: no switch (the sweeper ignores it)."""
        w = self._wiring
        role = iam.Role(
            self,
            construct_id,
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
                    actions=["ssm:GetParameter"],
                    resources=[w.switch_arn, w.override_arn(action)],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ConfirmAlarms", actions=list(CONFIRM_ACTIONS), resources=[w.alarm_arns]
                )
            )
            acknowledge(
                role,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::{w.alarm_arns}]",
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
            log_group_name=f"/aws/lambda/{name}",
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
        name = f"{self._prefix}-{action}"
        log_group = self._log_group(f"Logs-{action}", name)
        role = self._build_role(f"Role-{action}", name, log_group, action)
        policies = grant(self, f"Role-{action}", role, statements)
        fn = lambda_.Function(
            self,
            f"Remediator-{action}",
            function_name=name,
            description=f"auto-remediation: runs {action} for {self._prefix} alarms",
            runtime=RUNTIME,
            handler=HANDLER,
            code=self.code,
            layers=[self.layer],
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
        for policy in policies:
            fn.node.add_dependency(policy)  # no invocation before its grants exist
        return fn

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
        }
        fn = lambda_.Function(
            self,
            "WafSweeper",
            function_name=name,
            description=f"auto-remediation: removes expired WAF blocks for {self._prefix}",
            runtime=RUNTIME,
            handler=SWEEPER_HANDLER,
            code=self.code,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            timeout=Duration.seconds(120),
            memory_size=memory_mb,
            reserved_concurrent_executions=1,
            environment=environment,
            retry_attempts=0,
            dead_letter_queue=self.dead_letters,
        )
        for policy in policies:
            fn.node.add_dependency(policy)
        events.Rule(
            self,
            "SweepSchedule",
            description=f"{self._prefix}: sweep expired WAF blocks",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            targets=[targets.LambdaFunction(fn, retry_attempts=0)],
        )
        return fn


_R = logs.RetentionDays
RETENTION = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS,
    30: _R.ONE_MONTH, 60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS,
    150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS, 365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS,
    545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1827: _R.FIVE_YEARS, 3653: _R.TEN_YEARS,
}  # fmt: skip


def _retention(days: int) -> logs.RetentionDays:
    if days not in RETENTION:
        raise ValueError(f"log_retention_days={days}: expected one of {sorted(RETENTION)}")
    return RETENTION[days]


#: IAM counts at most 6,144 characters per managed policy (whitespace excluded); keep room
POLICY_BUDGET = 5_000
#: managed policies one role may carry (IAM's default quota)
MAX_POLICIES_PER_ROLE = 10


def pack(statements: Sequence[iam.PolicyStatement], budget: int = POLICY_BUDGET) -> list[list]:
    """Statements in policy-sized groups; a statement too big for one is split by resources.

    A role's inline policies share 10,240 characters: 150 services' target ARNs do not fit,
    so targets go into managed policies of at most ``budget`` characters each.
    """

    def size(statement: iam.PolicyStatement) -> int:
        return len(json.dumps(statement.to_json(), separators=(",", ":")))

    pieces: list[iam.PolicyStatement] = []
    for statement in statements:
        if size(statement) <= budget:
            pieces.append(statement)
            continue
        chunk: list[str] = []
        part = 0
        for arn in [*statement.resources, None]:
            probe = iam.PolicyStatement(actions=statement.actions, resources=[*chunk, arn or ""])
            if arn is None or (chunk and size(probe) > budget):
                part += 1
                pieces.append(
                    iam.PolicyStatement(
                        sid=f"{statement.sid}{part}", actions=statement.actions, resources=chunk
                    )
                )
                chunk = []
            if arn is not None:
                chunk.append(arn)
    groups: list[list[iam.PolicyStatement]] = []
    used = budget + 1
    for piece in pieces:
        if used + size(piece) > budget:
            groups.append([])
            used = 0
        groups[-1].append(piece)
        used += size(piece)
    return groups


def grant(
    scope: Construct,
    construct_id: str,
    role: iam.Role,
    statements: Sequence[iam.PolicyStatement],
) -> list[iam.ManagedPolicy]:
    """``statements`` as managed policies on ``role``; each wildcard acknowledged with why."""
    groups = pack(statements)
    if len(groups) > MAX_POLICIES_PER_ROLE:
        raise ConfigError(
            f"{construct_id}: the targets need {len(groups)} managed policies, more than the "
            f"{MAX_POLICIES_PER_ROLE} a role may carry: split the environment"
        )
    policies = []
    for number, group in enumerate(groups, start=1):
        policy = iam.ManagedPolicy(
            scope,
            f"{construct_id}-targets-{number}",
            description=f"{construct_id}: its declared permissions on its configured targets",
            statements=group,
            roles=[role],
        )
        seen: set[str] = set()
        for statement in group:
            for arn in statement.resources:
                if "*" in arn and arn not in seen:
                    seen.add(arn)
                    acknowledge(
                        policy,
                        f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn}]",
                        wildcard_reason(arn, statement.actions),
                    )
        policies.append(policy)
    return policies


def wildcard_reason(arn: str, actions: Sequence[str]) -> str:
    """Why a wildcard resource is as narrow as IAM allows (see route_statements)."""
    if arn == "*":
        return f"{', '.join(actions)}: IAM offers no resource-level permission for these"
    if ":log-group:" in arn:
        return "the log streams of one configured access-log group (Logs Insights reads them)"
    if arn.endswith("/deployments/*"):
        return "the deployments of one configured API: rollback reads them to find the previous"
    if ":function:" in arn and arn.endswith(":*"):
        return (
            "the versions and aliases of one configured function, where provisioned "
            "concurrency lives (cost-guard sheds it)"
        )
    return f"a sub-resource pattern of a configured target, declared by the action: {arn}"


#: IAM actions AWS offers no resource-level scoping for: "*" is the only valid resource
#: (service authorization reference: no resource type listed for them)
UNSCOPABLE = frozenset(
    {
        "logs:GetQueryResults",
        "logs:StopQuery",
        "logs:DescribeQueries",
        "application-autoscaling:DescribeScalableTargets",
    }
)


def param_resources(
    route: Route, region: str, account: str, partition: str | None = None
) -> list[str]:
    """Resources a route's parameters name that ``resources(target)`` cannot know: the access
    log group a ``log_group`` parameter points a query at."""
    name = route.params.get("log_group")
    if not isinstance(name, str) or not name:
        return []
    arn = build(partition or partition_of(region), "logs", region, account, f"log-group:{name}")
    return [arn, f"{arn}:*"]


def route_statements(
    action_cls: Any,
    action: str,
    routes: Sequence[Route],
    *,
    region: str,
    account: str,
    partition: str | None = None,
) -> list[iam.PolicyStatement]:
    """IAM statements for ``action`` on its configured ``routes``: its declared permissions,
    grouped by service so a Lambda permission never applies to a table ARN and so on;
    permissions IAM cannot scope (``UNSCOPABLE``) on "*", when any other is granted."""
    resources: set[str] = set()
    for route in routes:
        resources.update(declared_resources(action_cls, route))
        resources.update(param_resources(route, region, account, partition))
    if not resources:
        return []
    by_service: dict[str, list[str]] = {}
    for permission in action_cls.permissions:
        by_service.setdefault(permission.split(":", 1)[0], []).append(permission)
    statements = []
    unscoped = sorted(p for p in action_cls.permissions if p in UNSCOPABLE)
    for service, permissions in sorted(by_service.items()):
        scoped = sorted(p for p in permissions if p not in UNSCOPABLE)
        matching = sorted(arn for arn in resources if arn == "*" or arn.split(":")[2] == service)
        if not scoped or not matching:
            continue  # no configured target of that service: the permission is not needed
        statements.append(
            iam.PolicyStatement(
                sid=f"{_sid(action)}{service.capitalize()}", actions=scoped, resources=matching
            )
        )
    if unscoped and statements:
        statements.append(
            iam.PolicyStatement(sid=f"{_sid(action)}Unscopable", actions=unscoped, resources=["*"])
        )
    return statements


def _sid(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("-"))
