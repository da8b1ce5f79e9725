"""Cold init: a fresh Python process per measurement, timed from inside the process.

Three kinds, interleaved round-robin so machine noise falls on all of them alike:

- floor: ``import boto3`` and one client (the least any Python remediator Lambda pays);
  and ``floor-3``: the same with the DynamoDB, SSM and SNS clients a remediator builds;
- ours: import ``remediation.handler`` and build its pipeline (Settings, playbook, the
  DynamoDB, SSM and SNS clients), once per remediator (``REMEDIATION_ACTIONS=<action>``,
  and the action modules the CDK app names for it in ``REMEDIATION_ACTION_MODULES``);
- peer: a Cloud Custodian policy Lambda's one-time init (``bench/peer_c7n.py``), run in
  the bench venv, whose boto3 floor is timed too.

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


def _run(python: str, code: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall ms, CPU ms) the child measured."""
    done = subprocess.run(
        [python, *code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold init run failed: {done.stderr.strip()[-2000:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def measure(
    actions: list[str],
    *,
    main_python: str,
    peer_python: str | None,
    runs: int,
    playbook: dict | None = None,
) -> dict[str, dict]:
    """Median wall and CPU ms per kind: ``floor``, ``floor-3``, ``ours:<action>``, ``peer``,
    ``peer-floor``."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        work = Path(tmp)
        cache = work / "pycache"
        env = _base_env(cache)
        kinds: dict[str, tuple[str, list[str], dict[str, str]]] = {
            "floor": (main_python, ["-c", FLOOR], env),
            "floor-3": (main_python, ["-c", FLOOR_3], env),
        }
        for action in actions:
            book = playbook or {"alarms": {}, "inventory": []}
            path = work / f"playbook-{action}.json"
            path.write_text(json.dumps(book))
            ours_env = {
                **env,
                **REMEDIATOR_ENV,
                "REMEDIATION_ACTIONS": action,
                "PLAYBOOK_PATH": str(path),
                **LAMBDA_PATH,
                # the action modules the CDK app names for this remediator
                **action_modules(action, book),
            }
            kinds[f"ours:{action}"] = (main_python, ["-c", OURS], ours_env)
        if peer_python:
            peer_dir = work / "peer"
            peer_dir.mkdir()
            _run_setup = [peer_python, str(PEER_SCRIPT), str(peer_dir), "--write-config"]
            subprocess.run(_run_setup, env=env, cwd=ROOT, check=True, capture_output=True)
            kinds["peer"] = (peer_python, [str(PEER_SCRIPT), str(peer_dir)], env)
            kinds["peer-floor"] = (peer_python, ["-c", FLOOR], env)
        for python, code, kind_env in kinds.values():  # warm the bytecode cache, untimed
            _run(python, code, kind_env, ROOT)
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for _ in range(runs):
            for kind, (python, code, kind_env) in kinds.items():
                samples[kind].append(_run(python, code, kind_env, ROOT))
    return {
        kind: {
            "wall_ms": median([w for w, _ in got]),
            "cpu_ms": median([c for _, c in got]),
            "runs": len(got),
        }
        for kind, got in samples.items()
    }


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
