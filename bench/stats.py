"""Small statistics helpers (the standard library's, named for the bench)."""

from __future__ import annotations

import statistics


def median(values: list[float]) -> float:
    if not values:
        raise ValueError("no samples")
    return statistics.median(values)
