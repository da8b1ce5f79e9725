"""Cold init: a fresh Python process per measurement, timed from inside the process.

Three kinds, interleaved round-robin so machine noise falls on all of them alike:

- floor: ``import boto3`` and one client (the least any Python remediator Lambda pays);
  and ``floor-3``: the same with the DynamoDB, SSM and SNS clients a remediator builds;
- ours: import ``remediation.handler`` and build its pipeline (Settings, playbook, the
  DynamoDB, SSM and SNS clients), once per remediator (``REMEDIATION_ACTIONS=<action>``,
  and the action modules the CDK app names for it in ``REMEDIATION_ACTION_MODULES``);
- peer: a Cloud Custodian policy Lambda's one-time init (``bench/peer_c7n.py``), run in
  the bench venv, whose boto3 floor is timed too;
- first event (``first:<action>``, with ``emulator``): init as above, then the handler takes
  one alarm that executes its action on a fresh target in the emulator, as Lambda bills a
  cold start (init + first event). Its floor (``floor-path:<action>``): boto3 and exactly the
  clients that event's path made (its warm-up run names them). The setup of each run (a
  fresh target, its alarm confirmed, the route in the playbook) and the drill's stand-ins for
  what moto lacks (``remediate.drill.gaps``, registered between init and event) are untimed.
  revert is left out: its event needs an executed record to undo.

The timer starts at the first line of the ``-c`` script: interpreter start-up is the same
for all and is left out. Every process reads compiled bytecode from a bench-owned cache
(``PYTHONPYCACHEPREFIX``, warmed by one untimed run of each kind), so all kinds are
compared on imports, not on compiling source.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import boto3

from bench.emulated import clear_guards, create_core, reset
from bench.stats import median
from serverless_remediation.remediate.emulator import ACCOUNT, REGION
from serverless_remediation.remediation.targets import build, partition_of
from serverless_remediation.stacks.constructs.remediators import action_modules

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "peer_c7n.py"

FLOOR = """
import time
started, cpu = time.perf_counter(), time.process_time()
import boto3
boto3.session.Session().client("lambda")
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""

# The clients a remediator builds at init (audit, switch, notice): what our code adds beyond
# them is the rest of the gap to the floor.
FLOOR_3 = """
import time
started, cpu = time.perf_counter(), time.process_time()
import boto3
session = boto3.session.Session()
for service in ("dynamodb", "ssm", "sns"):
    session.client(service)
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""

OURS = """
import time
started, cpu = time.perf_counter(), time.process_time()
import remediation.handler
remediation.handler.pipeline()
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""

# boto3 and exactly the clients a first event's path made (BENCH_CLIENTS, comma-separated)
FLOOR_PATH = """
import os, time
started, cpu = time.perf_counter(), time.process_time()
import boto3
session = boto3.session.Session()
for service in os.environ["BENCH_CLIENTS"].split(","):
    session.client(service)
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""

# Init as OURS, then one event through lambda_handler (BENCH_FIRST_EVENT: the event and the
# stand-ins' log lines); prints init and event times, the outcome and the clients made.
FIRST = """
import json, os, time, uuid
started, cpu = time.perf_counter(), time.process_time()
import remediation.handler
pipeline = remediation.handler.pipeline()
init = ((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
world = json.load(open(os.environ["BENCH_FIRST_EVENT"]))
from serverless_remediation.remediate.drill.gaps import Gaps
gaps = Gaps(os.environ["AWS_REGION"], os.environ["DEPLOYMENT_ACCOUNT"])
gaps.log_lines.update(world["log_lines"])
gaps.register(pipeline.clients.session())
class Context:
    function_name, function_version, memory_limit_in_mb = "bench", "$LATEST", 256
    invoked_function_arn = world["function_arn"]
    aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 60_000
started, cpu = time.perf_counter(), time.process_time()
try:
    outcome = remediation.handler.lambda_handler(world["event"], Context())["results"][0]["outcome"]
except Exception as failed:
    outcome = f"failed: {failed}"
event = ((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
print(json.dumps({"init": init, "event": event, "outcome": outcome,
                  "clients": sorted(pipeline.clients._made)}))
"""

# What a remediator's environment holds (the CDK app sets these; see docs/cdk.md; Lambda
# sets AWS_REGION, in FAKE_AWS below). The emulator's account and region.
REMEDIATOR_ENV = {
    "REMEDIATION_ENV": "bench",
    "AUDIT_TABLE": "auto-remediation-bench-audit",
    "NOTICE_TOPIC_ARN": build(
        partition_of(REGION), "sns", REGION, ACCOUNT, "auto-remediation-bench-notices"
    ),
    "DEPLOYMENT_ACCOUNT": ACCOUNT,
    "DEPLOYMENT_PARTITION": partition_of(REGION),
    "SWITCH_PARAMETER": "/auto-remediation/bench/switch",
    "SWITCH_OVERRIDE_PREFIX": "/auto-remediation/bench/switch/",
    "POWERTOOLS_SERVICE_NAME": "auto-remediation",
}

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


#: Lambda's view of the code: the asset's top-level ``remediation`` package (installed, it is
#: ``serverless_remediation.remediation``; the cold-init children import it as Lambda does)
LAMBDA_PATH = {"PYTHONPATH": str(ROOT / "functions")}


def _base_env(cache: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "REMEDIATION_"))
    }
    env.update(FAKE_AWS)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _child(python: str, code: list[str], env: dict[str, str], cwd: Path) -> str:
    """The last line the child printed."""
    done = subprocess.run(
        [python, *code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold init run failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def _run(python: str, code: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall ms, CPU ms) the child measured."""
    wall, cpu = _child(python, code, env, cwd).split()
    return float(wall), float(cpu)


class FirstEvents:
    """Per run, a fresh target in the emulator at ``endpoint_url`` and the alarm event that
    executes ``action`` on it (confirmed in the emulator's CloudWatch): untimed setup."""

    def __init__(self, endpoint_url: str, work: Path) -> None:
        from serverless_remediation.remediate.drill.gaps import Gaps
        from serverless_remediation.remediation.clients import Clients

        session = boto3.session.Session(
            region_name=REGION,
            aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        )
        self.clients = Clients(session, endpoint_url=endpoint_url)
        self.gaps = Gaps(REGION, ACCOUNT)
        self.work = work
        self.count = 0
        reset(endpoint_url)
        create_core(self.clients, REMEDIATOR_ENV, "on")

    def deliver(self, event: dict) -> list[dict]:
        raise NotImplementedError  # only revert's scenario delivers; it is not measured

    def prepare(self, action: str) -> dict[str, str]:
        """The environment of one run: its playbook (one route) and its event."""
        from bench.scenarios import SCENARIOS, alarm_delivery, confirm_alarms

        self.count += 1
        name = f"cold-{action}-{self.count}"
        self.gaps.log_lines.clear()
        scenario = SCENARIOS[action]
        target, params = scenario.make_target(self, name)
        if scenario.shared_target:
            clear_guards(self.clients, REMEDIATOR_ENV["AUDIT_TABLE"], target)
        event = alarm_delivery(name)
        confirm_alarms(self.clients, event)
        playbook = self.work / f"{name}.json"
        book = {"alarms": {name: {"action": action, "target": target, "params": params}}}
        playbook.write_text(json.dumps(book))
        world = self.work / f"{name}-event.json"
        world.write_text(
            json.dumps(
                {
                    "event": event,
                    "log_lines": dict(self.gaps.log_lines),
                    "function_arn": build(
                        partition_of(REGION), "lambda", REGION, ACCOUNT, "function:bench"
                    ),
                }
            )
        )
        return {"PLAYBOOK_PATH": str(playbook), "BENCH_FIRST_EVENT": str(world)}


#: the remediators whose first event is measured (revert's needs an executed record first)
FIRST_ACTIONS = ("rollback", "capacity-bump", "flip-flag", "cost-guard", "waf-block")


def measure(
    actions: list[str],
    *,
    main_python: str,
    peer_python: str | None,
    runs: int,
    playbook: dict | None = None,
    emulator: str | None = None,
) -> dict[str, dict]:
    """Median wall and CPU ms per kind: ``floor``, ``floor-3``, ``ours:<action>``, ``peer``,
    ``peer-floor``; with ``emulator`` (its endpoint URL), ``first:<action>`` (init and first
    event apart, and their sum) and ``floor-path:<action>``."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        work = Path(tmp)
        cache = work / "pycache"
        env = _base_env(cache)
        kinds: dict[str, tuple[str, list[str], dict[str, str]]] = {
            "floor": (main_python, ["-c", FLOOR], env),
            "floor-3": (main_python, ["-c", FLOOR_3], env),
        }
        remediator_env: dict[str, dict[str, str]] = {}
        for action in actions:
            book = playbook or {"alarms": {}, "inventory": []}
            path = work / f"playbook-{action}.json"
            path.write_text(json.dumps(book))
            remediator_env[action] = {
                **env,
                **REMEDIATOR_ENV,
                "REMEDIATION_ACTIONS": action,
                "PLAYBOOK_PATH": str(path),
                **LAMBDA_PATH,
                # the action modules the CDK app names for this remediator
                **action_modules(action, book),
            }
            kinds[f"ours:{action}"] = (main_python, ["-c", OURS], remediator_env[action])
        if peer_python:
            peer_dir = work / "peer"
            peer_dir.mkdir()
            _run_setup = [peer_python, str(PEER_SCRIPT), str(peer_dir), "--write-config"]
            subprocess.run(_run_setup, env=env, cwd=ROOT, check=True, capture_output=True)
            kinds["peer"] = (peer_python, [str(PEER_SCRIPT), str(peer_dir)], env)
            kinds["peer-floor"] = (peer_python, ["-c", FLOOR], env)
        for python, code, kind_env in kinds.values():  # warm the bytecode cache, untimed
            _run(python, code, kind_env, ROOT)
        firsts = FirstEvents(emulator, work) if emulator else None
        first_env: dict[str, dict[str, str]] = {}
        if firsts is not None:
            for action in (a for a in FIRST_ACTIONS if a in actions):
                first_env[action] = {**remediator_env[action], "AWS_ENDPOINT_URL": emulator or ""}
                # the warm-up run names the clients the path makes: the path's floor
                got = _first(main_python, first_env[action], firsts.prepare(action), action)
                kinds[f"floor-path:{action}"] = (
                    main_python,
                    ["-c", FLOOR_PATH],
                    {**env, "BENCH_CLIENTS": ",".join(got["clients"])},
                )
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        first: dict[str, dict[str, list]] = {
            a: {"init": [], "event": [], "clients": []} for a in first_env
        }
        for _ in range(runs):
            for kind, (python, code, kind_env) in kinds.items():
                samples[kind].append(_run(python, code, kind_env, ROOT))
            for action, action_env in first_env.items():
                assert firsts is not None
                got = _first(main_python, action_env, firsts.prepare(action), action)
                first[action]["init"].append(got["init"])
                first[action]["event"].append(got["event"])
                first[action]["clients"] = got["clients"]
        profiled = "rollback" if "rollback" in actions else actions[0]
        imports = import_times(main_python, remediator_env[profiled], runs)
        imports["remediator"] = profiled
    out: dict[str, dict] = {
        "imports": imports,
    } | {
        kind: {
            "wall_ms": median([w for w, _ in got]),
            "cpu_ms": median([c for _, c in got]),
            "runs": len(got),
        }
        for kind, got in samples.items()
    }
    for action, got in first.items():
        total = [(i[0] + e[0], i[1] + e[1]) for i, e in zip(got["init"], got["event"], strict=True)]
        out[f"first:{action}"] = {
            "init_wall_ms": median([w for w, _ in got["init"]]),
            "init_cpu_ms": median([c for _, c in got["init"]]),
            "event_wall_ms": median([w for w, _ in got["event"]]),
            "event_cpu_ms": median([c for _, c in got["event"]]),
            "wall_ms": median([w for w, _ in total]),
            "cpu_ms": median([c for _, c in total]),
            "clients": got["clients"],
            "runs": len(total),
        }
    return out


#: -X importtime's module names, grouped: whose import time is it
IMPORT_GROUPS = (
    ("ours", ("remediation",)),
    ("powertools", ("aws_lambda_powertools",)),
    ("boto3", ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")),
)


def import_times(main_python: str, env: dict[str, str], runs: int) -> dict[str, Any]:
    """``python -X importtime`` of a remediator's init (``OURS``): every module's self time,
    charged to the nearest package of ``IMPORT_GROUPS`` that imported it (a standard-library
    module botocore imports is boto3's cost; one only our code imports is ours; the rest,
    Python's own start-up, is "other"), medians over ``runs``; and the heaviest modules of
    ours and of Powertools."""
    totals: dict[str, list[float]] = {}
    modules: dict[str, list[float]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [main_python, "-X", "importtime", "-c", OURS],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        sums: dict[str, float] = {"all": 0.0}
        for module, ms, group in _charged(done.stderr):
            sums["all"] += ms
            sums[group] = sums.get(group, 0.0) + ms
            if module.split(".")[0] in ("remediation", "aws_lambda_powertools"):
                modules.setdefault(module, []).append(ms)
        for group, ms in sums.items():
            totals.setdefault(group, []).append(ms)
    heaviest = sorted(((name, median(got)) for name, got in modules.items()), key=lambda kv: -kv[1])
    return {
        "groups_ms": {group: median(got) for group, got in totals.items()},
        "ours_top": [kv for kv in heaviest if kv[0].startswith("remediation")][:6],
        "powertools_top": [kv for kv in heaviest if kv[0].startswith("aws_lambda")][:6],
        "runs": runs,
    }


def _charged(importtime: str) -> list[tuple[str, float, str]]:
    """(module, self ms, group) per line of ``-X importtime`` output. The output is in
    post-order (a module after the ones it imported, nested one level deeper), so read
    backwards it lists each importer before its imports."""
    lines = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            self_us, _, name = line.removeprefix("import time:").split("|")
            lines.append((len(name) - len(name.lstrip()), name.strip(), int(self_us) / 1000))
    out: list[tuple[str, float, str]] = []
    importers: list[tuple[int, str]] = []  # (depth, group) of the modules above this one
    for depth, module, ms in reversed(lines):
        while importers and importers[-1][0] >= depth:
            importers.pop()
        root = module.split(".")[0]
        own = next((g for g, roots in IMPORT_GROUPS if root in roots), None)
        group = own or (importers[-1][1] if importers else "other")
        importers.append((depth, group))
        out.append((module, ms, group))
    return out


def _first(python: str, env: dict[str, str], run_env: dict[str, str], action: str) -> dict:
    got: dict = json.loads(_child(python, ["-c", FIRST], {**env, **run_env}, ROOT))
    if got["outcome"] != "executed":
        raise RuntimeError(f"cold first event, {action}: {got['outcome']}, not executed")
    return got


def source_compile_ms(main_python: str, runs: int) -> float:
    """Median extra CPU ms when ``remediation`` has no bytecode (a Lambda asset without .pyc:
    /var/task is read-only, so it compiles on every cold start)."""
    with tempfile.TemporaryDirectory(prefix="bench-nopyc-") as tmp:
        cache = Path(tmp) / "pycache"
        env = {
            **_base_env(cache),
            **REMEDIATOR_ENV,
            **LAMBDA_PATH,
            "REMEDIATION_ACTIONS": "rollback",
        }
        book = Path(tmp) / "playbook.json"
        book.write_text('{"alarms": {}}')
        env["PLAYBOOK_PATH"] = str(book)
        _run(main_python, ["-c", OURS], env, ROOT)  # bytecode for everything
        own = cache / str(ROOT.relative_to("/")) / "functions" / "remediation"
        with_pyc, without = [], []
        for _ in range(runs):
            with_pyc.append(_run(main_python, ["-c", OURS], env, ROOT)[1])
            _drop_pyc(own)
            without.append(_run(main_python, ["-c", OURS], env, ROOT)[1])
        return median(without) - median(with_pyc)


def _drop_pyc(folder: Path) -> None:
    for pyc in folder.rglob("*.pyc"):
        pyc.unlink()
