"""One environment's configuration: ``cdk.json`` context ``environments.<name>``, modelled with
pydantic and checked at synth. docs/config.md is the reference; ``json_schema()`` is the same
model as a JSON Schema (``remediate config schema``), so an editor can check cdk.json too.

Shape (``cdk.json`` holds a full ``drill`` and ``prod-example``)::

    {"account": "123456789012", "region": "eu-west-1",
     "switch": "dry-run",                      # the switch's initial mode: on | off | dry-run
     "notice_emails": ["oncall@example.com"],
     "thresholds": {...},                      # env-wide overrides of the runbook defaults
     "guards": {"cooldown_seconds": 900, "breaker_max_per_hour": 3,
                "max_event_age_seconds": 900},      # older alarm transitions: not acted on
     "remediators": {"reserved_concurrency": 5, "log_retention_days": 90,
                     "architecture": "x86_64", ...},
     "services": {"<name>": {"kind": "lambda" | "rest-api" | "http-api" | "dynamodb"
                                     | "webhook" | "waf" | "distribution"
                                     | "aurora-cluster" | "ecs-service", ...}},
     "budgets": {"<name>": {"limit_usd": 500, "threshold_percent": 100}},
     "inventory": [{"action": ..., "target": ..., "params": {...}}]}

Every service also takes ``thresholds`` (overrides of the environment's), ``disable`` (alarm
kinds to leave out), ``params`` (per action: merged into that action's default parameters) and
``routes`` (per alarm kind: replace the default ``{"action", "target", "params"}`` entirely:
how a new action is wired by config alone).

Strict: an unknown key, a value of the wrong JSON type, a number outside its meaningful range, a
statistic CloudWatch does not know, a region outside its partition's list and an alarm period
CloudWatch refuses are errors. ``parse_env`` and ``load`` raise ``ConfigError`` with one line
that names the environment, the key path and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from serverless_remediation.remediation import targets
from serverless_remediation.remediation.config import DEFAULT_MAX_EVENT_AGE_SECONDS
from serverless_remediation.remediation.guards import MAX_BREAKER, GuardSettings
from serverless_remediation.remediation.models import (
    Route,  # the playbook's own route: config writes what it reads
)
from serverless_remediation.remediation.silences import parse_window

AlarmKind = Literal[
    "error-rate",
    "latency",
    "webhook-failures",
    "throttles",
    "abuse",
    "db-connections",
    "service-down",
]
SwitchMode = Literal["on", "off", "dry-run"]
#: how far a route acts alone (``remediation.models.RouteMode``)
RouteModeName = Literal["auto", "approve", "notify"]
Architecture = Literal["x86_64", "arm64"]
Trigger = Literal["sns", "eventbridge"]
ALARM_KINDS: tuple[str, ...] = get_args(AlarmKind)
SWITCH_MODES: tuple[str, ...] = get_args(SwitchMode)
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
#: an alarm transition older than ``max_event_age_seconds`` is not acted on: these bounds
#: keep it longer than CloudWatch-to-Lambda delivery and shorter than an incident's first hour
MAX_EVENT_AGE_RANGE = (60, 3600)
#: CloudWatch alarm periods below a minute (high-resolution custom metrics only)
HIGH_RESOLUTION_PERIODS = (10, 20, 30)
#: CloudWatch: period x evaluation periods at most one day when the period is under an hour
MAX_ALARM_WINDOW_SECONDS = 86_400

_NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"
# app and env prefix every physical name (Lambda names stop at 64 characters)
_SHORT = r"^[a-z][a-z0-9-]{0,19}$"
_ACCOUNT = r"^\d{12}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# chat channel ids, as AWS::Chatbot validates them; a Secrets Manager secret's name
_SLACK_WORKSPACE = r"^[0-9A-Z]{1,255}$"
_SLACK_CHANNEL = r"^[A-Za-z0-9]{1,255}$"
_UUID = r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$"
_TEAMS_CHANNEL = r"^[a-zA-Z0-9\-_=+/.,]*%3[aA][a-zA-Z0-9\-_=+/.,]*%40[a-zA-Z0-9\-_=+/.,]*$"
_SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 (a name pattern)
#: what a pattern means, for error messages
_PATTERNS = {
    _NAME: "lower-case letters, digits and '-', starting with a letter or digit, at most 40",
    _SHORT: "lower-case letters, digits and '-', starting with a letter, at most 20",
    _ACCOUNT: "a 12-digit AWS account id (target ARNs in the playbook are written at synth)",
    _EMAIL: "an e-mail address",
    _SLACK_WORKSPACE: "a Slack workspace id (upper-case letters and digits, e.g. T0123ABCD)",
    _SLACK_CHANNEL: "a Slack channel id (letters and digits, e.g. C0123ABCD)",
    _UUID: "a Microsoft Teams team or tenant id (a UUID)",
    _TEAMS_CHANNEL: "a Teams channel id, URL-encoded as the chat console shows it "
    "(19%3a...%40thread.tacv2)",
    _SECRET_NAME: "a Secrets Manager secret name (letters, digits and /_+=.@-)",
}


class ConfigError(ValueError):
    """The environment config is invalid; the one-line message names the key."""


# -- value types --------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(pattern=_NAME)]
ShortName = Annotated[str, StringConstraints(pattern=_SHORT)]
Text = Annotated[str, StringConstraints(min_length=1)]


def _error(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is final (no context: nothing is substituted)."""
    return PydanticCustomError(kind, message)


@functools.cache
def partition_regions() -> dict[str, tuple[str, ...]]:
    """Partition -> its region codes, from the botocore release pinned in constraints.txt."""
    import botocore.loaders

    data = botocore.loaders.create_loader().load_data("partitions")
    found: dict[str, tuple[str, ...]] = {}
    for partition in data["partitions"]:
        pattern = re.compile(partition["regionRegex"])
        found[partition["id"]] = tuple(sorted(r for r in partition["regions"] if pattern.match(r)))
    return found


def supported_partitions() -> list[str]:
    """The partitions whose regions ``remediation.targets.partition_of`` maps back to them:
    where the remediators write the right ARNs."""
    return [
        partition
        for partition, codes in partition_regions().items()
        if codes and all(targets.partition_of(r) == partition for r in codes)
    ]


def _region(value: str) -> str:
    regions = partition_regions()
    for partition, codes in regions.items():
        if value in codes:
            derived = targets.partition_of(value)
            if derived != partition:
                raise _error(
                    "region_partition",
                    f"{value!r} is in partition {partition}, which the remediators do not "
                    f"support yet (they would write {derived} ARNs); supported: "
                    f"{', '.join(supported_partitions())}",
                )
            return value
    expected = targets.partition_of(value)
    allowed = ", ".join(regions.get(expected, ()))
    raise _error("region", f"{value!r} is not a region of partition {expected}; allowed: {allowed}")


def all_regions() -> list[str]:
    """Every region the config accepts (the JSON Schema's enum)."""
    return sorted(
        r for p, codes in partition_regions().items() for r in codes if targets.partition_of(r) == p
    )


Region = Annotated[
    str,
    AfterValidator(_region),
    Field(
        description="region code, from its partition's region list (botocore's)",
        json_schema_extra=lambda schema: schema.update(enum=all_regions()),
    ),
]

# CloudWatch's statistic grammar (PutMetricAlarm Statistic / ExtendedStatistic).
SIMPLE_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_UP_TO_100 = r"(?:100(?:\.0{1,10})?|\d{1,2}(?:\.\d{1,10})?)"
_SHORTHAND = re.compile(rf"^(?:p|tm|wm|tc|ts){_UP_TO_100}$")
_BOUNDED = re.compile(r"^(?:TM|WM|TC|TS)\((\d{2}(?:\.\d{1,10})?)%:(\d{2}(?:\.\d{1,10})?)%\)$")
_NUMBER = r"-?\d+(?:\.\d+)?"
_RANK = re.compile(rf"^PR\(({_NUMBER})?:({_NUMBER})?\)$")
STATISTIC_GRAMMAR = (
    "SampleCount, Average, Sum, Minimum, Maximum, pNN, tmNN, wmNN, tcNN, tsNN (NN 0..100, "
    "e.g. p99, tm90), IQM, TM(X%:Y%), WM(X%:Y%), TC(X%:Y%), TS(X%:Y%) (10 <= X < Y <= 90), "
    "PR(n:m)"
)


def is_statistic(value: str) -> bool:
    """A statistic a CloudWatch alarm accepts (Statistic or ExtendedStatistic)."""
    if value in SIMPLE_STATISTICS or value == "IQM" or _SHORTHAND.match(value):
        return True
    bounded = _BOUNDED.match(value)
    if bounded:
        low, high = (float(b) for b in bounded.groups())
        return 10 <= low < high <= 90
    rank = _RANK.match(value)
    if rank and any(rank.groups()):
        start, end = rank.groups()
        return start is None or end is None or float(start) < float(end)
    return False


def _statistic(value: str) -> str:
    if not is_statistic(value):
        raise _error(
            "statistic", f"{value!r} is not a CloudWatch statistic; allowed: {STATISTIC_GRAMMAR}"
        )
    return value


#: the grammar's shape for editors (the numeric bounds are checked by ``is_statistic``)
_STATISTIC_PATTERN = (
    rf"^(?:{'|'.join(SIMPLE_STATISTICS)}|IQM|(?:p|tm|wm|tc|ts){_UP_TO_100}"
    r"|(?:TM|WM|TC|TS)\(\d{2}(?:\.\d{1,10})?%:\d{2}(?:\.\d{1,10})?%\)"
    rf"|PR\(({_NUMBER})?:({_NUMBER})?\))$"
)
Statistic = Annotated[
    str,
    AfterValidator(_statistic),
    Field(description=STATISTIC_GRAMMAR, json_schema_extra={"pattern": _STATISTIC_PATTERN}),
]


def is_alarm_period(seconds: int) -> bool:
    """CloudWatch alarm periods: 10, 20, 30 or a multiple of 60 (up to a day)."""
    return seconds in HIGH_RESOLUTION_PERIODS or (
        seconds % 60 == 0 and 60 <= seconds <= MAX_ALARM_WINDOW_SECONDS
    )


def _period(value: int) -> int:
    if not is_alarm_period(value):
        raise _error(
            "alarm_period",
            f"{value} s is not an alarm period CloudWatch accepts; allowed: 10, 20, 30 or a "
            f"multiple of 60 up to {MAX_ALARM_WINDOW_SECONDS}",
        )
    return value


AlarmPeriod = Annotated[
    int,
    AfterValidator(_period),
    Field(
        json_schema_extra={
            "anyOf": [
                {"enum": list(HIGH_RESOLUTION_PERIODS)},
                {"multipleOf": 60, "minimum": 60, "maximum": MAX_ALARM_WINDOW_SECONDS},
            ]
        }
    ),
]


# -- models -------------------------------------------------------------------------------


class _Model(BaseModel):
    # strict: "5" is not 5 and 1 is not true; frozen: one config, shared by every construct
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Named(_Model):
    """A map entry whose name is its key in cdk.json (``services.<name>``)."""

    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        return self._name

    def named(self, name: str, **update: Any) -> Any:
        copy = self.model_copy(update=update)
        copy._name = name
        return copy


class RouteConfig(_Model):
    """One action on one target: what a playbook route holds."""

    action: Text = Field(description="a registered action: remediation.actions.REGISTRY")
    target: Text = Field(description="the target ARN, or ARNs joined by commas")
    params: dict[str, Any] = Field(default_factory=dict, description="the action's parameters")

    def route(self) -> Route:
        """The playbook's own route (``remediation.models.Route``)."""
        return Route(self.action, self.target, dict(self.params))


class Thresholds(_Model):
    """Alarm thresholds; the defaults are the runbooks' (see docs/config.md). Each alarm fires
    above its threshold, so a rate of 100 % could never fire."""

    error_rate_percent: float = Field(
        default=5.0, ge=0, lt=100, description="errors / invocations (or 5XX / requests), percent"
    )
    error_rate_minutes: int = Field(
        default=5, ge=1, le=1440, description="window of the error rate"
    )
    latency_p99_ms: float = Field(default=1000.0, gt=0, description="p99 latency, milliseconds")
    latency_minutes: int = Field(
        default=5, ge=1, le=1440, description="window of the latency alarm"
    )
    webhook_failure_percent: float = Field(
        default=10.0, ge=0, lt=100, description="failed / (failed + succeeded) deliveries, percent"
    )
    webhook_minutes: int = Field(
        default=10, ge=1, le=1440, description="window of the webhook alarm"
    )
    throttle_count: float = Field(
        default=0.0,
        ge=0,
        description="throttled requests above this count in every minute: sustained",
    )
    throttle_minutes: int = Field(
        default=5, ge=1, le=1440, description="window of the throttle alarm"
    )
    abuse_hits_per_hour: float = Field(
        default=100.0, ge=0, description="rate-limit or auth-failure hits per hour"
    )
    db_connection_errors: float = Field(
        default=5.0,
        ge=0,
        description="database connection errors above this count in the window (Nigredo: 5 "
        "in 5 minutes); without a connection_errors metric: the writer holding no connection",
    )
    db_minutes: int = Field(
        default=5, ge=1, le=1440, description="window of the database connection alarm"
    )
    service_down_minutes: int = Field(
        default=1,
        ge=1,
        le=1440,
        description="an ECS service running no task for this long is down (Aureus: 1 minute)",
    )
    cpu_percent: float = Field(
        default=80.0,
        gt=0,
        lt=100,
        description="ECS service CPU (average, percent) for its latency alarm when it has no "
        "load balancer (Aureus HighCPUUsage)",
    )
    period_seconds: AlarmPeriod = Field(
        default=60,
        description="period of the rate and latency alarms (error-rate, latency, "
        "webhook-failures): 10, 20 or 30 for high-resolution custom metrics (webhooks only), "
        "else a multiple of 60 that divides each window; throttles use 60, abuse 3600",
    )


class Guards(_Model):
    # The remediators' own defaults: one place for them (remediation/guards.py, config.py).
    cooldown_seconds: int = Field(
        default=GuardSettings.cooldown_seconds, ge=1, le=86_400, description="per target and action"
    )
    breaker_max_per_hour: int = Field(
        default=GuardSettings.breaker_max,
        ge=1,
        le=MAX_BREAKER,
        description="actions per hour per action kind",
    )
    max_event_age_seconds: int = Field(
        default=DEFAULT_MAX_EVENT_AGE_SECONDS,
        ge=MAX_EVENT_AGE_RANGE[0],
        le=MAX_EVENT_AGE_RANGE[1],
        description="an older alarm transition is not acted on",
    )


class RemediatorSettings(_Model):
    reserved_concurrency: int = Field(
        default=5, ge=1, le=100, description="per remediator function"
    )
    log_retention_days: Literal[LOG_RETENTION_DAYS] = Field(  # type: ignore[valid-type]
        default=90, description="CloudWatch Logs retention of every remediator"
    )
    #: room for waf-block's Logs Insights query (60 s by default) and the rest of the
    #: pipeline: the catalog checks every waf-block route against it at synth
    timeout_seconds: int = Field(default=120, ge=10, le=900, description="Lambda timeout")
    memory_mb: int = Field(default=256, ge=128, le=10_240, description="Lambda memory")
    sweep_minutes: int = Field(
        default=5, ge=1, le=60, description="how often expired WAF blocks go"
    )
    architecture: Architecture = Field(
        default="x86_64",
        description="instruction set of the remediator functions (arm64: Graviton)",
    )


class MetricRef(_Model):
    """A CloudWatch metric named in config (custom metrics: webhooks, rate limits, 429s)."""

    namespace: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="the metric's namespace"
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="the metric's name"
    )
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    statistic: Statistic = "Sum"


# -- services -----------------------------------------------------------------------------


_AWS_RATE_ALARMS = frozenset({"error-rate", "latency"})


def _window(value: str) -> str:
    parse_window(value)  # ValueError: names the accepted form
    return value


class Service(_Named):
    """What every service kind shares."""

    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="overrides of the environment's thresholds"
    )
    disable: tuple[AlarmKind, ...] = Field(default=(), description="alarm kinds to leave out")
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per action: merged into its default parameters"
    )
    routes: dict[AlarmKind, RouteConfig] = Field(
        default_factory=dict, description="per alarm kind: replaces the default route"
    )
    modes: dict[AlarmKind, RouteModeName] = Field(
        default_factory=dict,
        description="per alarm kind: auto (default) acts, approve waits for a human, "
        "notify plans and tells",
    )
    maintenance: tuple[Annotated[str, AfterValidator(_window)], ...] = Field(
        default=(),
        description="weekly UTC windows holding automatic actions: '<mon..sun|daily> HH:MM-HH:MM'",
    )
    #: its alarms of ``period_seconds`` that read AWS's own metrics (one-minute resolution)
    aws_metrics: ClassVar[frozenset[str]] = frozenset()


class LambdaService(Service):
    """A Lambda function, optionally behind an alias (rollback moves the alias)."""

    kind: Literal["lambda"]
    aws_metrics: ClassVar[frozenset[str]] = _AWS_RATE_ALARMS
    function: Text = Field(description="the function's name")
    alias: str = Field(default="", description="the alias that serves the traffic, if any")
    sheddable: bool = Field(
        default=False, description="cost-guard may shed its provisioned and reserved concurrency"
    )


class RestApiService(Service):
    """An API Gateway REST API stage. Latency acts on ``function`` when given;
    ``throttle_metric`` (429 count, e.g. from an access-log metric filter) adds a throttle alarm
    that raises the stage throttle."""

    kind: Literal["rest-api"]
    aws_metrics: ClassVar[frozenset[str]] = _AWS_RATE_ALARMS
    api_name: Text = Field(description="the API's name: its CloudWatch ApiName dimension")
    api_id: Text = Field(description="the REST API id")
    stage: Text = Field(description="the stage name")
    function: str = Field(default="", description="the function behind it, for latency")
    throttle_metric: MetricRef | None = Field(default=None, description="a count of 429 responses")
    cacheable: bool = Field(
        default=False,
        description="its answers may be cached: latency enables the stage cache (api-cache) "
        "instead of acting on the function",
    )


class HttpApiService(Service):
    """An API Gateway HTTP API stage."""

    kind: Literal["http-api"]
    aws_metrics: ClassVar[frozenset[str]] = _AWS_RATE_ALARMS
    api_id: Text = Field(description="the HTTP API id")
    stage: Text = Field(description="the stage name")
    function: str = Field(default="", description="the function behind it, for latency")


class TableService(Service):
    """A DynamoDB table (throttling raises its capacity)."""

    kind: Literal["dynamodb"]
    table: Text = Field(description="the table's name")


class WebhookService(Service):
    """An outgoing webhook behind a feature flag: an SSM parameter (``flag_parameter``) or one
    environment variable of ``function`` (``flag_variable``). ``success`` and ``failure`` are
    the sender's delivery-count metrics."""

    kind: Literal["webhook"]
    success: MetricRef = Field(description="the count of delivered webhooks")
    failure: MetricRef = Field(description="the count of failed webhooks")
    function: str = Field(default="", description="the sender, whose flag_variable is the flag")
    flag_variable: str = Field(default="", description="the flag: one environment variable")
    flag_parameter: str = Field(default="", description="the flag: an SSM parameter name")
    off_value: str = Field(default="false", description="the flag's value while the webhook is off")

    @model_validator(mode="after")
    def _one_flag(self) -> WebhookService:
        if bool(self.flag_parameter) == bool(self.function and self.flag_variable):
            raise _error(
                "webhook_flag",
                "a webhook flag is either flag_parameter (an SSM parameter name) or "
                "function + flag_variable (one environment variable), exactly one of them",
            )
        return self


class WafService(Service):
    """A WAFv2 IP set the abuse alarm feeds, and the access-log group the offenders are read
    from. ``metric`` counts rate-limit or auth-failure hits."""

    kind: Literal["waf"]
    ip_set_name: Text = Field(description="the WAFv2 IP set's name")
    ip_set_id: Text = Field(description="the WAFv2 IP set's id")
    scope: Literal["REGIONAL", "CLOUDFRONT"] = "REGIONAL"
    log_group: Text = Field(description="the access-log group the offenders are read from")
    metric: MetricRef = Field(description="the count of rate-limit or auth-failure hits")


class DistributionService(Service):
    """A CloudFront distribution in front of other services: after a rollback of one of
    ``origins`` (service names), its ``paths`` are invalidated (a follow-up step,
    ``cdn-invalidate``). It has no alarms of its own."""

    kind: Literal["distribution"]
    distribution_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,32}$")] = Field(
        description="the distribution's id (E...)"
    )
    paths: tuple[Annotated[str, StringConstraints(pattern=r"^/[^*]*\*?$")], ...] = Field(
        default=("/*",), min_length=1, max_length=15, description="the paths to invalidate"
    )
    origins: tuple[Name, ...] = Field(
        min_length=1, description="the services it serves: their rollbacks invalidate it"
    )


class AuroraClusterService(Service):
    """An Aurora DB cluster (Nigredo "Database connection failures" -> db-failover).

    ``connection_errors``: the application's count of failed database connections (the
    runbook's alarm); without it the alarm is the writer holding no connection at all
    (AWS/RDS ``DatabaseConnections`` of the cluster's WRITER role), which suits a cluster
    whose clients keep pooled connections open."""

    kind: Literal["aurora-cluster"]
    cluster: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")] = Field(
        description="the DB cluster identifier"
    )
    connection_errors: MetricRef | None = Field(
        default=None, description="a count of failed database connections"
    )


class EcsService(Service):
    """An ECS service (Aureus Sentinel "ServiceDown" -> ecs-restart, "HighLatency" ->
    ecs-scale, "HighErrorRate" -> ecs-rollback). ``load_balancer`` and ``target_group`` (the
    ALB's CloudWatch dimensions, ``app/NAME/ID`` and ``targetgroup/NAME/ID``) give the 5xx
    rate and the response time; without them latency reads the service's CPU. ``service
    down`` reads Container Insights' ``RunningTaskCount``."""

    kind: Literal["ecs-service"]
    aws_metrics: ClassVar[frozenset[str]] = _AWS_RATE_ALARMS
    cluster: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,255}$")] = Field(
        description="the ECS cluster's name"
    )
    service: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,255}$")] = Field(
        description="the ECS service's name"
    )
    load_balancer: Annotated[str, StringConstraints(pattern=r"^app/[^/]+/[0-9a-f]+$")] | None = (
        Field(default=None, description="the ALB's LoadBalancer dimension: app/NAME/ID")
    )
    target_group: Annotated[str, StringConstraints(pattern=r"^targetgroup/[^/]+/[0-9a-f]+$")] | (
        None
    ) = Field(default=None, description="the service's TargetGroup dimension")

    @model_validator(mode="after")
    def _both_or_neither(self) -> EcsService:
        if (self.load_balancer is None) != (self.target_group is None):
            raise _error(
                "ecs_load_balancer",
                "load_balancer and target_group go together (the ALB metrics need both)",
            )
        return self


ServiceConfig = Annotated[
    Union[  # noqa: UP007 (a discriminated union reads best spelled out)
        LambdaService,
        RestApiService,
        HttpApiService,
        TableService,
        WebhookService,
        WafService,
        DistributionService,
        AuroraClusterService,
        EcsService,
    ],
    Field(discriminator="kind"),
]
SERVICE_KINDS: dict[str, type[Service]] = {
    get_args(cls.model_fields["kind"].annotation)[0]: cls
    for cls in get_args(get_args(ServiceConfig)[0])
}


class Budget(_Named):
    """An AWS Budgets cost budget; over ``threshold_percent`` -> cost-guard sheds the
    ``sheddable`` Lambda services."""

    limit_usd: float = Field(gt=0, description="monthly budget, US dollars")
    #: AWS Budgets: at most 1,000,000 % of the budgeted amount
    threshold_percent: float = Field(default=100.0, gt=0, le=1_000_000, description="of limit_usd")
    notification: Literal["ACTUAL", "FORECASTED"] = "ACTUAL"
    params: dict[str, Any] = Field(default_factory=dict, description="cost-guard's parameters")
    mode: RouteModeName = Field(default="auto", description="auto, approve or notify")


class SlackChannel(_Model):
    """A Slack channel for notices (its workspace authorised once in the chat console)."""

    workspace_id: Annotated[str, StringConstraints(pattern=_SLACK_WORKSPACE)]
    channel_id: Annotated[str, StringConstraints(pattern=_SLACK_CHANNEL)]


class TeamsChannel(_Model):
    """A Microsoft Teams channel for notices (its tenant authorised once in the console)."""

    team_id: Annotated[str, StringConstraints(pattern=_UUID)]
    channel_id: Annotated[str, StringConstraints(pattern=_TEAMS_CHANNEL, max_length=255)]
    tenant_id: Annotated[str, StringConstraints(pattern=_UUID)]


class Chat(_Model):
    """Chat channels the notices go to (Amazon Q Developer in chat applications)."""

    slack: SlackChannel | None = None
    teams: TeamsChannel | None = None


#: a PagerDuty Events API v2 routing (integration) key: what must never be in cdk.json
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


class Paging(_Model):
    """PagerDuty paging: the routing key is read from a Secrets Manager secret at run time."""

    pagerduty_secret: Annotated[str, StringConstraints(pattern=_SECRET_NAME)] = Field(
        description="the NAME of the Secrets Manager secret holding the PagerDuty Events API "
        "v2 routing key (never the key itself)"
    )
    pagerduty_secret_field: str = Field(
        default="", description="the JSON field holding the key, if the secret is JSON"
    )

    @field_validator("pagerduty_secret")
    @classmethod
    def _not_the_key(cls, value: str) -> str:
        if _ROUTING_KEY.match(value):
            raise _error(
                "secret_value",
                "looks like a routing key itself: store it in Secrets Manager and name the "
                "secret here",
            )
        return value


class People(_Model):
    """Approvals and silences (``remediation.approvals``, ``remediation.silences``)."""

    approval_minutes: int = Field(
        default=15, ge=1, le=1440, description="how long an approval request stays open"
    )
    approvers: tuple[Annotated[str, StringConstraints(min_length=1, max_length=256)], ...] = Field(
        default=(),
        description="who may approve or reject: fnmatch patterns of IAM ARNs, or "
        "chat:<app>-<env> for the chat channel's buttons",
    )
    max_silence_hours: int = Field(
        default=24, ge=1, le=168, description="the longest `remediate silence`"
    )


_ORGANIZATION_ID = r"^o-[a-z0-9]{10,32}$"


class Spoke(_Model):
    """``organization.spokes.<name>``: one workload account the hub remediates."""

    account: Annotated[str, StringConstraints(pattern=_ACCOUNT)] = Field(
        description="the spoke's 12-digit AWS account"
    )
    regions: tuple[Region, ...] = Field(
        default=(),
        description="regions of the spoke's services (default: the hub's region); the same "
        "services in each",
    )
    services: dict[Name, ServiceConfig] = Field(
        default_factory=dict, description="the spoke's services, as under services"
    )


class Organization(_Model):
    """``organization``: this environment is a hub remediating its spokes' accounts."""

    id: Annotated[str, StringConstraints(pattern=_ORGANIZATION_ID)] | None = Field(
        default=None,
        description="the AWS Organizations id (o-...): the hub's bus accepts events from its "
        "accounts only; without it, from the spokes' accounts only",
    )
    spokes: dict[Name, Spoke] = Field(
        default_factory=dict, description="the enrolled workload accounts"
    )


class Environment(_Model):
    """``environments.<name>`` in cdk.json, as written."""

    description: str = ""
    account: Annotated[str, StringConstraints(pattern=_ACCOUNT)] = Field(
        description="the 12-digit AWS account the environment deploys to and acts in"
    )
    region: Region
    switch: SwitchMode = Field(default="dry-run", description="the switch's initial mode")
    trigger: Trigger = Field(
        default="sns",
        description=(
            "how alarm state changes reach the remediators: sns (alarm actions to one topic "
            "per action) or eventbridge (rules on the default bus matching the "
            "environment's alarm names; no alarm actions)"
        ),
    )
    notice_emails: tuple[Annotated[str, StringConstraints(pattern=_EMAIL)], ...] = ()
    chat: Chat = Field(default_factory=Chat, description="Slack and/or Teams channels")
    paging: Paging | None = Field(default=None, description="PagerDuty paging")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    guards: Guards = Field(default_factory=Guards)
    remediators: RemediatorSettings = Field(default_factory=RemediatorSettings)
    services: dict[Name, ServiceConfig] = Field(default_factory=dict)
    budgets: dict[Name, Budget] = Field(default_factory=dict)
    inventory: tuple[RouteConfig, ...] = Field(
        default=(), description="extra routes for manual requests (remediate invoke)"
    )
    people: People = Field(default_factory=People, description="approvals and silences")
    organization: Organization | None = Field(
        default=None, description="a hub: the organization and its enrolled spoke accounts"
    )


@dataclass(frozen=True)
class SpokeConfig:
    """One enrolled spoke account in one region, as the catalog and the spoke stack read it."""

    name: str
    account: str
    region: str
    services: tuple[Service, ...]
    #: its alarms' names start with it (``<app>-<env>-<spoke>[-<region>]``): unique in the hub
    alarm_prefix: str


@dataclass(frozen=True)
class EnvConfig:
    """One validated environment, as the catalog and the constructs read it."""

    app: str
    env: str
    account: str
    region: str
    switch: str = "dry-run"
    #: ``sns`` or ``eventbridge`` (``stacks.constructs.trigger``)
    trigger: str = "sns"
    notice_emails: tuple[str, ...] = ()
    chat: Chat = dataclasses.field(default_factory=Chat)
    paging: Paging | None = None
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    guards: Guards = dataclasses.field(default_factory=Guards)
    remediators: RemediatorSettings = dataclasses.field(default_factory=RemediatorSettings)
    services: tuple[Service, ...] = ()
    budgets: tuple[Budget, ...] = ()
    inventory: tuple[Route, ...] = ()
    people: People = dataclasses.field(default_factory=People)
    #: a hub's organization id and its spokes (one per account and region)
    organization_id: str | None = None
    spokes: tuple[SpokeConfig, ...] = ()
    #: the alarms' names start with it; empty: ``prefix`` (a spoke's, ``SpokeConfig``)
    alarm_prefix: str = ""

    @property
    def prefix(self) -> str:
        """``<app>-<env>``: every physical name starts with it."""
        return f"{self.app}-{self.env}"

    @property
    def alarm_names(self) -> str:
        """What every alarm name of this environment (or spoke) starts with."""
        return self.alarm_prefix or self.prefix

    def as_spoke(self, spoke: SpokeConfig) -> EnvConfig:
        """The environment as one spoke sees it: the spoke's account, region and services,
        the hub's thresholds, guards and people; no budgets, inventory or spokes of its own."""
        return dataclasses.replace(
            self,
            account=spoke.account,
            region=spoke.region,
            services=spoke.services,
            budgets=(),
            inventory=(),
            spokes=(),
            organization_id=None,
            alarm_prefix=spoke.alarm_prefix,
        )

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


# -- loading ------------------------------------------------------------------------------


def environment_names(context: Mapping[str, Any]) -> list[str]:
    environments = context.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise ConfigError("cdk.json context has no 'environments' object")
    return sorted(environments)


def load(context: Mapping[str, Any], env: str | None) -> EnvConfig:
    """``environments.<env>`` from the app's context -> ``EnvConfig``."""
    names = environment_names(context)
    valid = ", ".join(names)
    if not env:
        raise ConfigError(f"choose an environment with -c env=NAME; valid: {valid}")
    if env not in names:
        raise ConfigError(f"unknown environment {env!r}; valid: {valid}")
    return parse_env(app_name(context), env, context["environments"][env])


def load_all(context: Mapping[str, Any]) -> list[EnvConfig]:
    """Every environment, in name order (``cdk ls`` without ``-c env=``)."""
    app = app_name(context)
    return [parse_env(app, n, context["environments"][n]) for n in environment_names(context)]


def app_name(context: Mapping[str, Any]) -> str:
    app = context.get("app_name") or "autorem"
    if not isinstance(app, str) or not re.match(_SHORT, app):
        raise ConfigError(f"app_name: expected {_PATTERNS[_SHORT]}, got {app!r}")
    return app


def parse_env(app: str, env: str, raw: Any) -> EnvConfig:
    """One environment's cdk.json object -> ``EnvConfig``; ``ConfigError`` names the key."""
    where = f"environments.{env}"
    if not re.match(_SHORT, env):
        raise ConfigError(f"{where}: environment names are {_PATTERNS[_SHORT]}")
    try:
        # JSON in, as cdk.json is: arrays are lists, and strict typing reads as JSON does.
        model = Environment.model_validate_json(json.dumps(raw, default=_unjsonable))
    except ValidationError as exc:
        raise ConfigError(describe(exc, where)) from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _check_windows(model.thresholds, f"{where}.thresholds")
    services = _services(model.services, model.thresholds, f"{where}.services")
    spokes = _spokes(app, env, model, where)
    asks = [f"services.{n}" for n, s in model.services.items() if "approve" in s.modes.values()]
    asks += [
        f"organization.spokes.{name}.services.{n}"
        for name, spoke in (model.organization.spokes if model.organization else {}).items()
        for n, s in spoke.services.items()
        if "approve" in s.modes.values()
    ]
    asks += [f"budgets.{n}" for n, b in model.budgets.items() if b.mode == "approve"]
    if asks and not model.people.approvers:
        raise ConfigError(
            f"{where}.people.approvers: {', '.join(asks)} wait for approval, but nobody may "
            "approve: list approvers (IAM ARN patterns, e.g. an on-call role's sessions)"
        )
    return EnvConfig(
        app=app,
        env=env,
        account=model.account,
        region=model.region,
        switch=model.switch,
        trigger=model.trigger,
        notice_emails=model.notice_emails,
        chat=model.chat,
        paging=model.paging,
        thresholds=model.thresholds,
        guards=model.guards,
        remediators=model.remediators,
        services=tuple(services),
        budgets=tuple(budget.named(name) for name, budget in model.budgets.items()),
        inventory=tuple(route.route() for route in model.inventory),
        people=model.people,
        organization_id=model.organization.id if model.organization else None,
        spokes=spokes,
    )


def _services(found: Mapping[str, Any], thresholds: Thresholds, where: str) -> tuple[Service, ...]:
    """Each service with the environment's thresholds under its own overrides."""
    services: list[Service] = []
    for name, service in found.items():
        overrides = service.thresholds.model_dump(include=service.thresholds.model_fields_set)
        merged = Thresholds.model_validate({**thresholds.model_dump(), **overrides})
        key = f"{where}.{name}.thresholds"
        _check_windows(merged, key)
        if merged.period_seconds < 60 and service.aws_metrics:
            raise ConfigError(
                f"{key}.period_seconds: {merged.period_seconds} s, but the {service.kind} "
                f"alarms ({', '.join(sorted(service.aws_metrics))}) read AWS metrics of one-minute "
                "resolution: a shorter period never gets data; allowed: a multiple of 60"
            )
        services.append(service.named(name, thresholds=merged))
    return tuple(services)


def _spokes(app: str, env: str, model: Environment, where: str) -> tuple[SpokeConfig, ...]:
    """A hub's spokes, one per (account, region): each account enrolled once, never the
    hub's own, in the hub's partition."""
    if model.organization is None:
        return ()
    found: list[SpokeConfig] = []
    accounts: dict[str, str] = {}
    for name, spoke in model.organization.spokes.items():
        key = f"{where}.organization.spokes.{name}"
        if spoke.account == model.account:
            raise ConfigError(f"{key}.account: the hub's own account is not a spoke")
        if spoke.account in accounts:
            raise ConfigError(
                f"{key}.account: {spoke.account} is enrolled already as "
                f"{accounts[spoke.account]!r}: list its regions there"
            )
        accounts[spoke.account] = name
        regions = spoke.regions or (model.region,)
        if len(set(regions)) != len(regions):
            raise ConfigError(f"{key}.regions: a region listed twice")
        for region in regions:
            if targets.partition_of(region) != targets.partition_of(model.region):
                raise ConfigError(f"{key}.regions: {region} is not in the hub's partition")
        services = _services(spoke.services, model.thresholds, f"{key}.services")
        for region in regions:
            suffix = f"-{region}" if len(regions) > 1 else ""
            found.append(
                SpokeConfig(name, spoke.account, region, services, f"{app}-{env}-{name}{suffix}")
            )
    return tuple(found)


#: the windows the rate and latency alarms evaluate in ``period_seconds`` periods
RATE_WINDOWS = ("error_rate_minutes", "latency_minutes", "webhook_minutes")


def _check_windows(thresholds: Thresholds, key: str) -> None:
    """Each rate and latency window must be a whole number of periods (it is evaluated as
    ``window / period`` periods, every one of them breaching)."""
    period = thresholds.period_seconds
    for window in RATE_WINDOWS:
        seconds = getattr(thresholds, window) * 60
        if seconds % period:
            raise ConfigError(
                f"{key}.{window}: {seconds // 60} min is not a whole number of "
                f"{period} s periods (period_seconds); allowed: a multiple of {period} s"
            )


def _close_maps(schema: Any) -> None:
    """A map whose keys have a pattern takes no key outside it (pydantic leaves it open)."""
    if isinstance(schema, dict):
        if "patternProperties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _close_maps(value)
    elif isinstance(schema, list):
        for value in schema:
            _close_maps(value)


def _unjsonable(value: Any) -> Any:
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of cdk.json's ``context.environments`` object."""
    schema = TypeAdapter(dict[ShortName, Environment]).json_schema()
    _close_maps(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "auto-remediation environments (cdk.json context.environments)",
        **schema,
    }


# -- one-line errors ----------------------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def describe(exc: ValidationError, where: str) -> str:
    """The first error as one line: ``<where>.<key path>: <problem>; allowed: <values>``."""
    errors = exc.errors(include_url=False)
    message = _one(errors[0], where)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return " ".join(message.split())


def _one(error: Mapping[str, Any], where: str) -> str:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    steps, field, owner = _walk(loc)
    path = where + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
    got = _show(error.get("input"))
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(owner.model_fields)) if owner else "none"
        return f"{path}: unknown key; allowed here: {allowed}"
    if kind == "missing":
        return f"{path}: required{_about(field)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        kinds = ", ".join(sorted(SERVICE_KINDS))
        if kind == "union_tag_not_found":
            return f"{path}.kind: required; allowed: {kinds}"
        return f"{path}.kind: {ctx.get('tag')!r} is not a service kind; allowed: {kinds}"
    if kind == "literal_error":
        return f"{path}: {got} is not allowed; allowed: {_literals(ctx.get('expected', ''))}"
    if kind in _EXPECTED:
        return f"{path}: expected {_EXPECTED[kind]}, got {got}"
    if kind in _BOUND_ERRORS:
        return f"{path}: {got} is out of range; allowed: {_range(field)}{_about(field)}"
    if kind == "string_pattern_mismatch":
        meaning = _PATTERNS.get(str(ctx.get("pattern")), f"a match of {ctx.get('pattern')}")
        if loc and loc[-1] == "[key]":
            return f"{path}: names are {meaning}"
        return f"{path}: expected {meaning}, got {got}"
    if kind == "string_too_short":
        return f"{path}: must not be empty{_about(field)}"
    if kind == "value_error":
        return f"{path}: {ctx.get('error', error['msg'])}"
    return f"{path}: {error['msg']}"


def _walk(loc: tuple[Any, ...]) -> tuple[list[Any], Any, type[BaseModel] | None]:
    """The key path of ``loc`` without pydantic's own steps (union tags, ``[key]``), the field
    info of its last key, and the model that holds it."""
    steps: list[Any] = []
    hint: Any = Environment
    owner: type[BaseModel] | None = None
    field = None
    for step in loc:
        if step == "[key]":
            continue
        hint = _unwrap(hint)
        origin = get_origin(hint)
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            owner, field = hint, hint.model_fields.get(str(step))
            hint = field.annotation if field is not None else None
            steps.append(step)
        elif origin is dict:
            hint = get_args(hint)[1]
            steps.append(step)
        elif origin in (tuple, list):
            hint = get_args(hint)[0]
            steps.append(step)
        elif origin is Union:
            members = {
                get_args(m.model_fields["kind"].annotation)[0]: m
                for m in get_args(hint)
                if isinstance(m, type) and issubclass(m, BaseModel) and "kind" in m.model_fields
            }
            if step in members:  # the discriminator's tag: not a key of the file
                hint = members[step]
            else:
                steps.append(step)
        else:
            steps.append(step)
    return steps, field, owner


def _unwrap(hint: Any) -> Any:
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            hint = get_args(hint)[0]
        elif origin is Union and type(None) in get_args(hint):
            rest = [a for a in get_args(hint) if a is not type(None)]
            if len(rest) != 1:
                return hint
            hint = rest[0]
        else:
            return hint


def _about(field: Any) -> str:
    description = getattr(field, "description", None)
    return f" ({description})" if description else ""


def _range(field: Any) -> str:
    found = []
    for item in getattr(field, "metadata", ()):
        for key, symbol in _BOUNDS.items():
            value = getattr(item, key, None)
            if value is not None:
                found.append(f"{symbol} {value:g}")
    return " and ".join(found) or "see docs/config.md"


def _literals(expected: str) -> str:
    return ", ".join(part.strip(" '") for part in re.split(r",| or ", expected) if part.strip())


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
