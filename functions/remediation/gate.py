"""The automation switch: an SSM parameter holding ``on``, ``off`` or ``dry-run``.

Fail closed: missing, unreadable or any other value means ``off``. Exactly ``on``, ``off``
and ``dry-run`` are accepted: ``ON ``, ``On``, ``true`` or ``yes`` are off too, and the
result says so (``Switch.faulty``), so the pipeline escalates with the bad value named
instead of quietly skipping for weeks. An optional per-action override parameter, and in a
hub a per-account one (``<account prefix><account id>``), can only restrict further (the
effective mode is the most restrictive of them), so the global switch set to ``off`` is a
kill switch for every action in every account.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from .clients import error_code
from .models import Mode

# Powertools caches parameters for 300 s by default; a flip must take effect within ~30 s.
SWITCH_MAX_AGE_SECONDS = 30
_ORDER = [Mode.OFF, Mode.DRY_RUN, Mode.ON]


class Switch(NamedTuple):
    """The effective mode, where it came from, and whether a human must fix the switch
    (missing, unreadable or holding a value that is not exactly on/off/dry-run)."""

    mode: Mode
    why: str
    faulty: bool = False


class Gate:
    def __init__(
        self,
        ssm_client: Any,
        parameter: str,
        *,
        override_prefix: str | None = None,
        account_prefix: str | None = None,
        max_age: int = SWITCH_MAX_AGE_SECONDS,
    ) -> None:
        self._provider = SSMProvider(boto3_client=ssm_client)
        self._parameter = parameter
        self._override_prefix = override_prefix
        self._account_prefix = account_prefix
        self._max_age = max_age
        # Powertools caches values, not absences: remember a missing parameter ourselves, or
        # every event would pay an SSM call for an override nobody set.
        self._absent_until: dict[str, float] = {}

    def mode(self, action: str, account: str | None = None) -> Switch:
        """The effective mode for ``action`` (in ``account``, a hub's) and a short reason
        naming where it came from."""
        main = self._read(self._parameter, missing_is_fault=True)
        if main is None or main.mode is Mode.OFF:
            return main or Switch(Mode.OFF, f"switch {self._parameter} missing", True)
        found = main
        names = []
        if self._override_prefix:
            names.append(f"{self._override_prefix}{action}")
        if self._account_prefix and account:
            names.append(f"{self._account_prefix}{account}")
        for name in names:
            override = self._read(name, missing_is_fault=False)
            if override is not None and _ORDER.index(override.mode) < _ORDER.index(found.mode):
                found = override
        return found

    def _read(self, name: str, *, missing_is_fault: bool) -> Switch | None:
        """The parameter as a ``Switch``; None when it is missing and that is allowed."""
        missing = Switch(Mode.OFF, f"switch {name} missing: automation is off", True)
        if self._absent_until.get(name, 0.0) > time.monotonic():
            return missing if missing_is_fault else None
        try:
            raw = self._provider.get(name, max_age=self._max_age)
        except GetParameterError as exc:
            # Powertools re-raises inside ``except``: the AWS error is the context.
            code = error_code(exc.__cause__ or exc.__context__ or exc)
            if code == "ParameterNotFound":
                self._absent_until[name] = time.monotonic() + self._max_age
                return missing if missing_is_fault else None
            return Switch(Mode.OFF, f"switch {name} unreadable ({code}): automation is off", True)
        value = str(raw)
        try:
            return Switch(Mode(value), f"switch {name} = {value}")
        except ValueError:
            shown = "".join(ch if ch.isprintable() else "?" for ch in value[:40])
            return Switch(
                Mode.OFF,
                f"switch {name} holds {shown!r}, not exactly on, off or dry-run: "
                "automation is off until it is fixed",
                True,
            )
