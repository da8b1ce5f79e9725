"""Answer chosen AWS calls at the HTTP layer, inside botocore's retry loop.

A ``Stubber`` answers before botocore's retry handler runs, so it cannot show that a
throttled call is retried. ``Wire`` hooks ``before-send`` instead: the request has been
validated against the service model and serialised, and the answer goes through the same
parsing and ``needs-retry`` decision as a real AWS response. Operations with nothing queued
pass through to the emulator.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any):
        yield self._data


def response(status: int, body: dict | None = None, headers: dict | None = None) -> AWSResponse:
    """A raw HTTP response with a JSON body (the wire format of the JSON protocols)."""
    data = json.dumps(body if body is not None else {}).encode()
    merged = {"content-type": "application/json", **(headers or {})}
    return AWSResponse("https://injected.invalid/", status, merged, _Body(data))


def error(code: str, status: int = 400) -> AWSResponse:
    """An AWS error response, readable by both the ``json`` and ``rest-json`` parsers."""
    body = {"__type": code, "message": f"injected {code}"}
    return response(status, body, {"x-amzn-ErrorType": code})


def throttled(client: Any) -> AWSResponse:
    """The throttling answer ``client``'s service gives its control-plane callers."""
    if client.meta.service_model.protocol == "json":  # DynamoDB
        return error("ThrottlingException", 400)
    return error("TooManyRequestsException", 429)


def denied() -> AWSResponse:
    return error("AccessDeniedException", 403)


class Wire:
    """Queue raw answers per operation name for one client; count every attempt sent."""

    def __init__(self, client: Any) -> None:
        self.attempts: Counter[str] = Counter()
        self._queued: dict[str, list[AWSResponse | None]] = {}
        client.meta.events.register("before-send", self._before_send)

    def queue(self, operation: str, *answers: AWSResponse | None) -> Wire:
        """Answer the next attempts of ``operation`` with ``answers`` (None: pass through)."""
        self._queued.setdefault(operation, []).extend(answers)
        return self

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[1]
        self.attempts[operation] += 1
        queued = self._queued.get(operation)
        return queued.pop(0) if queued else None
