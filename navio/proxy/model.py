"""The proxy's desired state: which service ports exist and which endpoints serve each.

Why: every backend (nftables rules, the userspace forwarder) programs the same facts, and
kube-proxy's rules for deriving them from Services and EndpointSlices are subtle enough to
deserve one pure, tested home (pkg/proxy/serviceport.go, endpointslicecache.go, topology.go).

What is guaranteed (IPv4 only, as navio's clusters are single-stack):
- A Service yields service ports only when it has an IPv4 cluster IP; headless (`None`),
  unallocated and ExternalName services yield none, as kube-proxy's ShouldSkipService.
- An EndpointSlice belongs to the Service named by its `kubernetes.io/service-name` label; its
  port is matched to the service port by name and protocol. Endpoints are de-duplicated by
  `ip:port` across slices (a local copy wins) and sorted by that string, as kube-proxy does,
  so that equal inputs give equal (and equal-comparing) outputs.
- Conditions as endpointslicecache.go reads them: `ready` and `serving` unset mean true,
  `terminating` unset means false. An endpoint is a target when it is
  ready and not terminating; only when a traffic policy has no such endpoint does it fall back
  to endpoints that are serving and terminating (CategorizeEndpoints, without topology hints).
- Everything returned is a frozen value: safe to share, compare and hash.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Endpoint", "ServicePort", "ServiceMap", "LABEL_SERVICE_NAME", "PROXY_LABEL_SELECTOR",
    "DEFAULT_AFFINITY_TIMEOUT", "build_service", "build_service_map", "service_key",
    "slice_service_key", "slice_endpoints", "categorize",
]

Obj = Mapping[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
# kube-proxy watches neither services handled by another proxy nor headless ones
# (cmd/kube-proxy/app/server.go).
PROXY_LABEL_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
DEFAULT_AFFINITY_TIMEOUT = 10800          # v1.DefaultClientIPServiceAffinitySeconds
_PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend address of one service port, with its EndpointSlice conditions."""

    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    local: bool = False

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def usable(self) -> bool:
        """A normal target: Ready and not terminating."""
        return self.ready and not self.terminating

    @property
    def serving_terminating(self) -> bool:
        """A fallback target: still serving while it terminates."""
        return self.serving and self.terminating


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service, and the endpoints each traffic policy sends it to."""

    namespace: str
    name: str
    port_name: str
    protocol: str                              # "TCP", "UDP" or "SCTP"
    cluster_ip: str
    port: int
    node_port: int = 0                         # 0: none
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0                  # seconds of ClientIP affinity; 0: none
    external_policy_local: bool = False
    internal_policy_local: bool = False
    cluster_endpoints: tuple[Endpoint, ...] = ()   # targets under the Cluster policy
    local_endpoints: tuple[Endpoint, ...] = ()     # targets under the Local policy
    has_endpoints: bool = False                # any usable endpoint anywhere in the cluster

    def __str__(self) -> str:
        """kube-proxy's ServicePortName: `ns/name:port`, or `ns/name` for an unnamed port."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # Even with externalTrafficPolicy Local, Cluster endpoints serve the short-circuit of
        # in-cluster traffic to external addresses (serviceport.go).
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.external_policy_local
                                              and self.externally_accessible)

    @property
    def internal_endpoints(self) -> tuple[Endpoint, ...]:
        """Targets of traffic to the cluster IP (internalTrafficPolicy applied)."""
        return self.local_endpoints if self.internal_policy_local else self.cluster_endpoints

    @property
    def external_endpoints(self) -> tuple[Endpoint, ...]:
        """Targets of NodePort / external IP traffic (externalTrafficPolicy applied)."""
        return self.local_endpoints if self.external_policy_local else self.cluster_endpoints

    @property
    def reachable_endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint some rule of this node may send traffic to, sorted."""
        if not self.local_endpoints:
            return self.cluster_endpoints
        if not self.cluster_endpoints:
            return self.local_endpoints
        merged = {str(e): e for e in self.cluster_endpoints}
        for e in self.local_endpoints:
            merged.setdefault(str(e), e)
        return tuple(merged[k] for k in sorted(merged))


# Service key (`namespace/name`) → its ports, in the order of spec.ports.
ServiceMap = dict[str, tuple[ServicePort, ...]]


def service_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def slice_service_key(slice_: Obj) -> str | None:
    """The key of the Service an EndpointSlice belongs to, or None without the label."""
    meta = slice_.get("metadata") or {}
    name = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    if not name or not meta.get("namespace"):
        return None
    return f"{meta['namespace']}/{name}"


def _ipv4(value: Any) -> str | None:
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    return str(addr) if addr.version == 4 else None


def _cluster_ip(spec: Obj) -> str | None:
    ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    for ip in ips:
        if ip in (None, "", "None"):
            return None
        if (v4 := _ipv4(ip)) is not None:
            return v4
    return None


def _externally_accessible_type(spec: Obj) -> bool:
    kind = spec.get("type") or "ClusterIP"
    return kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP"
                                                    and bool(spec.get("externalIPs")))


def _affinity_timeout(spec: Obj) -> int:
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    timeout = cfg.get("timeoutSeconds")
    return int(timeout) if timeout else DEFAULT_AFFINITY_TIMEOUT


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str,
                    node_name: str) -> list[Endpoint]:
    """The endpoints of `slices` for the port named `port_name`/`protocol`, de-duplicated
    by `ip:port` (a local copy wins) and sorted by that string."""
    found: dict[str, Endpoint] = {}
    for sl in slices:
        if (sl.get("addressType") or "IPv4") != "IPv4":
            continue
        number = None
        for p in sl.get("ports") or ():
            if ((p.get("name") or "") == port_name
                    and (p.get("protocol") or "TCP") == protocol and p.get("port")):
                number = int(p["port"])
                break
        if number is None:
            continue
        for ep in sl.get("endpoints") or ():
            addrs = ep.get("addresses") or ()
            ip = _ipv4(addrs[0]) if addrs else None
            if ip is None:
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving") is not False
            node = ep.get("nodeName") or ""
            e = Endpoint(ip, number, node, ready, serving, cond.get("terminating") is True,
                         bool(node_name) and node == node_name)
            if str(e) not in found or e.local:
                found[str(e)] = e
    return [found[k] for k in sorted(found)]


def categorize(endpoints: list[Endpoint], *, uses_cluster: bool, uses_local: bool
               ) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...], bool]:
    """(cluster targets, local targets, any usable endpoint anywhere): CategorizeEndpoints.

    Each policy takes the ready, non-terminating endpoints; if it has none, it falls back to
    serving-terminating ones, independently for Cluster and Local."""
    cluster: list[Endpoint] = []
    local: list[Endpoint] = []
    has_any = False
    if uses_cluster:
        cluster = [e for e in endpoints if e.usable]
        if not cluster:
            cluster = [e for e in endpoints if e.serving_terminating]
        has_any = bool(cluster)
    if uses_local:
        has_any = has_any or any(e.usable or e.serving_terminating for e in endpoints)
        local = [e for e in endpoints if e.local and e.usable]
        if not local:
            local = [e for e in endpoints if e.local and e.serving_terminating]
    return tuple(cluster), tuple(local), has_any


def build_service(service: Obj, slices: Iterable[Obj], node_name: str
                  ) -> tuple[ServicePort, ...]:
    """The service ports of one Service given its EndpointSlices, seen from `node_name`."""
    spec = service.get("spec") or {}
    meta = service.get("metadata") or {}
    if (spec.get("type") or "ClusterIP") == "ExternalName":
        return ()
    cluster_ip = _cluster_ip(spec)
    if cluster_ip is None:
        return ()
    slices = list(slices)
    accessible = _externally_accessible_type(spec)
    external_local = accessible and spec.get("externalTrafficPolicy") == "Local"
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_ips = tuple(ip for ip in map(_ipv4, spec.get("externalIPs") or ()) if ip)
    lb_ips = tuple(ip for ing in ((service.get("status") or {}).get("loadBalancer") or {})
                   .get("ingress") or () if ing.get("ipMode", "VIP") == "VIP"
                   and (ip := _ipv4(ing.get("ip"))))
    affinity = _affinity_timeout(spec)
    out = []
    for p in spec.get("ports") or ():
        protocol = p.get("protocol") or "TCP"
        if protocol not in _PROTOCOLS or not p.get("port"):
            continue
        port_name = p.get("name") or ""
        sp = ServicePort(
            namespace=meta.get("namespace", ""), name=meta.get("name", ""),
            port_name=port_name, protocol=protocol, cluster_ip=cluster_ip,
            port=int(p["port"]), node_port=int(p.get("nodePort") or 0),
            external_ips=external_ips, load_balancer_ips=lb_ips, affinity_timeout=affinity,
            external_policy_local=external_local, internal_policy_local=internal_local)
        eps = slice_endpoints(slices, port_name, protocol, node_name)
        cluster, local, has_any = categorize(eps, uses_cluster=sp.uses_cluster_endpoints,
                                             uses_local=sp.uses_local_endpoints)
        out.append(_replace(sp, cluster, local, has_any))
    return tuple(out)


def _replace(sp: ServicePort, cluster: tuple[Endpoint, ...], local: tuple[Endpoint, ...],
             has_any: bool) -> ServicePort:
    return ServicePort(sp.namespace, sp.name, sp.port_name, sp.protocol, sp.cluster_ip,
                       sp.port, sp.node_port, sp.external_ips, sp.load_balancer_ips,
                       sp.affinity_timeout, sp.external_policy_local,
                       sp.internal_policy_local, cluster, local, has_any)


def build_service_map(services: Iterable[Obj], slices: Iterable[Obj],
                      node_name: str) -> ServiceMap:
    """The whole desired state from every Service and EndpointSlice; services without
    usable ports are left out."""
    by_service: dict[str, list[Obj]] = {}
    for sl in slices:
        if (key := slice_service_key(sl)) is not None:
            by_service.setdefault(key, []).append(sl)
    out: ServiceMap = {}
    for svc in services:
        key = service_key(svc)
        ports = build_service(svc, by_service.get(key, ()), node_name)
        if ports:
            out[key] = ports
    return out
