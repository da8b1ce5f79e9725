"""Every command in README.md and docs/ works when pasted.

Commands are the lines of fenced shell blocks (```bash, ```sh, ```console) and the inline
code spans that start with a command of this project (``make``, ``npx cdk``, ``remediate``).

- A block marked ```` ```bash runnable ```` runs, line by line, from the repository root, on
  the local emulator; each line must exit 0 (``AUDIT_ID`` stands for the audit id the lines
  before it printed).
- Every other command is checked without running it: a ``make`` target exists and every
  ``ENV=`` names an environment of cdk.json; ``npx cdk`` has a real subcommand and its
  ``-c env=`` an environment; a ``remediate`` line parses against the CLI itself (commands,
  options, choices), its ``--env`` is an environment, the scenario files it names exist and
  its ``--cdk-out`` is where ``make synth`` writes. Tools not of this project (aws, git, pip)
  are left alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import typer.main

# typer vendors its own click (typer._click, pinned with typer): its parser is the CLI's
from typer._click.core import Command as ClickCommand
from typer._click.core import Context
from typer._click.exceptions import UsageError

from serverless_remediation.remediate import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell", "console")
OURS = ("make", "npx", "remediate", ".venv/bin/remediate")
CDK_SUBCOMMANDS = ("synth", "deploy", "diff", "ls", "list", "bootstrap", "destroy")
AUDIT_ID = re.compile(r"\b[0-9a-f]{32}\b")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[^`]*)$")
INLINE = re.compile(r"`((?:\.venv/bin/)?remediate [^`]+|make [a-z-]+[^`]*|npx cdk [^`]+)`")


@dataclass(frozen=True)
class Command:
    where: str
    line: str
    runnable: bool

    def __str__(self) -> str:
        return f"{self.where}: {self.line}"


def _logical_lines(lines: list[str]) -> list[str]:
    joined: list[str] = []
    pending = ""
    for raw in lines:
        text = raw.strip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        joined.append(pending + text)
        pending = ""
    return [line for line in joined if line and not line.startswith("#")]


def _synopsis(span: str) -> bool:
    """An inline usage synopsis (``remediate drill [PATH] [--report FILE]``) or a bare
    mention (``remediate invoke``) describes a command; it is not one to paste."""
    return any(mark in span for mark in ("[", "|", "...")) or len(span.split()) < 3


def commands(path: Path) -> list[Command]:
    found: list[Command] = []
    block: list[str] | None = None
    info = ""
    start = 0
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(text)
        if fence and block is None:
            block, info, start = [], fence["info"].strip(), number
            continue
        if fence and block is not None:
            words = info.split()
            if words and words[0] in SHELLS:
                runnable = "runnable" in words[1:]
                for line in _logical_lines(block):
                    where = f"{path.relative_to(ROOT)}:{start}"
                    found.append(Command(where, line, runnable))
            block = None
            continue
        if block is not None:
            block.append(text)
            continue
        for match in INLINE.finditer(text):
            if _synopsis(match[1]):
                continue
            found.append(Command(f"{path.relative_to(ROOT)}:{number}", match[1], False))
    return found


ALL = [command for path in DOCS for command in commands(path)]
CHECKED = [c for c in ALL if not c.runnable]
RUNNABLE = [c for c in ALL if c.runnable]


def _words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


class _Environments(set[str]):
    """cdk.json's environments; an upper-case word (NAME, E) is a placeholder."""

    def __contains__(self, name: object) -> bool:
        return (isinstance(name, str) and name.isupper()) or super().__contains__(name)


def _environments() -> set[str]:
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return _Environments(context["environments"])


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.MULTILINE))


def _parse_remediate(args: list[str]) -> Context:
    """The CLI's own parser on ``args``: unknown commands, options and choices fail."""
    command: ClickCommand = typer.main.get_command(cli.app)
    ctx = command.make_context("remediate", list(args))
    while hasattr(command, "resolve_command"):  # a group: on to its subcommand
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            break
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None
        assert sub is not None
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def _check_remediate(words: list[str]) -> None:
    try:
        ctx = _parse_remediate(words[1:])
    except typer.Exit as done:  # --version, --help
        code = done.exit_code
        assert code == 0
        return
    envs = _environments()
    params = ctx.params
    if params.get("env") is not None:
        assert params["env"] in envs, f"--env {params['env']}: no such environment in cdk.json"
    if params.get("cdk_out") is not None:
        out = Path(params["cdk_out"])
        where = f"--cdk-out {out}: `make synth ENV=<env>` writes cdk.out/<env>"
        assert out.parent == Path("cdk.out"), where
        assert out.name in envs, where
    path = params.get("path")
    if path is not None:
        assert (ROOT / path).exists(), f"{path} does not exist"


def check(command: Command) -> None:
    words = _words(command.line)
    if not words or words[0] not in OURS:
        return
    if words[0] == "make":
        targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assert set(targets) <= _make_targets(), f"no make target {targets}"
        for assignment in (w for w in words[1:] if w.startswith("ENV=")):
            assert assignment.split("=", 1)[1] in _environments(), assignment
        return
    if words[0] == "npx":
        assert words[1:2] == ["cdk"], "npx runs the pinned CDK CLI only"
        assert words[2] in CDK_SUBCOMMANDS, f"cdk {words[2]}"
        for i, word in enumerate(words):
            if word in ("-c", "--context") and words[i + 1].startswith("env="):
                assert words[i + 1].split("=", 1)[1] in _environments(), words[i + 1]
        return
    _check_remediate(words)


def test_the_docs_have_commands_and_some_run():
    assert len(CHECKED) >= 20, [str(c) for c in CHECKED]
    assert len(RUNNABLE) >= 8, [str(c) for c in RUNNABLE]


@pytest.mark.parametrize("command", CHECKED, ids=str)
def test_a_documented_command_is_valid(command: Command):
    check(command)


def test_the_checker_catches_drift():
    """The checks above can fail: each of these drifted once or could."""
    drifted = [
        ".venv/bin/remediate drill scenarios/ --cdk-out cdk.out/drill-drill",
        ".venv/bin/remediate plan --env prod",
        ".venv/bin/remediate history --env drill --since yesterday",
        ".venv/bin/remediate drill scenarios/no-such-scenario.yaml",
        "make synth ENV=staging",
        "make lint-all",
        "npx cdk deploy --all -c env=production",
    ]
    for line in drifted:
        with pytest.raises((AssertionError, UsageError)):
            check(Command("drift", line, False))


@pytest.mark.slow
def test_the_runnable_blocks_run_on_the_emulator(tmp_path):
    environ = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    seen = ""
    try:
        for command in RUNNABLE:
            line = command.line
            if "AUDIT_ID" in line:
                ids = AUDIT_ID.findall(seen)
                assert ids, f"{command}: no audit id printed before it"
                line = line.replace("AUDIT_ID", ids[-1])
            done = subprocess.run(  # noqa: S603
                ["bash", "-c", line],  # noqa: S607
                cwd=ROOT,
                env=environ,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            seen = done.stdout + done.stderr
            assert done.returncode == 0, f"{command} exited {done.returncode}:\n{seen[-3000:]}"
    finally:
        subprocess.run(  # noqa: S603
            [str(ROOT / ".venv/bin/remediate"), "emulator", "stop"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
