"""Core (v1) kinds other than pods and services: ConfigMap, Secret, Namespace, Node,
ServiceAccount, Event, PersistentVolume(Claim), LimitRange and ResourceQuota (v1.32).

ConfigMaps and Secrets may hold at most 1 MiB of data (upstream reports the ConfigMap case on
the root path `[]`); `immutable: true` freezes data and the flag itself. Secret data is
base64 on the wire, so its size is the decoded length. Events follow legacyValidateEvent for
the core API and the strict rules for events.k8s.io, with upstream's internal field names
(`involvedObject`, `message`) in the paths.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from navio.api.validation import names
from navio.api.validation.affinity import TAINT_EFFECTS
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid, key,
                                        not_supported, required, too_long)
from navio.api.validation.gorepr import go_json, go_strings
from navio.api.validation.meta import (validate_immutable, validate_label_name,
                                       validate_object_meta, validate_object_meta_update)
from navio.api.validation.resources import (parse_or_error, validate_quota_resource_name,
                                            validate_resource_quantity, validate_resource_name)
from navio.api.validation.volumes import validate_pvc_spec

__all__ = ["validate_config_map", "validate_config_map_update", "validate_secret",
           "validate_secret_update", "validate_namespace", "validate_namespace_update",
           "validate_node", "validate_node_update", "validate_service_account",
           "validate_event", "validate_event_update", "validate_pvc",
           "validate_limit_range", "validate_resource_quota", "validate_resource_quota_update",
           "MAX_SECRET_SIZE"]

MAX_SECRET_SIZE = 1024 * 1024
_IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _ns_meta(obj: dict[str, Any]) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)


def _decoded_len(v: Any) -> int:
    try:
        return len(base64.b64decode(str(v), validate=True))
    except (binascii.Error, ValueError):
        return len(str(v))


def validate_config_map(cm: dict[str, Any]) -> list[Cause]:
    errs = _ns_meta(cm)
    data, binary = cm.get("data") or {}, cm.get("binaryData") or {}
    total = 0
    for k, v in data.items():
        errs += [invalid(key("data", k), k, m) for m in names.is_config_map_key(k)]
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(str(v).encode())
    for k, v in binary.items():
        errs += [invalid(key("binaryData", k), k, m) for m in names.is_config_map_key(k)]
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("[]", MAX_SECRET_SIZE))
    return errs


def validate_config_map_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden("immutable", _IMMUTABLE_SET))
        for f in ("data", "binaryData"):
            if (new.get(f) or {}) != (old.get(f) or {}):
                errs.append(forbidden(f, _IMMUTABLE_SET))
    return errs + validate_config_map(new)


def _json_error(raw: Any) -> str | None:
    try:
        doc = json.loads(base64.b64decode(str(raw)))
    except (ValueError, binascii.Error) as e:
        return str(e)
    if isinstance(doc, dict):
        return None
    return "json: cannot unmarshal into Go value of type map[string]interface {}"


def validate_secret(secret: dict[str, Any]) -> list[Cause]:
    errs = _ns_meta(secret)
    data = secret.get("data") or {}
    total = 0
    for k, v in data.items():
        errs += [invalid(key("data", k), k, m) for m in names.is_config_map_key(k)]
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    stype = secret.get("type", "")
    ann = (secret.get("metadata") or {}).get("annotations") or {}
    if stype == "kubernetes.io/service-account-token":
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(required(key("metadata.annotations", "kubernetes.io/service-account.name")))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        k = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if k not in data:
            errs.append(required(key("data", k)))
        else:
            err = _json_error(data[k])
            if err:
                errs.append(invalid(key("data", k), "<secret contents redacted>", err))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required(key("data", "username")), required(key("data", "password"))]
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(required(key("data", "ssh-privatekey")))
    elif stype == "kubernetes.io/tls":
        errs += [required(key("data", k)) for k in ("tls.crt", "tls.key") if k not in data]
    return errs


def validate_secret_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_immutable(new.get("type", ""), old.get("type", ""), "type")
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden("immutable", _IMMUTABLE_SET))
        if (new.get("data") or {}) != (old.get("data") or {}):
            errs.append(forbidden("data", _IMMUTABLE_SET))
    return errs + validate_secret(new)


def validate_namespace(ns: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(ns.get("metadata"), False, names.name_is_dns_label)
    for f in (ns.get("spec") or {}).get("finalizers") or []:
        errs += [invalid("spec.finalizers", f, m) for m in names.is_qualified_name(f)]
        if "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.append(invalid("spec.finalizers", f, "name is neither a standard finalizer name "
                                                      "nor is it fully qualified"))
    return errs


def validate_namespace_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata"))


def _taints(taints: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    unique: dict[str, set[str]] = {}
    for i, t in enumerate(taints or []):
        p = index(path, i)
        errs += validate_label_name(t.get("key", ""), child(p, "key"))
        msgs = names.is_valid_label_value(t.get("value", ""))
        if msgs:
            errs.append(invalid(child(p, "value"), t.get("value", ""), ";".join(msgs)))
        effect = t.get("effect", "")
        if not effect:
            errs.append(required(child(p, "effect")))
        elif effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(p, "effect"), effect, TAINT_EFFECTS))
        if t.get("key", "") in unique.get(effect, set()):
            d = duplicate(p, go_json(t))
            d["message"] += ": taints must be unique by key and effect pair"
            errs.append(d)
            continue
        unique.setdefault(effect, set()).add(t.get("key", ""))
    return errs


def _node_resources(node: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    status = node.get("status") or {}
    for field in ("capacity", "allocatable"):
        for k, raw in (status.get(field) or {}).items():
            path = f"status.{field}.{k}"
            q, perr = parse_or_error(raw, path)
            errs += perr if q is None else validate_resource_quantity(k, q, path)
    return errs


def validate_node(node: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(node.get("metadata"), False, names.name_is_dns_subdomain)
    spec = node.get("spec") or {}
    # Upstream reports spec.taints under "metadata.taints" (fldPath is metadata there).
    errs += _taints(spec.get("taints"), "metadata.taints")
    errs += _node_resources(node)
    cidrs = spec.get("podCIDRs") or []
    for i, c in enumerate(cidrs):
        errs += [invalid(index("spec.podCIDRs", i), c, m) for m in names.is_valid_cidr(c)]
    if len(cidrs) > 1 and not any(names.is_valid_cidr(c) for c in cidrs):
        fams = {":" in c for c in cidrs}
        if len(fams) != 2 or len(cidrs) > 2:
            errs.append(invalid("spec.podCIDRs", go_strings(cidrs),
                                "may specify no more than one CIDR for each IP family"))
        seen: set[str] = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                errs.append(duplicate(index("spec.podCIDRs", i), c))
            seen.add(c)
    return errs


def validate_node_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _node_resources(new)
    seen: list[Any] = []
    for i, a in enumerate((new.get("status") or {}).get("addresses") or []):
        if a in seen:
            errs.append(duplicate(index("status.addresses", i), go_json(a)))
        seen.append(a)
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    old_cidrs, new_cidrs = ospec.get("podCIDRs") or [], spec.get("podCIDRs") or []
    msg = 'node updates may not change podCIDR except from "" to valid'
    if old_cidrs:
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden("spec.podCIDRs", msg))
        else:
            errs += [forbidden("spec.podCIDRs", msg)
                     for o, n in zip(old_cidrs, new_cidrs) if o != n]
    if ospec.get("providerID") and ospec["providerID"] != spec.get("providerID"):
        errs.append(forbidden("spec.providerID", 'node updates may not change providerID except '
                                                 'from "" to valid'))
    errs += _taints(spec.get("taints"), "metadata.taints")
    if spec.get("externalID", "") != ospec.get("externalID", ""):
        errs.append(forbidden("spec.externalID", "may not be updated"))
    return errs


def validate_service_account(sa: dict[str, Any]) -> list[Cause]:
    return _ns_meta(sa)


_EVENT_V1_NAMES = {"regarding": "involvedObject", "note": "message",
                   "deprecatedCount": "count", "deprecatedFirstTimestamp": "firstTimestamp",
                   "deprecatedLastTimestamp": "lastTimestamp", "deprecatedSource": "source"}


def _legacy_event(e: dict[str, Any], strict: bool) -> list[Cause]:
    """legacyValidateEvent, on an event already using the internal field names."""
    meta = e.get("metadata") or {}
    ns, inv = meta.get("namespace", ""), e.get("involvedObject") or {}
    inv_ns = inv.get("namespace", "")
    errs: list[Cause] = []
    if not e.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and ns != inv_ns):
            errs.append(invalid("involvedObject.namespace", inv_ns,
                                "does not match event.namespace"))
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", inv_ns,
                                "does not match event.namespace"))
        # The core/v1 type names the field reportingComponent.
        rc_name = "reportingController" if strict else "reportingComponent"
        rc = e.get(rc_name, "")
        if not rc:
            errs.append(required(rc_name))
        errs += [invalid(rc_name, rc, m) for m in names.is_qualified_name(rc)]
        for f, limit, req in (("reportingInstance", 128, True), ("action", 128, True),
                              ("reason", 128, True), ("message", 1024, False)):
            v = e.get(f, "")
            if req and not v:
                errs.append(required(f))
            if len(v) > limit:
                errs.append(invalid(f, "", f"can have at most {limit} characters"))
    return errs + [invalid("namespace", ns, m) for m in names.is_dns1123_subdomain(ns)]


def _series(e: dict[str, Any]) -> list[Cause]:
    series = e.get("series")
    errs: list[Cause] = []
    if series is not None:
        if series.get("count", 0) < 2:
            errs.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    return errs


def _internal_event(ev: dict[str, Any], strict: bool) -> dict[str, Any]:
    return {_EVENT_V1_NAMES.get(k, k): v for k, v in ev.items()} if strict else ev


def validate_event(ev: dict[str, Any], strict: bool) -> list[Cause]:
    """ValidateEventCreate: core/v1 events get the legacy rules only (`strict` False);
    events.k8s.io/v1 ones also ObjectMeta and the strict rules."""
    e = _internal_event(ev, strict)
    errs = _legacy_event(e, strict)
    if not strict:
        return errs
    errs += validate_object_meta(e.get("metadata"), True, names.name_is_dns_subdomain)
    errs += _series(e)
    if not e.get("eventTime"):
        errs.append(required("eventTime"))
    if e.get("type") not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {e.get('type', '')}"))
    for f in ("firstTimestamp", "lastTimestamp"):
        if e.get(f):
            errs.append(invalid(f, "", "needs to be unset"))
    if e.get("count"):
        errs.append(invalid("count", "", "needs to be unset"))
    src = e.get("source") or {}
    if src.get("component") or src.get("host"):
        errs.append(invalid("source", "", "needs to be unset"))
    return errs


def validate_event_update(new: dict[str, Any], old: dict[str, Any], strict: bool) -> list[Cause]:
    e, o = _internal_event(new, strict), _internal_event(old, strict)
    errs = _legacy_event(e, strict)
    if not strict:
        return errs
    errs += validate_object_meta_update(e.get("metadata"), o.get("metadata"))
    if e.get("series") != o.get("series"):
        errs += _series(e)
    for f in ("involvedObject", "reason", "type", "action", "related", "eventTime",
              "reportingController", "reportingInstance"):
        errs += validate_immutable(e.get(f), o.get(f), f, go_json(e.get(f)) if isinstance(
            e.get(f), dict) else e.get(f))
    return errs


def validate_pvc(pvc: dict[str, Any]) -> list[Cause]:
    return _ns_meta(pvc) + validate_pvc_spec(pvc.get("spec") or {}, "spec")


def validate_limit_range(lr: dict[str, Any]) -> list[Cause]:
    errs = _ns_meta(lr)
    seen: set[str] = set()
    for i, item in enumerate((lr.get("spec") or {}).get("limits") or []):
        p = index("spec.limits", i)
        t = item.get("type", "")
        errs += [invalid(child(p, "type"), t, m) for m in names.is_qualified_name(t)]
        if t in seen:
            errs.append(duplicate(child(p, "type"), t))
        seen.add(t)
        for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            if t == "Pod" and f in ("default", "defaultRequest") and item.get(f):
                errs.append(forbidden(child(p, f), "may not be specified when `type` is 'Pod'"))
                continue
            for k, raw in (item.get(f) or {}).items():
                errs += validate_resource_name(k, key(child(p, f), k))
                errs += parse_or_error(raw, key(child(p, f), k))[1]
    return errs


def validate_resource_quota(rq: dict[str, Any]) -> list[Cause]:
    errs = _ns_meta(rq)
    for section, fields in (("spec", ("hard",)), ("status", ("hard", "used"))):
        for f in fields:
            for k, raw in ((rq.get(section) or {}).get(f) or {}).items():
                p = key(child(section, f), k)
                errs += validate_quota_resource_name(k, p)
                q, perr = parse_or_error(raw, p)
                errs += perr if q is None else validate_resource_quantity(k, q, p)
    return errs


def validate_resource_quota_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_resource_quota(new)
    ns = (new.get("spec") or {}).get("scopes") or []
    os_ = (old.get("spec") or {}).get("scopes") or []
    if set(ns) != set(os_):
        errs.append(invalid("spec.scopes", go_strings(ns), "field is immutable"))
    return errs
