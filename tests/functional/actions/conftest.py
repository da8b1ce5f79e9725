"""Fixtures for the action tests."""

from __future__ import annotations

import types

import botocore.endpoint
import pytest


@pytest.fixture
def backoff(monkeypatch) -> list[float]:
    """The delays botocore's retry handler asks for, recorded instead of slept."""
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=delays.append))
    return delays
