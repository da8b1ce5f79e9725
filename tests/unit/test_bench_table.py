"""The bench's pure parts: detection windows, call attribution, and the table it prints."""

from __future__ import annotations

from bench.__main__ import calls_breakdown, hub_rows, render, synth_rows
from bench.mitigate import alarm_kind, window_seconds
from bench.synth import cycled, hub_environment


def test_detection_window_single_metric_and_metric_math() -> None:
    single = {"Period": 60, "EvaluationPeriods": 5, "DatapointsToAlarm": 3}
    assert window_seconds(single) == 180
    math = {
        "Metrics": [
            {"Id": "rate", "Expression": "100 * errors / invocations"},
            {"Id": "errors", "MetricStat": {"Period": 60}},
            {"Id": "invocations", "MetricStat": {"Period": 300}},
        ],
        "EvaluationPeriods": 2,
    }
    assert window_seconds(math) == 600


def test_alarm_kind_from_name() -> None:
    assert alarm_kind("autorem-prod-lead-webhook-webhook-failures") == "webhook-failures"
    assert alarm_kind("autorem-prod-svc-001-error-rate") == "error-rate"
    assert alarm_kind("autorem-prod-edge-waf-abuse") == "abuse"


def test_calls_breakdown_takes_the_median_per_caller() -> None:
    one = [["audit", "dynamodb", "PutItem"], ["action", "lambda", "GetAlias"]]
    two = [*one, ["switch", "ssm", "GetParameter"], ["audit", "dynamodb", "UpdateItem"]]
    assert calls_breakdown([one, two, two]) == {"action": 1, "audit": 2, "switch": 1}


def test_generated_services_have_unique_names() -> None:
    context = {
        "environments": {
            "prod-example": {
                "services": {
                    "api": {"kind": "lambda", "function": "api-prod", "alias": "live"},
                    "t": {"kind": "dynamodb", "table": "leads"},
                }
            }
        }
    }
    env = cycled(context, 5)
    functions = [s.get("function") or s.get("table") for s in env["services"].values()]
    assert len(env["services"]) == 5
    assert len(set(functions)) == 5
    assert all(s.get("alias") in (None, "live") for s in env["services"].values())


def test_synth_growth_judged_per_added_service() -> None:
    linear = {1: _synth(10.0), 25: _synth(12.4), 150: _synth(24.9)}
    ((_, result, _, met),) = synth_rows(linear)
    assert met == "yes; yes"
    assert "0.10 s (1->25)" in result
    steep = {1: _synth(10.0), 25: _synth(12.4), 150: _synth(70.0)}
    assert synth_rows(steep)[0][3] == "NO; NO"
    assert synth_rows({"unavailable": "no CDK app"})[0][3] == "n/a"


def test_table_has_a_cold_init_line_with_both_ratios() -> None:
    cold = {
        "floor": {"wall_ms": 200.0, "cpu_ms": 100.0},
        "floor-3": {"wall_ms": 240.0, "cpu_ms": 120.0},
        "ours:rollback": {"wall_ms": 240.0, "cpu_ms": 120.0},
        "ours:flip-flag": {"wall_ms": 260.0, "cpu_ms": 130.0},
        "peer": {"wall_ms": 520.0, "cpu_ms": 260.0},
        "peer-floor": {"wall_ms": 210.0, "cpu_ms": 105.0},
    }
    table = render({"when": "now", "cpus": 2, "load_at_start": 0.5, "runs": 7, "cold": cold})
    (line,) = [t for t in table.splitlines() if t.startswith("cold init")]
    # The slowest remediator (flip-flag, 130 ms CPU) against floor and peer.
    assert "ours / boto3 floor 1.30x CPU" in line
    assert "c7n peer / ours 2.00x CPU" in line
    assert "NO; yes" in line


def _synth(seconds: float) -> dict:
    return {"seconds": seconds, "peak_rss_mb": 500.0, "alarms": 3, "runs": 7}


def test_hub_rows_judge_linearity_and_the_largest_stack() -> None:
    def size(seconds: float, largest: int) -> dict:
        return {"seconds": seconds, "stacks": 2, "core_resources": 50, "max_resources": largest,
                "resources": 100, "runs": 1}  # fmt: skip

    (good,) = hub_rows({"10": size(10, 100), "50": size(30, 120), "100": size(55, 200)}, None)
    assert good[3] == "yes; yes (largest 200)"
    (bad,) = hub_rows({"10": size(10, 100), "50": size(12, 120), "100": size(80, 600)}, None)
    assert bad[3] == "NO; NO (largest 600)"
    accounts = {"ms": {"single": 50, "spoke": 70, "spoke_cached": 52},
                "added_ms": {"spoke": 20, "spoke_cached": 2}, "events": 30}  # fmt: skip
    (row,) = hub_rows(None, accounts)
    assert "+20 ms: one AssumeRole per record" in row[1]


def test_hub_environment_is_a_valid_hub_of_as_many_spokes() -> None:
    from serverless_remediation.stacks.config import parse_env

    config = parse_env("autorem", "hub3", hub_environment(3))
    assert len(config.spokes) == 3
    assert {len(s.services) for s in config.spokes} == {15}
    # an API id names no account: synth refuses one id in two accounts
    ids = [
        s.api_id
        for services in (config.services, *(spoke.services for spoke in config.spokes))
        for s in services
        if getattr(s, "api_id", None)
    ]
    assert len(ids) == len(set(ids)) == 4 * 5
