"""Services and Endpoints, validated as core validation's ValidateService,
ValidateServiceUpdate and ValidateEndpoints do (v1.32).

Service names are DNS-1035 labels (they become DNS names and env var prefixes). Cluster IP
allocation happens before validation upstream, so a Service reaching `validate` should
already carry its clusterIP(s), or none with `type: ExternalName`. Upstream's path quirks
are kept: `spec.LoadBalancerSourceRanges` and a bare `allocateLoadBalancerNodePorts`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from navio.api.validation import names
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid, key,
                                        not_supported, required)
from navio.api.validation.gorepr import go_service_port, go_strings
from navio.api.validation.meta import (validate_labels, validate_object_meta,
                                       validate_object_meta_update)

__all__ = ["validate_service", "validate_service_update", "validate_endpoints",
           "validate_endpoints_update", "validate_non_special_ip", "PROTOCOLS"]

PROTOCOLS = ["SCTP", "TCP", "UDP"]
_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_POLICIES = ["Cluster", "Local"]
_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
_MAX_AFFINITY_SECONDS = 86400


def _headless(spec: dict[str, Any]) -> bool:
    ips = spec.get("clusterIPs") or []
    return len(ips) == 1 and ips[0] == "None"


def _qualified(value: str, path: str) -> list[Cause]:
    return [invalid(path, value, m) for m in names.is_qualified_name(value)]


def _port_num_or_name(port: Any, path: str) -> list[Cause]:
    if isinstance(port, str):
        return [invalid(path, port, m) for m in names.is_valid_port_name(port)]
    port = port or 0
    return [invalid(path, port, m) for m in names.is_valid_port_num(port)]


def _service_port(sp: dict[str, Any], require_name: bool, seen: set[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    name = sp.get("name", "")
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs += [invalid(child(path, "name"), name, m) for m in names.is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(child(path, "name"), name))
        seen.add(name)
    port = sp.get("port", 0)
    errs += [invalid(child(path, "port"), port, m) for m in names.is_valid_port_num(port)]
    proto = sp.get("protocol", "")
    if not proto:
        errs.append(required(child(path, "protocol")))
    elif proto not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), proto, PROTOCOLS))
    errs += _port_num_or_name(sp.get("targetPort", 0), child(path, "targetPort"))
    if sp.get("appProtocol") is not None:
        errs += _qualified(sp["appProtocol"], child(path, "appProtocol"))
    return errs


def validate_non_special_ip(ip: str, path: str) -> list[Cause]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return [invalid(path, ip, "must be a valid IP address")]
    errs = []
    if addr.is_unspecified:
        errs.append(invalid(path, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback:
        errs.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local and not addr.is_multicast:
        errs.append(invalid(path, ip,
                            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if addr.is_multicast and (addr in ipaddress.ip_network("224.0.0.0/24")
                              if addr.version == 4 else addr in ipaddress.ip_network("ff02::/16")):
        errs.append(invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, "
                                      "ff02::/10)"))
    return errs


def _cluster_ips(spec: dict[str, Any]) -> list[Cause]:
    """ValidateServiceClusterIPsRelatedFields."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[Cause] = []
    cip, cips = spec.get("clusterIP", ""), spec.get("clusterIPs") or []
    families = spec.get("ipFamilies") or []
    if cip:
        if not cips:
            errs.append(required("spec.clusterIPs"))
        elif cips[0] != cip:
            errs.append(invalid("spec.clusterIPs", go_strings(cips),
                                "first value must match `clusterIP`"))
    elif cips:
        errs.append(invalid("spec.clusterIPs", go_strings(cips),
                            "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(index("spec.ipFamilies", i), fam, ["IPv4", "IPv6"]))
        if fam in seen:
            errs.append(duplicate(index("spec.ipFamilies", i), fam))
        seen.add(fam)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in _FAMILY_POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, _FAMILY_POLICIES))
    bad = False
    for i, ip in enumerate(cips):
        if i == 0 and ip == "None":
            if len(cips) > 1:
                bad = True
                errs.append(invalid("spec.clusterIPs", go_strings(cips),
                                    "'None' must be the first and only value"))
            continue
        msgs = names.is_valid_ip(ip)
        bad = bad or bool(msgs)
        errs += [invalid(index("spec.clusterIPs", i), ip, m) for m in msgs]
    if len(cips) > 2:
        errs.append(invalid("spec.clusterIPs", go_strings(cips), "may only hold up to 2 values"))
    if bad:
        return errs
    if len(cips) > 1:
        versions = {ipaddress.ip_address(ip).version for ip in cips}
        if len(versions) != 2 or len(cips) > 2:
            errs.append(invalid("spec.clusterIPs", go_strings(cips),
                                "may specify no more than one IP for each IP family"))
    if not _headless(spec) and cips and families:
        for i, ip in enumerate(cips[:len(families)]):
            v6 = ipaddress.ip_address(ip).version == 6
            if families[i] == "IPv4" and v6:
                errs.append(invalid(index("spec.clusterIPs", i), ip,
                                    f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and not v6:
                errs.append(invalid(index("spec.clusterIPs", i), ip,
                                    f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def _session_affinity(spec: dict[str, Any]) -> list[Cause]:
    sa = spec.get("sessionAffinity", "")
    if not sa:
        return [required("spec.sessionAffinity")]
    if sa not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", sa, ["ClientIP", "None"])]
    cfg, path = spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig"
    if sa == "None":
        return [forbidden(path, "must not be set when session affinity is None")] if cfg else []
    when = "when session affinity type is ClientIP"
    if cfg is None:
        return [required(path, when)]
    if cfg.get("clientIP") is None:
        return [required(child(path, "clientIP"), when)]
    t = cfg["clientIP"].get("timeoutSeconds")
    if t is None:
        return [required(child(path, "clientIP", "timeoutSeconds"), when)]
    if t <= 0 or t > _MAX_AFFINITY_SECONDS:
        return [invalid(child(path, "clientIP", "timeoutSeconds"), t,
                        f"must be greater than 0 and less than {_MAX_AFFINITY_SECONDS}")]
    return []


def _externally_accessible(spec: dict[str, Any]) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def validate_service(svc: dict[str, Any]) -> list[Cause]:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    errs = validate_object_meta(meta, True, names.name_is_dns1035_label)
    ann = meta.get("annotations") or {}
    mode = "service.kubernetes.io/topology-mode"
    hints = "service.kubernetes.io/topology-aware-hints"
    if mode in ann and hints in ann and ann[mode] != ann[hints]:
        errs.append(invalid(key("metadata.annotations", mode), ann[mode],
                            f"must match annotations[{hints}] when both are specified"))
    stype, ports = spec.get("type", ""), spec.get("ports") or []
    if not ports and not _headless(spec) and stype != "ExternalName":
        errs.append(required("spec.ports"))
    if stype in ("LoadBalancer", "NodePort") and _headless(spec):
        errs.append(invalid("spec.clusterIPs[0]", "None",
                            f"may not be set to 'None' for {stype} services"))
    elif stype == "ExternalName":
        for f in ("clusterIPs", "ipFamilies"):
            if spec.get(f):
                errs.append(forbidden(child("spec", f), "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy",
                                  "may not be set for ExternalName services"))
        cname = spec.get("externalName", "")
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs += [invalid("spec.externalName", cname,
                             m) for m in names.is_dns1123_subdomain(cname)]
        else:
            errs.append(required("spec.externalName"))
    seen: set[str] = set()
    for i, sp in enumerate(ports):
        errs += _service_port(sp, len(ports) > 1, seen, index("spec.ports", i))
    if spec.get("selector") is not None:
        errs += validate_labels(spec["selector"], "spec.selector")
    errs += _session_affinity(spec)
    errs += _cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        msgs = names.is_valid_ip(ip)
        errs += ([invalid(index("spec.externalIPs", i), ip, m) for m in msgs] if msgs
                 else validate_non_special_ip(ip, index("spec.externalIPs", i)))
    if not stype:
        errs.append(required("spec.type"))
    elif stype not in _TYPES:
        errs.append(not_supported("spec.type", stype, _TYPES))
    if stype == "ClusterIP":
        for i, sp in enumerate(ports):
            if sp.get("nodePort"):
                errs.append(forbidden(child(index("spec.ports", i), "nodePort"),
                                      "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[str, int]] = set()
    for i, sp in enumerate(ports):
        np = sp.get("nodePort", 0)
        if np:
            k = (sp.get("protocol", ""), np)
            if k in node_ports:
                errs.append(duplicate(child(index("spec.ports", i), "nodePort"), np))
            node_ports.add(k)
    port_keys: set[tuple[str, int]] = set()
    for i, sp in enumerate(ports):
        k = (sp.get("protocol", ""), sp.get("port", 0))
        if k in port_keys:
            errs.append(duplicate(index("spec.ports", i), go_service_port(*k)))
        port_keys.add(k)
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        if stype != "LoadBalancer":
            errs.append(forbidden("spec.LoadBalancerSourceRanges",
                                  "may only be used when `type` is 'LoadBalancer'"))
        for i, r in enumerate(ranges):
            r = r.strip()
            errs += [invalid(index("spec.LoadBalancerSourceRanges", i), r, m)
                     for m in names.is_valid_cidr(r)]
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts",
                              "may only be used when `type` is 'LoadBalancer'"))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    lbc = spec.get("loadBalancerClass")
    if lbc is not None:
        errs += (_qualified(lbc, "spec.loadBalancerClass") if stype == "LoadBalancer" else
                 [forbidden("spec.loadBalancerClass",
                            "may only be used when `type` is 'LoadBalancer'")])
    etp = spec.get("externalTrafficPolicy", "")
    if not _externally_accessible(spec):
        if etp:
            errs.append(invalid("spec.externalTrafficPolicy", etp,
                                "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in _POLICIES:
        errs.append(not_supported("spec.externalTrafficPolicy", etp, _POLICIES))
    hc = spec.get("healthCheckNodePort", 0)
    if not (stype == "LoadBalancer" and etp == "Local"):
        if hc:
            errs.append(invalid("spec.healthCheckNodePort", hc,
                                "may only be set when `type` is 'LoadBalancer' and "
                                "`externalTrafficPolicy` is 'Local'"))
    elif not hc:
        errs.append(required("spec.healthCheckNodePort"))
    else:
        errs += [invalid("spec.healthCheckNodePort", hc, m) for m in names.is_valid_port_num(hc)]
    itp = spec.get("internalTrafficPolicy")
    if itp is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(required("spec.internalTrafficPolicy"))
    if itp is not None and itp not in _POLICIES:
        errs.append(not_supported("spec.internalTrafficPolicy", itp, _POLICIES))
    td = spec.get("trafficDistribution")
    if td is not None and td != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", td, ["PreferClose"]))
    return errs


def _ip_changes(new: dict[str, Any], old: dict[str, Any], field: str, what: str) -> list[Cause]:
    ns, os_ = new.get(field) or [], old.get(field) or []
    path = child("spec", field)
    if len(os_) == len(ns):
        return [invalid(index(path, 0 if field == "ipFamilies" else i), go_strings(ns),
                        "may not change once set") for i, v in enumerate(os_) if v != ns[i]]
    errs: list[Cause] = []
    if len(os_) > len(ns):
        if not (new.get("clusterIPs") if field == "ipFamilies" else ns):
            errs.append(invalid(index(path, 0), go_strings(ns), f"primary {what} can not be unset"))
        if ns and ns[0] != os_[0]:
            errs.append(invalid(index(path, 0), go_strings(ns), "may not change once set"))
        if len(ns) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid("spec.ipFamilyPolicy", new.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary "
                                f"{what}"))
    elif os_ and ns[0] != os_[0]:
        errs.append(invalid(index(path, 0), go_strings(ns), "may not change once set"))
    return errs


def _needs_health_check(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def validate_service_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    external = "ExternalName" in (spec.get("type"), ospec.get("type"))
    if not external and not (_headless(spec) and _headless(ospec)):
        errs += _ip_changes(spec, ospec, "clusterIPs", "clusterIP")
    if not external and _headless(spec) == _headless(ospec) and not _headless(spec):
        errs += _ip_changes(spec, ospec, "ipFamilies", "ipFamily")
    if (spec.get("type") == ospec.get("type") == "LoadBalancer"
            and spec.get("loadBalancerClass") != ospec.get("loadBalancerClass")):
        errs.append(invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"),
                            "may not change once set"))
    if (_needs_health_check(spec) and _needs_health_check(ospec)
            and spec.get("healthCheckNodePort") != ospec.get("healthCheckNodePort")):
        errs.append(forbidden("spec.healthCheckNodePort", "field is immutable"))
    return errs + validate_service(new)


def _endpoint_port(p: dict[str, Any], require_name: bool, path: str) -> list[Cause]:
    errs: list[Cause] = []
    name = p.get("name", "")
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs += [invalid(child(path, "name"), name, m) for m in names.is_dns1123_label(name)]
    port = p.get("port", 0)
    errs += [invalid(child(path, "port"), port, m) for m in names.is_valid_port_num(port)]
    proto = p.get("protocol", "")
    if not proto:
        errs.append(required(child(path, "protocol")))
    elif proto not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), proto, PROTOCOLS))
    if p.get("appProtocol") is not None:
        errs += _qualified(p["appProtocol"], child(path, "appProtocol"))
    return errs


def _endpoint_address(a: dict[str, Any], path: str) -> list[Cause]:
    ip = a.get("ip", "")
    errs = [invalid(child(path, "ip"), ip, m) for m in names.is_valid_ip(ip)]
    if a.get("hostname"):
        errs += [invalid(child(path, "hostname"), a["hostname"], m)
                 for m in names.is_dns1123_label(a["hostname"])]
    if a.get("nodeName") is not None:
        errs += [invalid(child(path, "nodeName"), a["nodeName"], m)
                 for m in names.name_is_dns_subdomain(a["nodeName"])]
    return errs + validate_non_special_ip(ip, child(path, "ip"))


def validate_endpoints(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    for i, ss in enumerate(obj.get("subsets") or []):
        p = index("subsets", i)
        if not ss.get("addresses") and not ss.get("notReadyAddresses"):
            errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(ss.get(kind) or []):
                errs += _endpoint_address(a, index(child(p, kind), j))
        ports = ss.get("ports") or []
        for j, port in enumerate(ports):
            errs += _endpoint_port(port, len(ports) > 1, index(child(p, "ports"), j))
    return errs


def validate_endpoints_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return (validate_object_meta_update(new.get("metadata"), old.get("metadata"))
            + validate_endpoints(new))
