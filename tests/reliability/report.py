"""Print the reliability figures table from the counts the last run wrote; exit non-zero
if a wrong action or a lost record was counted, a test failed, or nothing was counted.

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
    ("Bad input", None),
    ("fuzz cases (intake)", "fuzz_cases"),
    ("fuzz cases (full pipeline)", "fuzz_cases_pipeline"),
    ("bad requests tried", "bad_requests_tried"),
    ("bad requests rejected", "bad_requests_rejected"),
    ("IAM", None),
    ("roles checked", "iam_roles_checked"),
    ("statements checked", "iam_statements_checked"),
    ("topics checked", "iam_topics_checked"),
    ("IAM findings", "iam_findings"),
    ("Must be 0", None),
    ("wrong actions", "wrong_actions"),
    ("records lost", "records_lost"),
    ("tests failed", "tests_failed"),
]
MUST_BE_ZERO = ("wrong_actions", "records_lost", "tests_failed", "iam_findings")


def render(data: dict) -> tuple[str, list[str]]:
    """The table, and the reasons the run is not acceptable (empty when it is)."""
    counts = data.get("counts", {})
    lines = []
    for label, key in ROWS:
        if key is None:
            lines.append(f"{label}")
            continue
        value = counts.get(key, 0 if key in MUST_BE_ZERO else None)
        lines.append(f"  {label:<30} {'-' if value is None else value:>8}")
    lines.append(f"  {'pytest run (s)':<30} {data.get('seconds', '-'):>8}")
    problems = [f"{key} = {counts[key]}" for key in MUST_BE_ZERO if counts.get(key)]
    if counts.get("faults_injected", 0) != counts.get("faults_survived", 0):
        problems.append("not every injected fault was survived")
    if counts.get("bad_requests_tried", 0) != counts.get("bad_requests_rejected", 0):
        problems.append("not every bad request was rejected")
    if not counts.get("tests_passed"):
        problems.append("no reliability test ran")
    for name, text in data.get("notes", {}).items():
        lines.append(f"  note {name}: {text}")
    return "\n".join(lines), problems


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not path.exists():
        print(f"no figures at {path}: run `make reliability`", file=sys.stderr)
        return 2
    table, problems = render(json.loads(path.read_text(encoding="utf-8")))
    print("Reliability figures (counted by the run, from " + str(path) + ")")
    print(table)
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("OK: no wrong action, no lost record")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
