"""The DNS records one Service defines, computed from it and its EndpointSlices (pure).

Why: the cluster DNS answers from a precomputed table, and a change to one Service or one of its
EndpointSlices must only recompute that Service's part of it. This module is that part: the
names, record sets and PTR targets of one Service, from the Service and its slices alone.

What is produced follows the Kubernetes DNS specification 1.1.0 (kubernetes/dns
docs/specification.md) and, where the specification leaves a choice, CoreDNS's kubernetes plugin
(plugin/kubernetes/kubernetes.go, object/endpoint.go):
- ClusterIP service: `<svc>.<ns>.svc.<zone>` A/AAAA of its cluster IPs (one per family when
  dual-stack); SRV `_<port>._<proto>.<svc>...` for each named port, target the service name;
  PTR from each cluster IP to the service name.
- Headless service (clusterIP None): `<svc>...` A/AAAA of every ready endpoint address, and
  `<hostname>.<svc>...` for each, the hostname being the endpoint's `hostname` or else its
  address with dashes (CoreDNS's endpointHostname: 10-244-0-5); SRV per named port of the
  slices and per endpoint, target the hostname name, port the endpoint's port; PTR from each
  ready endpoint address to its hostname name. No ready endpoint: no names at all (NXDOMAIN).
  "Ready" is `conditions.ready` not false (unset means ready), or every endpoint when the
  Service sets `publishNotReadyAddresses` or the legacy tolerate-unready annotation.
- ExternalName service: a CNAME to `spec.externalName`; none when that is an IP address
  (CoreDNS skips those too).
- SRV records at the service name itself list every port, named or not (CoreDNS answers a
  port-less SRV query with all ports). Priority 0; weight 100 split evenly, as CoreDNS does.
Every returned record set is a fresh dnspython RRset owned by the caller; none is shared.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.PTR
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

__all__ = [
    "SERVICE_NAME_LABEL", "TOLERATE_UNREADY_ANNOTATION", "Port", "ServiceInfo", "EndpointInfo",
    "SliceInfo", "ServiceRecords", "parse_service", "parse_slice", "build_service_records",
    "address_rdata", "dashed",
]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TOLERATE_UNREADY_ANNOTATION = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
CLUSTER_IP, HEADLESS, EXTERNAL_NAME = "ClusterIP", "Headless", "ExternalName"

_IN = dns.rdataclass.IN
_A, _AAAA, _SRV = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SRV
_CNAME, _PTR = dns.rdatatype.CNAME, dns.rdatatype.PTR

Node = dict[int, dns.rrset.RRset]


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What DNS needs of a Service; `kind` is ClusterIP, Headless or ExternalName."""
    namespace: str
    name: str
    kind: str
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    external_name: str = ""
    publish_not_ready: bool = False


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    addresses: tuple[str, ...]
    hostname: str
    ready: bool


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """What DNS needs of an EndpointSlice: its service, endpoints (IP only) and ports."""
    namespace: str
    name: str
    service: str
    endpoints: tuple[EndpointInfo, ...] = ()
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceRecords:
    """Every owner name one Service defines, its record sets, and its PTR targets by IP."""
    names: Mapping[dns.name.Name, Node] = field(default_factory=dict)
    endpoint_ptrs: Mapping[str, tuple[dns.name.Name, ...]] = field(default_factory=dict)
    cluster_ptrs: Mapping[str, dns.name.Name] = field(default_factory=dict)


def _ip(value: Any) -> str | None:
    """The canonical text of an IP address, or None when `value` is not one."""
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return None


def _ports(raw: Any, *, default_protocol: str = "TCP") -> tuple[Port, ...]:
    out = []
    for p in raw or ():
        number = p.get("port")
        if not isinstance(number, int) or not 0 < number < 65536:
            continue           # an EndpointSlice port without a number means "all ports"
        out.append(Port(str(p.get("name") or ""), str(p.get("protocol") or default_protocol),
                        number))
    return tuple(out)


def parse_service(obj: Mapping[str, Any]) -> ServiceInfo | None:
    """The DNS view of a Service object; None when it lacks a namespace or name."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    if not ns or not name:
        return None
    annotations = meta.get("annotations") or {}
    publish = bool(spec.get("publishNotReadyAddresses")) or \
        str(annotations.get(TOLERATE_UNREADY_ANNOTATION, "")).lower() == "true"
    if spec.get("type") == EXTERNAL_NAME:
        return ServiceInfo(ns, name, EXTERNAL_NAME, external_name=str(
            spec.get("externalName") or ""))
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if raw_ips and str(raw_ips[0]) == "None":
        return ServiceInfo(ns, name, HEADLESS, ports=_ports(spec.get("ports")),
                           publish_not_ready=publish)
    ips = tuple(ip for ip in map(_ip, raw_ips) if ip is not None)
    return ServiceInfo(ns, name, CLUSTER_IP, cluster_ips=ips, ports=_ports(spec.get("ports")),
                       publish_not_ready=publish)


def parse_slice(obj: Mapping[str, Any]) -> SliceInfo | None:
    """The DNS view of an EndpointSlice; None without a service-name label or of type FQDN."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not ns or not name or not service or obj.get("addressType") == "FQDN":
        return None
    endpoints = []
    for ep in obj.get("endpoints") or ():
        addresses = tuple(ip for ip in map(_ip, ep.get("addresses") or ()) if ip is not None)
        if not addresses:
            continue
        # EndpointConditions: "a nil value should be interpreted as ready" (discovery/v1).
        ready = (ep.get("conditions") or {}).get("ready") is not False
        endpoints.append(EndpointInfo(addresses, str(ep.get("hostname") or ""), ready))
    return SliceInfo(ns, name, service, tuple(endpoints), _ports(obj.get("ports")))


def dashed(ip: str) -> str:
    """An address as a DNS label: 10.244.0.5 → 10-244-0-5, 2001:db8::1 → 2001-db8--1."""
    return ip.replace(".", "-").replace(":", "-")


def address_rdata(ip: str) -> Any:
    """The A or AAAA rdata for a canonical address text."""
    if ":" in ip:
        return dns.rdtypes.IN.AAAA.AAAA(_IN, _AAAA, ip)
    return dns.rdtypes.IN.A.A(_IN, _A, ip)


def _srv_set(owner: dns.name.Name, ttl: int,
             entries: Iterable[tuple[int, dns.name.Name]]) -> dns.rrset.RRset:
    unique = sorted(set(entries))
    # CoreDNS (plugin/backend_lookup.go SRV): equal priority, weights splitting 100 evenly.
    weight = 100 // len(unique)
    return dns.rrset.from_rdata_list(owner, ttl, [
        dns.rdtypes.IN.SRV.SRV(_IN, _SRV, 0, weight, port, target) for port, target in unique])


def _address_sets(owner: dns.name.Name, ttl: int, ips: Iterable[str]) -> Node:
    node: Node = {}
    by_type: dict[int, list[Any]] = {}
    for ip in sorted(set(ips)):
        rdata = address_rdata(ip)
        by_type.setdefault(rdata.rdtype, []).append(rdata)
    for rdtype, rdatas in by_type.items():
        node[rdtype] = dns.rrset.from_rdata_list(owner, ttl, rdatas)
    return node


def _label(text: str) -> bytes:
    return text.lower().encode("ascii", "replace")


def _child(parent: dns.name.Name, *labels: str) -> dns.name.Name | None:
    try:
        return dns.name.Name([_label(x) for x in labels] + list(parent.labels))
    except (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel):
        return None


def build_service_records(svc: ServiceInfo, slices: Iterable[SliceInfo], zone: dns.name.Name,
                          ttl: int) -> ServiceRecords:
    """The records of `svc` under `zone` given its EndpointSlices; safe to repeat."""
    base = _child(zone, svc.name, svc.namespace, "svc")
    if base is None:
        return ServiceRecords()
    if svc.kind == EXTERNAL_NAME:
        return _external(svc, base, ttl)
    if svc.kind == HEADLESS:
        return _headless(svc, slices, base, ttl)
    return _cluster_ip(svc, base, ttl)


def _external(svc: ServiceInfo, base: dns.name.Name, ttl: int) -> ServiceRecords:
    if not svc.external_name or _ip(svc.external_name) is not None:
        return ServiceRecords()
    try:
        target = dns.name.from_text(svc.external_name.rstrip("."))
    except dns.exception.DNSException:
        return ServiceRecords()
    rdata = dns.rdtypes.ANY.CNAME.CNAME(_IN, _CNAME, target)
    return ServiceRecords(names={base: {_CNAME: dns.rrset.from_rdata(base, ttl, rdata)}})


def _srv_owner(base: dns.name.Name, port: Port) -> dns.name.Name | None:
    return _child(base, "_" + port.name, "_" + port.protocol) if port.name else None


def _cluster_ip(svc: ServiceInfo, base: dns.name.Name, ttl: int) -> ServiceRecords:
    names: dict[dns.name.Name, Node] = {base: _address_sets(base, ttl, svc.cluster_ips)}
    if svc.ports:
        names[base][_SRV] = _srv_set(base, ttl, ((p.port, base) for p in svc.ports))
    for port in svc.ports:
        owner = _srv_owner(base, port)
        if owner is not None:
            node = names.setdefault(owner, {})
            entries = [(port.port, base)]
            if _SRV in node:     # same name and protocol twice: keep both port numbers
                entries += [(r.port, r.target) for r in node[_SRV]]
            node[_SRV] = _srv_set(owner, ttl, entries)
    return ServiceRecords(names=names, cluster_ptrs={ip: base for ip in svc.cluster_ips})


def _headless(svc: ServiceInfo, slices: Iterable[SliceInfo], base: dns.name.Name,
              ttl: int) -> ServiceRecords:
    all_ips: list[str] = []
    host_ips: dict[dns.name.Name, list[str]] = {}
    srv: dict[dns.name.Name, list[tuple[int, dns.name.Name]]] = {}
    ptrs: dict[str, set[dns.name.Name]] = {}
    for sl in slices:
        for ep in sl.endpoints:
            if not (ep.ready or svc.publish_not_ready):
                continue
            for ip in ep.addresses:
                host = _child(base, ep.hostname or dashed(ip))
                if host is None:
                    continue
                all_ips.append(ip)
                host_ips.setdefault(host, []).append(ip)
                ptrs.setdefault(ip, set()).add(host)
                for port in sl.ports:
                    srv.setdefault(base, []).append((port.port, host))
                    owner = _srv_owner(base, port)
                    if owner is not None:
                        srv.setdefault(owner, []).append((port.port, host))
    if not all_ips:
        return ServiceRecords()
    names: dict[dns.name.Name, Node] = {base: _address_sets(base, ttl, all_ips)}
    for host, ips in host_ips.items():
        names[host] = _address_sets(host, ttl, ips)
    for owner, entries in srv.items():
        names.setdefault(owner, {})[_SRV] = _srv_set(owner, ttl, entries)
    return ServiceRecords(names=names,
                          endpoint_ptrs={ip: tuple(sorted(t)) for ip, t in ptrs.items()})
