"""Per-event figures, in a child process whose stdout (the handler's logs and EMF lines, as in
Lambda) goes to /dev/null; results go to a JSON file.

``python -m bench.events warm --switch on|dry-run --runs N --out FILE``:
  for each action, ``N`` alarms each on a fresh target through ``handler.lambda_handler``;
  every AWS call the handler makes is recorded with a botocore ``provide-client-params``
  hook and timed where it is made (from the call's first botocore event to its last).
  Overhead per event = handler time - time inside its AWS calls, in wall time and in this
  process's CPU time (the emulator is another process, so CPU time is the handler's own work
  plus the client side of its calls: the figure other tenants of the machine disturb least).
  The same calls are then made again directly through the same clients and timed too (a
  second baseline; conditional writes fail on the replay, so it is a little slower). Calls
  are counted by who made them.
``python -m bench.events storm --runs N --out FILE``:
  1,000 deliveries (250 transitions on 50 targets, each delivered 4 times, shuffled)
  through one handler; events/s and peak RSS of this process.

The emulator runs in another process (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore import xform_name

from bench.cold import REMEDIATOR_ENV
from bench.emulated import clear_guards, cpu_seconds, create_core, reset
from bench.scenarios import (
    STORM_DELIVERIES,
    STORM_TARGETS,
    STORM_TRANSITIONS,
    Scenario,
    alarm_delivery,
    available,
    confirm_alarms,
    storm_setup,
)
from bench.stats import median
from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation.targets import build, partition_of

# Who made a call: the innermost frame in one of these modules decides.
CALLERS = (
    ("serverless_remediation.remediation.actions", "action"),
    ("serverless_remediation.remediation.audit", "audit"),
    ("serverless_remediation.remediation.confirm", "confirm"),
    ("serverless_remediation.remediation.notify", "notice"),
    ("serverless_remediation.remediation.guards", "guards"),
    ("serverless_remediation.remediation.gate", "switch"),
    # silences and approvals (the hold step)
    ("serverless_remediation.remediation.holds", "holds"),
    ("serverless_remediation.remediation.silences", "holds"),
    ("serverless_remediation.remediation.approvals", "holds"),
    ("aws_lambda_powertools.utilities.parameters", "switch"),
)


class Recorder:
    """Every API call made through clients of one boto3 session: (caller, service, op, params),
    and the wall and CPU time spent inside calls (``provide-client-params``, the first event
    of a call, to ``after-call``, its last)."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.calls: list[tuple[str, str, str, dict]] = []
        self.paused = False
        self.in_calls = [0.0, 0.0]  # wall s, CPU s
        self._opened: tuple[float, float] | None = None
        events = session.events  # the botocore session's emitter
        events.register("provide-client-params", self._seen)
        events.register("after-call", self._closed)
        events.register("after-call-error", self._closed)

    def _seen(self, params: dict, model: Any, **_: Any) -> None:
        if self.paused:
            return
        caller = "other"
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            found = next((who for prefix, who in CALLERS if module.startswith(prefix)), None)
            if found:
                caller = found
                break
            frame = frame.f_back
        service = model.service_model.service_name
        self.calls.append((caller, service, model.name, copy.deepcopy(params)))
        self._opened = (time.perf_counter(), time.process_time())

    def _closed(self, **_: Any) -> None:
        if self.paused or self._opened is None:
            return
        wall, cpu = self._opened
        self.in_calls[0] += time.perf_counter() - wall
        self.in_calls[1] += time.process_time() - cpu
        self._opened = None

    def take(self) -> tuple[list[tuple[str, str, str, dict]], tuple[float, float]]:
        calls, self.calls = self.calls, []
        spent, self.in_calls = tuple(self.in_calls), [0.0, 0.0]
        return calls, (spent[0], spent[1])


class Context:
    """The Lambda context fields the handler and Powertools read."""

    function_name = "auto-remediation-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = build(
        partition_of(REGION), "lambda", REGION, ACCOUNT, "function:auto-remediation-bench"
    )

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class BenchWorld:
    """One boto3 session for setup and handler alike (loading models once), recorded, with
    the drill's stand-ins for the APIs moto lacks (provisioned concurrency, Logs Insights)."""

    def __init__(self) -> None:
        from serverless_remediation.remediate.drill.gaps import Gaps
        from serverless_remediation.remediate.emulator import ACCOUNT, REGION
        from serverless_remediation.remediation.clients import Clients

        self.session = boto3.session.Session(region_name=REGION)
        self.gaps = Gaps(REGION, ACCOUNT)
        self.gaps.register(self.session)
        self.recorder = Recorder(self.session)
        self.recorder.paused = True
        self.clients = Clients(self.session)
        self.handler: Any = None

    def start_handler(self, playbook: dict, actions: list[str], workdir: Path) -> None:
        """The handler module, its pipeline built as ``handler.pipeline()`` builds it but
        from our session (so its calls are recorded)."""
        path = workdir / "playbook.json"
        path.write_text(json.dumps(playbook))
        os.environ.update(REMEDIATOR_ENV)
        os.environ["REMEDIATION_ACTIONS"] = ",".join(sorted(set(actions)))
        os.environ["PLAYBOOK_PATH"] = str(path)
        import serverless_remediation.remediation.handler as handler
        from serverless_remediation.remediation.clients import Clients
        from serverless_remediation.remediation.config import Settings
        from serverless_remediation.remediation.pipeline import Pipeline

        handler._pipeline = Pipeline(Settings.from_env(), Clients(self.session))
        self.handler = handler

    def deliver(self, event: dict) -> list[dict]:
        """Through ``lambda_handler``; a failure (which Lambda would retry) is a result too."""
        from serverless_remediation.remediation.pipeline import RemediationFailed

        try:
            return self.handler.lambda_handler(event, Context())["results"]
        except RemediationFailed as failed:
            return [{"outcome": "failed", "reason": str(failed)}]

    def clear_guards(self, target: str) -> None:
        clear_guards(self.clients, REMEDIATOR_ENV["AUDIT_TABLE"], target)

    def direct(self, calls: list[tuple[str, str, str, dict]]) -> tuple[float, float]:
        """Make the same calls straight through the clients: (wall s, CPU s)."""
        started, cpu = time.perf_counter(), time.process_time()
        for _, service, operation, params in calls:
            client = self.clients(service)
            # A conditional write made twice fails: the round trip is what counts.
            with contextlib.suppress(client.exceptions.ClientError):
                getattr(client, xform_name(operation))(**params)
        return time.perf_counter() - started, time.process_time() - cpu


def warm(switch: str, runs: int, workdir: Path) -> dict:
    from serverless_remediation.remediation.actions import REGISTRY

    # A revert needs an executed record to undo: with the switch at dry-run there is none.
    scenarios = [s for s in available(set(REGISTRY)) if switch == "on" or s.event is None]
    warmup = 2
    world = BenchWorld()
    reset(os.environ["AWS_ENDPOINT_URL"])
    create_core(world.clients, REMEDIATOR_ENV, switch)
    routes: dict[str, dict] = {}
    plan: list[tuple[Scenario, str, str, bool]] = []
    for scenario in scenarios:
        for i in range(warmup + runs):
            name = f"bench-{scenario.action}-{i}"
            target, params = scenario.make_target(world, name)
            action = scenario.route_action or scenario.action
            routes[name] = {"action": action, "target": target, "params": params}
            plan.append((scenario, name, target, i >= warmup))
    actions = [s.action for s in scenarios] + [s.route_action for s in scenarios if s.route_action]
    world.start_handler({"alarms": routes}, actions, workdir)
    samples: dict[str, dict[str, list]] = {
        s.action: {
            k: []
            for k in (
                "handler",
                "in_calls",
                "overhead",
                "cpu",
                "direct",
                "replayed",
                "calls",
                "duplicate_cpu",
            )
        }
        | {"outcomes": []}
        for s in scenarios
    }
    for scenario, name, target, timed in plan:
        if scenario.shared_target:
            world.clear_guards(target)
        event = scenario.event(world, name, target) if scenario.event else alarm_delivery(name)
        confirm_alarms(world.clients, event)
        world.recorder.paused = False
        started, cpu = time.perf_counter(), time.process_time()
        results = world.deliver(event)
        took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
        world.recorder.paused = True
        calls, (in_calls, in_calls_cpu) = world.recorder.take()
        direct, _ = world.direct(calls)
        duplicate = None
        if scenario.event is None:
            # the same alarm delivery again: the duplicate path (deduplicated, nothing changes)
            world.recorder.paused = False
            dup_started = time.process_time()
            world.deliver(event)
            dup_cpu = time.process_time() - dup_started
            world.recorder.paused = True
            _, (_, dup_in_calls_cpu) = world.recorder.take()
            duplicate = (dup_cpu - dup_in_calls_cpu) * 1000
        if not timed:
            continue
        got = samples[scenario.action]
        if duplicate is not None:
            got["duplicate_cpu"].append(duplicate)
        got["handler"].append(took * 1000)
        got["in_calls"].append(in_calls * 1000)
        got["overhead"].append((took - in_calls) * 1000)
        got["cpu"].append((took_cpu - in_calls_cpu) * 1000)
        got["direct"].append(direct * 1000)
        got["replayed"].append((took - direct) * 1000)
        got["calls"].append([[c[0], c[1], c[2]] for c in calls])
        got["outcomes"].extend(r["outcome"] for r in results)
    out = {}
    for scenario in scenarios:
        got = samples[scenario.action]
        out[scenario.action] = {
            "handler_ms": median(got["handler"]),
            "in_calls_ms": median(got["in_calls"]),
            "overhead_ms": median(got["overhead"]),
            "overhead_cpu_ms": median(got["cpu"]),
            "duplicate_cpu_ms": median(got["duplicate_cpu"]) if got["duplicate_cpu"] else None,
            "direct_ms": median(got["direct"]),
            "overhead_vs_replay_ms": median(got["replayed"]),
            "runs": len(got["overhead"]),
            "outcomes": sorted(set(got["outcomes"])),
            "calls": got["calls"],
        }
    return out


def storm(runs: int, workdir: Path, action: str = "rollback") -> dict:
    world = BenchWorld()
    rates: list[float] = []
    cpu: list[float] = []
    server_cpu: list[float] = []
    server_pid = int(os.environ["BENCH_SERVER_PID"])
    outcomes_seen: dict[str, int] = {}
    rss_before = rss_after = 0
    rss_init = 0.0
    rss_runs: list[float] = []  # this process's resident set after each 1,000 deliveries
    for run in range(runs):
        reset(os.environ["AWS_ENDPOINT_URL"])
        create_core(world.clients, REMEDIATOR_ENV, "on")
        routes, deliveries = storm_setup(world, action, run)
        if world.handler is None:
            world.start_handler({"alarms": routes}, [action], workdir)  # init
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rss_init = rss_now_mb()
        counts: dict[str, int] = {}
        server_started = cpu_seconds(server_pid)
        cpu_started = time.process_time()
        started = time.perf_counter()
        for event in deliveries:
            for result in world.deliver(event):
                counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
        took = time.perf_counter() - started
        cpu.append((time.process_time() - cpu_started) * 1000 / len(deliveries))
        server_cpu.append((cpu_seconds(server_pid) - server_started) * 1000 / len(deliveries))
        rates.append(len(deliveries) / took)
        outcomes_seen = counts
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_runs.append(rss_now_mb())
    return {
        "action": action,
        "events_per_s": median(rates),
        "cpu_ms_per_event": median(cpu),
        "emulator_cpu_ms_per_event": median(server_cpu),
        "runs": len(rates),
        "deliveries": STORM_DELIVERIES,
        "transitions": STORM_TRANSITIONS,
        "targets": STORM_TARGETS,
        "outcomes_last_run": outcomes_seen,
        "peak_rss_mb": rss_after / 1024,
        "rss_before_mb": rss_before / 1024,
        "rss_init_mb": rss_init,
        "rss_after_1000_mb": rss_runs[0],
        "rss_after_all_mb": rss_runs[-1],
        "events_all": len(rss_runs) * STORM_DELIVERIES,
    }


def rss_now_mb() -> float:
    """This process's resident set now (Linux /proc), not its peak."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("what", choices=["warm", "storm"])
    parser.add_argument("--switch", default="on", choices=["on", "dry-run"])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    workdir = args.out.parent
    if args.what == "warm":
        result = warm(args.switch, args.runs, workdir)
    else:
        result = storm(args.runs, workdir)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
