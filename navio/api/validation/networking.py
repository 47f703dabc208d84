"""networking.k8s.io/v1 NetworkPolicy validation (pkg/apis/networking/validation, v1.32).

ValidateNetworkPolicy and its update: ObjectMeta (DNS subdomain names), the pod selector, each
ingress/egress rule's ports (protocol, numbered or named port, `endPort` only after a numbered
`port` and not below it) and peers (at least one of podSelector, namespaceSelector, ipBlock;
ipBlock alone; `except` a strict subset of `cidr`), and at most the two policy types.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from navio.api.validation import names
from navio.api.validation.field import Cause, forbidden, invalid, not_supported, required
from navio.api.validation.meta import (validate_label_selector, validate_object_meta,
                                       validate_object_meta_update)

__all__ = ["validate_network_policy", "validate_network_policy_update"]

_PROTOCOLS = ["TCP", "UDP", "SCTP"]
_POLICY_TYPES = ["Ingress", "Egress"]


def _port(port: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    proto = port.get("protocol")
    if proto is not None and proto not in _PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", proto, _PROTOCOLS))
    value, end = port.get("port"), port.get("endPort")
    if value is None:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end,
                                "may not be specified when `port` is not specified"))
    elif isinstance(value, int):
        errs += [invalid(f"{path}.port", value, m) for m in names.is_valid_port_num(value)]
        if end is not None:
            if end < value:
                errs.append(invalid(f"{path}.endPort", value,
                                    "must be greater than or equal to `port`"))
            errs += [invalid(f"{path}.endPort", end, m) for m in names.is_valid_port_num(end)]
    else:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end,
                                "may not be specified when `port` is non-numeric"))
        errs += [invalid(f"{path}.port", value, m) for m in names.is_valid_port_name(str(value))]
    return errs


def _ip_block(block: dict[str, Any], path: str) -> list[Cause]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [required(f"{path}.cidr")]
    errs = [invalid(f"{path}.cidr", cidr, m) for m in names.is_valid_cidr(cidr)]
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return errs
    for i, ex in enumerate(block.get("except") or []):
        p = f"{path}.except[{i}]"
        msgs = names.is_valid_cidr(ex)
        errs += [invalid(p, ex, m) for m in msgs]
        try:
            exn = ipaddress.ip_network(ex, strict=False)
        except ValueError:
            continue
        if (exn.version != net.version or exn.network_address not in net
                or net.prefixlen >= exn.prefixlen):
            errs.append(invalid(p, ex, "must be a strict subset of `cidr`"))
    return errs


def _peer(peer: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            errs += validate_label_selector(peer[key], f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        count += 1
        errs += _ip_block(peer["ipBlock"], f"{path}.ipBlock")
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def _spec(spec: dict[str, Any]) -> list[Cause]:
    errs = validate_label_selector(spec.get("podSelector") or {}, "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rpath = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                errs += _port(port, f"{rpath}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers) or []):
                errs += _peer(peer, f"{rpath}.{peers}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(_POLICY_TYPES):
        errs.append(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
        return errs
    for i, t in enumerate(types):
        if t not in _POLICY_TYPES:
            errs.append(not_supported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES))
    return errs


def validate_network_policy(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _spec(obj.get("spec") or {})


def validate_network_policy_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _spec(new.get("spec") or {})
