"""Counters the reliability tests fill in as they run; written to JSON at the end of the run.

The figures table (``report.py``) reads that file, so every figure it prints was counted by
the run that produced it, never typed in.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

FIGURES_PATH = Path(os.environ.get("RELIABILITY_FIGURES", "reports/reliability.json"))


class Figures:
    """Thread-safe named counters plus short notes (which design choices the run used)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.notes: dict[str, str] = {}
        self.started = time.time()
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def note(self, name: str, text: str) -> None:
        with self._lock:
            self.notes[name] = text

    def dump(self, path: Path, exit_status: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "counts": dict(sorted(self.counts.items())),
            "notes": dict(sorted(self.notes.items())),
            "seconds": round(time.time() - self.started, 1),
            "pytest_exit_status": int(exit_status),
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


FIGURES = Figures()
