"""Acting in an enrolled spoke account: the hub's remediator assumes the spoke's role for
its own action kind, and nothing else reaches another account.

- The role is ``arn:<partition>:iam::<spoke>:role/<SPOKE_ROLE_PREFIX><action>``: one per
  action kind, trusting only the hub's remediator role of that kind (``stacks/spoke.py``).
- The session is named after the audit record it serves (CloudTrail in the spoke then names
  the record), and tagged with the alarm (or request) that asked.
- The credentials are kept for that record's whole path (confirmation, read, apply, verify,
  follow-up steps) while they are valid, so one record costs one ``sts:AssumeRole``. They
  are not shared between records: a session named after one record must not make another's
  calls.

``ActionContext.for_target`` is the one caller: the target has passed the scope check
(the event's account, enrolled) before any credentials are asked for.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .clients import Clients

#: AssumeRole's DurationSeconds floor (and enough for one record: a remediator's timeout
#: is at most 900 s)
SESSION_SECONDS = 900
#: credentials are not used this close to their expiry
EXPIRY_MARGIN_SECONDS = 60
#: records whose credentials one container keeps (each serves one record's path)
MAX_SESSIONS = 32
#: what a session tag value may hold (STS: letters, digits, spaces and _.:/=+-@), 256 long
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


def client_keys(credentials: Mapping[str, Any]) -> dict[str, str]:
    """STS ``Credentials`` as ``session.client`` takes them (``Clients.acting_as``)."""
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def role_arn(partition: str, account: str, role_prefix: str, action: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_prefix}{action}"


def session_tags(asked_by: str) -> list[dict[str, str]]:
    """The session's tags: the alarm (or request) that asked, as STS allows it."""
    value = _TAG_UNSAFE.sub("_", asked_by.rsplit(":alarm:", 1)[-1])[:256] or "-"
    return [{"Key": "autorem-asked-by", "Value": value}]


@dataclass(frozen=True)
class Session:
    role_arn: str
    name: str
    asked_by: str


class _Held:
    """One session: assumed on its first client (so a failure to assume happens inside the
    record's path, recorded as that record's failure), then kept while valid."""

    def __init__(self, assume: Callable[[], tuple[Mapping[str, str], float]]) -> None:
        self._assume = assume
        self._lock = threading.Lock()
        self._keys: Mapping[str, str] | None = None
        #: not used at or after this time (epoch seconds); unassumed: open
        self.until = float("inf")
        self.by_region: dict[str, Clients] = {}

    def credentials(self) -> Mapping[str, str]:
        with self._lock:
            if self._keys is None:
                self._keys, expires = self._assume()
                self.until = expires - EXPIRY_MARGIN_SECONDS
            return self._keys


class Spokes:
    """Clients acting in spoke accounts, one assumed session per (role, record)."""

    def __init__(
        self,
        home: Clients,
        *,
        partition: str,
        role_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._home = home
        self._partition = partition
        self._role_prefix = role_prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[Session, _Held] = OrderedDict()
        #: AssumeRole calls made (the bench reads it)
        self.assumed = 0

    def clients(
        self, account: str, region: str, *, action: str, record: str, asked_by: str
    ) -> Clients:
        """Clients signing as ``action``'s role in ``account``, defaulting to ``region``; the
        role is assumed when the first of them is made."""
        session = Session(
            role_arn(self._partition, account, self._role_prefix, action), record, asked_by
        )
        with self._lock:
            held = self._sessions.get(session)
            if held is None or held.until <= self._clock():
                held = _Held(lambda: self._assume(session))
                self._sessions[session] = held
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(session)
            if region not in held.by_region:
                held.by_region[region] = self._home.acting_as(held.credentials, region=region)
            return held.by_region[region]

    def _assume(self, session: Session) -> tuple[Mapping[str, str], float]:
        found = self._home("sts").assume_role(
            RoleArn=session.role_arn,
            RoleSessionName=session.name[:64],
            DurationSeconds=SESSION_SECONDS,
            Tags=session_tags(session.asked_by),
        )
        self.assumed += 1
        given = found["Credentials"]
        return client_keys(given), given["Expiration"].timestamp()
