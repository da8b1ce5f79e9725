"""The pipeline's EMF metric carries exactly the dimension set the dashboard queries.

A CloudWatch metric query matches only the exact dimension set: one dimension missing on
either side and the dashboard's graphs stay empty (they did, before ``Environment`` was
added to the metric).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from serverless_remediation.remediation.audit import Entry
from serverless_remediation.remediation.models import Outcome, Result
from serverless_remediation.remediation.recorder import METRICS_NAMESPACE, Recorder
from serverless_remediation.stacks.constructs.dashboard import METRIC_DIMENSIONS


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def test_the_metric_has_the_dashboards_dimensions(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # conftest quiets them
    recorder = Recorder(_Quiet(), _Quiet(), env="prod", clock=lambda: datetime.now(UTC))  # type: ignore[arg-type]
    result = Result("a1", Outcome.SKIPPED, "cooldown", "rollback", "arn:x")
    entry = Entry.__new__(Entry)  # announce reads only what NOTIFY outcomes need

    recorder.announce(result, entry)

    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    (line,) = [
        x for x in lines if x["_aws"]["CloudWatchMetrics"][0]["Namespace"] == METRICS_NAMESPACE
    ]
    (dimensions,) = line["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert tuple(sorted(dimensions)) == tuple(sorted(METRIC_DIMENSIONS))
    assert (line["Environment"], line["Action"], line["Outcome"]) == ("prod", "rollback", "skipped")
