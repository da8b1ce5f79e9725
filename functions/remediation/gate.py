"""The automation switch: an SSM parameter holding ``on``, ``off`` or ``dry-run``.

Fail closed: missing, unreadable or any other value means ``off``. Exactly ``on``, ``off``
and ``dry-run`` are accepted: ``ON ``, ``On``, ``true`` or ``yes`` are off too, and the
result says so (``Switch.faulty``), so the pipeline escalates with the bad value named
instead of quietly skipping for weeks. An optional per-action override parameter can only
restrict further (the effective mode is the more restrictive of the two), so the global
switch set to ``off`` is a kill switch for every action.
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
        max_age: int = SWITCH_MAX_AGE_SECONDS,
    ) -> None:
        self._provider = SSMProvider(boto3_client=ssm_client)
        self._parameter = parameter
        self._override_prefix = override_prefix
        self._max_age = max_age
        # Powertools caches values, not absences: remember a missing parameter ourselves, or
        # every event would pay an SSM call for an override nobody set.
        self._absent_until: dict[str, float] = {}

    def mode(self, action: str) -> Switch:
        """The effective mode for ``action`` and a short reason naming where it came from."""
        main = self._read(self._parameter, missing_is_fault=True)
        if main is None or main.mode is Mode.OFF or not self._override_prefix:
            return main or Switch(Mode.OFF, f"switch {self._parameter} missing", True)
        override = self._read(f"{self._override_prefix}{action}", missing_is_fault=False)
        if override is None or _ORDER.index(override.mode) >= _ORDER.index(main.mode):
            return main
        return override

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
