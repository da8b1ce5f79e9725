"""Each remediator imports only the action modules it runs (``REMEDIATION_ACTION_MODULES``):
its action's and its follow-up steps'; revert, which may undo anything, imports every one.
Checked on the synthesized drill template, then in a fresh interpreter on the asset itself,
as Lambda imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from serverless_remediation.remediation.actions import MODULES_VARIABLE, REGISTRY, module_of
from tests.infra.conftest import Synth


def remediators(synth: Synth) -> dict[str, dict[str, Any]]:
    """action -> the function's properties."""
    found = {}
    for fn in synth.resources("AWS::Lambda::Function").values():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "REMEDIATION_ACTIONS" in variables:
            found[variables["REMEDIATION_ACTIONS"]] = fn
    return found


def asset_of(synth: Synth, fn: dict[str, Any]) -> Path:
    """The function's staged asset: ``remediation/`` and ``playbook.json``."""
    return Path(synth.app.outdir) / fn["Metadata"]["aws:asset:path"]


def test_each_remediator_names_its_action_and_follow_up_modules(drill: Synth) -> None:
    functions = remediators(drill)
    book = json.loads((asset_of(drill, functions["rollback"]) / "playbook.json").read_text())
    routes = [*book["alarms"].values(), *book.get("budgets", {}).values(), *book["inventory"]]
    for action, fn in functions.items():
        variables = fn["Properties"]["Environment"]["Variables"]
        if action == "revert":
            assert MODULES_VARIABLE not in variables  # every module: it may undo any action
            continue
        steps = {s["action"] for r in routes if r["action"] == action for s in r.get("then", [])}
        wanted = {module_of(a) for a in {action} | steps}
        assert set(variables[MODULES_VARIABLE].split(",")) == wanted, action
    # the drill's rollback has a follow-up (a CloudFront invalidation): both modules load
    assert functions["rollback"]["Properties"]["Environment"]["Variables"][MODULES_VARIABLE] == (
        "cdn_invalidate,rollback"
    )


def test_the_asset_loads_only_the_named_modules(drill: Synth) -> None:
    fn = remediators(drill)["rollback"]
    asset = asset_of(drill, fn)
    modules = fn["Properties"]["Environment"]["Variables"][MODULES_VARIABLE]
    probe = (
        "import json, sys\n"
        "import remediation.actions as actions\n"
        "print(json.dumps([sorted(actions.REGISTRY), sorted(m for m in sys.modules"
        " if m.startswith('remediation.actions.'))]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(asset), MODULES_VARIABLE: modules}
    done = subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    registered, loaded = json.loads(done.stdout)
    assert registered == ["cdn-invalidate", "rollback"]
    assert all(m.split(".")[2] in {"base", "arns", "rollback", "cdn_invalidate"} for m in loaded)
    assert len(REGISTRY) > len(registered)  # the tests' process has every action


def test_a_module_name_that_does_not_exist_fails_the_cold_start(drill: Synth) -> None:
    fn = remediators(drill)["rollback"]
    asset = asset_of(drill, fn)
    env = {**os.environ, "PYTHONPATH": str(asset), MODULES_VARIABLE: "rollback,nope"}
    done = subprocess.run(
        [sys.executable, "-c", "import remediation.actions"], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no action module 'nope'" in done.stderr
