"""WAFv2 IP sets: where one lives, reading it, and changing it under its ``LockToken``.

``UpdateIPSet`` replaces the whole list and needs the ``LockToken`` from ``GetIPSet``; a
stale token raises ``WAFOptimisticLockException`` (someone else changed the set meanwhile).
``change_ip_set`` then re-reads, re-merges and writes again, a bounded number of times with
jittered waits: botocore cannot do that, since the retry needs a fresh read. Throttling and
WAF's internal errors (HTTP 500) are retried by botocore's standard retry mode
(``clients.DEFAULT_CONFIG``), not here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypedDict

from ...clients import Clients, error_code
from ...errors import FailedError, RejectedError
from ...quotas import reserve
from .addresses import IPVersion, merge_entries

if TYPE_CHECKING:
    from mypy_boto3_wafv2 import WAFV2Client
    from mypy_boto3_wafv2.type_defs import UpdateIPSetRequestTypeDef

#: the most entries WAF lets an IP set hold
IP_SET_LIMIT = 10_000
#: what WAF answers when the lock token is stale: re-read and try again
LOCK_CONFLICT = "WAFOptimisticLockException"
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 5.0
Scope = Literal["REGIONAL", "CLOUDFRONT"]


class IPSetFullError(FailedError):
    """The change would take an IP set over the WAF limit: nothing was written."""


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to ``base * 2**attempt``, capped."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


@dataclass(frozen=True)
class IPSetRef:
    """Where one IP set lives, parsed from its ARN."""

    arn: str
    region: str
    scope: Scope
    name: str
    id: str


class IPSet(TypedDict):
    """What ``GetIPSet`` says about a set."""

    version: IPVersion
    entries: list[str]
    description: str | None
    lock_token: str


def parse_ip_set_arn(arn: str) -> IPSetRef:
    """``arn:PARTITION:wafv2:REGION:ACCOUNT:regional|global/ipset/NAME/ID`` -> ``IPSetRef``."""
    parts = arn.split(":", 5)
    path = parts[5].split("/") if len(parts) == 6 else []
    if (
        len(parts) != 6
        or parts[2] != "wafv2"
        or len(path) != 4
        or path[0] not in ("regional", "global")
        or path[1] != "ipset"
        or not path[2]
        or not path[3]
    ):
        raise RejectedError(f"not a WAFv2 IP set ARN: {arn[:200]!r}")
    scope: Scope = "REGIONAL" if path[0] == "regional" else "CLOUDFRONT"
    return IPSetRef(arn=arn, region=parts[3], scope=scope, name=path[2], id=path[3])


def parse_target(target: str) -> list[IPSetRef]:
    """One IP set ARN, or two (one per IP version) joined by a comma."""
    arns = [a.strip() for a in target.split(",")]
    if not 1 <= len(arns) <= 2 or len(set(arns)) != len(arns):
        raise RejectedError("waf-block target: one IP set ARN, or two distinct ones (IPv4, IPv6)")
    return [parse_ip_set_arn(arn) for arn in arns]


def waf_client(clients: Clients, ref: IPSetRef) -> WAFV2Client:
    """The WAFv2 client for ``ref``'s region (CLOUDFRONT scope is managed in us-east-1)."""
    needed = "us-east-1" if ref.scope == "CLOUDFRONT" else ref.region
    default = clients("wafv2")
    return default if default.meta.region_name == needed else clients("wafv2", region=needed)


def get_ip_set(waf: WAFV2Client, ref: IPSetRef) -> IPSet:
    """``GetIPSet`` -> the set's IP version, entries, description and lock token."""
    got = waf.get_ip_set(Name=ref.name, Scope=ref.scope, Id=ref.id)
    ip_set = got["IPSet"]
    return {
        "version": ip_set["IPAddressVersion"],
        "entries": list(ip_set.get("Addresses", [])),
        "description": ip_set.get("Description"),
        "lock_token": got["LockToken"],
    }


def change_ip_set(
    waf: WAFV2Client,
    ref: IPSetRef,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    seen: IPSet | None = None,
) -> list[str]:
    """Add and remove entries with ``UpdateIPSet``; on a stale lock token, re-read,
    re-merge and retry (bounded, jittered). Returns the list written. ``seen``: the set as
    read already (its lock token makes any change since a conflict, so the first try needs
    no read of its own).

    Raises ``IPSetFullError`` rather than write more than ``IP_SET_LIMIT`` entries.
    """
    adding, removing = list(add), list(remove)
    for attempt in range(attempts):
        # this environment's share of UpdateIPSet's rate, taken before the read whose lock
        # token the update carries: a wait makes ``seen`` stale
        waited = reserve(waf, "wafv2:UpdateIPSet")
        current = seen if attempt == 0 and seen is not None and not waited else get_ip_set(waf, ref)
        merged = merge_entries(current["entries"], adding, removing)
        if merged == current["entries"]:
            return merged
        if len(merged) > IP_SET_LIMIT:
            raise IPSetFullError(
                f"IP set {ref.name} would hold {len(merged)} entries, over {IP_SET_LIMIT}"
            )
        update: UpdateIPSetRequestTypeDef = {
            "Name": ref.name,
            "Scope": ref.scope,
            "Id": ref.id,
            "Addresses": merged,
            "LockToken": current["lock_token"],
        }
        if current["description"]:
            # UpdateIPSet replaces every mutable field: keep the description.
            update["Description"] = current["description"]
        try:
            waf.update_ip_set(**update)
        except Exception as exc:
            if error_code(exc) != LOCK_CONFLICT or attempt == attempts - 1:
                raise
            sleep(backoff(attempt))
            continue
        return merged
    raise AssertionError("unreachable")
