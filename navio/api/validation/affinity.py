"""Scheduling constraints of a pod spec: tolerations, node and pod affinity, topology spread
constraints, as core validation's ValidateTolerations, validateAffinity and
validateTopologySpreadConstraints check them (v1.32).

Required node affinity rejects invalid label values; preferred terms tolerate them, as
upstream does ("they can succeed when the cluster has only one node").
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid,
                                        not_supported, required)
from navio.api.validation.meta import validate_label_name, validate_label_selector

__all__ = ["validate_tolerations", "validate_affinity", "validate_topology_spread",
           "validate_node_selector_term", "TAINT_EFFECTS"]

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, t in enumerate(tolerations or []):
        ip = index(path, i)
        k, op, effect, value = (t.get("key", ""), t.get("operator", ""), t.get("effect", ""),
                                t.get("value", ""))
        if k:
            errs += validate_label_name(k, child(ip, "key"))
        if not k and op != "Exists":
            errs.append(invalid(child(ip, "operator"), op, "operator must be Exists when `key` is "
                                                           'empty, which means "match all values '
                                                           'and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(ip, "effect"), effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = names.is_valid_label_value(value)
            if msgs:
                errs.append(invalid(child(ip, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(child(ip, "operator"), value,
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(ip, "operator"), op, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(ip, "effect"), effect, TAINT_EFFECTS))
    return errs


def _node_selector_requirement(rq: dict[str, Any], path: str, allow_invalid: bool) -> list[Cause]:
    errs: list[Cause] = []
    op, values = rq.get("operator", ""), rq.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"),
                                 "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"), "may not be specified when `operator` is "
                                                         "'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(child(path, "values"), "must be specified single value when "
                                                        "`operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(invalid(child(path, "operator"), op, "not a valid selector operator"))
    errs += validate_label_name(rq.get("key", ""), child(path, "key"))
    if not allow_invalid:
        for j, v in enumerate(values):
            errs += [invalid(index(child(path, "values"), j), v, m)
                     for m in names.is_valid_label_value(v)]
    return errs


def validate_node_selector_term(term: dict[str, Any], path: str,
                                allow_invalid: bool) -> list[Cause]:
    errs: list[Cause] = []
    for j, rq in enumerate(term.get("matchExpressions") or []):
        errs += _node_selector_requirement(rq, index(child(path, "matchExpressions"), j),
                                           allow_invalid)
    for j, rq in enumerate(term.get("matchFields") or []):
        p = index(child(path, "matchFields"), j)
        if rq.get("operator") in ("In", "NotIn"):
            if len(rq.get("values") or []) != 1:
                errs.append(required(child(p, "values"),
                                     "must be only one value when `operator` is 'In' or "
                                     "'NotIn' for node field selector"))
        else:
            errs.append(invalid(child(p, "operator"), rq.get("operator", ""),
                                "not a valid selector operator"))
        if rq.get("key") != "metadata.name":
            errs.append(invalid(child(p, "key"), rq.get("key", ""),
                                "not a valid field selector key"))
        else:
            for k, v in enumerate(rq.get("values") or []):
                errs += [invalid(index(child(p, "values"), k), v, m)
                         for m in names.name_is_dns_subdomain(v)]
    return errs


def _pod_affinity_terms(terms: Any, path: str, weighted: bool) -> list[Cause]:
    errs: list[Cause] = []
    for j, t in enumerate(terms or []):
        p = index(path, j)
        if weighted:
            w = t.get("weight", 0)
            if w <= 0 or w > 100:
                errs.append(invalid(child(p, "weight"), w, "must be in the range 1-100"))
            t, p = t.get("podAffinityTerm") or {}, child(p, "podAffinityTerm")
        errs += validate_label_selector(t.get("labelSelector"), child(p, "labelSelector"))
        errs += validate_label_selector(t.get("namespaceSelector"), child(p, "namespaceSelector"))
        for ns in t.get("namespaces") or []:
            errs += [invalid(child(p, "namespace"), ns, m) for m in names.name_is_dns_label(ns)]
        for lk in ("matchLabelKeys", "mismatchLabelKeys"):
            keys = t.get(lk) or []
            if keys and t.get("labelSelector") is None:
                errs.append(forbidden(child(p, lk), "must not be specified when labelSelector is "
                                                    "not set"))
            else:
                for k, lab in enumerate(keys):
                    errs += validate_label_name(lab, index(child(p, lk), k))
        if not t.get("topologyKey"):
            errs.append(required(child(p, "topologyKey"), "can not be empty"))
        errs += validate_label_name(t.get("topologyKey", ""), child(p, "topologyKey"))
    return errs


def validate_affinity(aff: Any, path: str) -> list[Cause]:
    if aff is None:
        return []
    errs: list[Cause] = []
    na = aff.get("nodeAffinity")
    if na is not None:
        np = child(path, "nodeAffinity")
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            rp = child(np, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
            terms = req.get("nodeSelectorTerms") or []
            if not terms:
                errs.append(required(rp, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                errs += validate_node_selector_term(term, index(rp, i), False)
        for i, pref in enumerate(na.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            pp = index(child(np, "preferredDuringSchedulingIgnoredDuringExecution"), i)
            w = pref.get("weight", 0)
            if w <= 0 or w > 100:
                errs.append(invalid(child(pp, "weight"), w, "must be in the range 1-100"))
            errs += validate_node_selector_term(pref.get("preference") or {},
                                                child(pp, "preference"), True)
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if pa is None:
            continue
        kp = child(path, kind)
        errs += _pod_affinity_terms(pa.get("requiredDuringSchedulingIgnoredDuringExecution"),
                                    child(kp,
                                          "requiredDuringSchedulingIgnoredDuringExecution"), False)
        errs += _pod_affinity_terms(pa.get("preferredDuringSchedulingIgnoredDuringExecution"),
                                    child(kp,
                                          "preferredDuringSchedulingIgnoredDuringExecution"), True)
    return errs


def validate_topology_spread(constraints: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    cs = constraints or []
    for i, c in enumerate(cs):
        p = index(path, i)
        if c.get("maxSkew", 0) <= 0:
            errs.append(invalid(child(p, "maxSkew"), c.get("maxSkew", 0),
                                "must be greater than zero"))
        if not c.get("topologyKey"):
            errs.append(required(child(p, "topologyKey"), "can not be empty"))
        wu = c.get("whenUnsatisfiable", "")
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(child(p, "whenUnsatisfiable"), wu,
                                      ["DoNotSchedule", "ScheduleAnyway"]))
        for other in cs[i + 1:]:
            if (other.get("topologyKey") == c.get("topologyKey")
                    and other.get("whenUnsatisfiable") == wu):
                errs.append(duplicate(child(p, "{topologyKey, whenUnsatisfiable}"),
                                      f"{{{c.get('topologyKey', '')}, {wu}}}"))
                break
        md = c.get("minDomains")
        if md is not None:
            if md <= 0:
                errs.append(invalid(child(p, "minDomains"), md, "must be greater than zero"))
            if wu != "DoNotSchedule":
                errs.append(invalid(child(p, "minDomains"), md,
                                    "can only use minDomains if whenUnsatisfiable="
                                    f"DoNotSchedule, not {wu}"))
        for pol in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(pol)
            if v is not None and v not in ("Honor", "Ignore"):
                errs.append(not_supported(child(p, pol), v, ["Honor", "Ignore"]))
        errs += validate_label_selector(c.get("labelSelector"), child(p, "labelSelector"))
    return errs
