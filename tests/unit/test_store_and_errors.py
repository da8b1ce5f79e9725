"""The store's key layouts and wire format, and the one exception hierarchy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from serverless_remediation.remediation import store
from serverless_remediation.remediation.actions.base import VerifyError
from serverless_remediation.remediation.actions.waf_block import IPSetFullError, QueryFailedError
from serverless_remediation.remediation.audit import Entry, build_record, parse_item
from serverless_remediation.remediation.errors import (
    ConfigurationError,
    EscalatedError,
    FailedError,
    RejectedError,
    RemediationError,
    SkippedError,
)
from serverless_remediation.remediation.guards import Blocked
from serverless_remediation.remediation.models import Outcome, Source
from serverless_remediation.remediation.pipeline import RemediationFailed
from serverless_remediation.remediation.scope import ScopeError
from serverless_remediation.remediation.sweeper import IPSetGone, SweepFailed

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_key_layouts():
    assert store.audit_key("ab") == {"pk": "audit#ab", "sk": "record"}
    # one item per target holds its cooldown, breaker and silence marker
    assert store.guard_key("arn:t") == {"pk": "guard#arn:t", "sk": "state"}
    assert store.block_key("arn:s", "192.0.2.1/32") == {"pk": "block#arn:s", "sk": "192.0.2.1/32"}
    assert store.block_index_key("arn:s") == {"pk": "block-index", "sk": "arn:s"}
    transition = store.transition_key("prod", "arn:aws:cloudwatch:x|2026" * 100)
    assert transition["pk"] == "once#prod"
    assert len(transition["sk"]) == 64  # hashed: a sort key holds at most 1 KB
    assert transition != store.transition_key("staging", "arn:aws:cloudwatch:x|2026" * 100)


def test_wire_format_is_dynamodbs_and_round_trips():
    values = {"pk": "guard#x", "until": 1700000000, "stamps": [1, 2], "skip": None}
    wire = store.to_wire(values)
    assert wire == {
        "pk": {"S": "guard#x"},
        "until": {"N": "1700000000"},
        "stamps": {"L": [{"N": "1"}, {"N": "2"}]},
    }
    assert store.from_wire(wire) == {"pk": "guard#x", "until": 1700000000, "stamps": [1, 2]}
    assert isinstance(store.from_wire(wire)["until"], int)


def test_audit_record_layout_is_unchanged():
    entry = Entry(
        audit_id="a1",
        correlation_id="c1",
        created_at=NOW,
        source=Source.MANUAL,
        key="k",
        state="ALARM",
        requested_by="alice",
        reason="why",
        action="rollback",
        target="arn:t",
        params={"window_minutes": 5},
    )
    wire = store.to_wire(build_record(entry, Outcome.PENDING))
    assert wire["pk"] == {"S": "audit#a1"}
    assert wire["sk"] == {"S": "record"}
    assert wire["source"] == {"S": "manual"}
    assert wire["params"] == {"S": '{"window_minutes": 5}'}
    assert "N" in wire["expires_at"]
    record = parse_item(wire)
    assert record["params"] == {"window_minutes": 5}
    assert record["outcome"] == "pending"


def test_store_is_the_only_place_that_writes_the_wire_format():
    from pathlib import Path

    root = Path(store.__file__).parent
    writers = [
        path.relative_to(root)
        for path in root.rglob("*.py")
        if path.name != "store.py" and '{"S":' in path.read_text(encoding="utf-8")
    ]
    assert writers == []


@pytest.mark.parametrize(
    ("error", "family"),
    [
        (RejectedError("x"), RejectedError),
        (ScopeError("x"), RejectedError),
        (Blocked("x"), EscalatedError),
        (IPSetGone("x"), EscalatedError),
        (SkippedError("x"), SkippedError),
        (VerifyError("x"), FailedError),
        (QueryFailedError("x"), FailedError),
        (IPSetFullError("x"), FailedError),
        (ConfigurationError("x"), FailedError),
        (RemediationFailed("x"), FailedError),
        (SweepFailed("x"), FailedError),
        (store.ConditionFailed("x"), FailedError),
    ],
)
def test_every_exception_is_one_family_under_one_base(error, family):
    assert isinstance(error, RemediationError)
    assert isinstance(error, family)
    families = (RejectedError, SkippedError, EscalatedError, FailedError)
    assert [f for f in families if isinstance(error, f)] == [family]
    assert error.reason == "x"


def test_long_reasons_are_bounded():
    assert len(RejectedError("y" * 5000).reason) == 1000
    # kept compatible: callers that catch the builtin kinds still do
    assert isinstance(RejectedError("x"), ValueError)
    assert isinstance(ConfigurationError("x"), RuntimeError)
