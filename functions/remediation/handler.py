"""The remediator Lambda: parse, dispatch, record. All the work is in ``pipeline.py``.

One function per action kind is deployed from this same code; ``REMEDIATION_ACTIONS``
says which kinds a function runs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from .clients import Clients
from .config import Settings
from .models import Outcome
from .pipeline import Pipeline, RemediationFailed
from .quotas import Pace

logger = Logger(service="auto-remediation")
_pipeline: Pipeline | None = None
#: this execution environment's share of AWS's rates (``quotas.py``), its clients' pace
_pace = Pace()


def pipeline() -> Pipeline:
    """Built once per container, on first use."""
    global _pipeline, _pace
    if _pipeline is None:
        _pace = Pace.from_env()
        _pipeline = Pipeline(Settings.from_env(), Clients(pace=_pace))
    return _pipeline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # how long a transition this invocation takes stays its own: until Lambda stops it
    remaining = context.get_remaining_time_in_millis() / 1000
    deadline = datetime.now(UTC) + timedelta(seconds=remaining)
    built = pipeline()
    _pace.deadline = time.monotonic() + remaining  # no wait for a rate runs past it
    results = built.handle(event, correlation_id=context.aws_request_id, deadline=deadline)
    body = {"results": [r.as_dict() for r in results]}
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        # Recorded and notified already; raising sends the event to the dead-letter queue.
        raise RemediationFailed("; ".join(f"{r.audit_id}: {r.reason}" for r in failed))
    return body
