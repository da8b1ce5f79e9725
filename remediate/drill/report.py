"""The timeline: printed with rich while the drill runs, and written as a Markdown report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serverless_remediation.remediate.drill.runner import Event, Run
from serverless_remediation.remediate.drill.world import Delivery, count_calls

STYLE = {
    "executed": "bold green",
    "dry-run": "cyan",
    "skipped": "yellow",
    "escalated": "magenta",
    "failed": "bold red",
    "rejected": "red",
    "awaiting-approval": "blue",
    "silenced": "yellow",
}


def clock(at: timedelta) -> str:
    seconds = int(at.total_seconds())
    return f"+{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def decisions(delivery: Delivery) -> list[tuple[str, str]]:
    """(outcome, reason + the record's audit id) for each audit record a delivery wrote."""
    out = [
        (r["outcome"], f"[audit {r.get('audit_id', '?')}] {r.get('detail', '')}")
        for r in delivery.records
    ]
    if delivery.error and not out:
        out.append(("failed", delivery.error))
    return out


def print_run(console: Console, run: Run) -> None:
    scenario = run.scenario
    mark = "[green]PASS[/]" if run.passed else "[bold red]FAIL[/]"
    console.rule(f"{mark} {escape(scenario.name)}  [dim]{scenario.path} ({run.seconds:.1f} s)[/]")
    if scenario.summary:
        console.print(f"[dim]{escape(scenario.summary)}[/]")
    table = Table(show_lines=True, expand=True, pad_edge=False)
    table.add_column("#", justify="right", width=2)
    table.add_column("clock", width=8)
    table.add_column("event", ratio=3)
    table.add_column("decision", ratio=4)
    # One call per line, never cut: the column is as wide as the longest API name it shows.
    calls = {event.index: call_lines(event) for event in run.events}
    widest = max((len(line) for lines in calls.values() for line in lines), default=1)
    table.add_column("AWS calls on targets", width=widest, no_wrap=True)
    table.add_column("resource before -> after", ratio=4)
    for event in run.events:
        table.add_row(
            str(event.index),
            clock(event.at),
            escape(_event_text(event)),
            _decision_markup(event),
            escape("\n".join(calls[event.index]) or "-"),
            escape("\n".join(event.changes) or "-"),
        )
    console.print(table)
    for failure in run.failures:
        console.print(f"[bold red]x[/] {escape(str(failure))}")


def call_lines(event: Event) -> list[str]:
    """``service:Operation`` (``xN`` when repeated) of every call on a target, one a line."""
    return [
        call
        for delivery in event.deliveries
        for call in count_calls(delivery.target_calls()).split(", ")
        if call != "-"
    ]


def _event_text(event: Event) -> str:
    lines = [event.title]
    lines += [f"-> {d.function}" for d in event.deliveries]
    if event.note:
        lines.append(event.note)
    return "\n".join(lines)


def _decision_markup(event: Event) -> str:
    parts = []
    for delivery in event.deliveries:
        for outcome, reason in decisions(delivery):
            style = STYLE.get(outcome, "")
            parts.append(f"[{style}]{outcome}[/]: {escape(reason[:250])}")
    if event.notices:
        parts.append(
            f"[dim]{len(event.notices)} notice(s): {escape(event.notices[0]['subject'])}[/]"
        )
    return "\n".join(parts) or "-"


def summary(console: Console, runs: list[Run], seconds: float, report: Path | None) -> None:
    passed = sum(r.passed for r in runs)
    colour = "green" if passed == len(runs) else "red"
    console.rule(
        f"[{colour}]{passed}/{len(runs)} scenarios passed[/] in {seconds:.1f} s"
        + (f"  report: {report}" if report else "")
    )
    for run in runs:
        for failure in run.failures:
            console.print(f"[bold red]FAILED[/] {escape(str(failure))}")


def markdown(runs: list[Run], seconds: float, header: str) -> str:
    passed = sum(r.passed for r in runs)
    lines = [
        "# Drill report",
        "",
        header,
        "",
        f"**{passed}/{len(runs)} scenarios passed** in {seconds:.1f} s.",
        "",
        "| scenario | result | steps | time |",
        "|---|---|---|---|",
    ]
    for run in runs:
        result = "pass" if run.passed else f"**FAIL** ({len(run.failures)})"
        lines.append(
            f"| [{run.scenario.name}](#{_anchor(run.scenario.name)}) | {result} | "
            f"{len(run.events)} | {run.seconds:.1f} s |"
        )
    for run in runs:
        lines += ["", f"## {run.scenario.name}", ""]
        if run.scenario.summary:
            lines += [run.scenario.summary, ""]
        lines += [
            f"`{run.scenario.path}`, env `{run.scenario.env}`, switch `{run.scenario.switch}`.",
            "",
            "| # | clock | event | decision | AWS calls on targets | before -> after |",
            "|---|---|---|---|---|---|",
        ]
        for event in run.events:
            decision = "<br>".join(
                f"**{o}**: {_cell(r[:300])}" for d in event.deliveries for o, r in decisions(d)
            )
            if event.notices:
                decision += f"<br>notice: {_cell(event.notices[0]['subject'])}"
            lines.append(
                "| {} | {} | {} | {} | {} | {} |".format(
                    event.index,
                    clock(event.at),
                    _cell(
                        "\n".join([event.title, *[f"-> {d.function}" for d in event.deliveries]])
                    ),
                    decision or "-",
                    _cell("\n".join(call_lines(event))) or "-",
                    _cell("\n".join(event.changes)) or "-",
                )
            )
        if run.failures:
            lines += ["", "Failed expectations:", ""]
            lines += [f"- {_cell(str(f))}" for f in run.failures]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower().replace(" ", "-"))
