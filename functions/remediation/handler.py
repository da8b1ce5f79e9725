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


def pipeline() -> Pipeline:
    """Built once per container, on first use; its clients keep to this environment's share
    of AWS's rates (``quotas.py``)."""
    global _pipeline
    if _pipeline is None:
        _pipeline = Pipeline(Settings.from_env(), Clients(pace=Pace.from_env()))
    return _pipeline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # how long a transition this invocation takes stays its own: until Lambda stops it
    remaining = context.get_remaining_time_in_millis() / 1000
    deadline = datetime.now(UTC) + timedelta(seconds=remaining)
    built = pipeline()
    built.clients.until(time.monotonic() + remaining)
    results = built.handle(event, correlation_id=context.aws_request_id, deadline=deadline)
    body = {"results": [r.as_dict() for r in results]}
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        # Recorded and notified already; raising sends the event to the dead-letter queue.
        raise RemediationFailed("; ".join(f"{r.audit_id}: {r.reason}" for r in failed))
    return body
