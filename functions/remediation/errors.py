"""One exception hierarchy: what went wrong says what is recorded.

Every exception the suite raises on purpose is a ``RemediationError``, in one of four
families the pipeline (and the sweeper) tell apart by type alone:

- ``RejectedError``: the event or request may not be acted on (unreadable, out of scope,
  not confirmed by CloudWatch, unknown action or target). Outcome ``rejected``; nothing
  changed.
- ``SkippedError``: nothing to do, and nobody needs to hear of it (an OK transition, the
  switch set to ``off``). Outcome ``skipped``; only audited.
- ``EscalatedError``: acting now needs a human (a guard refused: cooldown, circuit breaker).
  Outcome ``escalated``; nothing changed.
- ``FailedError``: an attempt was made and did not work (the change does not read back,
  a query failed, an IP set would overflow). Outcome ``failed``; the guards the attempt
  claimed are given back and the event goes to the dead-letter queue.

Any other exception (a botocore ``ClientError``, a bug) is a failure too: the pipeline
records it under its AWS error code. No AWS imports here: everything may import this.
"""

from __future__ import annotations

#: longest reason kept: reasons can quote what arrived (a parameter name of any length)
MAX_REASON = 1000


class RemediationError(Exception):
    """Base of every exception the suite raises on purpose. ``reason`` is for a human."""

    def __init__(self, reason: str) -> None:
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        super().__init__(reason)
        self.reason = reason


class RejectedError(RemediationError, ValueError):
    """The event or request cannot be acted on. The message says why, for a human.

    ``raw`` keeps an excerpt of what arrived, so the audit record shows it.
    """

    def __init__(self, reason: str, *, raw: str | None = None) -> None:
        super().__init__(reason)
        self.raw = raw


class SkippedError(RemediationError):
    """Nothing to do, and nobody needs to hear of it: the record says why."""


class EscalatedError(RemediationError):
    """Acting now would be unsafe or useless: a human decides. Nothing was changed."""


class FailedError(RemediationError, RuntimeError):
    """An attempt was made and did not work."""


class ConfigurationError(FailedError):
    """A remediator or sweeper is misconfigured (a missing or malformed environment
    variable): the cold start fails loudly rather than running half-configured."""


class DeliveryFailed(FailedError):
    """Raised by a handler after the failure was recorded and notified, so Lambda counts an
    error (and an asynchronous event reaches the dead-letter queue)."""
