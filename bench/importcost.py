"""Where a remediator's cold init goes: ``python -m bench.importcost [--runs N]``.

A fresh process per run imports, in order, what ``remediation.handler`` pulls in and then
builds its clients, timing each stage in CPU ms (the median over runs is printed). Stages
after ``import boto3`` are what a remediator adds to the boto3 floor. Bytecode comes from a
warmed cache, as in the cold-init benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.cold import LAMBDA_PATH, REMEDIATOR_ENV, ROOT, _base_env
from bench.stats import median
from serverless_remediation.stacks.constructs.remediators import action_modules

STAGES = r"""
import json, time
clock = time.process_time
marks = [("start", clock())]
def mark(name):
    marks.append((name, clock()))
import boto3, botocore.config
mark("import boto3")
session = boto3.session.Session()
mark("boto3 Session()")
import aws_lambda_powertools.logging
mark("powertools: logging")
import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch
mark("powertools: metrics (EMF)")
import aws_lambda_powertools.utilities.parameters
mark("powertools: parameters (switch)")
import remediation.models
mark("remediation.models")
import remediation.clients, remediation.guards, remediation.playbook, remediation.config
mark("remediation clients, guards, playbook, config")
import remediation.audit, remediation.notify, remediation.intake, remediation.gate
mark("remediation audit, notify, intake, gate")
import remediation.actions
mark("remediation.actions (the rollback remediator's modules)")
import remediation.pipeline, remediation.handler
mark("remediation pipeline, handler")
from remediation.clients import Clients
from remediation.config import Settings
settings = Settings.from_env()
clients = Clients(session)
mark("Settings.from_env (playbook)")
clients("dynamodb")
mark("client: dynamodb (the first)")
clients("ssm")
mark("client: ssm")
clients("sns")
mark("client: sns")
print(json.dumps([(n, (t - marks[i][1]) * 1000) for i, (n, t) in enumerate(marks[1:])]))
"""

ACTIONS_ONE_BY_ONE = r"""
import json, sys, time
import boto3, botocore.config, aws_lambda_powertools.logging
import remediation.models, remediation.clients
# remediation.actions imports every action module: stub it so each can be timed alone.
import types, importlib
package = types.ModuleType("remediation.actions")
package.__path__ = [str(__import__("pathlib").Path(remediation.models.__file__).parent / "actions")]
sys.modules["remediation.actions"] = package
out = []
import pkgutil
found = pkgutil.iter_modules(package.__path__)
names = ["base", *sorted(m.name for m in found if m.name not in ("base", "arns"))]
for name in names:
    started = time.process_time()
    importlib.import_module(f"remediation.actions.{name}")
    out.append((f"  remediation.actions.{name}", (time.process_time() - started) * 1000))
print(json.dumps(out))
"""


def measure(code: str, runs: int, env: dict[str, str]) -> list[tuple[str, float]]:
    samples: list[list[tuple[str, float]]] = []
    python = str(ROOT / ".venv" / "bin" / "python")
    for i in range(runs + 1):
        done = subprocess.run(
            [python, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        if i:  # the first run warms the bytecode cache
            samples.append(json.loads(done.stdout))
    names = [name for name, _ in samples[0]]
    return [(name, median([s[i][1] for s in samples])) for i, name in enumerate(names)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.importcost")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-importcost-") as tmp:
        book = Path(tmp) / "playbook.json"
        book.write_text('{"alarms": {}}')
        env = {
            **_base_env(Path(tmp) / "pycache"),
            **REMEDIATOR_ENV,
            "REMEDIATION_ACTIONS": "rollback",
            **action_modules("rollback", json.loads(book.read_text())),
            "PLAYBOOK_PATH": str(book),
            **LAMBDA_PATH,
        }
        stages = measure(STAGES, args.runs, env)
        actions = measure(ACTIONS_ONE_BY_ONE, args.runs, env)
    floor = sum(ms for name, ms in stages[:2])
    print(f"CPU ms, median of {args.runs} fresh processes")
    for name, ms in stages:
        share = f"{100 * ms / floor:5.1f} % of boto3 + Session" if floor else ""
        print(f"{ms:8.1f}  {share}  {name}")
        if name.startswith("remediation.actions"):
            for sub, sub_ms in actions:
                print(f"{sub_ms:8.1f}  {'':26}  {sub}")

    def total(prefix: str) -> float:
        return sum(ms for name, ms in stages if name.startswith(prefix))

    print("Beyond the floor (boto3 + Session + one client):")
    print(f"{total('powertools'):8.1f}  Powertools imports")
    print(f"{total('remediation') + total('Settings'):8.1f}  remediation/ imports and settings")
    print(f"{total('client: ssm') + total('client: sns'):8.1f}  the SSM and SNS clients")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
