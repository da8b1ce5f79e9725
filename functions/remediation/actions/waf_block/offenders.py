"""Who is hammering the API: a CloudWatch Logs Insights query over the access logs, and its
rows read as ``{"ip", "count"}``.

``run_query`` starts the query and polls it for at most its timeout, then stops it.
Throttled polls are retried by botocore's standard retry mode (``clients.DEFAULT_CONFIG``);
this module only waits between polls.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypedDict

from ...errors import FailedError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import ResultFieldTypeDef

DEFAULT_QUERY = (
    "fields ip, status\n"
    "| filter status = 401 or status = 403 or status = 429\n"
    "| stats count(*) as requests by ip\n"
    "| sort requests desc\n"
    "| limit 1000"
)
QUERY_POLL_SECONDS = 1.0
Rows = Sequence[Sequence["ResultFieldTypeDef"]]


class Offender(TypedDict):
    """One row of the query: an address as logged (not yet parsed) and its request count."""

    ip: str
    count: int


class QueryFailedError(FailedError):
    """The Logs Insights query failed or did not finish in time."""


def parse_rows(rows: Rows, ip_field: str, count_field: str) -> list[Offender]:
    """Logs Insights result rows -> ``[{"ip": raw, "count": n}]``.

    A row without ``count_field`` counts once (a query without ``stats``); a row without
    ``ip_field`` but with a JSON ``@message`` (raw access log lines) takes the field from it.
    Rows with neither an address nor a usable count are dropped.
    """
    found: list[Offender] = []
    for row in rows:
        cells = {c.get("field"): c.get("value") for c in row}
        ip = cells.get(ip_field)
        raw_message = cells.get("@message")
        if ip is None and raw_message:
            try:
                message = json.loads(raw_message)
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get(ip_field) is not None:
                ip = str(message[ip_field])
        if not ip:
            continue
        raw_count = cells.get(count_field)
        try:
            count = int(float(raw_count)) if raw_count is not None else 1
        except ValueError:
            continue
        found.append({"ip": ip, "count": count})
    return found


def run_query(
    logs: CloudWatchLogsClient,
    *,
    log_group: str,
    query: str,
    window_minutes: int,
    timeout_seconds: int,
    end: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Rows:
    """Start the query over the window ending at ``end`` (epoch seconds) and poll its
    results, at most ``timeout_seconds``; stop it if it runs longer."""
    end_s = int(end)
    query_id = logs.start_query(
        logGroupName=log_group,
        startTime=end_s - window_minutes * 60,
        endTime=end_s,
        queryString=query,
    )["queryId"]
    polls = max(1, int(timeout_seconds / QUERY_POLL_SECONDS))
    status = "Unknown"
    for poll in range(polls):
        if poll:
            sleep(QUERY_POLL_SECONDS)
        got = logs.get_query_results(queryId=query_id)
        status = got["status"]
        if status == "Complete":
            return got["results"]
        if status not in ("Scheduled", "Running"):
            raise QueryFailedError(f"Logs Insights query {query_id} ended {status}")
    # Best effort: an abandoned query times out on its own anyway.
    with contextlib.suppress(Exception):
        logs.stop_query(queryId=query_id)
    raise QueryFailedError(
        f"Logs Insights query {query_id} still {status} after {timeout_seconds} s"
    )
