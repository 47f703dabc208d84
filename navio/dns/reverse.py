"""Reverse DNS names (in-addr.arpa, ip6.arpa) and the reverse zones of CIDRs (pure).

Why: the cluster DNS is authoritative for the reverse zones of the service and pod CIDRs
(spec 2.3.3 and 2.4.3 PTR records) and forwards every other reverse name; deciding which is
which, and which address a name stands for, is kept apart from the record table.

Guarantees: a name parses only when every label is a plain decimal octet (IPv4, at most four)
or a single hex nibble (IPv6, at most 32); anything else is "not a reverse name" (None).
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass
from typing import Union

import dns.name

__all__ = ["V4_REVERSE", "V6_REVERSE", "ReverseZone", "parse_reverse", "prefix_network",
           "reverse_to_ip"]

V4_REVERSE = dns.name.from_text("in-addr.arpa.")
V6_REVERSE = dns.name.from_text("ip6.arpa.")
_HEX = frozenset(string.hexdigits.encode())
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True, slots=True)
class ReverseZone:
    """A CIDR and how many labels its reverse zones have below in-addr.arpa / ip6.arpa.

    A prefix that is not a multiple of 8 (IPv4) or 4 (IPv6) bits is rounded up, so that
    10.42.0.0/15 is served as 42.10.in-addr.arpa and 43.10.in-addr.arpa and nothing wider."""
    network: Network
    labels: int

    @classmethod
    def of(cls, cidr: str) -> "ReverseZone":
        net = ipaddress.ip_network(cidr, strict=False)
        bits = 8 if net.version == 4 else 4
        return cls(net, -(-net.prefixlen // bits))


def parse_reverse(qname: dns.name.Name) -> tuple[int, list[int]] | None:
    """(IP version, address parts most significant first) of a reverse name, or None.

    Partial names (fewer parts than an address has) parse too: `43.10.in-addr.arpa.` is
    (4, [10, 43])."""
    if qname.is_subdomain(V4_REVERSE):
        labels = qname.labels[:-3]
        if len(labels) > 4 or not all(0 < len(x) <= 3 and x.isdigit() for x in labels):
            return None
        parts = [int(x) for x in reversed(labels)]
        if any(p > 255 for p in parts):
            return None
        return 4, parts
    if qname.is_subdomain(V6_REVERSE):
        labels = qname.labels[:-3]
        if len(labels) > 32 or not all(len(x) == 1 and x[0] in _HEX for x in labels):
            return None
        return 6, [int(x, 16) for x in reversed(labels)]
    return None


def prefix_network(version: int, parts: list[int]) -> Network:
    """The network that address parts (octets or nibbles) name: [10, 43] → 10.43.0.0/16."""
    if version == 4:
        octets = parts + [0] * (4 - len(parts))
        return ipaddress.IPv4Network((bytes(octets), 8 * len(parts)))
    value = 0
    for p in parts + [0] * (32 - len(parts)):
        value = (value << 4) | p
    return ipaddress.IPv6Network((value, 4 * len(parts)))


def reverse_to_ip(qname: dns.name.Name) -> str | None:
    """The canonical address text a full reverse name stands for; None if partial/invalid."""
    parsed = parse_reverse(qname)
    if parsed is None:
        return None
    version, parts = parsed
    if len(parts) != (4 if version == 4 else 32):
        return None
    return str(prefix_network(version, parts).network_address)
