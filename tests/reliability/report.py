"""Print the reliability figures table from the counts the last run wrote; exit non-zero
if a wrong action or a lost record was counted, a forged or misdirected event acted, a
temporary change was left in place without a notice, a test failed, or nothing was counted.

    python tests/reliability/report.py [figures.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = Path("reports/reliability.json")

ROWS = [
    ("Delivery", None),
    ("deliveries tried", "deliveries_tried"),
    ("deliveries acted", "deliveries_acted"),
    ("deliveries deduplicated", "deliveries_deduplicated"),
    ("deliveries audited", "deliveries_audited"),
    ("Faults", None),
    ("faults injected", "faults_injected"),
    ("faults survived", "faults_survived"),
    ("Flapping", None),
    ("flapping transitions", "flap_transitions"),
    ("flapping actions", "flap_actions"),
    ("breaker escalations", "breaker_escalations"),
    ("still alarming in cooldown (escalated)", "cooldown_escalations"),
    ("Bad input", None),
    ("fuzz cases (intake)", "fuzz_cases"),
    ("fuzz cases (full pipeline)", "fuzz_cases_pipeline"),
    ("bad requests tried", "bad_requests_tried"),
    ("bad requests rejected", "bad_requests_rejected"),
    ("Scope", None),
    ("forged or misdirected events tried", "scope_events_tried"),
    ("  not confirmed by CloudWatch", "scope_unconfirmed"),
    ("  alarm of another account/region", "scope_misdirected_alarm"),
    ("  stale or future transition", "scope_stale"),
    ("  budget for another account", "scope_budget"),
    ("  route to an out-of-scope target", "scope_out_of_scope_target"),
    ("forged or misdirected events acted", "scope_events_acted"),
    ("in-scope controls tried", "scope_controls_tried"),
    ("in-scope controls acted", "scope_controls_acted"),
    ("Leftovers", None),
    ("paths tried", "leftover_paths_tried"),
    ("temporary changes made", "temporary_changes_made"),
    ("left in place, with a notice", "temporary_changes_left_noticed"),
    ("left in place without a notice", "temporary_changes_left_unnoticed"),
    ("IAM", None),
    ("roles checked", "iam_roles_checked"),
    ("  of them spoke roles", "iam_spoke_roles_checked"),
    ("statements checked", "iam_statements_checked"),
    ("topics checked", "iam_topics_checked"),
    ("IAM findings", "iam_findings"),
    ("Must be 0", None),
    ("wrong actions", "wrong_actions"),
    ("records lost", "records_lost"),
    ("forged or misdirected events acted", "scope_events_acted"),
    ("changes left without a notice", "temporary_changes_left_unnoticed"),
    ("tests failed", "tests_failed"),
]
MUST_BE_ZERO = (
    "wrong_actions",
    "records_lost",
    "tests_failed",
    "iam_findings",
    "scope_events_acted",
    "temporary_changes_left_unnoticed",
)
WIDTH = 40


def render(data: dict) -> tuple[str, list[str]]:
    """The table, and the reasons the run is not acceptable (empty when it is)."""
    counts = data.get("counts", {})
    lines = []
    for label, key in ROWS:
        if key is None:
            lines.append(f"{label}")
            continue
        value = counts.get(key, 0 if key in MUST_BE_ZERO else None)
        lines.append(f"  {label:<{WIDTH}} {'-' if value is None else value:>8}")
    lines.append(f"  {'pytest run (s)':<{WIDTH}} {data.get('seconds', '-'):>8}")
    problems = [f"{key} = {counts[key]}" for key in MUST_BE_ZERO if counts.get(key)]
    if counts.get("faults_injected", 0) != counts.get("faults_survived", 0):
        problems.append("not every injected fault was survived")
    if counts.get("bad_requests_tried", 0) != counts.get("bad_requests_rejected", 0):
        problems.append("not every bad request was rejected")
    if counts.get("scope_controls_tried", 0) != counts.get("scope_controls_acted", 0):
        problems.append("an in-scope control did not act: the scope figure proves nothing")
    if not counts.get("tests_passed"):
        problems.append("no reliability test ran")
    for name, text in data.get("notes", {}).items():
        lines.append(f"  note {name}: {text}")
    return "\n".join(lines), problems


def headlines(counts: dict) -> list[str]:
    """The two safety figures in a sentence each, when the run counted them."""
    lines = []
    if "scope_events_tried" in counts:
        lines.append(
            f"Scope: {counts['scope_events_tried']} forged or misdirected events tried, "
            f"{counts.get('scope_events_acted', 0)} acted"
        )
    if "leftover_paths_tried" in counts:
        lines.append(
            "Leftovers: temporary changes left in place without a notice: "
            f"{counts.get('temporary_changes_left_unnoticed', 0)} "
            f"(of {counts.get('temporary_changes_made', 0)} made, "
            f"{counts['leftover_paths_tried']} paths tried)"
        )
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not path.exists():
        print(f"no figures at {path}: run `make reliability`", file=sys.stderr)
        return 2
    data = json.loads(path.read_text(encoding="utf-8"))
    table, problems = render(data)
    print("Reliability figures (counted by the run, from " + str(path) + ")")
    print(table)
    for line in headlines(data.get("counts", {})):
        print(line)
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("OK: no wrong action, no lost record")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
