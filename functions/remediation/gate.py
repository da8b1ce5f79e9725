"""The automation switch: an SSM parameter holding ``on``, ``off`` or ``dry-run``.

Fail closed: missing, unreadable or any other value means ``off``. An optional per-action
override parameter can only restrict further (the effective mode is the more restrictive
of the two), so the global switch set to ``off`` is a kill switch for every action.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from remediation.clients import error_code
from remediation.models import Mode

# Powertools caches parameters for 300 s by default; a flip must take effect within ~30 s.
SWITCH_MAX_AGE_SECONDS = 30
_ORDER = [Mode.OFF, Mode.DRY_RUN, Mode.ON]


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

    def mode(self, action: str) -> tuple[Mode, str]:
        """The effective mode for ``action`` and a short reason naming where it came from."""
        mode, why = self._read(self._parameter, missing=Mode.OFF)
        if mode is Mode.OFF or not self._override_prefix:
            return mode, why
        override, override_why = self._read(f"{self._override_prefix}{action}", missing=None)
        if override is None or _ORDER.index(override) >= _ORDER.index(mode):
            return mode, why
        return override, override_why

    def _read(self, name: str, *, missing: Mode | None) -> tuple[Mode | None, str]:
        if self._absent_until.get(name, 0.0) > time.monotonic():
            return missing, f"switch {name} missing"
        try:
            raw = self._provider.get(name, max_age=self._max_age)
        except GetParameterError as exc:
            # Powertools re-raises inside ``except``: the AWS error is the context.
            code = error_code(exc.__cause__ or exc.__context__ or exc)
            if code == "ParameterNotFound":
                self._absent_until[name] = time.monotonic() + self._max_age
                return missing, f"switch {name} missing"
            return Mode.OFF, f"switch {name} unreadable ({code})"
        value = str(raw).strip().lower()
        try:
            return Mode(value), f"switch {name} = {value}"
        except ValueError:
            return Mode.OFF, f"switch {name} holds {value[:20]!r}, not on/off/dry-run"
