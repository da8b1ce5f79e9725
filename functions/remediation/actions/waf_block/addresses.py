"""Addresses and CIDRs as WAF IP sets hold them: parse, normalise, compare, sort. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

IPVersion = Literal["IPV4", "IPV6"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
VERSION_NAMES: dict[int, IPVersion] = {4: "IPV4", 6: "IPV6"}


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


def version_of(cidr: str) -> IPVersion:
    return VERSION_NAMES[ipaddress.ip_network(cidr, strict=False).version]


def sort_cidrs(cidrs: Iterable[str]) -> list[str]:
    def key(cidr: str) -> tuple[int, int]:
        net = ipaddress.ip_network(cidr, strict=False)
        return net.version, int(net.network_address)

    return sorted(set(cidrs), key=key)


def within(net: Network, other: Network) -> bool:
    """True if ``net`` lies inside ``other`` (never across IP versions)."""
    if isinstance(net, ipaddress.IPv4Network) and isinstance(other, ipaddress.IPv4Network):
        return net.subnet_of(other)
    if isinstance(net, ipaddress.IPv6Network) and isinstance(other, ipaddress.IPv6Network):
        return net.subnet_of(other)
    return False


def covered(cidr: str, entries: Iterable[str]) -> bool:
    """True if an entry (the same address or a wider block) already holds ``cidr``."""
    net = ipaddress.ip_network(cidr)
    for entry in entries:
        try:
            other = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        if within(net, other):
            return True
    return False


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


def ours(recorded: Iterable[str], entries: Iterable[str]) -> list[str]:
    """The recorded blocks an IP set still holds (as exact entries)."""
    keys = {entry_key(e) for e in entries}
    return [c for c in recorded if entry_key(c) in keys]
