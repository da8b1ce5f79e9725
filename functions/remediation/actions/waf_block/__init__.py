"""waf-block: put the addresses hammering an API into a WAFv2 IP set, for a while.

Offenders come from a CloudWatch Logs Insights query over the API's access logs (one row
per address: ``ip_field`` and ``count_field``; ``offenders.py``). An address is blocked when
its count reaches ``threshold``, unless it is in the ``allowlist`` (or is an internal address:
a proxy's address in the logs would otherwise block everyone). At most ``max_addresses`` per
action and never more than 10,000 entries in an IP set: past either, a human decides
(escalate, change nothing; ``plan.py``).

Target: one IP set ARN, or two joined by a comma (one ``IPV4`` set, one ``IPV6`` set); each
address goes to the set of its IP version. An offender whose IP version has no set in the
target escalates the whole action (nothing is blocked): blocking only part of an attack while
the result says executed would hide the rest. IP sets are changed under their ``LockToken``
(``ip_sets.py``). CLOUDFRONT-scope sets (ARN ``...:us-east-1:...:global/ipset/...``) go
through a us-east-1 client. An offender some entry already covers (ours or anyone's, exact or
a wider CIDR) is left alone: an earlier block keeps its expiry rather than being renewed.

Every block expires after ``ttl_minutes``. The expiry is recorded in the audit table *before*
the IP set changes, so a block can never outlive its record (``expiries.py``); the scheduled
sweeper (``remediation.sweeper``) takes expired blocks out.

The audit's before/after state is ``{"addresses": [...]}``: the blocks this action made that
the IP sets hold. ``read`` reports the same, so ``revert`` can tell whether anything changed
since and undo a block (``apply`` adds ``after - before`` and removes ``before - after``).

Runbooks: OMNIX "brute force" (``aws wafv2 update-ip-set``), Nigredo "Abuse Detected".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ...errors import RejectedError
from ..base import Action, ActionContext, Limit, Plan, VerifyError, register
from .addresses import (
    canonical,
    covered,
    entry_key,
    merge_entries,
    ours,
    sort_cidrs,
    version_of,
)
from .expiries import RECORD_GRACE, BlockRecords
from .ip_sets import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    IP_SET_LIMIT,
    MAX_ATTEMPTS,
    IPSet,
    IPSetFullError,
    IPSetRef,
    backoff,
    change_ip_set,
    get_ip_set,
    parse_ip_set_arn,
    parse_target,
    waf_client,
)
from .offenders import (
    DEFAULT_QUERY,
    QueryFailedError,
    parse_rows,
    run_query,
)
from .plan import (
    NEVER_BLOCK,
    IPSetState,
    WafBlockParams,
    WafCurrent,
    WafState,
    plan_block,
)

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "DEFAULT_QUERY",
    "IP_SET_LIMIT",
    "MAX_ATTEMPTS",
    "NEVER_BLOCK",
    "RECORD_GRACE",
    "BlockRecords",
    "IPSetFullError",
    "IPSetRef",
    "QueryFailedError",
    "WafBlock",
    "WafBlockParams",
    "WafCurrent",
    "WafState",
    "backoff",
    "canonical",
    "change_ip_set",
    "covered",
    "entry_key",
    "get_ip_set",
    "merge_entries",
    "ours",
    "parse_ip_set_arn",
    "parse_rows",
    "parse_target",
    "pause",
    "plan_block",
    "sort_cidrs",
    "version_of",
    "waf_client",
]


def _sleep(seconds: float) -> None:
    """Indirection so tests can skip the waits (query polls, lock-conflict backoff)."""
    time.sleep(seconds)


def pause(seconds: float) -> None:
    """Wait ``seconds`` through ``_sleep``, looked up when called (tests replace it)."""
    _sleep(seconds)


@register
class WafBlock(Action[WafBlockParams, WafCurrent, WafState]):
    """Block the top offending addresses from the access logs in a WAFv2 IP set, with an
    allowlist, a per-action cap, the 10,000-entry limit and an expiry."""

    name = "waf-block"
    Params = WafBlockParams
    permissions = (
        "wafv2:GetIPSet",
        "wafv2:UpdateIPSet",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:StopQuery",
    )
    # A manual request may block fewer addresses, for less time, with a wider allowlist.
    limits: ClassVar[dict[str, Limit]] = {
        "threshold": Limit.AT_LEAST,
        "max_addresses": Limit.AT_MOST,
        "ttl_minutes": Limit.AT_MOST,
        "window_minutes": Limit.AT_MOST,
        "query_timeout_seconds": Limit.AT_MOST,
        "allowlist": Limit.SUPERSET,
    }

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        #: each IP set as ``read`` saw it, by ARN (one run's action: never shared)
        self._seen: dict[str, IPSet] = {}

    @classmethod
    def resources(cls, target: str, params: Mapping[str, Any] | None = None) -> list[str]:
        return [ref.arn for ref in parse_target(target)]

    def _records(self) -> BlockRecords:
        """Expiries live in the audit table, beside the audit records."""
        return BlockRecords(self.clients("dynamodb"), self.audit.table)

    def read(self, target: str, params: WafBlockParams) -> WafCurrent:
        records = self._records()
        ip_sets: dict[str, IPSetState] = {}
        blocked: list[str] = []
        for ref in parse_target(target):
            got = get_ip_set(waf_client(self.clients, ref), ref)
            self._seen[ref.arn] = got  # apply's first UpdateIPSet uses its lock token
            ip_sets[ref.arn] = {"version": got["version"], "entries": got["entries"]}
            blocked += ours(records.addresses(ref.arn), got["entries"])
        versions = [spec["version"] for spec in ip_sets.values()]
        if len(set(versions)) != len(versions):
            raise RejectedError("waf-block target: two IP sets of the same IP version")
        rows = run_query(
            self.clients("logs"),
            log_group=params.log_group,
            query=params.query,
            window_minutes=params.window_minutes,
            timeout_seconds=params.query_timeout_seconds,
            # ``read`` has no ``now``: the query window ends at the wall clock.
            end=time.time(),
            sleep=pause,
        )
        return {
            "ip_sets": ip_sets,
            "addresses": sort_cidrs(blocked),
            "offenders": parse_rows(rows, params.ip_field, params.count_field),
        }

    def plan(self, current: WafCurrent, params: WafBlockParams, now: datetime) -> Plan[WafState]:
        return plan_block(current, params, now)

    def apply(self, target: str, plan: Plan[WafState]) -> None:
        """Adds ``after - before`` (expiry recorded first) and removes ``before - after``
        (a revert), each address in the IP set of its version."""
        had = set(plan.before.get("addresses", []))
        want = set(plan.after.get("addresses", []))
        add, remove = sort_cidrs(want - had), sort_cidrs(had - want)
        records = self._records()
        for ref in parse_target(target):
            waf = waf_client(self.clients, ref)
            seen = self._seen.get(ref.arn) or get_ip_set(waf, ref)
            version = seen["version"]  # an IP set's version never changes
            adding = [c for c in add if version_of(c) == version]
            removing = [c for c in remove if version_of(c) == version]
            if adding:
                expires = plan.after.get("expires_at")
                if not expires:
                    raise ValueError("refusing to block without an expiry (plan has none)")
                # Recorded first: a block must never outlive its expiry record.
                records.record(ref.arn, adding, datetime.fromisoformat(expires), target)
            if adding or removing:
                change_ip_set(waf, ref, add=adding, remove=removing, sleep=pause, seen=seen)
            for cidr in removing:
                records.forget(ref.arn, cidr)

    def verify(self, target: str, plan: Plan[WafState]) -> WafState:
        had = set(plan.before.get("addresses", []))
        want = set(plan.after.get("addresses", []))
        blocked: list[str] = []
        problems: list[str] = []
        for ref in parse_target(target):
            got = get_ip_set(waf_client(self.clients, ref), ref)
            keys = {entry_key(e) for e in got["entries"]}
            # ours after the change: the planned blocks the set holds (apply recorded each)
            blocked += [c for c in want if version_of(c) == got["version"] and entry_key(c) in keys]
            for cidr in sorted(want | had):
                if version_of(cidr) != got["version"]:
                    continue
                if cidr in want and entry_key(cidr) not in keys:
                    problems.append(f"{cidr} missing from {ref.name}")
                if cidr not in want and entry_key(cidr) in keys:
                    problems.append(f"{cidr} still in {ref.name}")
        if problems:
            raise VerifyError("; ".join(sorted(problems)[:20]))
        return {"addresses": sort_cidrs(blocked)}
