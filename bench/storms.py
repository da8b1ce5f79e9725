"""Storms as Lambda sees them: concurrent execution environments, AWS rate limits, time to act.

``python -m bench.storms --workers 50 --out FILE`` (``python -m bench`` runs it):
1,000 deliveries (250 alarm transitions on 50 targets, each delivered 4 times, shuffled)
from one queue, taken by ``--workers`` workers. Each worker is one execution environment as
Lambda runs them: its own boto3 session, clients and pipeline (its own switch cache);
nothing is shared between workers but the emulator. Workers are threads
of this process (the machine has few cores: the figures are about correctness, API rates and
queueing, not throughput).

The emulator runs in another process and applies one request at a time (``locked``): moto
does not make a conditional write atomic under concurrent requests, and DynamoDB does. So
"acted twice" counts the pipeline's races, not moto's.

Reported:
- outcomes, and **acted twice** (must be 0): a transition executed more than once, or a target
  changed twice inside its cooldown;
- for each AWS operation, the **peak requests in any one second** (all workers together,
  retries included), against
  the documented per-account rate limit where AWS documents one (``RATES``);
- **time to applied**: from a worker taking a delivery to its executed result, p50 and p99.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import queue
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from bench.cold import REMEDIATOR_ENV
from bench.emulated import create_core, reset
from bench.scenarios import SCENARIOS, STORM_TARGETS, STORM_TRANSITIONS, storm_setup
from bench.stats import median
from serverless_remediation.remediation.quotas import RATES, Pace, quota

DEFAULT_WORKERS = 50


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def peak_per_second(stamps: list[float]) -> int:
    """The most calls in any one-second window (sliding)."""
    ordered = sorted(stamps)
    return max(
        (bisect.bisect_right(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0
    )


class Throttle:
    """AWS's rate limits, as AWS applies them, for all workers together (one account): a
    request past its documented rate (``RATES``) in the last second is refused with the
    service's throttling error, in its protocol, and not sent to the emulator (which has no
    limits). The remediators' retries (botocore's standard mode) see what they would see."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, deque[float]] = defaultdict(deque)
        self.throttled: dict[str, int] = defaultdict(int)

    def __call__(self, event_name: str, request: Any, **_: Any) -> Any:  # a response or None
        _event, service, operation = event_name.split(".", 2)
        name = f"{service}:{operation}"
        if name not in RATES:
            return None
        rate = RATES[name][0]
        now = time.perf_counter()
        with self._lock:
            window = self._accepted[quota(name)]
            while window and window[0] < now - 1.0:
                window.popleft()
            if len(window) < rate:
                window.append(now)
                return None
            self.throttled[name] += 1
        return throttled(service, request.url)


def throttled(service: str, url: str) -> AWSResponse:
    """The throttling error ``service`` answers with, in the protocol its client speaks."""
    if service == "lambda":  # rest-json: the error type in a header, 429
        headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
        body = b'{"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"}'
        return AWSResponse(url, 429, HTTPHeaders.from_dict(headers), _Raw(body))
    # json (SSM, WAFv2, and CloudWatch as botocore speaks to it): the type in the body, 400
    code = "Throttling" if service == "cloudwatch" else "ThrottlingException"
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    body = json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
    return AWSResponse(url, 400, HTTPHeaders.from_dict(headers), _Raw(body))


class _Raw:
    """What AWSResponse reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        body, self._body = self._body, b""
        return body


class Worker:
    """One execution environment: a session, its clients and a pipeline of its own."""

    def __init__(
        self,
        settings: Any,
        calls: list[tuple[str, float]],
        lock: threading.Lock,
        throttle: Throttle,
        *,
        paced: bool,
    ):
        from serverless_remediation.remediation.clients import Clients
        from serverless_remediation.remediation.pipeline import Pipeline

        session = boto3.session.Session(region_name=os.environ["AWS_DEFAULT_REGION"])

        def seen(event_name: str, **_: Any) -> None:
            # each request as it goes out (after its pace; a retry is a request too), named
            # as IAM and quotas.RATES name it: ``request-created.<service>.<Operation>``
            _event, service, operation = event_name.split(".", 2)
            with lock:
                calls.append((f"{service}:{operation}", time.perf_counter()))

        session.events.register("request-created", seen)
        session.events.register("before-send", throttle)
        self.pace = Pace.from_env() if paced else None
        self.pipeline = Pipeline(settings, Clients(session, pace=self.pace))


def storm(
    workers: int, action: str, workdir: Path, seed: int = 0, *, paced: bool = True
) -> dict[str, Any]:
    from serverless_remediation.remediation.clients import Clients
    from serverless_remediation.remediation.config import Settings

    setup = Clients(boto3.session.Session(region_name=os.environ["AWS_DEFAULT_REGION"]))
    reset(os.environ["AWS_ENDPOINT_URL"])
    create_core(setup, REMEDIATOR_ENV, "on")

    class Setup:
        clients = setup
        gaps = None

        def deliver(self, event: dict) -> list[dict]:
            raise NotImplementedError

    routes, deliveries = storm_setup(Setup(), action, seed)

    path = workdir / "playbook.json"
    path.write_text(json.dumps({"alarms": routes}))
    os.environ.update(REMEDIATOR_ENV)
    os.environ["REMEDIATION_ACTIONS"] = action
    os.environ["PLAYBOOK_PATH"] = str(path)
    # the storm's function is the only caller in its account: its ``workers`` environments
    # share every documented rate (the CDK app counts every function that may call)
    os.environ["REMEDIATION_PACE"] = json.dumps({quota(r): workers for r in RATES})
    settings = Settings.from_env()

    calls: list[tuple[str, float]] = []
    lock = threading.Lock()
    throttle = Throttle()
    pool = [Worker(settings, calls, lock, throttle, paced=paced) for _ in range(workers)]
    calls.clear()  # building clients makes no call; setup's own calls are not counted
    work: queue.Queue[dict] = queue.Queue()
    for delivery in deliveries:
        work.put(delivery)
    results: list[tuple[str, str, float, str]] = []  # (outcome, target, seconds, key)

    def run(worker: Worker) -> None:
        while True:
            try:
                delivery = work.get_nowait()
            except queue.Empty:
                return
            message = json.loads(delivery["Records"][0]["Sns"]["Message"])
            key = f"{message['AlarmName']}|{message['StateChangeTime']}"
            took = time.perf_counter()
            for result in worker.pipeline.handle(delivery):
                with lock:
                    results.append(
                        (
                            str(result.outcome),
                            result.target or "",
                            time.perf_counter() - took,
                            key,
                        )
                    )

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(w,)) for w in pool]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started

    outcomes: dict[str, int] = defaultdict(int)
    executed_keys: dict[str, int] = defaultdict(int)
    executed_targets: dict[str, int] = defaultdict(int)
    applied: list[float] = []
    for outcome, target, seconds, key in results:
        outcomes[outcome] += 1
        if outcome == "executed":
            executed_keys[key] += 1
            executed_targets[target] += 1
            applied.append(seconds * 1000)
    # the storm lasts far less than the cooldown: a target changed twice is a race
    acted_twice = sum(n - 1 for n in executed_keys.values() if n > 1) + sum(
        n - 1 for n in executed_targets.values() if n > 1
    )
    by_operation: dict[str, list[float]] = defaultdict(list)
    for name, stamp in calls:
        by_operation[name].append(stamp)
    rates = {
        name: {
            "calls": len(stamps),
            "peak_per_s": peak_per_second(stamps),
            **(
                {
                    "limit_per_s": RATES[name][0],
                    "limit_source": RATES[name][1],
                    "throttled": throttle.throttled.get(name, 0),
                }
                if name in RATES
                else {}
            ),
        }
        for name, stamps in sorted(by_operation.items())
    }
    return {
        "action": action,
        "workers": workers,
        "deliveries": len(deliveries),
        "transitions": STORM_TRANSITIONS,
        "targets": STORM_TARGETS,
        "results": len(results),
        "outcomes": dict(sorted(outcomes.items())),
        "acted_twice": acted_twice,
        "seconds": wall,
        "applied_p50_ms": percentile(applied, 50),
        "applied_p99_ms": percentile(applied, 99),
        "applied_median_ms": median(applied) if applied else 0.0,
        "rates": rates,
        "paced": paced,
        # seconds the workers' paces waited in all, and the longest one environment waited
        "paced_s": sum(w.pace.waited for w in pool if w.pace),
        "paced_max_s": max((w.pace.waited for w in pool if w.pace), default=0.0),
        # requests AWS's limits refused (and the standard retry mode sent again)
        "throttled": dict(sorted(throttle.throttled.items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storms")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--action", default="rollback", choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--unpaced", action="store_true", help="no remediation.quotas pacing (for comparison)"
    )
    args = parser.parse_args(argv)
    result = storm(args.workers, args.action, args.out.parent, paced=not args.unpaced)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
