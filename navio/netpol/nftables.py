"""Render per-pod NetworkPolicy verdicts (`model.PodPolicy`) as one nftables table.

Why: the kernel must enforce what the API accepts (issue 14). One table, `inet navio-netpol`,
replaced whole in one `nft -f` transaction per change: atomic (no packet ever sees half a
policy set) and simple to reason about; at hundreds of pods the script is still small.

Shape (kube-router/Calico style, per-pod chains keyed by pod IP):

    chain forward  (hook forward, priority 0, policy accept)
        ct state established,related accept          # replies to allowed connections
        ip saddr vmap { <isolated-for-egress pod>: jump eg-<ip> }
        ip daddr vmap { <isolated-for-ingress pod>: jump in-<ip> }
    chain eg-<ip>  rules that `return` (go on to the destination's ingress check), then drop
    chain in-<ip>  rules that `accept`, then drop
(each chain first lets the pod's traffic to itself pass: a pod cannot block itself).

Pod-to-pod traffic on the node's bridge reaches the inet forward hook because
bridge-nf-call-iptables is on (PLATFORM.md; the proxy needs it too), routed traffic to and
from other nodes passes the same hook. Traffic between a pod and its own node (input/output
hooks: kubelet probes, node-local DNS) is not filtered: Kubernetes defines traffic to and
from the node a pod runs on as always allowed. Each distinct peer group is one named interval set (`peers-N`) that chains refer to;
address and port sets are merged, since nft refuses overlapping intervals.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from navio.netpol.model import Allow, Peer, PodPolicy, PortRange

__all__ = ["FAMILY", "TABLE", "render", "delete_script", "chain_name"]

FAMILY = "inet"
TABLE = "navio-netpol"


def chain_name(direction: str, ip: str) -> str:
    return f"{direction}-" + ip.replace(".", "-").replace(":", "-")


@functools.lru_cache(maxsize=65536)
def _version(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).version


def _addr_set(cidrs: Iterable[str]) -> str:
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    merged = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
    return "{ " + ", ".join(str(n) for n in merged) + " }"


def _port_set(ranges: list[tuple[int, int]]) -> str:
    ranges.sort()
    merged: list[list[int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return "{ " + ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in merged) + " }"


def _port_matches(ports: tuple[PortRange, ...]) -> list[str]:
    """nft match expressions, one per protocol; [""] for every protocol and port."""
    if not ports:
        return [""]
    by_proto: dict[str, list[tuple[int, int]] | None] = {}
    for p in ports:
        proto = p.protocol.lower()
        if p.first is None:
            by_proto[proto] = None
        elif proto not in by_proto or by_proto[proto] is not None:
            by_proto.setdefault(proto, [])
            by_proto[proto].append((p.first, p.last if p.last is not None else p.first))  # type: ignore[union-attr]
    out = []
    for proto in sorted(by_proto):
        ranges = by_proto[proto]
        out.append(f"meta l4proto {proto}" if ranges is None
                   else f"meta l4proto {proto} th dport {_port_set(ranges)}")
    return out


class _Sets:
    """Named address sets, one per distinct peer group: a group many pods' chains share is
    written (and merged) once."""

    def __init__(self) -> None:
        self.names: dict[tuple[int, tuple[str, ...]], str] = {}
        self.lines: list[str] = []
        # by the peers tuple's identity (allow lists share them): hashing a tuple of hundreds
        # of peers for every chain cost more than the rest of the rendering at 1,000 pods
        self.matches: dict[tuple[int, str, int], tuple[tuple[Peer, ...], list[str]]] = {}

    def ref(self, version: int, cidrs: list[str]) -> str:
        key = (version, tuple(sorted(set(cidrs))))
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = f"peers-{len(self.names)}"
            kind = "ipv4_addr" if version == 4 else "ipv6_addr"
            self.lines += [f"\tset {name} {{", f"\t\ttype {kind}; flags interval;",
                           f"\t\telements = {_addr_set(cidrs)}", "\t}"]
        return "@" + name


def _peer_matches(peers: tuple[Peer, ...], field: str, version: int, sets: _Sets) -> list[str]:
    """nft address matches for `field` (saddr/daddr) of one IP version; [""] for any."""
    key = (id(peers), field, version)
    hit = sets.matches.get(key)
    if hit is None or hit[0] is not peers:
        hit = sets.matches[key] = (peers, _peer_matches_uncached(peers, field, version, sets))
    return hit[1]


def _peer_matches_uncached(peers: tuple[Peer, ...], field: str, version: int,
                           sets: _Sets) -> list[str]:
    fam = "ip" if version == 4 else "ip6"
    if any(p.cidr is None for p in peers):
        return [""]
    plain = [p.cidr for p in peers if not p.excepts and p.cidr and _version(p.cidr) == version]
    out = [f"{fam} {field} {sets.ref(version, plain)}"] if plain else []
    for p in peers:
        if p.excepts and p.cidr and _version(p.cidr) == version:
            ex = [e for e in p.excepts if _version(e) == version]
            match = f"{fam} {field} {_addr_set([p.cidr])}"
            out.append(f"{match} {fam} {field} != {_addr_set(ex)}" if ex else match)
    return out


def _chain(name: str, own_ip: str, allows: tuple[Allow, ...], field: str, version: int,
           verdict: str, sets: _Sets) -> list[str]:
    fam = "ip" if version == 4 else "ip6"
    # a pod's traffic to itself (through its own Service) is never blocked
    lines = [f"\tchain {name} {{", f"\t\t{fam} {field} {own_ip} {verdict}"]
    for allow in allows:
        for addr in _peer_matches(allow.peers, field, version, sets):
            for port in _port_matches(allow.ports):
                lines.append("\t\t" + " ".join(x for x in (addr, port, verdict) if x))
    lines += ["\t\tdrop", "\t}"]
    return lines


def render(policies: Iterable[PodPolicy]) -> str:
    """The whole table as an `nft -f` script that atomically replaces any previous one."""
    chains: list[str] = []
    sets = _Sets()
    vmaps: dict[tuple[str, int], list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for pp in sorted(policies, key=lambda p: (p.namespace, p.name)):
        for ip in pp.ips:
            version = ipaddress.ip_address(ip).version
            for direction, allows, own, peer, verdict in (
                    ("eg", pp.egress, "saddr", "daddr", "return"),
                    ("in", pp.ingress, "daddr", "saddr", "accept")):
                if allows is None or (direction, ip) in seen:
                    continue
                seen.add((direction, ip))
                name = chain_name(direction, ip)
                chains += _chain(name, ip, allows, peer, version, verdict, sets)
                vmaps.setdefault((own, version), []).append(f"{ip} : jump {name}")
    lines = [f"add table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}",
             f"table {FAMILY} {TABLE} {{", "\tchain forward {",
             "\t\ttype filter hook forward priority 0; policy accept;",
             "\t\tct state established,related accept"]
    for own in ("saddr", "daddr"):       # egress of the source first, then ingress
        for version in (4, 6):
            elems = vmaps.get((own, version))
            if elems:
                fam = "ip" if version == 4 else "ip6"
                lines.append(f"\t\t{fam} {own} vmap {{ " + ", ".join(elems) + " }")
    lines += ["\t}", *sets.lines, *chains, "}", ""]
    return "\n".join(lines)


def delete_script() -> str:
    """Removes the table (safe when it is absent)."""
    return f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"
