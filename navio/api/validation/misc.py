"""Smaller groups: coordination.k8s.io Lease, discovery.k8s.io EndpointSlice, policy
PodDisruptionBudget and scheduling.k8s.io PriorityClass (v1.32). events.k8s.io Events share
core's `validate_event` (strict mode).

Covers ObjectMeta and the required and enumerated fields of each; the rarer cross-field rules
(EndpointSlice topology hints, coordinated leader election strategies) are left out.
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.apps import percent_value, validate_int_or_percent
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid,
                                        not_supported, required, too_many)
from navio.api.validation.gorepr import go_json
from navio.api.validation.meta import (validate_immutable, validate_label_selector,
                                       validate_object_meta, validate_object_meta_update)
from navio.api.validation.service import PROTOCOLS

__all__ = ["validate_lease", "validate_lease_update", "validate_endpoint_slice",
           "validate_endpoint_slice_update", "validate_pdb", "validate_pdb_update",
           "validate_priority_class", "validate_priority_class_update"]

_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
_HIGHEST_USER_PRIORITY = 1000000000
_SYSTEM_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def _lease_spec(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    d = spec.get("leaseDurationSeconds")
    if d is not None and d <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
    t = spec.get("leaseTransitions")
    if t is not None and t < 0:
        errs.append(invalid("spec.leaseTransitions", t, "must be greater than or equal to 0"))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errs.append(forbidden("spec.preferredHolder",
                              "may only be specified if `strategy` is defined"))
    return errs


def validate_lease(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _lease_spec(obj.get("spec") or {})


def validate_lease_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _lease_spec(new.get("spec") or {})


def _endpoints(obj: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    at = obj.get("addressType", "")
    eps = obj.get("endpoints") or []
    if len(eps) > 1000:
        errs.append(too_many("endpoints", len(eps), 1000))
    for i, ep in enumerate(eps):
        p = index("endpoints", i)
        addrs = ep.get("addresses") or []
        if not addrs:
            errs.append(required(child(p, "addresses"), "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(too_many(child(p, "addresses"), len(addrs), 100))
        for j, a in enumerate(addrs):
            ap = index(child(p, "addresses"), j)
            if at == "IPv4":
                ok = not names.is_valid_ip(a) and ":" not in a
                if not ok:
                    errs.append(invalid(ap, a, "must be a valid IPv4 address"))
            elif at == "IPv6":
                ok = not names.is_valid_ip(a) and ":" in a
                if not ok:
                    errs.append(invalid(ap, a, "must be a valid IPv6 address"))
            elif at == "FQDN":
                errs += [invalid(ap, a, m) for m in names.is_dns1123_subdomain(a)]
        if ep.get("nodeName"):
            errs += [invalid(child(p, "nodeName"), ep["nodeName"], m)
                     for m in names.name_is_dns_subdomain(ep["nodeName"])]
        if ep.get("hostname") is not None:
            errs += [invalid(child(p, "hostname"), ep["hostname"], m)
                     for m in names.is_dns1123_label(ep["hostname"])]
    ports = obj.get("ports") or []
    if len(ports) > 100:
        errs.append(too_many("ports", len(ports), 100))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        p = index("ports", i)
        name = port.get("name") or ""
        if name:
            errs += [invalid(child(p, "name"), name, m) for m in names.is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(child(p, "name"), name))
        seen.add(name)
        proto = port.get("protocol")
        if proto is None:
            errs.append(required(child(p, "protocol")))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(child(p, "protocol"), proto, PROTOCOLS))
        if port.get("appProtocol") is not None:
            errs += [invalid(child(p, "appProtocol"), port["appProtocol"], m)
                     for m in names.is_qualified_name(port["appProtocol"])]
    return errs


def validate_endpoint_slice(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    at = obj.get("addressType", "")
    if not at:
        errs.append(required("addressType"))
    elif at not in _ADDRESS_TYPES:
        errs.append(not_supported("addressType", at, _ADDRESS_TYPES))
    return errs + _endpoints(obj)


def validate_endpoint_slice_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_endpoint_slice(new)
    return errs + validate_immutable(new.get("addressType", ""), old.get("addressType", ""),
                                     "addressType")


def _pdb_spec(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    mina, maxu = spec.get("minAvailable"), spec.get("maxUnavailable")
    if mina is not None and maxu is not None:
        errs.append(invalid("spec", go_json(spec),
                            "minAvailable and maxUnavailable cannot be both set"))
    for f, v in (("minAvailable", mina), ("maxUnavailable", maxu)):
        if v is None:
            continue
        errs += validate_int_or_percent(v, child("spec", f))
        pct, ok = percent_value(v)
        if ok and pct > 100:
            errs.append(invalid(child("spec", f), v, "must not be greater than 100%"))
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy,
                                  ["AlwaysAllow", "IfHealthyBudget"]))
    return errs


def validate_pdb(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _pdb_spec(obj.get("spec") or {})


def validate_pdb_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _pdb_spec(new.get("spec") or {})


def validate_priority_class(obj: dict[str, Any]) -> list[Cause]:
    meta = obj.get("metadata") or {}
    errs = validate_object_meta(meta, False, names.name_is_dns_subdomain)
    name, value = meta.get("name", ""), obj.get("value", 0)
    if name in _SYSTEM_CLASSES:
        if value != _SYSTEM_CLASSES[name]:
            errs.append(forbidden("metadata.name", f"{name} is a system critical priority class "
                                                   "and cannot be created with a different value"))
    elif name.startswith("system-"):
        errs.append(forbidden("metadata.name", "priority class names with 'system-' prefix are "
                                               "reserved"))
    elif value > _HIGHEST_USER_PRIORITY:
        errs.append(forbidden("value", "maximum allowed value of a user defined priority is "
                                       f"{_HIGHEST_USER_PRIORITY}"))
    pp = obj.get("preemptionPolicy")
    if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported("preemptionPolicy", pp, ["PreemptLowerPriority", "Never"]))
    return errs


def validate_priority_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if new.get("value") != old.get("value"):
        errs.append(forbidden("value", "may not be changed in an update."))
    return errs + validate_immutable(new.get("preemptionPolicy"), old.get("preemptionPolicy"),
                                     "preemptionPolicy")
