"""The environment config and the pure catalog: errors name the key, defaults follow the
runbooks, config alone rewires an alarm. No CDK here: these run in milliseconds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from remediation.actions import REGISTRY
from stacks import catalog
from stacks.config import ConfigError, Thresholds, load, parse_env


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
        ConfigError, match=r"unknown environment 'nope'; valid: drill, prod-example"
    ):
        load(context, "nope")
    with pytest.raises(ConfigError, match="choose an environment with -c env=NAME"):
        load(context, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account": "12345"}, r"environments\.test\.account: expected a 12-digit"),
        ({"region": "Ireland"}, r"environments\.test\.region: expected a region code"),
        ({"switch": "maybe"}, r"environments\.test\.switch: expected one of"),
        ({"colour": "red"}, r"environments\.test: unknown key\(s\) \['colour'\]"),
        (
            {"thresholds": {"latency_p99_ms": "fast"}},
            r"thresholds\.latency_p99_ms: expected a number",
        ),
        ({"thresholds": {"error_rate_minutes": 0}}, r"thresholds: error_rate_minutes out of range"),
        ({"guards": {"cooldown_seconds": 1.5}}, r"guards\.cooldown_seconds: expected an integer"),
        ({"remediators": {"log_retention_days": 91}}, r"remediators: log_retention_days must be"),
        ({"services": {"x": {"kind": "ec2"}}}, r"services\.x\.kind: expected one of"),
        ({"services": {"x": {"kind": "lambda"}}}, r"services\.x\.function: required for kind"),
        ({"services": {"X!": {"kind": "lambda"}}}, r"services\.X!: service names are lower-case"),
        (
            {"services": {"x": {"kind": "lambda", "function": "f", "aliass": "live"}}},
            r"services\.x: unknown key\(s\) \['aliass'\]",
        ),
        (
            {"services": {"x": {"kind": "dynamodb", "table": "t", "disable": ["latencyy"]}}},
            r"services\.x\.disable: expected a list from",
        ),
        (
            {
                "services": {
                    "w": {
                        "kind": "webhook",
                        "success": {"namespace": "N", "name": "S"},
                        "failure": {"namespace": "N", "name": "F"},
                    }
                }
            },
            r"services\.w: a webhook flag is either flag_parameter .* exactly one",
        ),
        (
            {"budgets": {"monthly": {}}},
            r"budgets\.monthly: missing required key\(s\) \['limit_usd'\]",
        ),
        ({"inventory": [{"action": "rollback"}]}, r"inventory\[0\]: missing required key"),
    ],
)
def test_errors_name_the_bad_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_env("autorem", "test", env(**change))


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
    from remediation.playbook import Playbook

    for name in context["environments"]:
        found = catalog.build(load(context, name), REGISTRY)
        playbook = Playbook.from_dict(copy.deepcopy(found.playbook()))
        assert set(playbook.alarms) == {a.name for a in found.alarms}
        assert all(a.name.startswith(f"autorem-{name}-") for a in found.alarms)
