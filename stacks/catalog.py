"""Pure: an environment's config -> the alarms to create and the playbook the remediators load.

No CDK here, so it is cheap to test and the drill or a CLI can reuse it. Each alarm carries
its route (action, target ARN, params); the playbook is the same routes keyed by alarm name.
Routes are checked against the action registry at synth: an unknown action, bad parameters or a
target of the wrong shape fail the synth with the config key to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stacks.config import (
    Budget,
    ConfigError,
    EnvConfig,
    HttpApiService,
    LambdaService,
    MetricRef,
    RestApiService,
    Route,
    Service,
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

    def playbook(self) -> dict[str, Any]:
        """The ``playbook.json`` every remediator bundles (see remediation/playbook.py)."""

        def route(r: Route) -> dict[str, Any]:
            return {"action": r.action, "target": r.target, "params": dict(r.params)}

        return {
            "alarms": {a.name: route(a.route) for a in self.alarms},
            "budgets": {b.name: route(b.route) for b in self.budgets},
            "inventory": [route(r) for r in self.inventory],
        }

    def routes(self, action: str) -> list[Route]:
        """Every route of ``action``: alarms, budgets and inventory (what its role must reach)."""
        found = [a.route for a in self.alarms] + [b.route for b in self.budgets]
        return [r for r in [*found, *self.inventory] if r.action == action]


# -- ARNs ---------------------------------------------------------------------------------


def function_arn(cfg: EnvConfig, name: str) -> str:
    return f"arn:aws:lambda:{cfg.region}:{cfg.account}:function:{name}"


def table_arn(cfg: EnvConfig, name: str) -> str:
    return f"arn:aws:dynamodb:{cfg.region}:{cfg.account}:table/{name}"


def parameter_arn(cfg: EnvConfig, name: str) -> str:
    return f"arn:aws:ssm:{cfg.region}:{cfg.account}:parameter/{name.lstrip('/')}"


def stage_arn(cfg: EnvConfig, api_id: str, stage: str, *, http: bool) -> str:
    kind = "apis" if http else "restapis"
    return f"arn:aws:apigateway:{cfg.region}::/{kind}/{api_id}/stages/{stage}"


def ip_set_arn(cfg: EnvConfig, service: WafService) -> str:
    # CLOUDFRONT-scope IP sets live in us-east-1 under "global".
    if service.scope == "CLOUDFRONT":
        return (
            f"arn:aws:wafv2:us-east-1:{cfg.account}:global/ipset/"
            f"{service.ip_set_name}/{service.ip_set_id}"
        )
    return (
        f"arn:aws:wafv2:{cfg.region}:{cfg.account}:regional/ipset/"
        f"{service.ip_set_name}/{service.ip_set_id}"
    )


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
        name = f"{self.cfg.prefix}-{service.name}-{kind}"
        where = f"environments.{self.cfg.env}.services.{service.name}"
        if kind in service.routes:
            route = service.routes[kind]
            if route.action not in self.registered:
                raise ConfigError(
                    f"{where}.routes.{kind}.action: {route.action!r} is not a registered "
                    f"action; registered: {sorted(self.registered)}"
                )
        elif route is None:
            return
        elif route.action not in self.registered:
            self.skipped.append(f"{name} (needs action {route.action!r})")
            return
        else:
            extra = service.params.get(route.action, {})
            route = Route(route.action, route.target, {**route.params, **extra})
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
            description=f"{description} -> {route.action} on {route.target}",
            route=route,
        )


def _lambda(b: _Builder, s: LambdaService) -> Iterator[AlarmSpec]:
    t, cfg = s.thresholds, b.cfg
    fn = function_arn(cfg, s.function)
    dims = {"FunctionName": s.function}
    if s.alias:
        dims["Resource"] = f"{s.function}:{s.alias}"
    yield from b.alarm(
        "error-rate",
        metrics={
            "errors": MetricSpec("AWS/Lambda", "Errors", dims),
            "invocations": MetricSpec("AWS/Lambda", "Invocations", dims),
        },
        expression=_rate("errors", "invocations"),
        threshold=t.error_rate_percent,
        minutes=t.error_rate_minutes,
        description=f"{s.function} error rate > {t.error_rate_percent} %",
        route=Route(ROLLBACK, f"{fn}:{s.alias}") if s.alias else None,
    )
    yield from b.alarm(
        "latency",
        metrics={"m": MetricSpec("AWS/Lambda", "Duration", dims, "p99")},
        threshold=t.latency_p99_ms,
        minutes=t.latency_minutes,
        description=f"{s.function} p99 duration > {t.latency_p99_ms} ms",
        route=Route(CAPACITY, fn, {"kind": "lambda-memory"}),
    )
    yield from b.alarm(
        "throttles",
        metrics={"m": MetricSpec("AWS/Lambda", "Throttles", {"FunctionName": s.function})},
        threshold=t.throttle_count,
        minutes=t.throttle_minutes,
        description=f"{s.function} throttled",
        route=Route(CAPACITY, fn, {"kind": "lambda-reserved-concurrency"}),
    )


def _api(b: _Builder, s: RestApiService | HttpApiService) -> Iterator[AlarmSpec]:
    t, cfg = s.thresholds, b.cfg
    http = isinstance(s, HttpApiService)
    if http:
        dims = {"ApiId": s.api_id, "Stage": s.stage}
        errors, label = "5xx", f"HTTP API {s.api_id}/{s.stage}"
    else:
        dims = {"ApiName": s.api_name, "Stage": s.stage}
        errors, label = "5XXError", f"REST API {s.api_name}/{s.stage}"
    stage = stage_arn(cfg, s.api_id, s.stage, http=http)
    yield from b.alarm(
        "error-rate",
        metrics={
            "errors": MetricSpec("AWS/ApiGateway", errors, dims),
            "requests": MetricSpec("AWS/ApiGateway", "Count", dims),
        },
        expression=_rate("errors", "requests"),
        threshold=t.error_rate_percent,
        minutes=t.error_rate_minutes,
        description=f"{label} 5xx rate > {t.error_rate_percent} %",
        route=Route(ROLLBACK, stage),
    )
    yield from b.alarm(
        "latency",
        metrics={"m": MetricSpec("AWS/ApiGateway", "Latency", dims, "p99")},
        threshold=t.latency_p99_ms,
        minutes=t.latency_minutes,
        description=f"{label} p99 latency > {t.latency_p99_ms} ms",
        # An API has no memory of its own: bump the function behind it, when named.
        route=(
            Route(CAPACITY, function_arn(cfg, s.function), {"kind": "lambda-memory"})
            if s.function
            else None
        ),
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
    yield from b.alarm(
        "webhook-failures",
        metrics={"ok": _metric(s.success), "failed": _metric(s.failure)},
        expression=_rate("FILL(failed, 0)", "(FILL(ok, 0) + FILL(failed, 0))"),
        threshold=t.webhook_failure_percent,
        minutes=t.webhook_minutes,
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


_KINDS = {
    LambdaService: _lambda,
    RestApiService: _api,
    HttpApiService: _api,
    TableService: _table,
    WebhookService: _webhook,
    WafService: _waf,
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
    sheddable = sorted({s.function for s in cfg.services if _sheddable(s)})
    every_function = f"arn:aws:lambda:{cfg.region}:{cfg.account}:function:*"
    for budget in cfg.budgets:
        name = f"{cfg.prefix}-{budget.name}"
        if COST_GUARD not in registered:
            skipped.append(f"budget {name} (needs action {COST_GUARD!r})")
            continue
        route = Route(COST_GUARD, every_function, {"sheddable": sheddable, **budget.params})
        budgets.append(BudgetSpec(name, budget, route))
    inventory = list(cfg.inventory)
    catalog = Catalog(tuple(alarms), tuple(budgets), tuple(inventory), tuple(skipped))
    _check(cfg, catalog, registry)
    return catalog


def _sheddable(service: Service) -> bool:
    return isinstance(service, LambdaService) and service.sheddable


def _check(cfg: EnvConfig, catalog: Catalog, registry: dict[str, Any]) -> None:
    """Every route must name a registered action, valid params and a target it accepts."""
    where = f"environments.{cfg.env}"
    named = [
        *((f"{where}.services.{a.service} ({a.name})", a.route) for a in catalog.alarms),
        *((f"{where}.budgets.{b.budget.name}", b.route) for b in catalog.budgets),
        *((f"{where}.inventory[{i}]", r) for i, r in enumerate(catalog.inventory)),
    ]
    names = [a.name for a in catalog.alarms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two alarms share a name; service names must be unique")
    for key, route in named:
        action = registry.get(route.action)
        if action is None:
            raise ConfigError(
                f"{key}: action {route.action!r} is not registered; registered: {sorted(registry)}"
            )
        try:
            action.Params.from_dict(dict(route.params))
            declared_resources(action, route)
        except Exception as exc:  # RejectedError or ValueError from the action's own checks
            reason = getattr(exc, "reason", None) or str(exc)
            raise ConfigError(f"{key}: {route.action} rejects this route: {reason}") from None


def declared_resources(action: Any, route: Route) -> list[str]:
    """``action.resources`` for a route (cost-guard scopes by its params' sheddable list)."""
    return list(action.resources(route.target, dict(route.params)))
