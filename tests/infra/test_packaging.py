"""What `pip install .` gives: the pins the tests ran, one top-level package, a working CLI.

The wheel is built from this checkout (setuptools follows the package's symbolic links and
ships copies); the fresh-virtualenv case installs it with its pinned dependencies and runs
`remediate` from another directory, as a new user would.
"""

# ruff: noqa: S603 (fixed commands: this interpreter, pip, the built CLI)
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line.strip())
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found


def test_pyproject_dependencies_are_the_tested_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {}
    for requirement in project["dependencies"]:
        m = PIN.match(requirement)
        assert m, f"{requirement}: pin it exactly (==), as requirements*.txt do"
        declared[m.group(1).lower()] = m.group(2)
    tested = pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-dev.txt")
    for name, version in declared.items():
        assert tested.get(name) == version, (
            f"{name}: pyproject {version}, tested {tested.get(name)}"
        )
    # everything the Lambda code and the CDK app need at run time is declared
    assert set(pins(ROOT / "requirements.txt")) <= set(declared)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("serverless_remediation-*.whl")
    return built


def test_the_wheel_ships_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"serverless_remediation"}
    for part in ("remediation/handler.py", "stacks/catalog.py", "remediate/cli.py"):
        assert f"serverless_remediation/{part}" in names
    # the Lambda code's data travels with it (schemas, the playbook is built at synth)
    ours = sorted(
        p.relative_to(ROOT / "functions").as_posix()
        for p in (ROOT / "functions" / "remediation").rglob("*.py")
    )
    assert all(f"serverless_remediation/{p}" in names for p in ours)


@pytest.mark.slow
def test_pip_install_in_a_fresh_virtualenv_gives_a_working_cli(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    remediate = venv / "bin" / "remediate"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.pop("REMEDIATE_PROJECT", None)
    elsewhere = ROOT / "docs"  # a subdirectory of the project, not its root

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(remediate), *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "drill" in helped.stdout
    assert (
        run("--version")
        .stdout.strip()
        .endswith(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    )
    planned = run("plan", "--env", "drill")
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert "rollback" in planned.stdout
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    for generic in ("remediation", "stacks", "remediate"):
        assert not (Path(site) / generic).exists(), f"{generic} landed in site-packages"
