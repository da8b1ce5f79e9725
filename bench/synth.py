"""Synth time and memory for environments of N services.

Each size gets a generated environment, made the way the infra tests make theirs
(``tests/infra/test_scale.py::big_environment``: mostly Lambda services, some of every kind,
one WAF service; N services in all). Without that module, the ``prod-example`` services of
``cdk.json`` are cycled with numbered names instead. A temporary
project directory holds a ``cdk.json`` with that environment (and the repo's ``app`` command);
``cdk synth --quiet`` runs there as a user would run it, cdk-nag included. Wall time is the
whole command; memory is the peak RSS of its largest process (``RUSAGE_CHILDREN`` in a
wrapper process per run).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"

WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
took = time.perf_counter() - started
if done.returncode:
    sys.stderr.write(done.stderr[-3000:])
    sys.exit(done.returncode)
print(took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def available() -> str | None:
    """Why synth cannot be measured, or None when it can."""
    if not (ROOT / "app.py").exists() or not (ROOT / "cdk.json").exists():
        return "no CDK app (app.py, cdk.json)"
    if not CDK.exists():
        return "no CDK CLI (node_modules/.bin/cdk: run make install)"
    return None


def _numbered(name: str, value: Any, i: int) -> Any:
    """``value`` with every name-like string made unique for copy ``i``."""
    if isinstance(value, dict):
        return {k: _numbered(k, v, i) for k, v in value.items()}
    if not isinstance(value, str) or name in {"kind", "alias", "stage", "namespace", "scope"}:
        return value
    if name == "api_id":
        return f"b{i:04d}{value}"[:10]
    if name == "ip_set_id":
        return f"{i:08d}{value[8:]}"
    if name in {"function", "table", "api_name", "ip_set_name", "log_group", "flag_parameter"}:
        return f"{value}-{i}"
    return value


def environment(context: dict[str, Any], services: int) -> tuple[dict[str, Any], str]:
    """An environment with ``services`` services, and where its shape comes from."""
    try:
        from tests.infra.test_scale import big_environment
    except ImportError:
        return cycled(context, services), "cdk.json prod-example, cycled"
    # big_environment(n) adds one WAF service to its n.
    return big_environment(services - 1), "tests/infra/test_scale.py big_environment"


def cycled(context: dict[str, Any], services: int) -> dict[str, Any]:
    """The ``prod-example`` environment with ``services`` numbered services."""
    base = copy.deepcopy(context["environments"]["prod-example"])
    kinds = list(base["services"].items())
    generated = {}
    for i in range(services):
        name, body = kinds[i % len(kinds)]
        generated[f"{name}-{i}"] = _numbered("", body, i)
    base["services"] = generated
    base["description"] = f"bench: {services} services"
    return base


def measure(
    sizes: list[int], runs: int, *, keep: tuple[int, Path] | None = None
) -> dict[int, dict]:
    """Per size: median wall seconds, median peak RSS (MiB) and alarm count of one run.

    ``keep=(size, path)`` copies that size's cloud assembly to ``path`` (environment
    ``bench<size>``).
    """
    from bench.stats import median

    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    shape = ""
    environments = {}
    for size in sizes:
        environments[f"bench{size}"], shape = environment(context, size)
    out: dict[int, dict] = {}
    with _project(environments, "bench-synth-") as synth:
        samples: dict[int, list[tuple[float, float]]] = {s: [] for s in sizes}
        alarms: dict[int, int] = {}
        for _ in range(runs):
            for size in sizes:  # interleaved: load on the machine falls on every size alike
                assembly = synth(f"bench{size}", f"{size} services")
                samples[size].append(synth.last)
                alarms[size] = _count(assembly, "AWS::CloudWatch::Alarm")
        if keep is not None:
            shutil.copytree(synth.work / f"out-bench{keep[0]}", keep[1])
        for size in sizes:
            got = samples[size]
            out[size] = {
                "seconds": median([s for s, _ in got]),
                "peak_rss_mb": median([m for _, m in got]),
                "alarms": alarms[size],
                "runs": len(got),
                "configs": shape,
            }
    return out


class _Synth:
    """``cdk synth --quiet`` of one environment of a temporary project, as a user runs it
    (cdk-nag included), timed in a wrapper process; ``last``: (wall s, peak RSS MiB)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        self.env["CDK_DISABLE_VERSION_CHECK"] = "1"
        self.last = (0.0, 0.0)

    def __call__(self, name: str, what: str) -> Path:
        assembly = self.work / f"out-{name}"
        shutil.rmtree(assembly, ignore_errors=True)
        command = [str(CDK), "synth", "--quiet", "-c", f"env={name}", "-o", str(assembly)]
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, *command],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"cdk synth of {what} failed: {done.stderr}")
        seconds, rss_kb = done.stdout.split()
        self.last = (float(seconds), float(rss_kb) / 1024)
        return assembly


@contextlib.contextmanager
def _project(environments: dict[str, Any], prefix: str) -> Iterator[_Synth]:
    """A temporary project: the repo's ``app`` command and context, plus ``environments``."""
    project = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))
    context = copy.deepcopy(project["context"])
    context["environments"].update(environments)
    app = project["app"].replace(".venv/bin/python", str(ROOT / ".venv" / "bin" / "python"))
    app = app.replace("app.py", str(ROOT / "app.py"))
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        (work / "cdk.json").write_text(json.dumps({"app": app, "context": context}))
        yield _Synth(work)


#: services per generated spoke (the issue's figure: a hub plus N spokes of 15 services)
SPOKE_SERVICES = 15


def hub_environment(spokes: int, services: int = SPOKE_SERVICES) -> dict[str, Any]:
    """A hub of ``services`` services with ``spokes`` spokes of as many each: Lambda
    functions, DynamoDB tables and HTTP APIs in turn (the kinds a spoke may route; WAF stays
    in the hub). API ids differ between accounts: an id without an account in its ARN, in
    two accounts, is refused at synth."""

    def generated(prefix: str, number: int) -> dict[str, Any]:
        kinds = [
            lambda i: {"kind": "lambda", "function": f"{prefix}-fn-{i}", "alias": "live"},
            lambda i: {"kind": "dynamodb", "table": f"{prefix}-table-{i}"},
            lambda i: {
                "kind": "http-api",
                "api_id": f"h{number:04d}{i:05d}",
                "stage": "prod",
                "function": f"{prefix}-fn-{i}",
            },
        ]
        return {f"{prefix}-svc{i}": kinds[i % len(kinds)](i) for i in range(services)}

    return {
        "description": f"bench: a hub and {spokes} spokes of {services} services",
        "account": "210987654321",
        "region": "eu-west-1",
        "services": generated("hub", 0),
        "organization": {
            "id": "o-benchorg001",
            "spokes": {
                f"s{n:03d}": {
                    "account": f"{300000000000 + n}",
                    "services": generated(f"s{n}", n + 1),
                }
                for n in range(spokes)
            },
        },
    }


def measure_hub(sizes: list[int], runs: int) -> dict[int, dict]:
    """Per number of spokes: median wall seconds of ``cdk synth`` (cdk-nag included), the
    stacks, the resources of the hub's core stack, the most in any one stack, and in all."""
    from bench.stats import median

    out: dict[int, dict] = {}
    with _project({f"hub{n}": hub_environment(n) for n in sizes}, "bench-hub-") as synth:
        seconds: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(runs):
            for size in sizes:
                synth(f"hub{size}", f"a hub of {size} spokes")
                seconds[size].append(synth.last[0])
        for size in sizes:
            counts = _per_stack(synth.work / f"out-hub{size}")
            core = next(n for n in counts if n.endswith("-core"))
            out[size] = {
                "seconds": median(seconds[size]),
                "runs": len(seconds[size]),
                "stacks": len(counts),
                "core_resources": counts[core],
                "max_resources": max(counts.values()),
                "resources": sum(counts.values()),
            }
    return out


def _per_stack(assembly: Path) -> dict[str, int]:
    return {
        template.name.removesuffix(".template.json"): len(
            json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        )
        for template in assembly.glob("*.template.json")
    }


def _count(assembly: Path, kind: str) -> int:
    total = 0
    for template in assembly.glob("*.template.json"):
        resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        total += sum(1 for r in resources.values() if r.get("Type") == kind)
    return total
