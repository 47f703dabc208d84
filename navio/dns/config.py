"""The DNS component's configuration: one frozen value, validated when built (by `cli/`).

Defaults follow navio's cluster defaults and Kubernetes' names: the DNS Service at 10.43.0.10
in the 10.43.0.0/16 service range, pods in 10.42.0.0/16, zone `cluster.local`, port 53, and
CoreDNS's kubernetes-plugin TTL of 5 s. Upstreams default to the nameservers of the host's
/etc/resolv.conf, read once at start (CoreDNS's `forward . /etc/resolv.conf`).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from navio.dns.forward import Upstream, parse_upstream, upstreams_from_resolv_conf
from navio.dns.records import DEFAULT_TTL, DEFAULT_ZONE, POD_MODES

__all__ = ["DnsConfig", "DEFAULT_DNS_IP", "DEFAULT_SERVICE_CIDR", "DEFAULT_POD_CIDR"]

log = logging.getLogger(__name__)

DEFAULT_DNS_IP = "10.43.0.10"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_POD_CIDR = "10.42.0.0/16"


@dataclass(frozen=True)
class DnsConfig:
    """`bind_addresses` get UDP and TCP listeners on `port` (0 picks a free port, the same for
    UDP and TCP); `cluster_dns` are the DNS Service's IPs (served as `ns.dns.<zone>`);
    `upstreams` (`ip`, `ip:port`, `[ip6]:port`) override the nameservers of `resolv_conf`."""

    kubeconfig: Path
    bind_addresses: tuple[str, ...] = (DEFAULT_DNS_IP,)
    port: int = 53
    zone: str = DEFAULT_ZONE
    cluster_dns: tuple[str, ...] = (DEFAULT_DNS_IP,)
    upstreams: tuple[str, ...] = ()
    resolv_conf: Path = Path("/etc/resolv.conf")
    service_cidrs: tuple[str, ...] = (DEFAULT_SERVICE_CIDR,)
    pod_cidrs: tuple[str, ...] = (DEFAULT_POD_CIDR,)
    ttl: int = DEFAULT_TTL
    pod_mode: str = "insecure"
    forward_timeout: float = 2.0
    max_concurrent_forwards: int = 1000
    max_tcp_connections: int = 1000
    tcp_idle_timeout: float = 10.0
    shutdown_grace: float = 2.0
    cache_size: int = 4096

    def __post_init__(self) -> None:
        if not self.bind_addresses:
            raise ValueError("dns: at least one bind address is needed")
        for ip in (*self.bind_addresses, *self.cluster_dns):
            ipaddress.ip_address(ip)                       # raises ValueError naming it
        for cidr in (*self.service_cidrs, *self.pod_cidrs):
            ipaddress.ip_network(cidr, strict=False)
        for upstream in self.upstreams:
            parse_upstream(upstream)
        if not 0 <= self.port < 65536:
            raise ValueError(f"dns: port {self.port} is not a valid port")
        if not self.zone.strip("."):
            raise ValueError("dns: the cluster zone may not be empty")
        if not 0 <= self.ttl <= 2**31 - 1:
            raise ValueError(f"dns: ttl {self.ttl} out of range")
        if self.pod_mode not in POD_MODES:
            raise ValueError(f"dns: pod mode {self.pod_mode!r} is not one of {POD_MODES}")
        for name in ("forward_timeout", "tcp_idle_timeout", "shutdown_grace"):
            if getattr(self, name) <= 0:
                raise ValueError(f"dns: {name} must be positive")
        if self.max_concurrent_forwards < 1 or self.max_tcp_connections < 1:
            raise ValueError("dns: concurrency limits must be at least 1")

    def resolved_upstreams(self) -> list[Upstream]:
        """`upstreams` if given, else the nameservers of `resolv_conf` (none if unreadable)."""
        if self.upstreams:
            return [parse_upstream(u) for u in self.upstreams]
        try:
            text = self.resolv_conf.read_text(errors="replace")
        except OSError as exc:
            log.warning("host resolv.conf unreadable; external names will fail",
                        extra={"path": str(self.resolv_conf), "error": type(exc).__name__})
            return []
        return upstreams_from_resolv_conf(text)
