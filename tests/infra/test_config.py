"""The environment config and the pure catalog: errors name the key, defaults follow the
runbooks, config alone rewires an alarm. No CDK here: these run in milliseconds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.stacks import catalog
from serverless_remediation.stacks.config import ConfigError, Thresholds, load, parse_env


def env(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account": "123456789012",
        "region": "eu-west-1",
        "services": {
            "orders": {"kind": "lambda", "function": "orders", "alias": "live", "sheddable": True}
        },
        "budgets": {"monthly": {"limit_usd": 100}},
    }
    base.update(overrides)
    return base


def build(raw: dict[str, Any], registry: dict[str, Any] | None = None) -> catalog.Catalog:
    return catalog.build(
        parse_env("autorem", "test", raw), REGISTRY if registry is None else registry
    )


def test_unknown_environment_lists_the_valid_ones(context: dict[str, Any]) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown environment 'nope'; valid: drill, drill-org, prod-example"
    ):
        load(context, "nope")
    with pytest.raises(ConfigError, match="choose an environment with -c env=NAME"):
        load(context, None)


WEBHOOK = {
    "kind": "webhook",
    "flag_parameter": "/flags/hook",
    "success": {"namespace": "N", "name": "S"},
    "failure": {"namespace": "N", "name": "F"},
}
REGISTERED = str(sorted(REGISTRY))
STATISTICS = (
    "SampleCount, Average, Sum, Minimum, Maximum, pNN, tmNN, wmNN, tcNN, tsNN (NN 0..100, "
    "e.g. p99, tm90), IQM, TM(X%:Y%), WM(X%:Y%), TC(X%:Y%), TS(X%:Y%) (10 <= X < Y <= 90), "
    "PR(n:m)"
)


def orders(**keys: Any) -> dict[str, Any]:
    """``services`` with the base environment's Lambda service, plus ``keys``."""
    return {"services": {"orders": {**env()["services"]["orders"], **keys}}}


def without(key: str) -> dict[str, Any]:
    raw = env()
    del raw[key]
    return raw


def aws_regions() -> str:
    from serverless_remediation.stacks.config import partition_regions

    return ", ".join(partition_regions()["aws"])


# (case, environment "test" as written in cdk.json, the one line `cdk synth` prints)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "missing account",
        without("account"),
        "environments.test.account: required (the 12-digit AWS account the environment "
        "deploys to and acts in)",
    ),
    (
        "short account",
        env(account="12345"),
        "environments.test.account: expected a 12-digit AWS account id (target ARNs in the "
        "playbook are written at synth), got '12345'",
    ),
    (
        "account as a number",
        env(account=123456789012),
        "environments.test.account: expected a string, got 123456789012",
    ),
    (
        "region outside the partition's list",
        env(region="eu-west-9"),
        "environments.test.region: 'eu-west-9' is not a region of partition aws; allowed: "
        + aws_regions(),
    ),
    (
        "region name, not code",
        env(region="Ireland"),
        "environments.test.region: 'Ireland' is not a region of partition aws; allowed: "
        + aws_regions(),
    ),
    (
        "region of a partition the remediators cannot address",
        env(region="us-isob-east-1"),
        "environments.test.region: 'us-isob-east-1' is in partition aws-iso-b, which the "
        "remediators do not support yet (they would write aws ARNs); supported: aws, aws-cn, "
        "aws-iso, aws-us-gov",
    ),
    (
        "switch",
        env(switch="maybe"),
        "environments.test.switch: 'maybe' is not allowed; allowed: on, off, dry-run",
    ),
    (
        "misspelt top-level key",
        env(treshold={}),
        "environments.test.treshold: unknown key; allowed here: account, budgets, chat, "
        "description, guards, inventory, notice_emails, organization, paging, people, region, "
        "remediators, services, switch, thresholds, trigger",
    ),
    (
        "misspelt threshold",
        env(thresholds={"latency_p99": 900}),
        "environments.test.thresholds.latency_p99: unknown key; allowed here: "
        "abuse_hits_per_hour, cpu_percent, db_connection_errors, db_minutes, "
        "error_rate_minutes, error_rate_percent, latency_minutes, latency_p99_ms, "
        "period_seconds, service_down_minutes, throttle_count, throttle_minutes, "
        "webhook_failure_percent, webhook_minutes",
    ),
    (
        "misspelt service key",
        env(**orders(aliass="live")),
        "environments.test.services.orders.aliass: unknown key; allowed here: alias, disable, "
        "function, kind, maintenance, modes, params, routes, sheddable, thresholds",
    ),
    (
        "wrong type",
        env(thresholds={"latency_p99_ms": "fast"}),
        "environments.test.thresholds.latency_p99_ms: expected a number, got 'fast'",
    ),
    (
        "true is not a number",
        env(thresholds={"latency_p99_ms": True}),
        "environments.test.thresholds.latency_p99_ms: expected a number, got True",
    ),
    (
        "a string is not true",
        env(**orders(sheddable="yes")),
        "environments.test.services.orders.sheddable: expected true or false, got 'yes'",
    ),
    (
        "fraction for an integer",
        env(guards={"cooldown_seconds": 1.5}),
        "environments.test.guards.cooldown_seconds: expected an integer, got 1.5",
    ),
    (
        "negative threshold",
        env(thresholds={"throttle_count": -1}),
        "environments.test.thresholds.throttle_count: -1 is out of range; allowed: >= 0 "
        "(throttled requests above this count in every minute: sustained)",
    ),
    (
        "percentage over 100",
        env(thresholds={"error_rate_percent": 120}),
        "environments.test.thresholds.error_rate_percent: 120 is out of range; allowed: >= 0 "
        "and < 100 (errors / invocations (or 5XX / requests), percent)",
    ),
    (
        "a rate never exceeds 100 %",
        env(**orders(thresholds={"webhook_failure_percent": 100})),
        "environments.test.services.orders.thresholds.webhook_failure_percent: 100 is out of "
        "range; allowed: >= 0 and < 100 (failed / (failed + succeeded) deliveries, percent)",
    ),
    (
        "latency of zero",
        env(thresholds={"latency_p99_ms": 0}),
        "environments.test.thresholds.latency_p99_ms: 0 is out of range; allowed: > 0 "
        "(p99 latency, milliseconds)",
    ),
    (
        "empty window",
        env(thresholds={"error_rate_minutes": 0}),
        "environments.test.thresholds.error_rate_minutes: 0 is out of range; allowed: >= 1 "
        "and <= 1440 (window of the error rate)",
    ),
    (
        "alarm period CloudWatch refuses",
        env(thresholds={"period_seconds": 45}),
        "environments.test.thresholds.period_seconds: 45 s is not an alarm period CloudWatch "
        "accepts; allowed: 10, 20, 30 or a multiple of 60 up to 86400",
    ),
    (
        "alarm period not a multiple of 60",
        env(thresholds={"period_seconds": 90}),
        "environments.test.thresholds.period_seconds: 90 s is not an alarm period CloudWatch "
        "accepts; allowed: 10, 20, 30 or a multiple of 60 up to 86400",
    ),
    (
        "window not a whole number of periods",
        env(thresholds={"period_seconds": 120}),
        "environments.test.thresholds.error_rate_minutes: 5 min is not a whole number of "
        "120 s periods (period_seconds); allowed: a multiple of 120 s",
    ),
    (
        "high-resolution period on AWS metrics",
        env(thresholds={"period_seconds": 10}),
        "environments.test.services.orders.thresholds.period_seconds: 10 s, but the lambda "
        "alarms (error-rate, latency) read AWS metrics of one-minute resolution: a shorter "
        "period never gets data; allowed: a multiple of 60",
    ),
    (
        "misspelt statistic",
        env(
            services={
                "w": {**WEBHOOK, "failure": {"namespace": "N", "name": "F", "statistic": "Summ"}}
            }
        ),
        "environments.test.services.w.failure.statistic: 'Summ' is not a CloudWatch statistic; "
        f"allowed: {STATISTICS}",
    ),
    (
        "trimmed mean outside what alarms take",
        env(
            services={
                "w": {
                    **WEBHOOK,
                    "success": {"namespace": "N", "name": "S", "statistic": "TM(5%:95%)"},
                }
            }
        ),
        "environments.test.services.w.success.statistic: 'TM(5%:95%)' is not a CloudWatch "
        f"statistic; allowed: {STATISTICS}",
    ),
    (
        "log retention CloudWatch does not offer",
        env(remediators={"log_retention_days": 91}),
        "environments.test.remediators.log_retention_days: 91 is not allowed; allowed: 1, 3, "
        "5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653",
    ),
    (
        "architecture",
        env(remediators={"architecture": "aarch64"}),
        "environments.test.remediators.architecture: 'aarch64' is not allowed; allowed: "
        "x86_64, arm64",
    ),
    (
        "memory",
        env(remediators={"memory_mb": 64}),
        "environments.test.remediators.memory_mb: 64 is out of range; allowed: >= 128 and "
        "<= 10240 (Lambda memory)",
    ),
    (
        "unknown service kind",
        env(services={"x": {"kind": "ec2"}}),
        "environments.test.services.x.kind: 'ec2' is not a service kind; allowed: "
        "aurora-cluster, distribution, dynamodb, ecs-service, http-api, lambda, rest-api, waf, "
        "webhook",
    ),
    (
        "service without a kind",
        env(services={"x": {"function": "f"}}),
        "environments.test.services.x.kind: required; allowed: aurora-cluster, distribution, "
        "dynamodb, ecs-service, http-api, lambda, rest-api, waf, webhook",
    ),
    (
        "required key of a kind",
        env(services={"x": {"kind": "lambda"}}),
        "environments.test.services.x.function: required (the function's name)",
    ),
    (
        "empty required key",
        env(services={"x": {"kind": "dynamodb", "table": ""}}),
        "environments.test.services.x.table: must not be empty (the table's name)",
    ),
    (
        "service name",
        env(services={"X!": {"kind": "lambda", "function": "f"}}),
        "environments.test.services.X!: names are lower-case letters, digits and '-', starting "
        "with a letter or digit, at most 40",
    ),
    (
        "misspelt alarm kind",
        env(services={"x": {"kind": "dynamodb", "table": "t", "disable": ["latencyy"]}}),
        "environments.test.services.x.disable[0]: 'latencyy' is not allowed; allowed: "
        "error-rate, latency, webhook-failures, throttles, abuse, db-connections, service-down",
    ),
    (
        "route for a misspelt alarm kind",
        env(**orders(routes={"latencyy": {"action": "rollback", "target": "x"}})),
        "environments.test.services.orders.routes.latencyy: 'latencyy' is not allowed; "
        "allowed: error-rate, latency, webhook-failures, throttles, abuse, db-connections, "
        "service-down",
    ),
    (
        "webhook with no flag",
        env(services={"w": {**WEBHOOK, "flag_parameter": ""}}),
        "environments.test.services.w: a webhook flag is either flag_parameter (an SSM "
        "parameter name) or function + flag_variable (one environment variable), exactly one "
        "of them",
    ),
    (
        "WAF scope",
        env(
            services={
                "waf": {
                    "kind": "waf",
                    "ip_set_name": "b",
                    "ip_set_id": "i",
                    "log_group": "/l",
                    "metric": {"namespace": "E", "name": "H"},
                    "scope": "GLOBAL",
                }
            }
        ),
        "environments.test.services.waf.scope: 'GLOBAL' is not allowed; allowed: REGIONAL, "
        "CLOUDFRONT",
    ),
    (
        "unknown action in a route",
        env(**orders(routes={"latency": {"action": "reboot", "target": "x"}})),
        "environments.test.services.orders.routes.latency.action: 'reboot' is not a "
        f"registered action; registered: {REGISTERED}",
    ),
    (
        "unknown action in params",
        env(**orders(params={"capacity_bump": {"factor": 2.0}})),
        "environments.test.services.orders.params.capacity_bump: not a registered action; "
        f"registered: {REGISTERED}",
    ),
    (
        "budget without a limit",
        env(budgets={"monthly": {}}),
        "environments.test.budgets.monthly.limit_usd: required (monthly budget, US dollars)",
    ),
    (
        "negative budget",
        env(budgets={"monthly": {"limit_usd": -5}}),
        "environments.test.budgets.monthly.limit_usd: -5 is out of range; allowed: > 0 "
        "(monthly budget, US dollars)",
    ),
    (
        "budget notification",
        env(budgets={"monthly": {"limit_usd": 5, "notification": "ACTUALS"}}),
        "environments.test.budgets.monthly.notification: 'ACTUALS' is not allowed; allowed: "
        "ACTUAL, FORECASTED",
    ),
    (
        "inventory route without a target",
        env(inventory=[{"action": "rollback"}]),
        "environments.test.inventory[0].target: required (the target ARN, or ARNs joined by "
        "commas)",
    ),
    (
        "inventory not a list",
        env(inventory={"action": "rollback"}),
        "environments.test.inventory: expected a list, got {'action': 'rollback'}",
    ),
    (
        "notice e-mail",
        env(notice_emails=["oncall"]),
        "environments.test.notice_emails[0]: expected an e-mail address, got 'oncall'",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"),
    [pytest.param(raw, message, id=case) for case, raw, message in BAD_CONFIGS],
)
def test_a_bad_config_fails_with_one_line_naming_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(raw)
    assert str(caught.value) == message
    assert "\n" not in message


def test_more_than_one_mistake_says_how_many_more() -> None:
    raw = env(switch="maybe", region="Ireland", thresholds={"latency_p99_ms": -1})
    with pytest.raises(ConfigError) as caught:
        parse_env("autorem", "test", raw)
    first, _, rest = str(caught.value).rpartition(" (and ")
    assert first.startswith("environments.test.region: 'Ireland' is not a region")
    assert rest == "2 more)"


@pytest.mark.parametrize(
    "statistic",
    ["Sum", "SampleCount", "Average", "Minimum", "Maximum", "p99", "p99.9", "p0.0", "p100",
     "tm90", "wm98", "tc90", "ts90", "IQM", "TM(10%:90%)", "WM(25%:75%)", "PR(100:2000)",
     "PR(:300)"],
)  # fmt: skip
def test_cloudwatch_statistics_are_accepted(statistic: str) -> None:
    metric = {"namespace": "N", "name": "F", "statistic": statistic}
    raw = env(services={"w": {**WEBHOOK, "failure": metric}})
    (service,) = parse_env("autorem", "test", raw).services
    assert service.failure.statistic == statistic  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "statistic",
    ["Summ", "sum", "P99", "p101", "p99.12345678901", "tm", "TM(5%:95%)", "TM(90%:10%)",
     "PR(:)", "PR(5:1)", "iqm", ""],
)  # fmt: skip
def test_statistics_outside_cloudwatchs_grammar_are_refused(statistic: str) -> None:
    from serverless_remediation.stacks.config import is_statistic

    assert not is_statistic(statistic)


@pytest.mark.parametrize(("period", "ok"), [(10, True), (20, True), (30, True), (60, True),
    (300, True), (3600, True), (86400, True), (0, False), (15, False), (45, False), (90, False),
    (86460, False)])  # fmt: skip
def test_alarm_periods_are_cloudwatchs(period: int, ok: bool) -> None:
    from serverless_remediation.stacks.config import is_alarm_period

    assert is_alarm_period(period) is ok


def test_a_high_resolution_period_reaches_the_webhook_alarm() -> None:
    raw = env(services={"w": WEBHOOK}, thresholds={"period_seconds": 10, "webhook_minutes": 2})
    (alarm,) = build(raw).alarms
    assert (alarm.period, alarm.evaluation_periods) == (10, 12)
    assert {m.period for m in alarm.metrics.values()} == {10}


def test_a_longer_period_evaluates_fewer_datapoints_over_the_same_window() -> None:
    found = build(env(thresholds={"period_seconds": 300}))
    rate = next(a for a in found.alarms if a.kind == "error-rate")
    assert (rate.period, rate.evaluation_periods) == (300, 1)
    throttles = next(a for a in found.alarms if a.kind == "throttles")
    assert throttles.period == 60  # "above this count in every minute": its own period


def test_service_thresholds_override_the_environments_key_by_key() -> None:
    raw = env(thresholds={"latency_p99_ms": 800, "error_rate_percent": 2})
    raw["services"]["orders"]["thresholds"] = {"latency_p99_ms": 1500}
    (service,) = parse_env("autorem", "test", raw).services
    assert service.thresholds.latency_p99_ms == 1500
    assert service.thresholds.error_rate_percent == 2
    assert service.thresholds.webhook_failure_percent == Thresholds().webhook_failure_percent


def test_architecture_defaults_to_x86_64_and_takes_arm64() -> None:
    assert parse_env("autorem", "test", env()).remediators.architecture == "x86_64"
    raw = env(remediators={"architecture": "arm64"})
    assert parse_env("autorem", "test", raw).remediators.architecture == "arm64"


def test_the_json_schema_accepts_cdk_json_and_refuses_what_synth_refuses(
    context: dict[str, Any],
) -> None:
    import jsonschema

    from serverless_remediation.stacks.config import json_schema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(context["environments"])) == []
    for case, raw, _ in BAD_CONFIGS:
        if case.startswith(
            (
                "unknown action",
                "high-resolution",
                "window not",
                "trimmed mean",
                "webhook with",
                "region of a partition",
            )
        ):
            continue  # checked by code the schema cannot express
        assert list(validator.iter_errors({"test": raw})), case
    environment = schema["$defs"]["Environment"]
    assert environment["additionalProperties"] is False
    assert "eu-west-1" in environment["properties"]["region"]["enum"]


def test_routes_are_checked_against_the_actions_at_synth() -> None:
    wrong_target = env(services={"o": {"kind": "lambda", "function": "o", "alias": "1"}})
    with pytest.raises(ConfigError, match=r"services\.o .*rollback rejects this route: .*alias"):
        build(wrong_target)
    wrong_param = env()
    wrong_param["services"]["orders"]["params"] = {"capacity-bump": {"max_memory_mb": "big"}}
    with pytest.raises(ConfigError, match=r"capacity-bump rejects this route: .*max_memory_mb"):
        build(wrong_param)
    typo = env()
    typo["services"]["orders"]["params"] = {"capacity_bump": {"factor": 2.0}}
    with pytest.raises(ConfigError, match=r"params\.capacity_bump: not a registered action"):
        build(typo)
    unknown = env()
    unknown["services"]["orders"]["routes"] = {"latency": {"action": "reboot", "target": "x"}}
    with pytest.raises(ConfigError, match=r"routes\.latency\.action: 'reboot' is not a registered"):
        build(unknown)


def test_default_alarms_follow_the_runbook() -> None:
    found = build(env())
    by_kind = {a.kind: a for a in found.alarms}
    assert set(by_kind) == {"error-rate", "latency", "throttles"}
    defaults = Thresholds()
    assert by_kind["error-rate"].threshold == defaults.error_rate_percent == 5
    assert by_kind["latency"].threshold == defaults.latency_p99_ms == 1000
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    assert by_kind["error-rate"].route == catalog.Route("rollback", f"{arn}:live")
    # served through an alias: provisioned concurrency on it (a memory bump reaches $LATEST only)
    assert by_kind["latency"].route == catalog.Route(
        "capacity-bump", f"{arn}:live", {"kind": "lambda-provisioned-concurrency"}
    )
    assert by_kind["throttles"].route.params == {"kind": "lambda-reserved-concurrency"}
    assert found.budgets[0].route.params["sheddable"] == ["orders"]


def test_config_alone_rewires_an_alarm_and_merges_params() -> None:
    raw = env()
    service = raw["services"]["orders"]
    service["disable"] = ["throttles"]
    service["params"] = {"capacity-bump": {"max_memory_mb": 2048}}
    service["routes"] = {
        "error-rate": {
            "action": "capacity-bump",
            "target": "arn:aws:lambda:eu-west-1:123456789012:function:orders",
            "params": {"kind": "lambda-timeout"},
        }
    }
    by_kind = {a.kind: a for a in build(raw).alarms}
    assert "throttles" not in by_kind
    assert by_kind["latency"].route.params == {
        "kind": "lambda-provisioned-concurrency",
        "max_memory_mb": 2048,
    }
    assert by_kind["error-rate"].route.action == "capacity-bump"
    assert by_kind["error-rate"].route.params == {"kind": "lambda-timeout"}


def test_default_routes_of_unregistered_actions_are_left_out_not_guessed() -> None:
    only_rollback = {"rollback": REGISTRY["rollback"]}
    found = build(env(), only_rollback)
    assert [a.kind for a in found.alarms] == ["error-rate"]
    assert any("capacity-bump" in s for s in found.skipped)
    assert any("cost-guard" in s for s in found.skipped)


def test_playbook_loads_in_the_remediator(context: dict[str, Any]) -> None:
    from serverless_remediation.remediation.playbook import Playbook

    for name in context["environments"]:
        found = catalog.build(load(context, name), REGISTRY)
        playbook = Playbook.from_dict(copy.deepcopy(found.playbook()))
        assert set(playbook.alarms) == {a.name for a in found.alarms}
        assert all(a.name.startswith(f"autorem-{name}-") for a in found.alarms)
