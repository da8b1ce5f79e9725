"""Fault injection on real boto3 clients: botocore event hooks fail one chosen AWS call.

``before-parameter-build`` numbers every API call (once per call, whatever the retries) and
labels it;
``before-send`` (once per HTTP attempt) answers the chosen call with an error response in
the service's own protocol, or raises a read timeout, instead of sending it. Retries, error
parsing and the pipeline's handling are then all the real code paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from serverless_remediation.remediation.clients import Clients

KINDS = ("throttling", "5xx", "access-denied", "timeout")
#: transient faults the clients' retries should absorb
RETRYABLE = frozenset({"throttling", "5xx", "timeout"})

# (HTTP status, error code) per protocol and fault kind.
_ERRORS = {
    "json": {
        "throttling": (400, "ThrottlingException"),
        "5xx": (500, "InternalServerError"),
        "access-denied": (400, "AccessDeniedException"),
    },
    "rest-json": {
        "throttling": (429, "TooManyRequestsException"),
        "5xx": (500, "ServiceException"),
        "access-denied": (403, "AccessDeniedException"),
    },
    "query": {
        "throttling": (400, "Throttling"),
        "5xx": (500, "InternalError"),
        "access-denied": (403, "AuthorizationError"),
    },
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any):
        yield self._data


def error_response(protocol: str, url: str, kind: str) -> AWSResponse:
    """An HTTP error response as the service would send it."""
    family = "query" if protocol in {"query", "ec2"} else protocol
    status, code = _ERRORS[family][kind]
    message = f"injected {kind}"
    headers = {"x-amzn-RequestId": "injected-fault"}
    if family == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["x-amzn-ErrorType"] = code
        headers["Content-Type"] = "application/x-amz-json-1.0"
    return AWSResponse(url, status, headers, _Body(body))


@dataclass
class Call:
    service: str
    operation: str
    label: str
    protocol: str
    attempts: int = 0


@dataclass
class Fault:
    index: int  # which call (0-based, in call order) fails
    kind: str
    persistent: bool  # every attempt fails, else only the first

    def describe(self) -> str:
        return f"{self.kind} {'on every attempt' if self.persistent else 'once'}"


@dataclass
class Injector:
    """Traces every call made through the clients it is attached to; fails ``fault``."""

    fault: Fault | None = None
    calls: list[Call] = field(default_factory=list)
    injected: int = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._before_call)
        client.meta.events.register("before-send", self._before_send)

    def _before_call(self, model: Any, params: dict, **_: Any) -> None:
        service = model.service_model.service_name
        label = f"{service}.{model.name}{_what(service, params)}"
        seen = sum(1 for c in self.calls if c.label.split("#")[0] == label)
        if seen:
            label = f"{label}#{seen + 1}"
        self.calls.append(Call(service, model.name, label, model.service_model.resolved_protocol))

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        call = self.calls[-1]
        call.attempts += 1
        fault = self.fault
        if fault is None or len(self.calls) - 1 != fault.index:
            return None
        if call.attempts > 1 and not fault.persistent:
            return None
        self.injected += 1
        if fault.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return error_response(call.protocol, request.url, fault.kind)


def _what(service: str, params: dict) -> str:
    """Which records a DynamoDB call touches (audit, once, guard; each write of a
    transaction), or whether an SSM read is the automation switch, for readable labels."""
    if service == "ssm":
        return "[switch]" if "/switch" in str(params.get("Name", "")) else ""
    if service != "dynamodb":
        return ""
    if "TransactItems" in params:  # each write: its kind and what it touches
        writes = [
            f"{op} {_kind(body.get('Item') or body.get('Key') or {})}"
            for item in params["TransactItems"]
            for op, body in item.items()
        ]
        return f"[{', '.join(writes)}]"
    kind = _kind(params.get("Item") or params.get("Key") or {})
    return f"[{kind}]" if kind else ""


def _kind(key: dict) -> str:
    """audit, once (an alarm transition), guard, block, ...: a key's partition kind."""
    return str(key.get("pk", {}).get("S", "")).split("#", 1)[0]


class TracedClients(Clients):
    """``Clients`` whose every client carries ``injector``'s hooks."""

    def __init__(self, injector: Injector, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.injector = injector

    def _make(self, *args: Any, **kwargs: Any) -> Any:  # whatever the signature becomes
        client = super()._make(*args, **kwargs)
        self.injector.attach(client)
        return client
