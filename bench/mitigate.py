"""Time to mitigate per runbook scenario: the detection window of the synthesized alarm
(period x datapoints to alarm) + the measured pipeline time (cold init + one execute event),
beside the human response times the runbooks in ../shared/runbooks state (quoted).

SNS delivery and Lambda start-up outside the Python process are not measured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    action: str
    #: the alarm kind (``<app>-<env>-<service>-<kind>``), or ``budget``
    alarm_kind: str
    runbook: str
    #: the runbook's own words on how fast a human responds
    human: str


SCENARIOS = [
    Scenario(
        "bad deploy: error rate > 5 %",
        "rollback",
        "error-rate",
        'OMNIX "API Service Down" (runbooks/000)',
        '"Immediate Response (0-5 minutes)", then "Investigation (5-15 minutes)" '
        '(review recent deployments) before "If recent deployment is suspected": rollback',
    ),
    Scenario(
        "slow function: p99 > 1000 ms",
        "capacity-bump",
        "latency",
        'Nigredo "High Latency" (runbooks/003)',
        'severity table: "P2 - Medium | Degraded performance | 2 hours | Elevated latency, '
        'partial failures"',
    ),
    Scenario(
        "throttled function",
        "capacity-bump",
        "throttles",
        'Incident Response "Lambda Function Failures" (runbooks/001)',
        'severity table: "P2 - High | Significant degradation | High error rates, slow response '
        '| 15 minutes"',
    ),
    Scenario(
        "webhook failing: > 10 % for 10 min",
        "flip-flag",
        "webhook-failures",
        'Nigredo "Webhook Failures" (runbooks/003)',
        'severity table: "P1 - High | Major functionality impaired | 30 minutes | High error '
        'rate, webhook failures"',
    ),
    Scenario(
        "abuse: rate-limit hits > 100 per hour",
        "waf-block",
        "abuse",
        'Nigredo "Rate Limiting Issues" (runbooks/003)',
        'warning alarm, "Response: Investigate potential abuse or adjust limits" (no time stated)',
    ),
    Scenario(
        "cost over budget",
        "cost-guard",
        "budget",
        'Monitoring Infrastructure "Cost Overrun Alert" (runbooks/002)',
        '"Immediate Actions" (no time stated)',
    ),
]


def detection_windows(assembly: Path, env: str) -> dict[tuple[str, str], int]:
    """(action, alarm kind) -> the longest detection window in seconds among its alarms."""
    from serverless_remediation.remediate.drill.template import load

    deployment = load(assembly, env)
    routes = deployment.playbook()["alarms"]
    windows: dict[tuple[str, str], int] = {}
    for name, alarm in deployment.alarms.items():
        route = routes.get(name)
        if route is None:
            continue
        kind = alarm_kind(name)
        seconds = window_seconds(alarm.properties)
        key = (route["action"], kind)
        windows[key] = max(windows.get(key, 0), seconds)
    return windows


def window_seconds(props: dict[str, Any]) -> int:
    """Period x datapoints to alarm (metric math: the longest period among its metrics)."""
    period = props.get("Period")
    if period is None:
        periods = [
            m["MetricStat"]["Period"] for m in props.get("Metrics", []) if m.get("MetricStat")
        ]
        period = max(periods) if periods else 0
    datapoints = props.get("DatapointsToAlarm") or props.get("EvaluationPeriods") or 1
    return int(period) * int(datapoints)


_KNOWN_KINDS = ("webhook-failures", "error-rate", "latency", "throttles", "abuse")


def alarm_kind(name: str) -> str:
    for kind in _KNOWN_KINDS:
        if name.endswith(f"-{kind}"):
            return kind
    return name.rsplit("-", 1)[-1]
