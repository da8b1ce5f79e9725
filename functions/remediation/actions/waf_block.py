"""waf-block: put the addresses hammering an API into a WAFv2 IP set, for a while.

Offenders come from a CloudWatch Logs Insights query over the API's access logs (one row
per address: ``ip_field`` and ``count_field``). An address is blocked when its count reaches
``threshold``, unless it is in the ``allowlist`` (or is an internal address: a proxy's address
in the logs would otherwise block everyone). At most ``max_addresses`` per action and never
more than 10,000 entries in an IP set: past either, a human decides (escalate, change nothing).

Target: one IP set ARN, or two joined by a comma (one ``IPV4`` set, one ``IPV6`` set); each
address goes to the set of its IP version. An offender whose IP version has no set in the
target escalates the whole action (nothing is blocked): blocking only part of an attack while
the result says executed would hide the rest. ``UpdateIPSet`` replaces the whole list and needs
the ``LockToken`` from ``GetIPSet``: on ``WAFOptimisticLockException`` (someone else changed
the set) or throttling, re-read, re-merge and retry, a bounded number of times with jitter.
CLOUDFRONT-scope sets (ARN ``...:us-east-1:...:global/ipset/...``) go through a us-east-1 client.
An offender some entry already covers (ours or anyone's, exact or a wider CIDR) is left alone:
an earlier block keeps its expiry rather than being renewed.

Every block expires after ``ttl_minutes``. The expiry is recorded in the audit table (its name
from the pipeline's audit log) *before* the IP set changes, so a block can never
outlive its record: item ``pk = block#<ip set ARN>``, ``sk = <address CIDR>``, ``block_until``
(epoch seconds). ``pk = block-index``, ``sk = <ip set ARN>`` lists the IP sets that ever held
a block, so the scheduled sweeper (``remediation.sweeper``) finds them without configuration.

The audit's before/after state is ``{"addresses": [...]}``: the blocks this action made that
the IP sets hold (never the whole sets: 10,000 entries do not fit in an audit item). ``read``
reports the same, so ``revert`` can tell whether anything changed since and undo a block
(``apply`` adds ``after - before`` and removes ``before - after``).

Runbooks: OMNIX "brute force" (``aws wafv2 update-ip-set``), Nigredo "Abuse Detected".
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from remediation.actions.base import (
    Action,
    ActionParams,
    Limit,
    Plan,
    VerifyError,
    register,
)
from remediation.clients import error_code
from remediation.models import RejectedError

IP_SET_LIMIT = 10_000
DEFAULT_QUERY = (
    "fields ip, status\n"
    "| filter status = 401 or status = 403 or status = 429\n"
    "| stats count(*) as requests by ip\n"
    "| sort requests desc\n"
    "| limit 1000"
)
# Never blocked whatever the logs say: these are proxies, load balancers or ourselves.
NEVER_BLOCK = tuple(
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
# Errors worth another read-merge-write: a concurrent writer, throttling, a transient fault.
RETRY_CODES = frozenset(
    {
        "WAFOptimisticLockException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "WAFInternalErrorException",
    }
)
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 5.0
QUERY_POLL_SECONDS = 1.0
BLOCK_INDEX = "block-index"
# Block records outlive their expiry by this much before DynamoDB's TTL drops them, so the
# sweeper always sees an expired record first.
RECORD_GRACE = timedelta(days=30)
VERSION_NAMES = {4: "IPV4", 6: "IPV6"}


def _sleep(seconds: float) -> None:
    """Indirection so tests can skip the waits."""
    time.sleep(seconds)


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to ``base * 2**attempt``, capped."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


# -- target ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IPSetRef:
    """Where one IP set lives, parsed from its ARN."""

    arn: str
    region: str
    scope: str
    name: str
    id: str

    @property
    def key(self) -> dict[str, str]:
        return {"Name": self.name, "Scope": self.scope, "Id": self.id}


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
    scope = "REGIONAL" if path[0] == "regional" else "CLOUDFRONT"
    return IPSetRef(arn=arn, region=parts[3], scope=scope, name=path[2], id=path[3])


def parse_target(target: str) -> list[IPSetRef]:
    """One IP set ARN, or two (one per IP version) joined by a comma."""
    arns = [a.strip() for a in target.split(",")]
    if not 1 <= len(arns) <= 2 or len(set(arns)) != len(arns):
        raise RejectedError("waf-block target: one IP set ARN, or two distinct ones (IPv4, IPv6)")
    return [parse_ip_set_arn(arn) for arn in arns]


# -- parameters --------------------------------------------------------------------------


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

    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.allowlist]


# -- pure logic ----------------------------------------------------------------------------


def canonical(address: str) -> str | None:
    """A single address -> its host CIDR (``/32`` or ``/128``, IPv6 compressed); else None.

    IPv4-mapped IPv6 (``::ffff:198.51.100.7``) is the IPv4 address it maps.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"{ip}/{ip.max_prefixlen}"


def entry_key(entry: str) -> str:
    """An IP set entry, normalised for comparison (unparsable entries compare as written)."""
    try:
        return str(ipaddress.ip_network(entry.strip(), strict=False))
    except ValueError:
        return entry


def version_of(cidr: str) -> str:
    return VERSION_NAMES[ipaddress.ip_network(cidr, strict=False).version]


def sort_cidrs(cidrs: Iterable[str]) -> list[str]:
    def key(cidr: str) -> tuple[int, int]:
        net = ipaddress.ip_network(cidr, strict=False)
        return net.version, int(net.network_address)

    return sorted(set(cidrs), key=key)


def parse_rows(rows: list[list[dict[str, str]]], ip_field: str, count_field: str) -> list[dict]:
    """Logs Insights result rows -> ``[{"ip": raw, "count": n}]``.

    A row without ``count_field`` counts once (a query without ``stats``); a row without
    ``ip_field`` but with a JSON ``@message`` (raw access log lines) takes the field from it.
    Rows with neither an address nor a usable count are dropped.
    """
    found = []
    for row in rows:
        cells = {c.get("field"): c.get("value") for c in row}
        ip = cells.get(ip_field)
        if ip is None and cells.get("@message"):
            try:
                message = json.loads(cells["@message"])
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get(ip_field) is not None:
                ip = str(message[ip_field])
        if not ip:
            continue
        raw_count = cells.get(count_field)
        try:
            count = int(float(raw_count)) if raw_count is not None else 1
        except ValueError:
            continue
        found.append({"ip": ip, "count": count})
    return found


def merge_entries(entries: list[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """The IP set's new list: ``entries`` as written (duplicates dropped), minus the exact
    entries in ``remove``, plus ``add`` where not already present. Order kept."""
    removing = {entry_key(r) for r in remove}
    merged, seen = [], set()
    for entry in [*entries, *add]:
        key = entry_key(entry)
        if key in seen or key in removing:
            continue
        seen.add(key)
        merged.append(entry)
    return merged


def covered(cidr: str, entries: Iterable[str]) -> bool:
    """True if an entry (the same address or a wider block) already holds ``cidr``."""
    net = ipaddress.ip_network(cidr)
    for entry in entries:
        try:
            other = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        if other.version == net.version and net.subnet_of(other):  # type: ignore[arg-type]
            return True
    return False


def plan_block(current: dict[str, Any], params: WafBlockParams, now: datetime) -> Plan:
    """Pure: IP sets + offenders + allowlist + caps -> the addresses to add, or why not.

    ``current``: ``{"ip_sets": {arn: {"version": "IPV4", "entries": [...]}},
    "addresses": [...], "offenders": [{"ip": ..., "count": ...}]}``, where ``addresses`` are
    the blocks this action made earlier that the IP sets still hold.

    ``before``/``after`` are ``{"addresses": <what this action has blocked>}``, not the
    whole sets (up to 10,000 entries each, too big for an audit item); ``after`` adds the new
    addresses, their expiry and request counts. ``read`` and ``verify`` report the same
    ``addresses``, so ``revert`` can compare them and undo a block.
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
        if any(net.version == a.version and net.subnet_of(a) for a in allowed):  # type: ignore[arg-type]
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
    before = {"addresses": blocked}
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
    after = {
        "addresses": sort_cidrs([*blocked, *new]),
        "expires_at": expires.isoformat(),
        "requests": {c: counts[c] for c in new},
    }
    shown = ", ".join(f"{c} ({counts[c]})" for c in new[:5])
    more = f" and {len(new) - 5} more" if len(new) > 5 else ""
    summary = f"block {len(new)} address(es) for {params.ttl_minutes} min: {shown}{more}{tail}"
    return Plan.change(summary, before, after)


# -- AWS calls -----------------------------------------------------------------------------


class QueryFailedError(RuntimeError):
    """The Logs Insights query failed or did not finish in time."""


class IPSetFullError(RuntimeError):
    """The change would take an IP set over the WAF limit: nothing was written."""


def waf_client(clients: Any, ref: IPSetRef) -> Any:
    """The WAFv2 client for ``ref``'s region (CLOUDFRONT scope is managed in us-east-1)."""
    needed = "us-east-1" if ref.scope == "CLOUDFRONT" else ref.region
    default = clients("wafv2")
    return default if default.meta.region_name == needed else clients("wafv2", region=needed)


def get_ip_set(waf: Any, ref: IPSetRef) -> dict[str, Any]:
    """``GetIPSet`` -> ``{"version", "entries", "description", "lock_token"}``."""
    got = waf.get_ip_set(**ref.key)
    ip_set = got["IPSet"]
    return {
        "version": ip_set["IPAddressVersion"],
        "entries": list(ip_set.get("Addresses", [])),
        "description": ip_set.get("Description"),
        "lock_token": got["LockToken"],
    }


def change_ip_set(
    waf: Any,
    ref: IPSetRef,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    attempts: int = MAX_ATTEMPTS,
) -> list[str]:
    """Add and remove entries with ``UpdateIPSet``; on a stale lock token or throttling,
    re-read, re-merge and retry (bounded, jittered). Returns the list written.

    Raises ``IPSetFullError`` rather than write more than ``IP_SET_LIMIT`` entries.
    """
    add, remove = list(add), list(remove)
    for attempt in range(attempts):
        try:
            current = get_ip_set(waf, ref)
            merged = merge_entries(current["entries"], add, remove)
            if merged == current["entries"]:
                return merged
            if len(merged) > IP_SET_LIMIT:
                raise IPSetFullError(
                    f"IP set {ref.name} would hold {len(merged)} entries, over {IP_SET_LIMIT}"
                )
            update = {**ref.key, "Addresses": merged, "LockToken": current["lock_token"]}
            if current["description"]:
                # UpdateIPSet replaces every mutable field: keep the description.
                update["Description"] = current["description"]
            waf.update_ip_set(**update)
            return merged
        except Exception as exc:
            if error_code(exc) not in RETRY_CODES or attempt == attempts - 1:
                raise
            _sleep(backoff(attempt))
    raise AssertionError("unreachable")


def run_query(logs: Any, params: WafBlockParams, end: float) -> list[list[dict[str, str]]]:
    """Start the Logs Insights query over the window ending at ``end`` (epoch seconds) and
    poll its results, at most ``query_timeout_seconds``; stop it if it runs longer."""
    end_s = int(end)
    query_id = logs.start_query(
        logGroupName=params.log_group,
        startTime=end_s - params.window_minutes * 60,
        endTime=end_s,
        queryString=params.query,
    )["queryId"]
    polls = max(1, int(params.query_timeout_seconds / QUERY_POLL_SECONDS))
    status = "Unknown"
    for poll in range(polls):
        if poll:
            _sleep(QUERY_POLL_SECONDS)
        try:
            got = logs.get_query_results(queryId=query_id)
        except Exception as exc:
            if error_code(exc) in THROTTLE_CODES:
                continue
            raise
        status = got["status"]
        if status == "Complete":
            return got["results"]
        if status not in ("Scheduled", "Running"):
            raise QueryFailedError(f"Logs Insights query {query_id} ended {status}")
    # Best effort: an abandoned query times out on its own anyway.
    with contextlib.suppress(Exception):
        logs.stop_query(queryId=query_id)
    raise QueryFailedError(
        f"Logs Insights query {query_id} still {status} after {params.query_timeout_seconds} s"
    )


class BlockRecords:
    """Block expiries in the audit table (see the module docstring for the item shape)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def record(self, arn: str, addresses: Iterable[str], until: datetime, target: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={"pk": {"S": BLOCK_INDEX}, "sk": {"S": arn}, "ip_set_arn": {"S": arn}},
        )
        for cidr in addresses:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"block#{arn}"},
                    "sk": {"S": cidr},
                    "ip_set_arn": {"S": arn},
                    "route_target": {"S": target},
                    "block_until": {"N": str(int(until.timestamp()))},
                    "expires_at": {"N": str(int((until + RECORD_GRACE).timestamp()))},
                },
            )

    def addresses(self, arn: str) -> list[str]:
        """Every address with a block record for ``arn``, expired or not."""
        return [item["sk"]["S"] for item in self._query(f"block#{arn}")]

    def ip_sets(self) -> list[str]:
        return [item["sk"]["S"] for item in self._query(BLOCK_INDEX)]

    def expired(self, arn: str, now: datetime) -> list[dict[str, Any]]:
        """Records for ``arn`` whose block ended at or before ``now``."""
        epoch = int(now.timestamp())
        return [
            {
                "address": item["sk"]["S"],
                "until": int(item["block_until"]["N"]),
                "target": item.get("route_target", {}).get("S", arn),
            }
            for item in self._query(f"block#{arn}")
            if int(item["block_until"]["N"]) <= epoch
        ]

    def forget(self, arn: str, address: str, until: int | None = None) -> bool:
        """Delete a record; with ``until``, only if nobody re-blocked it since. True if gone."""
        extra: dict[str, Any] = {}
        if until is not None:
            extra = {
                "ConditionExpression": "block_until = :until",
                "ExpressionAttributeValues": {":until": {"N": str(until)}},
            }
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"block#{arn}"}, "sk": {"S": address}},
                **extra,
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def forget_ip_set(self, arn: str) -> list[str]:
        """Delete every block record of ``arn`` and its ``block-index`` entry (the IP set is
        gone: nothing is left to unblock). Returns the addresses whose records were deleted."""
        addresses = self.addresses(arn)
        for address in addresses:
            self.forget(arn, address)
        self._db.delete_item(
            TableName=self._table, Key={"pk": {"S": BLOCK_INDEX}, "sk": {"S": arn}}
        )
        return addresses

    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- the action ----------------------------------------------------------------------------


@register
class WafBlock(Action):
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

    @classmethod
    def resources(cls, target: str, params: dict[str, Any] | None = None) -> list[str]:
        return [ref.arn for ref in parse_target(target)]

    def _records(self) -> BlockRecords:
        """Expiries live in the audit table, beside the audit records."""
        return BlockRecords(self.clients("dynamodb"), self.audit.table)

    def read(self, target: str, params: ActionParams) -> dict[str, Any]:
        assert isinstance(params, WafBlockParams)
        records = self._records()
        ip_sets, blocked = {}, []
        for ref in parse_target(target):
            got = get_ip_set(waf_client(self.clients, ref), ref)
            ip_sets[ref.arn] = {"version": got["version"], "entries": got["entries"]}
            blocked += ours(records.addresses(ref.arn), got["entries"])
        versions = [spec["version"] for spec in ip_sets.values()]
        if len(set(versions)) != len(versions):
            raise RejectedError("waf-block target: two IP sets of the same IP version")
        # ``read`` has no ``now``: the query window ends at the wall clock.
        rows = run_query(self.clients("logs"), params, time.time())
        return {
            "ip_sets": ip_sets,
            "addresses": sort_cidrs(blocked),
            "offenders": parse_rows(rows, params.ip_field, params.count_field),
        }

    def plan(self, current: dict[str, Any], params: ActionParams, now: datetime) -> Plan:
        assert isinstance(params, WafBlockParams)
        return plan_block(current, params, now)

    def apply(self, target: str, plan: Plan) -> None:
        """Adds ``after - before`` (expiry recorded first) and removes ``before - after``
        (a revert), each address in the IP set of its version."""
        had = set(plan.before.get("addresses", []))
        want = set(plan.after.get("addresses", []))
        add, remove = sort_cidrs(want - had), sort_cidrs(had - want)
        records = self._records()
        for ref in parse_target(target):
            waf = waf_client(self.clients, ref)
            version = get_ip_set(waf, ref)["version"]
            adding = [c for c in add if version_of(c) == version]
            removing = [c for c in remove if version_of(c) == version]
            if adding:
                expires = plan.after.get("expires_at")
                if not expires:
                    raise ValueError("refusing to block without an expiry (plan has none)")
                # Recorded first: a block must never outlive its expiry record.
                records.record(ref.arn, adding, datetime.fromisoformat(expires), target)
            if adding or removing:
                change_ip_set(waf, ref, add=adding, remove=removing)
            for cidr in removing:
                records.forget(ref.arn, cidr)

    def verify(self, target: str, plan: Plan) -> dict[str, Any]:
        had = set(plan.before.get("addresses", []))
        want = set(plan.after.get("addresses", []))
        records = self._records()
        blocked, problems = [], []
        for ref in parse_target(target):
            got = get_ip_set(waf_client(self.clients, ref), ref)
            blocked += ours(records.addresses(ref.arn), got["entries"])
            keys = {entry_key(e) for e in got["entries"]}
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


def ours(recorded: Iterable[str], entries: Iterable[str]) -> list[str]:
    """The recorded blocks an IP set still holds (as exact entries)."""
    keys = {entry_key(e) for e in entries}
    return [c for c in recorded if entry_key(c) in keys]
