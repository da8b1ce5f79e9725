"""AWS's documented request rates for the calls the suite makes, and each execution
environment's share of them.

AWS throttles a call past its per-account, per-Region rate. Lambda runs a storm of alarms in
separate execution environments that share nothing, so no environment can count the others'
calls; what bounds the whole is arithmetic. The CDK app knows which functions may make each
call (their IAM grants) and how many environments each may run (its reserved concurrency), and
hands every function the total for each call (``REMEDIATION_PACE``, JSON, call -> environments).
Each environment then keeps to its share (``Pace``): at most ``floor(rate / environments)``
calls in any one second, or, when there are more environments than the rate allows per
second, one call per ``environments / rate`` seconds. With no more environments than the
rate, the calls of all environments together stay within it in every second. With more, they
stay within it over time, but environments that happen to call together make a second of up
to ``environments`` calls: those AWS throttles and the standard retry mode retries. Keeping
each rate's environments (the reserved concurrency of the functions that make the call) at or
under the rate is what makes every second hold.

A wait is capped (``MAX_WAIT_SECONDS``): past it the call goes out and AWS's throttling and
the retries take over, rather than an invocation spending its time asleep. A wait that would
run into the invocation's last ``RESERVE_SECONDS`` raises ``OutOfTime`` instead (the run is
recorded as failed and reaches the dead-letter queue and a human), so the record is always
closed. The pace counts API calls; botocore's retries of a throttled call are not paced again.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from .errors import ConfigurationError

logger = Logger(child=True)

LAMBDA_CONTROL = "Lambda quotas: control-plane API requests, 15/s per API"
PARAMETER_READS = (
    "Parameter Store: default throughput 40/s, shared by GetParameter, GetParameters and "
    "GetParametersByPath"
)

#: IAM action -> (requests per second per account and Region, where AWS documents it). A
#: call that shares its rate with others is listed under each (``QUOTA_OF`` joins them).
RATES: dict[str, tuple[float, str]] = {
    **{
        f"lambda:{operation}": (15, LAMBDA_CONTROL)
        for operation in (
            "GetAlias",
            "UpdateAlias",
            "ListVersionsByFunction",
            "ListAliases",
            "GetFunctionConfiguration",
            "UpdateFunctionConfiguration",
            "GetFunctionConcurrency",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "GetProvisionedConcurrencyConfig",
            "PutProvisionedConcurrencyConfig",
            "DeleteProvisionedConcurrencyConfig",
            "ListProvisionedConcurrencyConfigs",
        )
    },
    "lambda:GetFunction": (100, "Lambda quotas: GetFunction, 100/s"),
    "cloudwatch:DescribeAlarms": (9, "CloudWatch quotas: Rate of DescribeAlarms requests, 9/s"),
    "ssm:GetParameter": (40, PARAMETER_READS),
    "ssm:GetParameters": (40, PARAMETER_READS),
    "wafv2:UpdateIPSet": (1, "WAF: about 1/s per account and Region (issue 16)"),
}

#: calls that share one rate are counted together
QUOTA_OF: dict[str, str] = {"ssm:GetParameters": "ssm:GetParameter"}

#: calls whose caller takes the slot itself, before the read the call depends on
#: (``reserve``): an ``UpdateIPSet`` carries the lock token of the read before it, and a wait
#: between the two would hand it a token other environments have spent meanwhile
CALLER_PACED = frozenset({"wafv2:UpdateIPSet"})

#: the longest one call waits for its share
MAX_WAIT_SECONDS = 10.0
#: a wait never runs into the last seconds of the invocation: they are the record's
RESERVE_SECONDS = 5.0


class OutOfTime(RuntimeError):
    """Waiting for a call's share would run into the end of the invocation."""


def quota(action: str) -> str:
    """The rate ``action`` (an IAM action) counts against."""
    return QUOTA_OF.get(action, action)


def share(rate: float, environments: int) -> tuple[int, float]:
    """One environment's share of ``rate`` among ``environments``: at most ``calls`` in any
    ``seconds``. Pure; the whole of the module's arithmetic."""
    if environments <= rate:
        return math.floor(rate / environments), 1.0
    return 1, environments / rate


class Pace:
    """This execution environment's share of each documented rate (see the module)."""

    def __init__(
        self,
        environments: Mapping[str, int] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._environments = dict(environments or {})
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._lock = threading.Lock()
        #: (region, quota) -> the times of this environment's last calls
        self._calls: dict[tuple[str, str], deque[float]] = {}
        #: seconds waited in all (the bench reports it)
        self.waited = 0.0
        #: the invocation's end on ``clock`` (the handlers set it per invocation)
        self.deadline: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Pace:
        """``REMEDIATION_PACE``: JSON, rate (a ``RATES`` key) -> the execution environments that
        may call against it; unset: this environment is the only caller."""
        raw = environ.get("REMEDIATION_PACE", "").strip()
        if not raw:
            return cls()
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ConfigurationError("misconfigured: REMEDIATION_PACE is not JSON") from None
        known = {quota(r) for r in RATES}
        if not isinstance(parsed, dict) or not all(
            k in known and type(v) is int and v >= 1 for k, v in parsed.items()
        ):
            raise ConfigurationError(
                "misconfigured: REMEDIATION_PACE must map rates of remediation.quotas.RATES "
                f"({', '.join(sorted(known))}) to whole numbers >= 1"
            )
        return cls(parsed)

    def limit(self, action: str) -> tuple[int, float]:
        """``(calls, seconds)``: this environment's share of ``action``'s rate."""
        name = quota(action)
        return share(RATES[action][0], self._environments.get(name, 1))

    def watch(self, client: Any) -> None:
        """Pace ``client``'s calls that have a documented rate."""
        # botocore's hyphenized service id is IAM's prefix for every service in RATES
        service = client.meta.service_model.service_id.hyphenize()
        region = client.meta.region_name or ""
        _WATCHED[client] = (self, region)
        for action in RATES.keys() - CALLER_PACED:
            prefix, operation = action.split(":")
            if prefix == service:
                client.meta.events.register(
                    f"before-call.{service}.{operation}", self._before(region, action)
                )

    def _before(self, region: str, action: str) -> Callable[..., None]:
        def before_call(**_: Any) -> None:
            self.take(region, action)

        return before_call

    def take(self, region: str, action: str) -> float:
        """Wait for this environment's share of ``action`` in ``region``; the seconds waited.
        The slot is taken under the lock and waited for outside it."""
        calls, seconds = self.limit(action)
        key = (region, quota(action))
        with self._lock:
            made = self._calls.setdefault(key, deque(maxlen=calls))
            now = self._clock()
            wait = 0.0
            if len(made) == calls:
                # 1 % over the window: a window counted with both ends closed holds no more
                wait = max(0.0, made[0] + seconds * 1.01 - now)
            if wait > self._max_wait:
                logger.warning(
                    "call past its share of the documented rate",
                    extra={"action": action, "region": region, "would_wait_s": round(wait, 2)},
                )
                wait = self._max_wait
            if wait and self.deadline is not None and now + wait > self.deadline - RESERVE_SECONDS:
                raise OutOfTime(
                    f"{action}: its share of AWS's rate ({RATES[action][0]:g}/s per account and "
                    f"Region) comes in {wait:.1f} s, too close to the end of this invocation"
                )
            made.append(now + wait)
            self.waited += wait
        if wait:
            self._sleep(wait)
        return wait


#: the clients ``Pace.watch`` paces, and their Region
_WATCHED: weakref.WeakKeyDictionary[Any, tuple[Pace, str]] = weakref.WeakKeyDictionary()


def reserve(client: Any, action: str) -> float:
    """Take the slot of a ``CALLER_PACED`` call ``client`` is about to make, waiting for it
    if need be; the seconds waited (0 for a client nobody paces). A caller that waited reads
    again what the call depends on."""
    watched = _WATCHED.get(client)
    return watched[0].take(watched[1], action) if watched else 0.0
