"""``remediate drill``: the whole suite on the local emulator, from the synthesized stack.

``run()`` loads scenario files, synthesizes each environment they name (once), starts moto on
loopback, and runs every scenario: build the world from the template, drive the steps, check
the expectations, print the timeline, write the report.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from serverless_remediation.remediate.drill import report, scenario, template
from serverless_remediation.remediate.drill.runner import Failure, Run, Runner
from serverless_remediation.remediate.drill.world import World
from serverless_remediation.remediate.emulator import Emulator

__all__ = ["Failure", "Run", "run"]


def run(
    target: Path,
    *,
    root: Path,
    console: Console,
    report_path: Path | None = None,
    assembly: Path | None = None,
    emulator: Emulator | None = None,
) -> list[Run]:
    """Run every scenario under ``target``; return the runs (a run with failures failed)."""
    started = time.monotonic()
    scenarios = [scenario.load(path) for path in scenario.discover(target)]
    deployments = {}
    for env in sorted({s.env for s in scenarios}):
        if assembly is None:
            console.print(f"[dim]env {env}: npx cdk synth -c env={env} (skipped if up to date)[/]")
        built = assembly or template.synth(root, env)
        deployments[env] = template.load(built, env)
    runs: list[Run] = []
    own = emulator is None
    emu = emulator or Emulator().start()
    try:
        for item in scenarios:
            began = time.monotonic()
            world = World(emu, deployments[item.env])
            runner = Runner(world, item)
            try:
                result = runner.execute()
            except Exception as exc:  # one broken scenario must not hide the others' results
                result = runner.run
                result.failures.append(
                    Failure(item.name, 0, "the scenario to run", "no error", f"{exc!r}"[:500])
                )
            result.seconds = time.monotonic() - began
            report.print_run(console, result)
            runs.append(result)
    finally:
        if own:
            emu.stop()
    seconds = time.monotonic() - started
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        assemblies = ", ".join(f"`{_relative(d.assembly, root)}`" for d in deployments.values())
        header = (
            f"`remediate drill {target}` on {stamp}, against moto on loopback; "
            f"template: {assemblies}."
        )
        report_path.write_text(report.markdown(runs, seconds, header), encoding="utf-8")
    report.summary(console, runs, seconds, report_path)
    return runs


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return path
