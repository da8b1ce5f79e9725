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


def test_first_event_and_import_share_rows() -> None:
    cold = {
        "floor": {"wall_ms": 200.0, "cpu_ms": 100.0},
        "ours:rollback": {"wall_ms": 250.0, "cpu_ms": 110.0},
        "first:rollback": {
            "init_wall_ms": 250.0,
            "init_cpu_ms": 110.0,
            "event_wall_ms": 60.0,
            "event_cpu_ms": 10.0,
            "wall_ms": 310.0,
            "cpu_ms": 120.0,
            "clients": ["dynamodb", "lambda"],
        },
        "floor-path:rollback": {"wall_ms": 220.0, "cpu_ms": 110.0},
        "imports": {
            "groups_ms": {"all": 200.0, "ours": 30.0, "boto3": 120.0, "powertools": 10.0},
            "ours_top": [["remediation.models", 3.0]],
            "powertools_top": [["aws_lambda_powertools.logging.logger", 1.0]],
            "remediator": "rollback",
        },
    }
    table = render({"when": "now", "cpus": 2, "load_at_start": 0.5, "runs": 7, "cold": cold})
    (first,) = [t for t in table.splitlines() if t.startswith("cold start: init + 1st event")]
    assert "ours / boto3 floor 1.20x CPU" in first
    assert " yes " in first
    (path,) = [t for t in table.splitlines() if "its path's floor" in t]
    assert "1.09x its path's floor" in path
    (share,) = [t for t in table.splitlines() if t.startswith("import share")]
    assert "15.0% of 200 ms" in share
    assert " NO " in share


def test_importtime_charges_each_module_to_its_nearest_named_importer() -> None:
    from bench.cold import _charged

    # -X importtime prints a module after what it imported, one level deeper
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |       ssl",
            "import time:       300 |        400 |     botocore.httpsession",
            "import time:       200 |        600 |   boto3",
            "import time:        50 |         50 |     json",
            "import time:       400 |        450 |   remediation.store",
            "import time:        10 |         10 |   site",
        ]
    )
    charged = {module: (ms, group) for module, ms, group in _charged(stderr)}
    assert charged["ssl"] == (0.1, "boto3")
    assert charged["json"] == (0.05, "ours")
    assert charged["remediation.store"] == (0.4, "ours")
    assert charged["site"] == (0.01, "other")


def test_storm_rows_judge_failures_and_show_the_unpaced_comparison() -> None:
    def storm(failed: int, throttled: int, paced: bool) -> dict:
        return {
            "deliveries": 1000,
            "transitions": 250,
            "targets": 50,
            "action": "rollback",
            "seconds": 50.0,
            "outcomes": {"executed": 50, "failed": failed},
            "acted_twice": 0,
            "applied_p50_ms": 1000.0,
            "applied_p99_ms": 2000.0,
            "paced": paced,
            "paced_s": 200.0,
            "rates": {
                "cloudwatch:DescribeAlarms": {
                    "peak_per_s": 5 if paced else 40,
                    "limit_per_s": 9,
                    "throttled": throttled,
                },
                "sns:Publish": {"peak_per_s": 8},
            },
        }

    f = {
        "when": "now",
        "cpus": 2,
        "load_at_start": 0.5,
        "runs": 1,
        "concurrent": {"5": storm(0, 0, True)},
        "concurrent_unpaced": {"5": storm(3, 120, False)},
    }
    lines = render(f).splitlines()
    (main,) = [t for t in lines if t.startswith("storm, 5 environments")]
    assert " yes " in main
    (rates,) = [t for t in lines if t.strip().startswith("peak API rates, 5 env.")]
    assert "cloudwatch:DescribeAlarms 5/s of 9/s;" in rates
    assert " yes " in rates
    (unpaced,) = [t for t in lines if t.strip().startswith("unpaced, 5 env.")]
    assert "3 failed" in unpaced
    assert "(120 throttled)" in unpaced
    f["concurrent"]["5"] = storm(1, 0, True)
    (main,) = [t for t in render(f).splitlines() if t.startswith("storm, 5 environments")]
    assert " NO " in main


def test_the_throttle_stand_in_speaks_each_protocol_botocore_retries() -> None:
    import boto3
    import pytest

    from bench.storms import throttled

    session = boto3.session.Session(region_name="eu-west-1")
    calls = {
        "cloudwatch": lambda c: c.describe_alarms(AlarmNames=["x"]),
        "lambda": lambda c: c.get_alias(FunctionName="f", Name="live"),
        "ssm": lambda c: c.get_parameter(Name="/x"),
        "wafv2": lambda c: c.update_ip_set(
            Name="n", Scope="REGIONAL", Id="i", Addresses=[], LockToken="t"
        ),
    }
    for service, call in calls.items():
        client = session.client(
            service,
            aws_access_key_id="a",
            aws_secret_access_key="b",
            endpoint_url="http://127.0.0.1:9",
        )
        sent: list[str] = []

        def refuse(request: object, sent: list = sent, service: str = service, **_: object):
            sent.append(service)
            return throttled(service, "http://127.0.0.1:9")

        client.meta.events.register("before-send", refuse)
        with pytest.raises(client.exceptions.ClientError) as caught:
            call(client)
        assert caught.value.response["Error"]["Code"] in (
            "Throttling",
            "ThrottlingException",
            "TooManyRequestsException",
        )
        assert len(sent) == 3, service  # botocore's default: retried as throttling
