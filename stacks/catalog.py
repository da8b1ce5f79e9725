"""Pure: an environment's config -> the alarms to create and the playbook the remediators load.

No CDK here, so it is cheap to test and the drill or a CLI can reuse it. Each alarm carries
its route (action, target ARN, params); the playbook is the same routes keyed by alarm name.
Routes are checked against the action registry at synth: an unknown action, bad parameters, a
target of the wrong shape or outside the environment's account, partition and region, or a
waf-block query the remediator's timeout cannot wait for fail the synth with the config key to fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from serverless_remediation.remediation import scope, targets
from serverless_remediation.remediation.models import RejectedError, RouteMode
from serverless_remediation.stacks.config import (
    AuroraClusterService,
    Budget,
    ConfigError,
    DistributionService,
    EcsService,
    EnvConfig,
    HttpApiService,
    LambdaService,
    MetricRef,
    RestApiService,
    Route,
    Service,
    SpokeConfig,
    TableService,
    WafService,
    WebhookService,
)

ROLLBACK, CAPACITY, FLIP_FLAG, WAF_BLOCK, COST_GUARD, REVERT = (
    "rollback",
    "capacity-bump",
    "flip-flag",
    "waf-block",
    "cost-guard",
    "revert",
)
API_CACHE, CDN_INVALIDATE = "api-cache", "cdn-invalidate"
DB_FAILOVER, ECS_RESTART, ECS_SCALE, ECS_ROLLBACK = (
    "db-failover",
    "ecs-restart",
    "ecs-scale",
    "ecs-rollback",
)
MINUTE = 60
HOUR = 3600


@dataclass(frozen=True)
class MetricSpec:
    namespace: str
    name: str
    dimensions: dict[str, str]
    statistic: str = "Sum"
    period: int = MINUTE


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm: ``expression`` over ``metrics`` (or the single metric ``m``)."""

    name: str
    service: str
    kind: str
    metrics: dict[str, MetricSpec]
    threshold: float
    evaluation_periods: int
    description: str
    route: Route
    expression: str | None = None
    period: int = MINUTE

    @property
    def datapoints_to_alarm(self) -> int:
        # "sustained": every period of the window breaches.
        return self.evaluation_periods


@dataclass(frozen=True)
class BudgetSpec:
    name: str
    budget: Budget
    route: Route


@dataclass(frozen=True)
class Catalog:
    alarms: tuple[AlarmSpec, ...]
    budgets: tuple[BudgetSpec, ...]
    inventory: tuple[Route, ...]
    #: default routes left out because their action is not registered (a warning at synth)
    skipped: tuple[str, ...] = ()
    #: approvals and silences (``remediation.approvals.Policy``, the playbook's ``people``)
    people: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: a hub's enrolled spoke accounts -> regions (the playbook's ``spokes``)
    spokes: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def playbook(self) -> dict[str, Any]:
        """The ``playbook.json`` every remediator bundles (see remediation/playbook.py)."""

        def route(r: Route) -> dict[str, Any]:
            found: dict[str, Any] = {
                "action": r.action,
                "target": r.target,
                "params": dict(r.params),
            }
            if r.then:  # follow-up steps (remediation/followups.py)
                found["then"] = [route(step) for step in r.then]
            if r.mode != "auto":  # approve or notify (remediation/holds.py)
                found["mode"] = str(r.mode)
            if r.maintenance:
                found["maintenance"] = list(r.maintenance)
            if r.account:  # a spoke's route, in a hub (remediation/playbook.py)
                found["account"] = r.account
            return found

        return {
            "alarms": {a.name: route(a.route) for a in self.alarms},
            "budgets": {b.name: route(b.route) for b in self.budgets},
            "inventory": [route(r) for r in self.inventory],
            **({"people": self.people} if self.people else {}),
            **({"spokes": self.spokes} if self.spokes else {}),
        }

    def routes_all(self) -> list[Route]:
        """Every route: alarms, budgets and inventory."""
        found = [a.route for a in self.alarms] + [b.route for b in self.budgets]
        return [*found, *self.inventory]

    def routes(self, action: str) -> list[Route]:
        """Every route of ``action``: alarms, budgets and inventory (what its role must reach)."""
        found = [a.route for a in self.alarms] + [b.route for b in self.budgets]
        return [r for r in [*found, *self.inventory] if r.action == action]

    def followups(self, action: str) -> list[Route]:
        """The follow-up steps of ``action``'s routes: they run in its remediator."""
        return [step for route in self.routes(action) for step in route.then]


# -- where the deployment has authority, and ARNs in it -------------------------------------

#: CLOUDFRONT-scope WAF resources are managed in this region (their ARNs say ``global``)
GLOBAL_WAF_REGION = "us-east-1"


def partition(cfg: EnvConfig) -> str:
    return targets.partition_of(cfg.region)


def served_regions(cfg: EnvConfig) -> frozenset[str]:
    """Regions beyond ``cfg.region`` the remediators may touch: us-east-1 when a WAF service
    uses CLOUDFRONT scope or the inventory names a CLOUDFRONT-scope web ACL (nothing else:
    each action calls its own region's API)."""
    cloudfront = any(isinstance(s, WafService) and s.scope == "CLOUDFRONT" for s in cfg.services)
    # a CLOUDFRONT-scope web ACL a manual route names (containment): "global/..." ARNs
    cloudfront |= any(":wafv2:" in r.target and ":global/" in r.target for r in cfg.inventory)
    return frozenset({GLOBAL_WAF_REGION} - {cfg.region}) if cloudfront else frozenset()


def deployment(cfg: EnvConfig) -> scope.Deployment:
    """The remediators' authority (``DEPLOYMENT_*``, ``SERVED_REGIONS`` and the playbook's
    ``spokes`` say the same at run time): a hub's includes each enrolled spoke account in its
    regions."""
    spokes: dict[str, set[str]] = {}
    for spoke in cfg.spokes:
        seen = cfg.as_spoke(spoke)
        spokes.setdefault(spoke.account, set()).update({spoke.region, *served_regions(seen)})
    return scope.Deployment(
        account=cfg.account,
        region=cfg.region,
        partition=partition(cfg),
        extra_regions=served_regions(cfg),
        spokes={account: frozenset(regions) for account, regions in spokes.items()},
    )


def spoke_catalog(cfg: EnvConfig, spoke: SpokeConfig, registry: dict[str, Any]) -> Catalog:
    """One spoke's alarms, their routes marked with the spoke's account (an alarm acts in
    its own account only: ``remediation.pipeline``)."""
    found = build(cfg.as_spoke(spoke), registry)
    blocks = [a.name for a in found.alarms if a.route.action == WAF_BLOCK]
    if blocks:  # a temporary change nobody would take out: refused, not deployed
        raise ConfigError(
            f"environments.{cfg.env}.organization.spokes.{spoke.name}: {blocks[0]} routes to "
            f"{WAF_BLOCK}, whose expiry sweeper runs in the hub and cannot reach a spoke's IP "
            "sets yet: disable that alarm kind or keep the WAF in the hub's own services"
        )

    def mark(route: Route) -> Route:
        then = tuple(mark(step) for step in route.then)
        return dataclasses.replace(route, account=spoke.account, then=then)

    alarms = tuple(dataclasses.replace(a, route=mark(a.route)) for a in found.alarms)
    inventory = tuple(mark(r) for r in found.inventory)
    return dataclasses.replace(found, alarms=alarms, inventory=inventory)


def arn(cfg: EnvConfig, service: str, resource: str, *, region: str | None = None) -> str:
    """An ARN in ``cfg``'s partition and account (``region`` defaults to ``cfg``'s)."""
    where = cfg.region if region is None else region
    return targets.build(partition(cfg), service, where, cfg.account, resource)


def function_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "lambda", f"function:{name}")


def table_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "dynamodb", f"table/{name}")


def parameter_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "ssm", f"parameter/{name.lstrip('/')}")


def stage_arn(cfg: EnvConfig, api_id: str, stage: str, *, http: bool) -> str:
    # API Gateway ARNs carry no account: the API belongs to the account that calls it.
    kind = "apis" if http else "restapis"
    return targets.build(
        partition(cfg), "apigateway", cfg.region, "", f"/{kind}/{api_id}/stages/{stage}"
    )


def ip_set_arn(cfg: EnvConfig, service: WafService) -> str:
    # CLOUDFRONT-scope IP sets live in us-east-1 under "global".
    if service.scope == "CLOUDFRONT":
        resource = f"global/ipset/{service.ip_set_name}/{service.ip_set_id}"
        return arn(cfg, "wafv2", resource, region=GLOBAL_WAF_REGION)
    return arn(cfg, "wafv2", f"regional/ipset/{service.ip_set_name}/{service.ip_set_id}")


def distribution_arn(cfg: EnvConfig, distribution_id: str) -> str:
    # CloudFront is global: its ARNs carry no region
    return arn(cfg, "cloudfront", f"distribution/{distribution_id}", region="")


def cluster_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "rds", f"cluster:{name}")


def ecs_service_arn(cfg: EnvConfig, cluster: str, service: str) -> str:
    return arn(cfg, "ecs", f"service/{cluster}/{service}")


def alarm_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "cloudwatch", f"alarm:{name}")


def topic_arn(cfg: EnvConfig, name: str) -> str:
    return arn(cfg, "sns", name)


# -- alarms per service kind --------------------------------------------------------------


def _metric(ref: MetricRef, period: int = MINUTE) -> MetricSpec:
    return MetricSpec(ref.namespace, ref.name, dict(ref.dimensions), ref.statistic, period)


def _rate(numerator: str, denominator: str) -> str:
    return f"IF({denominator} > 0, 100 * {numerator} / {denominator}, 0)"


class _Builder:
    """Default alarms and routes for one service; config ``routes``/``params`` override."""

    def __init__(self, cfg: EnvConfig, service: Service, registered: frozenset[str]) -> None:
        self.cfg = cfg
        self.service = service
        self.registered = registered
        self.skipped: list[str] = []

    def alarm(
        self,
        kind: str,
        *,
        metrics: dict[str, MetricSpec],
        threshold: float,
        minutes: int,
        description: str,
        route: Route | None,
        expression: str | None = None,
        period: int = MINUTE,
    ) -> Iterator[AlarmSpec]:
        service = self.service
        if kind in service.disable:
            return
        name = f"{self.cfg.alarm_names}-{service.name}-{kind}"
        where = f"environments.{self.cfg.env}.services.{service.name}"
        chosen: Route
        if kind in service.routes:
            chosen = service.routes[kind].route()
            if chosen.action not in self.registered:
                raise ConfigError(
                    f"{where}.routes.{kind}.action: {chosen.action!r} is not a registered "
                    f"action; registered: {sorted(self.registered)}"
                )
        elif route is None:
            return
        elif route.action not in self.registered:
            self.skipped.append(f"{name} (needs action {route.action!r})")
            return
        else:
            extra = service.params.get(route.action, {})
            chosen = Route(route.action, route.target, {**route.params, **extra})
        modes = {str(k): str(v) for k, v in service.modes.items()}
        mode = RouteMode(modes.get(kind, "auto"))  # approve / notify: remediation/holds.py
        chosen = dataclasses.replace(chosen, mode=mode, maintenance=service.maintenance)
        # the config checked that the window is a whole number of periods
        evaluation = max(1, (minutes * MINUTE) // period)
        yield AlarmSpec(
            name=name,
            service=service.name,
            kind=kind,
            metrics=metrics,
            expression=expression,
            threshold=threshold,
            evaluation_periods=evaluation,
            period=period,
            description=f"{description} -> {chosen.action} on {chosen.target}",
            route=chosen,
        )


def _lambda(b: _Builder, s: LambdaService) -> Iterator[AlarmSpec]:
    t, cfg = s.thresholds, b.cfg
    fn = function_arn(cfg, s.function)
    dims = {"FunctionName": s.function}
    if s.alias:
        dims["Resource"] = f"{s.function}:{s.alias}"
    period = t.period_seconds
    yield from b.alarm(
        "error-rate",
        metrics={
            "errors": MetricSpec("AWS/Lambda", "Errors", dims, period=period),
            "invocations": MetricSpec("AWS/Lambda", "Invocations", dims, period=period),
        },
        expression=_rate("errors", "invocations"),
        threshold=t.error_rate_percent,
        minutes=t.error_rate_minutes,
        period=period,
        description=f"{s.function} error rate > {t.error_rate_percent} %",
        route=Route(ROLLBACK, f"{fn}:{s.alias}") if s.alias else None,
    )
    yield from b.alarm(
        "latency",
        metrics={"m": MetricSpec("AWS/Lambda", "Duration", dims, "p99", period)},
        threshold=t.latency_p99_ms,
        minutes=t.latency_minutes,
        period=period,
        description=f"{s.function} p99 duration > {t.latency_p99_ms} ms",
        route=_latency_route(fn, s.alias),
    )
    yield from b.alarm(
        "throttles",
        metrics={"m": MetricSpec("AWS/Lambda", "Throttles", {"FunctionName": s.function})},
        threshold=t.throttle_count,
        minutes=t.throttle_minutes,
        description=f"{s.function} throttled",
        route=Route(CAPACITY, fn, {"kind": "lambda-reserved-concurrency"}),
    )


def _latency_route(function: str, alias: str) -> Route:
    """What acts on the code that serves the traffic. An alias serves a published version,
    which no configuration change reaches (a memory bump changes only ``$LATEST``): there,
    provisioned concurrency on the alias, which acts at once (Nigredo "Lambda Cold Starts")."""
    if alias:
        return Route(CAPACITY, f"{function}:{alias}", {"kind": "lambda-provisioned-concurrency"})
    return Route(CAPACITY, function, {"kind": "lambda-memory"})


def _serving_alias(cfg: EnvConfig, function: str) -> str:
    """The alias ``function``'s own Lambda service says serves it; "" when there is none, or
    when two services name different aliases (no guess: the unqualified function's route)."""
    aliases = {
        s.alias for s in cfg.services if isinstance(s, LambdaService) and s.function == function
    }
    return aliases.pop() if len(aliases) == 1 else ""


def _api(b: _Builder, s: RestApiService | HttpApiService) -> Iterator[AlarmSpec]:
    t, cfg = s.thresholds, b.cfg
    http = isinstance(s, HttpApiService)
    if isinstance(s, HttpApiService):
        dims = {"ApiId": s.api_id, "Stage": s.stage}
        errors, label = "5xx", f"HTTP API {s.api_id}/{s.stage}"
    else:
        dims = {"ApiName": s.api_name, "Stage": s.stage}
        errors, label = "5XXError", f"REST API {s.api_name}/{s.stage}"
    stage = stage_arn(cfg, s.api_id, s.stage, http=http)
    period = t.period_seconds
    yield from b.alarm(
        "error-rate",
        metrics={
            "errors": MetricSpec("AWS/ApiGateway", errors, dims, period=period),
            "requests": MetricSpec("AWS/ApiGateway", "Count", dims, period=period),
        },
        expression=_rate("errors", "requests"),
        threshold=t.error_rate_percent,
        minutes=t.error_rate_minutes,
        period=period,
        description=f"{label} 5xx rate > {t.error_rate_percent} %",
        route=Route(ROLLBACK, stage),
    )
    yield from b.alarm(
        "latency",
        metrics={"m": MetricSpec("AWS/ApiGateway", "Latency", dims, "p99", period)},
        threshold=t.latency_p99_ms,
        minutes=t.latency_minutes,
        period=period,
        description=f"{label} p99 latency > {t.latency_p99_ms} ms",
        route=_api_latency_route(cfg, s, stage),
    )
    if isinstance(s, RestApiService) and s.throttle_metric is not None:
        yield from b.alarm(
            "throttles",
            metrics={"m": _metric(s.throttle_metric)},
            threshold=t.throttle_count,
            minutes=t.throttle_minutes,
            description=f"{label} 429s",
            route=Route(CAPACITY, stage, {"kind": "apigateway-throttle"}),
        )


def _api_latency_route(
    cfg: EnvConfig, s: RestApiService | HttpApiService, stage: str
) -> Route | None:
    """A cacheable REST stage: its cache (OMNIX "High latency": enable caching). Otherwise
    an API has no capacity of its own: the function behind it, when named, through the
    alias its Lambda service says serves it."""
    if isinstance(s, RestApiService) and s.cacheable:
        return Route(API_CACHE, stage)
    if s.function:
        return _latency_route(function_arn(cfg, s.function), _serving_alias(cfg, s.function))
    return None


def _table(b: _Builder, s: TableService) -> Iterator[AlarmSpec]:
    t = s.thresholds
    dims = {"TableName": s.table}
    yield from b.alarm(
        "throttles",
        metrics={
            "reads": MetricSpec("AWS/DynamoDB", "ReadThrottleEvents", dims),
            "writes": MetricSpec("AWS/DynamoDB", "WriteThrottleEvents", dims),
        },
        # ThrottledRequests needs an Operation dimension per API call; these two cover the table.
        expression="FILL(reads, 0) + FILL(writes, 0)",
        threshold=t.throttle_count,
        minutes=t.throttle_minutes,
        description=f"table {s.table} throttled",
        route=Route(CAPACITY, table_arn(b.cfg, s.table), {"kind": "dynamodb-throughput"}),
    )


def _webhook(b: _Builder, s: WebhookService) -> Iterator[AlarmSpec]:
    t = s.thresholds
    assert s.success is not None
    assert s.failure is not None
    if s.flag_parameter:
        target = parameter_arn(b.cfg, s.flag_parameter)
    else:
        target = f"{function_arn(b.cfg, s.function)}#{s.flag_variable}"
    period = t.period_seconds
    yield from b.alarm(
        "webhook-failures",
        metrics={"ok": _metric(s.success, period), "failed": _metric(s.failure, period)},
        expression=_rate("FILL(failed, 0)", "(FILL(ok, 0) + FILL(failed, 0))"),
        threshold=t.webhook_failure_percent,
        minutes=t.webhook_minutes,
        period=period,
        description=f"webhook {s.name} failure rate > {t.webhook_failure_percent} %",
        route=Route(FLIP_FLAG, target, {"value": s.off_value}),
    )


def _waf(b: _Builder, s: WafService) -> Iterator[AlarmSpec]:
    t = s.thresholds
    assert s.metric is not None
    yield from b.alarm(
        "abuse",
        metrics={"m": _metric(s.metric, HOUR)},
        threshold=t.abuse_hits_per_hour,
        minutes=60,
        period=HOUR,
        description=f"{s.name} rate-limit / auth-failure hits > {t.abuse_hits_per_hour} per hour",
        route=Route(WAF_BLOCK, ip_set_arn(b.cfg, s), {"log_group": s.log_group}),
    )


def _distribution(b: _Builder, s: DistributionService) -> Iterator[AlarmSpec]:
    """No alarms of its own: ``_follow_ups`` adds its invalidation to its origins' rollbacks."""
    yield from ()


def _follow_ups(cfg: EnvConfig, alarms: list[AlarmSpec]) -> list[AlarmSpec]:
    """Each distribution's invalidation, a follow-up step of its origins' rollback routes."""
    steps: dict[str, list[Route]] = {}
    names = {s.name for s in cfg.services}
    for service in cfg.services:
        if not isinstance(service, DistributionService):
            continue
        for origin in service.origins:
            if origin not in names:
                raise ConfigError(
                    f"environments.{cfg.env}.services.{service.name}.origins: no service "
                    f"{origin!r}; services: {sorted(names)}"
                )
            target = distribution_arn(cfg, service.distribution_id)
            step = Route(CDN_INVALIDATE, target, {"paths": list(service.paths)})
            steps.setdefault(origin, []).append(step)
    return [
        dataclasses.replace(
            alarm, route=dataclasses.replace(alarm.route, then=tuple(steps[alarm.service]))
        )
        if alarm.route.action == ROLLBACK and alarm.service in steps
        else alarm
        for alarm in alarms
    ]


#: each service kind's alarms (and default routes)
def _below(metric: str, floor: int = 1) -> str:
    """1 while ``metric`` is below ``floor`` or missing (a stopped writer or service emits
    nothing), else 0: every alarm here fires above its threshold."""
    return f"IF(FILL({metric}, 0) < {floor}, 1, 0)"


def _aurora(b: _Builder, s: AuroraClusterService) -> Iterator[AlarmSpec]:
    t = s.thresholds
    target = cluster_arn(b.cfg, s.cluster)
    if s.connection_errors is not None:
        window = t.db_minutes * MINUTE  # "more than N errors in the window": one period
        yield from b.alarm(
            "db-connections",
            metrics={"m": _metric(s.connection_errors, window)},
            threshold=t.db_connection_errors,
            minutes=t.db_minutes,
            period=window,
            description=(
                f"cluster {s.cluster} connection errors > {t.db_connection_errors} "
                f"in {t.db_minutes} min"
            ),
            route=Route(DB_FAILOVER, target),
        )
        return
    dims = {"DBClusterIdentifier": s.cluster, "Role": "WRITER"}
    yield from b.alarm(
        "db-connections",
        metrics={"connections": MetricSpec("AWS/RDS", "DatabaseConnections", dims, "Maximum")},
        expression=_below("connections"),
        threshold=0,
        minutes=t.db_minutes,
        description=f"cluster {s.cluster} writer holds no connection for {t.db_minutes} min",
        route=Route(DB_FAILOVER, target),
    )


def _ecs(b: _Builder, s: EcsService) -> Iterator[AlarmSpec]:
    t, cfg = s.thresholds, b.cfg
    target = ecs_service_arn(cfg, s.cluster, s.service)
    label = f"ECS service {s.cluster}/{s.service}"
    dims = {"ClusterName": s.cluster, "ServiceName": s.service}
    yield from b.alarm(
        "service-down",
        metrics={
            "running": MetricSpec("ECS/ContainerInsights", "RunningTaskCount", dims, "Minimum")
        },
        expression=_below("running"),
        threshold=0,
        minutes=t.service_down_minutes,
        description=f"{label} runs no task for {t.service_down_minutes} min",
        route=Route(ECS_RESTART, target),
    )
    period = t.period_seconds
    if s.load_balancer is None or s.target_group is None:
        yield from b.alarm(
            "latency",
            metrics={"m": MetricSpec("AWS/ECS", "CPUUtilization", dims, "Average", period)},
            threshold=t.cpu_percent,
            minutes=t.latency_minutes,
            period=period,
            description=f"{label} CPU > {t.cpu_percent} %",
            route=Route(ECS_SCALE, target),
        )
        return
    alb = {"LoadBalancer": s.load_balancer, "TargetGroup": s.target_group}
    yield from b.alarm(
        "latency",
        metrics={"m": MetricSpec("AWS/ApplicationELB", "TargetResponseTime", alb, "p99", period)},
        # TargetResponseTime is in seconds
        threshold=t.latency_p99_ms / 1000,
        minutes=t.latency_minutes,
        period=period,
        description=f"{label} p99 response time > {t.latency_p99_ms} ms",
        route=Route(ECS_SCALE, target),
    )
    yield from b.alarm(
        "error-rate",
        metrics={
            "errors": MetricSpec(
                "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, period=period
            ),
            "requests": MetricSpec("AWS/ApplicationELB", "RequestCount", alb, period=period),
        },
        expression=_rate("FILL(errors, 0)", "requests"),
        threshold=t.error_rate_percent,
        minutes=t.error_rate_minutes,
        period=period,
        description=f"{label} 5xx rate > {t.error_rate_percent} %",
        route=Route(ECS_ROLLBACK, target),
    )


_KINDS: dict[type[Service], Callable[[_Builder, Any], Iterator[AlarmSpec]]] = {
    LambdaService: _lambda,
    RestApiService: _api,
    HttpApiService: _api,
    TableService: _table,
    WebhookService: _webhook,
    WafService: _waf,
    DistributionService: _distribution,
    AuroraClusterService: _aurora,
    EcsService: _ecs,
}


# -- the whole environment ----------------------------------------------------------------


def build(cfg: EnvConfig, registry: dict[str, Any]) -> Catalog:
    """Alarms, budgets and inventory for ``cfg``; every route validated against ``registry``."""
    registered = frozenset(registry)
    alarms: list[AlarmSpec] = []
    skipped: list[str] = []
    for service in cfg.services:
        for action in service.params:
            if action not in registered:
                raise ConfigError(
                    f"environments.{cfg.env}.services.{service.name}.params.{action}: not a "
                    f"registered action; registered: {sorted(registered)}"
                )
        builder = _Builder(cfg, service, registered)
        alarms.extend(_KINDS[type(service)](builder, service))
        skipped.extend(builder.skipped)
    budgets: list[BudgetSpec] = []
    sheddable = sorted(
        {s.function for s in cfg.services if isinstance(s, LambdaService) and s.sheddable}
    )
    every_function = function_arn(cfg, "*")
    for budget in cfg.budgets:
        name = f"{cfg.prefix}-{budget.name}"
        if COST_GUARD not in registered:
            skipped.append(f"budget {name} (needs action {COST_GUARD!r})")
            continue
        route = Route(COST_GUARD, every_function, {"sheddable": sheddable, **budget.params})
        route = dataclasses.replace(route, mode=RouteMode(budget.mode))
        budgets.append(BudgetSpec(name, budget, route))
    inventory = list(cfg.inventory)
    for service in cfg.services:  # a distribution's invalidation, by hand too
        if isinstance(service, DistributionService) and CDN_INVALIDATE in registered:
            target = distribution_arn(cfg, service.distribution_id)
            inventory.append(Route(CDN_INVALIDATE, target, {"paths": list(service.paths)}))
    alarms = _follow_ups(cfg, alarms)
    catalog = Catalog(tuple(alarms), tuple(budgets), tuple(inventory), tuple(skipped))
    catalog = dataclasses.replace(catalog, people=_people(cfg))
    _check(cfg, catalog, registry)
    return catalog


#: seconds a waf-block needs besides its Logs Insights query (gate, guards, WAF, audit, notice)
PIPELINE_MARGIN_SECONDS = 30


def _check(cfg: EnvConfig, catalog: Catalog, registry: dict[str, Any]) -> None:
    """Every route must name a registered action, valid params and a target it accepts,
    inside this environment's account, partition and region."""
    where = f"environments.{cfg.env}"
    automatic = [
        *((_alarm_key(cfg, a), a.route) for a in catalog.alarms),
        *((f"{where}.budgets.{b.budget.name}", b.route) for b in catalog.budgets),
    ]
    named = [
        *automatic,
        *((f"{where}.inventory[{i}]", r) for i, r in enumerate(catalog.inventory)),
    ]
    # an alarm's or budget's follow-up steps run automatically too
    automatic += [(f"{k}.then[{i}]", step) for k, r in automatic for i, step in enumerate(r.then)]
    named += [(f"{key}.then[{i}]", step) for key, r in named for i, step in enumerate(r.then)]
    _check_manual_only(registry, automatic)
    _check_cacheable(cfg, named)
    names = [a.name for a in catalog.alarms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two alarms share a name; service names must be unique")
    _check_waf_scopes(cfg)
    authority = deployment(cfg)
    for key, route in named:
        action = registry.get(route.action)
        if action is None:
            raise ConfigError(
                f"{key}: action {route.action!r} is not registered; registered: {sorted(registry)}"
            )
        try:
            params = action.Params.from_dict(dict(route.params))
            declared_resources(action, route)
        except Exception as exc:  # RejectedError or ValueError from the action's own checks
            reason = getattr(exc, "reason", None) or str(exc)
            raise ConfigError(f"{key}: {route.action} rejects this route: {reason}") from None
        if getattr(action, "target_is_arn", True):
            _check_authority(cfg, authority, key, route)
        if route.action == WAF_BLOCK:
            _check_query_time(cfg, key, params)
        if hasattr(params, "verify_seconds"):
            _check_verify_time(cfg, key, route.action, int(params.verify_seconds))


def _check_manual_only(registry: dict[str, Any], automatic: list[tuple[str, Route]]) -> None:
    """An action a human must ask for (``automatic = False``: containment) is never the
    answer to an alarm or a budget: the pipeline refuses it too, this says so at synth."""
    for key, route in automatic:
        action = registry.get(route.action)
        if action is not None and not getattr(action, "automatic", True):
            raise ConfigError(
                f"{key}: {route.action} is manual only: an alarm or budget cannot run it; "
                "name its targets in the inventory (remediate invoke)"
            )


def _check_cacheable(cfg: EnvConfig, named: list[tuple[str, Route]]) -> None:
    """api-cache acts only on the stage of a REST API service marked ``cacheable: true``."""
    cacheable = {
        stage_arn(cfg, s.api_id, s.stage, http=False)
        for s in cfg.services
        if isinstance(s, RestApiService) and s.cacheable
    }
    for key, route in named:
        if route.action == API_CACHE and route.target not in cacheable:
            raise ConfigError(
                f"{key}: api-cache on {route.target[:200]!r}, which no rest-api service marks "
                "cacheable: true (a cached answer may be stale: its owner decides)"
            )


def _alarm_key(cfg: EnvConfig, alarm: AlarmSpec) -> str:
    """The config key an alarm's route comes from: its own ``routes`` entry, or the service."""
    service = f"environments.{cfg.env}.services.{alarm.service}"
    if alarm.kind in cfg.service(alarm.service).routes:
        return f"{service}.routes.{alarm.kind} ({alarm.name})"
    return f"{service} ({alarm.name})"


def _check_waf_scopes(cfg: EnvConfig) -> None:
    if partition(cfg) == "aws":
        return
    for service in cfg.services:
        if isinstance(service, WafService) and service.scope == "CLOUDFRONT":
            raise ConfigError(
                f"environments.{cfg.env}.services.{service.name}.scope: CLOUDFRONT-scope "
                f"WAF is managed in {GLOBAL_WAF_REGION}, a region of the aws partition; "
                f"this environment's region {cfg.region} is in {partition(cfg)}"
            )


def _check_authority(cfg: EnvConfig, authority: scope.Deployment, key: str, route: Route) -> None:
    """The remediators' own scope check, at synth: a target elsewhere fails here, not at 3 am."""
    where = f"environments.{cfg.env}"
    try:
        found = authority.check_target(route.target)
    except RejectedError as exc:
        raise ConfigError(
            f"{key}.target: {exc.reason} (this environment is account {cfg.account} "
            f"({where}.account), region {cfg.region} ({where}.region))"
        ) from None
    for target in found:
        global_waf = target.service == "wafv2" and target.scope == "CLOUDFRONT"
        if target.service in targets.GLOBAL_SERVICES and not target.region:
            continue  # a CloudFront distribution: global, no region
        if target.region != cfg.region and not (global_waf and target.region == GLOBAL_WAF_REGION):
            raise ConfigError(
                f"{key}.target: {target.arn[:200]!r} is in {target.region}: a remediator acts "
                f"in its own region {cfg.region} ({where}.region); only CLOUDFRONT-scope WAF "
                f"IP sets live elsewhere ({GLOBAL_WAF_REGION})"
            )


def _check_query_time(cfg: EnvConfig, key: str, params: Any) -> None:
    """A Logs Insights query that may run ``query_timeout_seconds`` must leave the rest of the
    pipeline time to finish before Lambda stops the function (and the audit never closes)."""
    query = int(params.query_timeout_seconds)
    timeout = cfg.remediators.timeout_seconds
    needed = query + PIPELINE_MARGIN_SECONDS
    if needed >= timeout:
        raise ConfigError(
            f"{key}: waf-block query_timeout_seconds {query} s + {PIPELINE_MARGIN_SECONDS} s for "
            f"the rest of the pipeline = {needed} s, not below the remediator timeout "
            f"{timeout} s (environments.{cfg.env}.remediators.timeout_seconds): raise the "
            "timeout or lower query_timeout_seconds"
        )


def _check_verify_time(cfg: EnvConfig, key: str, action: str, wait: int) -> None:
    """An action that waits for its change to read back (a failover, a rollout) must leave
    the rest of the pipeline time before Lambda stops the function mid-verify."""
    timeout = cfg.remediators.timeout_seconds
    if wait + PIPELINE_MARGIN_SECONDS >= timeout:
        raise ConfigError(
            f"{key}: {action} verify_seconds {wait} s + {PIPELINE_MARGIN_SECONDS} s for the "
            f"rest of the pipeline is not below the remediator timeout {timeout} s "
            f"(environments.{cfg.env}.remediators.timeout_seconds): raise the timeout or "
            "lower verify_seconds"
        )


def declared_resources(action: Any, route: Route) -> list[str]:
    """``action.resources`` for a route (cost-guard scopes by its params' sheddable list)."""
    return list(action.resources(route.target, dict(route.params)))


def _people(cfg: EnvConfig) -> dict[str, Any]:
    """The playbook's ``people`` (``remediation.approvals.Policy``)."""
    people = cfg.people
    return {
        "approval_seconds": people.approval_minutes * 60,
        "approvers": list(people.approvers),
        "max_silence_seconds": people.max_silence_hours * 3600,
    }
