"""Reliability suite fixtures: the shared counters, written out when the run ends."""

from __future__ import annotations

import pytest

from tests.reliability.figures import FIGURES, FIGURES_PATH, Figures


@pytest.fixture
def figures() -> Figures:
    return FIGURES


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/reliability/"):
        return  # under `make test` the other tiers report for themselves
    if report.failed:
        FIGURES.add("tests_failed")
    elif report.passed and report.when == "call":
        FIGURES.add("tests_passed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if FIGURES.counts:
        FIGURES.dump(FIGURES_PATH, exitstatus)
