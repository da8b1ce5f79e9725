"""One environment's configuration: ``cdk.json`` context ``environments.<name>`` -> frozen
dataclasses, validated at synth. Every error names the bad key and what was expected.

Shape (``cdk.json`` holds a full ``drill`` and ``prod-example``)::

    {"account": "123456789012", "region": "eu-west-1",
     "switch": "dry-run",                      # the switch's initial mode: on | off | dry-run
     "notice_emails": ["oncall@example.com"],
     "thresholds": {...},                      # env-wide overrides of the runbook defaults
     "guards": {"cooldown_seconds": 900, "breaker_max_per_hour": 3,
                "max_event_age_seconds": 900},      # older alarm transitions: not acted on
     "remediators": {"reserved_concurrency": 5, "log_retention_days": 90, ...},
     "services": {"<name>": {"kind": "lambda" | "rest-api" | "http-api" | "dynamodb"
                                     | "webhook" | "waf", ...}},
     "budgets": {"<name>": {"limit_usd": 500, "threshold_percent": 100}},
     "inventory": [{"action": ..., "target": ..., "params": {...}}]}

Each service kind's own keys are in its dataclass below. Every service also takes
``thresholds`` (overrides), ``disable`` (alarm kinds to leave out), ``params`` (per action:
merged into that action's default parameters) and ``routes`` (per alarm kind: replace the
default ``{"action", "target", "params"}`` entirely: how a new action is wired by config alone).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from remediation.config import DEFAULT_MAX_EVENT_AGE_SECONDS
from remediation.guards import GuardSettings
from remediation.models import Route  # the playbook's own route: config writes what it reads

ALARM_KINDS = ("error-rate", "latency", "webhook-failures", "throttles", "abuse")
SWITCH_MODES = ("on", "off", "dry-run")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# app and env prefix every physical name (Lambda names stop at 64 characters)
_SHORT = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class ConfigError(ValueError):
    """The environment config is invalid; the message names the key."""


# -- pieces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Alarm thresholds; the defaults are the runbooks' (see docs/cdk.md)."""

    #: errors / invocations (or 5XX / requests), percent, sustained this many minutes
    error_rate_percent: float = 5.0
    error_rate_minutes: int = 5
    #: p99 latency, milliseconds
    latency_p99_ms: float = 1000.0
    latency_minutes: int = 5
    #: failed / (failed + succeeded) webhook deliveries, percent
    webhook_failure_percent: float = 10.0
    webhook_minutes: int = 10
    #: throttled requests above this count in every minute of the window ("any, sustained")
    throttle_count: float = 0.0
    throttle_minutes: int = 5
    #: rate-limit or auth-failure hits per hour
    abuse_hits_per_hour: float = 100.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0 or (f.name.endswith("_minutes") and not 1 <= value <= 1440):
                raise ValueError(f"{f.name} out of range: {value}")


#: an alarm transition older than ``max_event_age_seconds`` is not acted on: these bounds
#: keep it longer than CloudWatch-to-Lambda delivery and shorter than an incident's first hour
MAX_EVENT_AGE_RANGE = (60, 3600)


@dataclass(frozen=True)
class Guards:
    # The remediators' own defaults: one place for them (remediation/guards.py, config.py).
    cooldown_seconds: int = GuardSettings.cooldown_seconds
    breaker_max_per_hour: int = GuardSettings.breaker_max
    max_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS

    def __post_init__(self) -> None:
        if self.cooldown_seconds < 1 or self.breaker_max_per_hour < 1:
            raise ValueError("cooldown_seconds and breaker_max_per_hour must be at least 1")
        low, high = MAX_EVENT_AGE_RANGE
        if not low <= self.max_event_age_seconds <= high:
            raise ValueError(
                f"max_event_age_seconds must be {low}..{high}, got {self.max_event_age_seconds}"
            )


@dataclass(frozen=True)
class RemediatorSettings:
    reserved_concurrency: int = 5
    log_retention_days: int = 90
    #: room for waf-block's Logs Insights query (60 s by default) and the rest of the
    #: pipeline: the catalog checks every waf-block route against it at synth
    timeout_seconds: int = 120
    memory_mb: int = 256
    #: the public Powertools layer's version (AWSLambdaPowertoolsPythonV3-python313-x86_64)
    powertools_layer_version: int = 27
    #: how often the WAF sweeper removes expired blocks
    sweep_minutes: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.reserved_concurrency <= 100:
            raise ValueError("reserved_concurrency must be 1..100")
        if not 10 <= self.timeout_seconds <= 900:
            raise ValueError("timeout_seconds must be 10..900")
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError("memory_mb must be 128..10240")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days must be one of {list(LOG_RETENTION_DAYS)}")
        if not 1 <= self.sweep_minutes <= 60:
            raise ValueError("sweep_minutes must be 1..60")


@dataclass(frozen=True)
class MetricRef:
    """A CloudWatch metric named in config (custom metrics: webhooks, rate limits, 429s)."""

    namespace: str
    name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str = "Sum"


# -- services ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """What every service kind shares."""

    name: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    disable: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    kind: typing.ClassVar[str] = ""


@dataclass(frozen=True)
class LambdaService(Service):
    """A Lambda function behind an alias (rollback moves the alias)."""

    function: str = ""
    alias: str = ""
    #: cost-guard may shed this function's provisioned / reserved concurrency
    sheddable: bool = False
    kind: typing.ClassVar[str] = "lambda"


@dataclass(frozen=True)
class RestApiService(Service):
    """An API Gateway REST API stage. Latency bumps ``function``'s memory when given;
    ``throttle_metric`` (429 count, e.g. from an access-log metric filter) adds a throttle alarm
    that raises the stage throttle."""

    api_name: str = ""
    api_id: str = ""
    stage: str = ""
    function: str = ""
    throttle_metric: MetricRef | None = None
    kind: typing.ClassVar[str] = "rest-api"


@dataclass(frozen=True)
class HttpApiService(Service):
    """An API Gateway HTTP API stage."""

    api_id: str = ""
    stage: str = ""
    function: str = ""
    kind: typing.ClassVar[str] = "http-api"


@dataclass(frozen=True)
class TableService(Service):
    """A DynamoDB table (throttling raises its capacity)."""

    table: str = ""
    kind: typing.ClassVar[str] = "dynamodb"


@dataclass(frozen=True)
class WebhookService(Service):
    """An outgoing webhook behind a feature flag: an SSM parameter (``flag_parameter``) or one
    environment variable of ``function`` (``flag_variable``). ``success`` and ``failure`` are
    the sender's delivery-count metrics."""

    success: MetricRef | None = None
    failure: MetricRef | None = None
    function: str = ""
    flag_variable: str = ""
    flag_parameter: str = ""
    #: the flag's value while the webhook is switched off
    off_value: str = "false"
    kind: typing.ClassVar[str] = "webhook"


@dataclass(frozen=True)
class WafService(Service):
    """A WAFv2 IP set the abuse alarm feeds, and the access-log group the offenders are read
    from. ``metric`` counts rate-limit or auth-failure hits."""

    ip_set_name: str = ""
    ip_set_id: str = ""
    scope: str = "REGIONAL"
    log_group: str = ""
    metric: MetricRef | None = None
    kind: typing.ClassVar[str] = "waf"


SERVICE_KINDS: dict[str, type[Service]] = {
    cls.kind: cls
    for cls in (
        LambdaService,
        RestApiService,
        HttpApiService,
        TableService,
        WebhookService,
        WafService,
    )
}
#: keys each kind must set (the dataclass default "" means "not given")
_REQUIRED = {
    "lambda": ("function",),
    "rest-api": ("api_name", "api_id", "stage"),
    "http-api": ("api_id", "stage"),
    "dynamodb": ("table",),
    "webhook": ("success", "failure"),
    "waf": ("ip_set_name", "ip_set_id", "log_group", "metric"),
}


@dataclass(frozen=True)
class Budget:
    """An AWS Budgets cost budget; over ``threshold_percent`` -> cost-guard sheds the
    ``sheddable`` Lambda services."""

    name: str
    limit_usd: float
    threshold_percent: float = 100.0
    #: ACTUAL or FORECASTED spend
    notification: str = "ACTUAL"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvConfig:
    app: str
    env: str
    account: str
    region: str
    switch: str = "dry-run"
    notice_emails: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    guards: Guards = field(default_factory=Guards)
    remediators: RemediatorSettings = field(default_factory=RemediatorSettings)
    services: tuple[Service, ...] = ()
    budgets: tuple[Budget, ...] = ()
    inventory: tuple[Route, ...] = ()

    @property
    def prefix(self) -> str:
        """``<app>-<env>``: every physical name starts with it."""
        return f"{self.app}-{self.env}"

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


# -- loading ----------------------------------------------------------------------------


def load(context: dict[str, Any], env: str | None) -> EnvConfig:
    """``environments.<env>`` from the app's context -> ``EnvConfig``."""
    environments = context.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise ConfigError("cdk.json context has no 'environments' object")
    valid = ", ".join(sorted(environments))
    if not env:
        raise ConfigError(f"choose an environment with -c env=NAME; valid: {valid}")
    if env not in environments:
        raise ConfigError(f"unknown environment {env!r}; valid: {valid}")
    app = context.get("app_name", "autorem")
    if not isinstance(app, str) or not _SHORT.match(app):
        raise ConfigError(f"app_name: expected a short lower-case name, got {app!r}")
    return parse_env(app, env, environments[env])


def parse_env(app: str, env: str, raw: Any) -> EnvConfig:
    where = f"environments.{env}"
    if not _SHORT.match(env):
        raise ConfigError(f"{where}: environment names are lower-case letters, digits, '-' (<=20)")
    data = _object(raw, where)
    _known(
        data,
        where,
        {
            "account",
            "region",
            "switch",
            "notice_emails",
            "thresholds",
            "guards",
            "remediators",
            "services",
            "budgets",
            "inventory",
            "description",
        },
    )
    account = data.get("account")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise ConfigError(
            f"{where}.account: expected a 12-digit account id (target ARNs in the playbook "
            f"are written at synth), got {account!r}"
        )
    region = data.get("region")
    if not isinstance(region, str) or not _REGION.match(region):
        raise ConfigError(f"{where}.region: expected a region code like eu-west-1, got {region!r}")
    switch = data.get("switch", "dry-run")
    if switch not in SWITCH_MODES:
        raise ConfigError(f"{where}.switch: expected one of {list(SWITCH_MODES)}, got {switch!r}")
    emails = data.get("notice_emails", [])
    if not isinstance(emails, list) or not all(
        isinstance(e, str) and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", e) for e in emails
    ):
        raise ConfigError(f"{where}.notice_emails: expected a list of e-mail addresses")
    thresholds = _build(Thresholds, data.get("thresholds", {}), f"{where}.thresholds")
    services_raw = _object(data.get("services", {}), f"{where}.services")
    services = tuple(
        parse_service(name, value, f"{where}.services.{name}", thresholds)
        for name, value in services_raw.items()
    )
    budgets_raw = _object(data.get("budgets", {}), f"{where}.budgets")
    budgets = tuple(
        _build(Budget, {**_object(v, f"{where}.budgets.{k}"), "name": k}, f"{where}.budgets.{k}")
        for k, v in budgets_raw.items()
    )
    for budget in budgets:
        if not _NAME.match(budget.name):
            raise ConfigError(f"{where}.budgets.{budget.name}: names are lower-case, digits, '-'")
        if budget.notification not in ("ACTUAL", "FORECASTED"):
            raise ConfigError(f"{where}.budgets.{budget.name}.notification: ACTUAL or FORECASTED")
        if budget.limit_usd <= 0:
            raise ConfigError(f"{where}.budgets.{budget.name}.limit_usd: must be positive")
    inventory_raw = data.get("inventory", [])
    if not isinstance(inventory_raw, list):
        raise ConfigError(f"{where}.inventory: expected a list of routes")
    inventory = tuple(
        _build(Route, item, f"{where}.inventory[{i}]") for i, item in enumerate(inventory_raw)
    )
    return EnvConfig(
        app=app,
        env=env,
        account=account,
        region=region,
        switch=switch,
        notice_emails=tuple(emails),
        thresholds=thresholds,
        guards=_build(Guards, data.get("guards", {}), f"{where}.guards"),
        remediators=_build(RemediatorSettings, data.get("remediators", {}), f"{where}.remediators"),
        services=services,
        budgets=budgets,
        inventory=inventory,
    )


def parse_service(name: str, raw: Any, where: str, env_thresholds: Thresholds) -> Service:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: service names are lower-case letters, digits and '-' (<=40)")
    data = dict(_object(raw, where))
    kind = data.pop("kind", None)
    cls = SERVICE_KINDS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ConfigError(f"{where}.kind: expected one of {sorted(SERVICE_KINDS)}, got {kind!r}")
    overrides = _object(data.pop("thresholds", {}), f"{where}.thresholds")
    data["thresholds"] = _build(
        Thresholds, {**dataclasses.asdict(env_thresholds), **overrides}, f"{where}.thresholds"
    )
    disable = data.get("disable", [])
    if not isinstance(disable, list) or any(d not in ALARM_KINDS for d in disable):
        raise ConfigError(f"{where}.disable: expected a list from {list(ALARM_KINDS)}")
    data["disable"] = tuple(disable)
    routes = _object(data.get("routes", {}), f"{where}.routes")
    for kind_name in routes:
        if kind_name not in ALARM_KINDS:
            raise ConfigError(f"{where}.routes.{kind_name}: expected an alarm kind {ALARM_KINDS}")
    data["routes"] = {k: _build(Route, v, f"{where}.routes.{k}") for k, v in routes.items()}
    params = _object(data.get("params", {}), f"{where}.params")
    for action, value in params.items():
        _object(value, f"{where}.params.{action}")
    service = _build(cls, {**data, "name": name}, where)
    for key in _REQUIRED[cls.kind]:
        if not getattr(service, key):
            raise ConfigError(f"{where}.{key}: required for kind {cls.kind!r}")
    if isinstance(service, WebhookService) and bool(service.flag_parameter) == bool(
        service.function and service.flag_variable
    ):
        raise ConfigError(
            f"{where}: a webhook flag is either flag_parameter (an SSM parameter name) or "
            "function + flag_variable (one environment variable), exactly one of them"
        )
    if isinstance(service, WafService) and service.scope not in ("REGIONAL", "CLOUDFRONT"):
        raise ConfigError(f"{where}.scope: REGIONAL or CLOUDFRONT, got {service.scope!r}")
    return service


# -- generic dataclass building with typed errors -----------------------------------------


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _known(data: dict[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")


def _build(cls: type, raw: Any, where: str) -> Any:
    """A dataclass from a JSON object: unknown keys, wrong types and range errors name the key."""
    data = _object(raw, where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _known(data, where, set(fields))
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return _build(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
        value_type = args[1]
        return {str(k): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    return value  # Any
