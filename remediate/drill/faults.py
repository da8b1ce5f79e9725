"""Injected AWS errors: the next call(s) of one operation fail, the way AWS fails them.

A scenario's ``fault`` step arms one (``lambda:UpdateAlias`` fails once with
``AccessDeniedException``, say) to show what the pipeline does when an action fails half
way: the failure is recorded, the cooldown it claimed is released, the event goes to the
dead-letter queue, and a redrive acts again.

Registered on the drill's boto3 session before the stand-ins for moto's gaps, so an armed
fault answers first. The request is still built and validated by botocore; only the answer
is replaced by an error response, which the client raises as a ``ClientError`` with that
code. An injected answer never reaches botocore's retry logic (it happens before the HTTP
round trip), so ``times: 1`` fails exactly one call: use an error the remediators would not
retry anyway (AccessDeniedException, ValidationException, ResourceConflictException...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

#: HTTP status AWS answers these codes with (others: 400)
STATUS = {
    "AccessDeniedException": 403,
    "AccessDenied": 403,
    "ResourceNotFoundException": 404,
    "ServiceException": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
}


@dataclass
class Fault:
    error: str
    message: str
    left: int


class Faults:
    """``service:Operation`` -> the error its next calls get (until ``left`` runs out).

    Only calls made while ``active()`` is true fail: the remediators' (the drill reads the
    targets' state through the same session, and must see what is really there).
    """

    def __init__(self, active: Callable[[], bool] = lambda: True) -> None:
        self.armed: dict[str, Fault] = {}
        self.fired: list[str] = []  # "service:Operation error", in order
        self.active = active

    def reset(self) -> None:
        self.armed.clear()
        self.fired.clear()

    def arm(self, call: str, error: str, times: int = 1, message: str = "") -> None:
        self.armed[call] = Fault(error, message or f"drill: injected {error}", times)

    def register(self, session: Any) -> None:
        session.events.register("before-call.*.*", self._answer)

    def _answer(self, model: Any, **_: Any) -> Any:
        call = f"{model.service_model.service_name}:{model.name}"
        fault = self.armed.get(call)
        if fault is None or fault.left <= 0 or not self.active():
            return None
        fault.left -= 1
        if fault.left <= 0:
            del self.armed[call]
        self.fired.append(f"{call} {fault.error}")
        status = STATUS.get(fault.error, 400)
        return AWSResponse("https://drill.local", status, HTTPHeaders(), None), {
            "Error": {"Code": fault.error, "Message": fault.message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "drill-fault"},
        }
