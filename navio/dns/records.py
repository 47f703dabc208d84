"""The cluster's DNS record set, kept current from informer events, and its lookup (pure).

Why: every query is answered from memory; no query ever reaches the API server. Informer
handlers call the `upsert_*`/`remove_*` methods, and the DNS server calls `lookup`.

What is guaranteed:
- Incremental: an event on a Service or EndpointSlice recomputes that one Service's records
  (service_records.py) and swaps them into the name table; nothing else is rebuilt. Events may
  arrive in any order (a slice before its Service is kept and used once the Service appears).
- `generation` increases with every change that can alter an answer, so callers may cache
  rendered answers and drop them when it moves.
- `lookup` answers every name under the cluster zone, and reverse names of the configured
  service and pod CIDRs (and of any address it holds a PTR for); it returns None only for
  names it is not authoritative for, which the server forwards. Names compare
  case-insensitively, as the specification requires.
- NXDOMAIN versus NODATA follows the specification and CoreDNS: a name that owns any record
  exists, and so do the zone apex, `svc.<zone>`, `pod.<zone>`, `dns.<zone>` and
  `<ns>.svc|pod.<zone>` of an existing namespace; asking one of these for a type it lacks is
  NODATA (NOERROR, SOA in authority), anything else NXDOMAIN. A headless Service without ready
  endpoints has no name (NXDOMAIN). Partial reverse names inside a CIDR's reverse zone are
  NODATA, never NXDOMAIN, since NXDOMAIN would deny every name below them (RFC 8020).
- Pod names `<a-b-c-d>.<ns>.pod.<zone>` (spec 2.6, deprecated but required) are answered as
  CoreDNS's `pods` option says: `insecure` (kubeadm's default) for any address in an existing
  namespace, `verified` only for a pod of that namespace with that IP, `disabled` never.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rrset

from navio.dns.reverse import (V4_REVERSE, V6_REVERSE, ReverseZone, parse_reverse,
                               prefix_network, reverse_to_ip)
from navio.dns.service_records import (Node, ServiceInfo, ServiceRecords, SliceInfo,
                                       address_rdata, build_service_records, parse_service,
                                       parse_slice)

__all__ = ["RecordSet", "Answer", "SCHEMA_VERSION", "DEFAULT_ZONE", "DEFAULT_TTL", "POD_MODES"]

SCHEMA_VERSION = "1.1.0"
DEFAULT_ZONE = "cluster.local"
DEFAULT_TTL = 5            # CoreDNS kubernetes plugin's defaultTTL (kubeadm's Corefile sets 30)
POD_MODES = ("insecure", "verified", "disabled")
_VERSION_TTL = 28800       # CoreDNS serves dns-version with this TTL
_SOA_TIMERS = (7200, 1800, 86400)     # refresh, retry, expire: CoreDNS's plugin.SOA values
_IN = dns.rdataclass.IN
_A, _AAAA, _SRV, _CNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SRV,
                           dns.rdatatype.CNAME)
_SOA, _NS, _TXT, _PTR, _ANY = (dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.TXT,
                               dns.rdatatype.PTR, dns.rdatatype.ANY)
_MAX_CHASE = 8
SvcKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Answer:
    """An authoritative answer: rcode and sections. `chase` is a CNAME target outside every
    zone held here, for the server to resolve upstream and append."""
    rcode: int
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    chase: dns.name.Name | None = None


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class RecordSet:
    def __init__(self, zone: str = DEFAULT_ZONE, *, ttl: int = DEFAULT_TTL,
                 pod_mode: str = "insecure", reverse_cidrs: Iterable[str] = (),
                 dns_ips: Iterable[str] = (), clock: Callable[[], float] = time.time) -> None:
        if pod_mode not in POD_MODES:
            raise ValueError(f"pod mode {pod_mode!r}: must be one of {', '.join(POD_MODES)}")
        self.zone = dns.name.from_text(zone.rstrip(".") + ".")
        self.ttl = ttl
        self.pod_mode = pod_mode
        self.reverse_zones = tuple(ReverseZone.of(c) for c in reverse_cidrs)
        self.clock = clock
        self.generation = 0
        self.synced = False        # set by the cache once every informer has listed
        self._serial = int(clock()) & 0xFFFFFFFF
        self._services: dict[SvcKey, ServiceInfo] = {}
        self._slices: dict[SvcKey, SliceInfo] = {}           # (ns, slice name) → slice
        self._slices_of: dict[SvcKey, set[str]] = {}         # (ns, service) → slice names
        self._built: dict[SvcKey, ServiceRecords] = {}
        self._names: dict[dns.name.Name, Node] = {}
        self._cluster_ptr: dict[str, dns.name.Name] = {}
        self._endpoint_ptr: dict[str, dict[SvcKey, tuple[dns.name.Name, ...]]] = {}
        self._namespaces: set[str] = set()
        self._services_in: dict[str, int] = {}
        self._pods: dict[SvcKey, tuple[str, ...]] = {}       # (ns, pod) → its IPs
        self._pod_ips: dict[tuple[str, str], int] = {}       # (ns, ip) → pods holding it
        self._soa_cache: dict[dns.name.Name, tuple[int, dns.rrset.RRset]] = {}
        self._static = self._static_names(tuple(dns_ips))
        self._ents = {self._child("svc"), self._child("pod"), self._child("dns")}

    # ---- updates (informer handlers) ----------------------------------------------------

    def upsert_service(self, obj: Mapping[str, Any]) -> None:
        info = parse_service(obj)
        if info is None:
            return
        key = (info.namespace, info.name)
        if self._services.get(key) == info:
            return                 # status-only change or resync: no answer can differ
        if key not in self._services:
            self._services_in[info.namespace] = self._services_in.get(info.namespace, 0) + 1
        self._services[key] = info
        self._rebuild(key)

    def remove_service(self, obj: Mapping[str, Any]) -> None:
        key = _meta(obj)
        if self._services.pop(key, None) is not None:
            left = self._services_in.get(key[0], 1) - 1
            if left:
                self._services_in[key[0]] = left
            else:
                self._services_in.pop(key[0], None)
            self._rebuild(key)

    def upsert_endpoint_slice(self, obj: Mapping[str, Any]) -> None:
        key = _meta(obj)
        old = self._slices.get(key)
        new = parse_slice(obj)
        if old == new:
            return
        self._forget_slice(key, old)
        if new is not None:
            self._slices[key] = new
            self._slices_of.setdefault((new.namespace, new.service), set()).add(new.name)
            self._rebuild((new.namespace, new.service))

    def remove_endpoint_slice(self, obj: Mapping[str, Any]) -> None:
        key = _meta(obj)
        self._forget_slice(key, self._slices.get(key))

    def upsert_namespace(self, obj: Mapping[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if name and name not in self._namespaces:
            self._namespaces.add(name)
            self._changed()

    def remove_namespace(self, obj: Mapping[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if name in self._namespaces:
            self._namespaces.discard(name)
            self._changed()

    def upsert_pod(self, obj: Mapping[str, Any]) -> None:
        """Index a pod's IPs (used only in `verified` pod mode)."""
        key = _meta(obj)
        status = obj.get("status") or {}
        raw = [p.get("ip") for p in status.get("podIPs") or ()] or [status.get("podIP")]
        ips = tuple(sorted({str(ipaddress.ip_address(ip)) for ip in raw if _is_ip(ip)}))
        if self._pods.get(key, ()) != ips:
            self._drop_pod(key)
            if ips:
                self._pods[key] = ips
                for ip in ips:
                    self._pod_ips[(key[0], ip)] = self._pod_ips.get((key[0], ip), 0) + 1
            self._changed()

    def remove_pod(self, obj: Mapping[str, Any]) -> None:
        key = _meta(obj)
        if key in self._pods:
            self._drop_pod(key)
            self._changed()

    def _drop_pod(self, key: SvcKey) -> None:
        for ip in self._pods.pop(key, ()):
            left = self._pod_ips.get((key[0], ip), 1) - 1
            if left:
                self._pod_ips[(key[0], ip)] = left
            else:
                self._pod_ips.pop((key[0], ip), None)

    def _forget_slice(self, key: SvcKey, old: SliceInfo | None) -> None:
        if old is None:
            return
        del self._slices[key]
        owner = (old.namespace, old.service)
        names = self._slices_of.get(owner)
        if names is not None:
            names.discard(old.name)
            if not names:
                del self._slices_of[owner]
        self._rebuild(owner)

    def _rebuild(self, key: SvcKey) -> None:
        """Recompute one Service's records and swap them into the table (O(its endpoints))."""
        old = self._built.pop(key, None)
        if old is not None:
            for name, node in old.names.items():
                if self._names.get(name) is node:
                    del self._names[name]
            for ip in old.cluster_ptrs:
                self._cluster_ptr.pop(ip, None)
            for ip in old.endpoint_ptrs:
                owners = self._endpoint_ptr.get(ip)
                if owners is not None:
                    owners.pop(key, None)
                    if not owners:
                        del self._endpoint_ptr[ip]
        svc = self._services.get(key)
        if svc is not None:
            slices = [self._slices[(key[0], n)] for n in sorted(self._slices_of.get(key, ()))]
            new = build_service_records(svc, slices, self.zone, self.ttl)
            self._built[key] = new
            self._names.update(new.names)
            self._cluster_ptr.update(new.cluster_ptrs)
            for ip, targets in new.endpoint_ptrs.items():
                self._endpoint_ptr.setdefault(ip, {})[key] = targets
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        self._serial = max(self._serial + 1, int(self.clock())) & 0xFFFFFFFF

    # ---- lookup ------------------------------------------------------------------------

    def lookup(self, qname: dns.name.Name | str, rdtype: int) -> Answer | None:
        """The authoritative answer for (`qname`, `rdtype`), or None when not ours."""
        if isinstance(qname, str):
            qname = dns.name.from_text(qname)
        if qname.is_subdomain(self.zone):
            node = self._names.get(qname)
            if node is None:
                node = self._static.get(qname)
            if node is None:
                node = self._dynamic(qname)
            if node is None:
                return self._negative(dns.rcode.NXDOMAIN, self.zone)
            return self._from_node(qname, node, rdtype, self.zone)
        if qname.is_subdomain(V4_REVERSE) or qname.is_subdomain(V6_REVERSE):
            return self._reverse(qname, rdtype)
        return None

    def _from_node(self, qname: dns.name.Name, node: Mapping[int, dns.rrset.RRset],
                   rdtype: int, zone: dns.name.Name) -> Answer:
        if rdtype == _ANY:
            if not node:
                return self._negative(dns.rcode.NOERROR, zone)
            return Answer(dns.rcode.NOERROR, tuple(node.values()))
        rrset = node.get(rdtype)
        if rrset is not None:
            return Answer(dns.rcode.NOERROR, (rrset,), additional=self._additional(rrset))
        if _CNAME in node:
            return self._chase(node[_CNAME], rdtype)
        return self._negative(dns.rcode.NOERROR, zone)

    def _chase(self, cname: dns.rrset.RRset, rdtype: int) -> Answer:
        """Follow a CNAME through names held here; stop at the first target outside."""
        chain = [cname]
        for _ in range(_MAX_CHASE):
            target = chain[-1][0].target
            if not target.is_subdomain(self.zone):
                return Answer(dns.rcode.NOERROR, tuple(chain), chase=target)
            node = self._names.get(target) or self._static.get(target)
            if node is None:
                return Answer(dns.rcode.NXDOMAIN, tuple(chain), (self.soa(self.zone),))
            if rdtype in node:
                return Answer(dns.rcode.NOERROR, (*chain, node[rdtype]))
            if _CNAME not in node:
                break
            chain.append(node[_CNAME])
        return Answer(dns.rcode.NOERROR, tuple(chain), (self.soa(self.zone),))

    def _additional(self, rrset: dns.rrset.RRset) -> tuple[dns.rrset.RRset, ...]:
        """Addresses of SRV/NS targets held here (spec 2.3.2 and 2.4.2 "may include")."""
        if rrset.rdtype not in (_SRV, _NS):
            return ()
        out: list[dns.rrset.RRset] = []
        seen: set[dns.name.Name] = set()
        for rdata in rrset:
            target = rdata.target
            if target in seen:
                continue
            seen.add(target)
            node = self._names.get(target) or self._static.get(target) or {}
            out.extend(node[t] for t in (_A, _AAAA) if t in node)
        return tuple(out)

    def _negative(self, rcode: int, zone: dns.name.Name) -> Answer:
        return Answer(rcode, authority=(self.soa(zone),))

    def soa(self, zone: dns.name.Name) -> dns.rrset.RRset:
        """The zone's SOA; its minimum (the negative-caching TTL) is the record TTL."""
        cached = self._soa_cache.get(zone)
        if cached is not None and cached[0] == self._serial:
            return cached[1]
        rdata = dns.rdtypes.ANY.SOA.SOA(
            _IN, _SOA, self._child("ns", "dns"), self._child("hostmaster"), self._serial,
            *_SOA_TIMERS, self.ttl)
        rrset = dns.rrset.from_rdata(zone, self.ttl, rdata)
        self._soa_cache[zone] = (self._serial, rrset)
        return rrset

    def _apex(self, zone: dns.name.Name) -> Node:
        ns = dns.rdtypes.ANY.NS.NS(_IN, _NS, self._child("ns", "dns"))
        return {_SOA: self.soa(zone), _NS: dns.rrset.from_rdata(zone, self.ttl, ns)}

    def _child(self, *labels: str) -> dns.name.Name:
        return dns.name.Name([x.encode() for x in labels] + list(self.zone.labels))

    def _static_names(self, dns_ips: tuple[str, ...]) -> dict[dns.name.Name, Node]:
        ns_name = self._child("ns", "dns")
        version = dns.rdtypes.ANY.TXT.TXT(_IN, _TXT, [SCHEMA_VERSION])
        ns_node: Node = {}
        for ip in dns_ips:
            rdata = address_rdata(str(ipaddress.ip_address(ip)))
            ns_node.setdefault(rdata.rdtype, dns.rrset.RRset(ns_name, _IN, rdata.rdtype))
            ns_node[rdata.rdtype].add(rdata, self.ttl)
        return {
            self._child("dns-version"): {
                _TXT: dns.rrset.from_rdata(self._child("dns-version"), _VERSION_TTL, version)},
            ns_name: ns_node,
        }

    def _dynamic(self, qname: dns.name.Name) -> Node | None:
        """Names that exist without records of their own: apex SOA, ENTs, namespaces, pods."""
        if qname == self.zone:
            return self._apex(self.zone)
        if qname in self._ents:
            return {}
        rel = [x.decode("ascii", "replace").lower()
               for x in qname.labels[:len(qname.labels) - len(self.zone.labels)]]
        if len(rel) < 2 or rel[-1] not in ("svc", "pod") or not self._namespace_exists(rel[-2]):
            return None
        if len(rel) == 2:
            return {}
        if len(rel) == 3 and rel[-1] == "pod":
            return self._pod_node(qname, rel[0], rel[1])
        return None

    def _namespace_exists(self, ns: str) -> bool:
        return ns in self._namespaces or ns in self._services_in

    def _pod_node(self, qname: dns.name.Name, label: str, ns: str) -> Node | None:
        # CoreDNS findPods: exactly three dashes and no "--" is IPv4, otherwise IPv6.
        if label.count("-") == 3 and "--" not in label:
            text = label.replace("-", ".")
        else:
            text = label.replace("-", ":")
        if self.pod_mode == "disabled" or not _is_ip(text):
            return None
        ip = str(ipaddress.ip_address(text))
        if self.pod_mode == "verified" and (ns, ip) not in self._pod_ips:
            return None
        rdata = address_rdata(ip)
        return {rdata.rdtype: dns.rrset.from_rdata(qname, self.ttl, rdata)}

    # ---- reverse -----------------------------------------------------------------------

    def _reverse_zone_of(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The CIDR reverse zone `qname` is at or under, or None.

        A CIDR whose prefix is not a multiple of 8 (4 for IPv6) bits spans several zones of
        the next longer length (10.42.0.0/15 → 42.10.in-addr.arpa and 43.10.in-addr.arpa)."""
        parsed = parse_reverse(qname)
        if parsed is None:
            return None
        version, parts = parsed
        for rz in self.reverse_zones:
            if rz.network.version == version and len(parts) >= rz.labels and \
                    prefix_network(version, parts[:rz.labels]).subnet_of(
                        rz.network):  # type: ignore[arg-type]  # same version, checked
                return dns.name.Name(qname.labels[-(3 + rz.labels):])
        return None

    def _reverse(self, qname: dns.name.Name, rdtype: int) -> Answer | None:
        zone = self._reverse_zone_of(qname)
        ip = reverse_to_ip(qname)
        if ip is not None:
            targets: tuple[dns.name.Name, ...] = ()
            if ip in self._cluster_ptr:
                targets = (self._cluster_ptr[ip],)
            elif ip in self._endpoint_ptr:
                targets = tuple(sorted({t for ts in self._endpoint_ptr[ip].values()
                                        for t in ts}))
            if targets:
                rrset = dns.rrset.from_rdata_list(qname, self.ttl, [
                    dns.rdtypes.ANY.PTR.PTR(_IN, _PTR, t) for t in targets])
                apex = zone or (V4_REVERSE if ":" not in ip else V6_REVERSE)
                return self._from_node(qname, {_PTR: rrset}, rdtype, apex)
            if zone is not None:
                return self._negative(dns.rcode.NXDOMAIN, zone)
            return None
        if zone is None:
            return None
        if qname == zone:
            return self._from_node(qname, self._apex(zone), rdtype, zone)
        return self._negative(dns.rcode.NOERROR, zone)


def _is_ip(text: Any) -> bool:
    try:
        ipaddress.ip_address(str(text))
        return True
    except ValueError:
        return False
