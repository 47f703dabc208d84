"""Forwarding names outside the cluster's zones to the host's resolvers.

Why: a pod with dnsPolicy ClusterFirst has the cluster DNS as its only nameserver (kubelet
dns.go), so the cluster DNS must resolve every other name too, as CoreDNS's
`forward . /etc/resolv.conf` does in Kubernetes' default Corefile.

What is guaranteed:
- Upstreams are tried in their order (as glibc tries resolv.conf's nameservers); each attempt
  is bounded by `timeout`, and the next upstream is tried only on a network failure or timeout,
  not on an answer (an upstream NXDOMAIN or SERVFAIL is passed on as it is).
- A truncated UDP answer is fetched again over TCP from the same upstream, so the caller holds
  the whole answer and truncates it for its own client.
- The query sent upstream is built anew (random ID, EDNS0 with a 1232-byte payload, the
  client's RD, CD and DO bits and question only), and the answer must match it.
- At most `max_concurrent` resolutions run at once; `try_acquire` refuses beyond that so the
  server can answer REFUSED at once, as CoreDNS's forward `max_concurrent` does.
- Upstreams that are this server's own listening addresses are dropped: forwarding to them
  would loop.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Iterable, Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype

from navio.dns.resolvconf import parse_resolv_conf

__all__ = ["Forwarder", "ForwardError", "parse_upstream", "upstreams_from_resolv_conf"]

log = logging.getLogger(__name__)

Upstream = tuple[str, int]
_PAYLOAD = 1232


class ForwardError(Exception):
    """No upstream answered (none configured, all timed out or unreachable)."""


def parse_upstream(text: str, default_port: int = 53) -> Upstream:
    """`1.1.1.1`, `1.1.1.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353` → (address, port)."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep:
            raise ValueError(f"upstream {text!r}: missing ']'")
        if rest:
            port = int(rest.removeprefix(":"))
    elif host.count(":") == 1:
        host, _, raw = host.partition(":")
        port = int(raw)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"upstream {text!r}: port out of range")
    return host, port


def upstreams_from_resolv_conf(text: str) -> list[Upstream]:
    """The nameservers of a resolv.conf, as upstreams on port 53 (non-addresses skipped)."""
    out = []
    for server in parse_resolv_conf(text).nameservers:
        try:
            out.append(parse_upstream(server))
        except ValueError:
            log.warning("resolv.conf nameserver ignored", extra={"nameserver": server})
    return out


class Forwarder:
    def __init__(self, upstreams: Iterable[Upstream], *, timeout: float = 2.0,
                 max_concurrent: int = 1000, exclude: Sequence[Upstream] = ()) -> None:
        own = {(str(ipaddress.ip_address(h)), p) for h, p in exclude}
        self.upstreams: tuple[Upstream, ...] = tuple(
            u for u in upstreams if (str(ipaddress.ip_address(u[0])), u[1]) not in own)
        for h, p in upstreams:
            if (str(ipaddress.ip_address(h)), p) in own:
                log.warning("upstream is this server; dropped to avoid a forwarding loop",
                            extra={"upstream": h, "port": p})
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    def try_acquire(self) -> bool:
        """Take a slot for one resolution; False when `max_concurrent` are running."""
        if self.in_flight >= self.max_concurrent:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    async def resolve(self, qname: dns.name.Name, rdtype: int, *, rd: bool = True,
                      cd: bool = False, dnssec: bool = False) -> dns.message.Message:
        """Ask the upstreams for (qname, rdtype); raises ForwardError when none answered."""
        if not self.upstreams:
            raise ForwardError("no upstream resolvers")
        query = dns.message.make_query(qname, dns.rdatatype.RdataType.make(rdtype),
                                       use_edns=0, payload=_PAYLOAD, want_dnssec=dnssec)
        query.flags = (dns.flags.RD if rd else 0) | (dns.flags.CD if cd else 0)
        for host, port in self.upstreams:
            try:
                response = await dns.asyncquery.udp(query, host, timeout=self.timeout,
                                                    port=port, ignore_unexpected=True)
                if response.flags & dns.flags.TC:
                    response = await dns.asyncquery.tcp(query, host, timeout=self.timeout,
                                                        port=port)
                return response
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                log.debug("upstream query failed",
                          extra={"upstream": host, "port": port, "error": type(exc).__name__})
        raise ForwardError("no upstream answered")
