"""waf-block's parameters and its pure plan: offenders + IP sets + allowlist + caps -> the
addresses to block, or why not."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NotRequired, TypedDict

from ..base import ActionParams, Plan
from .addresses import (
    IPVersion,
    Network,
    canonical,
    covered,
    sort_cidrs,
    version_of,
    within,
)
from .ip_sets import IP_SET_LIMIT
from .offenders import DEFAULT_QUERY, Offender

# Never blocked whatever the logs say: these are proxies, load balancers or ourselves.
NEVER_BLOCK: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
        "::/127",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


@dataclass(frozen=True)
class WafBlockParams(ActionParams):
    #: the access log group the query runs over (API Gateway stage access logs)
    log_group: str = ""
    #: Logs Insights query; it must return one row per address with ``ip_field``/``count_field``
    query: str = DEFAULT_QUERY
    ip_field: str = "ip"
    count_field: str = "requests"
    #: how far back the query looks
    window_minutes: int = 60
    #: block an address when its count in the window is at least this
    threshold: int = 100
    #: most addresses one action blocks; more offenders than this -> escalate (cap)
    max_addresses: int = 50
    #: how long a block lasts before the sweeper removes it (cap)
    ttl_minutes: int = 240
    #: CIDRs never blocked (cap)
    allowlist: list[str] = field(default_factory=list)
    #: how long to wait for the query to finish
    query_timeout_seconds: int = 60

    def __post_init__(self) -> None:
        if not self.log_group.strip():
            raise ValueError("log_group is required")
        if not self.query.strip():
            raise ValueError("query must not be empty")
        if not 1 <= self.window_minutes <= 24 * 60:
            raise ValueError("window_minutes must be between 1 and 1440")
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if not 1 <= self.max_addresses <= 500:
            raise ValueError("max_addresses must be between 1 and 500")
        if not 1 <= self.ttl_minutes <= 7 * 24 * 60:
            raise ValueError("ttl_minutes must be between 1 and 10080")
        if not 1 <= self.query_timeout_seconds <= 600:
            raise ValueError("query_timeout_seconds must be between 1 and 600")
        for cidr in self.allowlist:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"allowlist entry {cidr!r} is not a CIDR") from None

    def allowed_networks(self) -> list[Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.allowlist]


class IPSetState(TypedDict):
    """One IP set of the target as read: its IP version and every entry."""

    version: IPVersion
    entries: list[str]


class WafCurrent(TypedDict):
    """What ``read`` sees: the target's IP sets (by ARN), the blocks this action made that
    they still hold (``addresses``), and the query's offenders."""

    ip_sets: dict[str, IPSetState]
    addresses: list[str]
    offenders: list[Offender]


class WafState(TypedDict):
    """The audit's before/after: the blocks this action has made that the IP sets hold
    (never the whole sets: 10,000 entries do not fit in an audit item). A plan's after-state
    also has the new blocks' expiry and their request counts."""

    addresses: list[str]
    expires_at: NotRequired[str]
    requests: NotRequired[dict[str, int]]


def plan_block(current: WafCurrent, params: WafBlockParams, now: datetime) -> Plan[WafState]:
    """Pure: IP sets + offenders + allowlist + caps -> the addresses to add, or why not.

    ``before``/``after`` are ``{"addresses": <what this action has blocked>}``; ``after``
    adds the new addresses, their expiry and request counts. ``read`` and ``verify`` report
    the same ``addresses``, so ``revert`` can compare them and undo a block.
    """
    ip_sets = current["ip_sets"]
    arn_for = {spec["version"]: arn for arn, spec in ip_sets.items()}
    counts: dict[str, int] = {}
    unparsable = 0
    for offender in current["offenders"]:
        cidr = canonical(str(offender["ip"]))
        if cidr is None:
            unparsable += 1
            continue
        counts[cidr] = counts.get(cidr, 0) + int(offender["count"])
    allowed = [*NEVER_BLOCK, *params.allowed_networks()]
    over = sorted(
        (c for c, n in counts.items() if n >= params.threshold), key=lambda c: (-counts[c], c)
    )
    already, new, skipped, unroutable = [], [], [], []
    for cidr in over:
        net = ipaddress.ip_network(cidr)
        if any(within(net, a) for a in allowed):
            skipped.append(cidr)
            continue
        arn = arn_for.get(version_of(cidr))
        if arn is None:
            unroutable.append(cidr)
        elif covered(cidr, ip_sets[arn]["entries"]):
            already.append(cidr)
        else:
            new.append(cidr)

    blocked = sort_cidrs(current.get("addresses", []))
    before: WafState = {"addresses": blocked}
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} allowlisted not blocked")
    if already:
        notes.append(f"{len(already)} already blocked")
    if unparsable:
        notes.append(f"{unparsable} unparsable row(s) ignored")
    tail = f" ({'; '.join(notes)})" if notes else ""

    if unroutable:
        # Blocking only the routable part would leave the rest hammering the API while the
        # result says executed: a human decides (add the missing IP set to the target).
        missing = ", ".join(sorted({version_of(c) for c in unroutable}))
        shown = ", ".join(f"{c} ({counts[c]})" for c in unroutable[:10])
        more = f" and {len(unroutable) - 10} more" if len(unroutable) > 10 else ""
        return Plan.escalate(
            f"{len(unroutable)} offender(s) with no {missing} IP set in the target: "
            f"{shown}{more}; nothing blocked (add an {missing} IP set to the target){tail}",
            before,
        )
    if not new:
        if not over:
            top = max(counts.values(), default=0)
            return Plan.noop(
                f"no address reached {params.threshold} requests in {params.window_minutes} "
                f"min (highest: {top}){tail}",
                before,
            )
        return Plan.noop(f"nothing new to block{tail}", before)
    if len(new) > params.max_addresses:
        return Plan.escalate(
            f"{len(new)} addresses over the threshold, more than the {params.max_addresses} "
            f"one action may block: a distributed attack or a bad query needs a human{tail}",
            before,
        )
    for arn, spec in ip_sets.items():
        size = len(spec["entries"]) + sum(1 for c in new if arn_for[version_of(c)] == arn)
        if size > IP_SET_LIMIT:
            return Plan.escalate(
                f"IP set {arn.rsplit('/', 2)[-2]} would hold {size} entries, over the WAF "
                f"limit of {IP_SET_LIMIT}{tail}",
                before,
            )
    expires = now + timedelta(minutes=params.ttl_minutes)
    after: WafState = {
        "addresses": sort_cidrs([*blocked, *new]),
        "expires_at": expires.isoformat(),
        "requests": {c: counts[c] for c in new},
    }
    shown = ", ".join(f"{c} ({counts[c]})" for c in new[:5])
    more = f" and {len(new) - 5} more" if len(new) > 5 else ""
    summary = f"block {len(new)} address(es) for {params.ttl_minutes} min: {shown}{more}{tail}"
    return Plan.change(summary, before, after)
