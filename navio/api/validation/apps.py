"""apps/v1 kinds: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision (v1.32).

Mirrors pkg/apis/apps/validation plus the registry strategies' update rule for apps/v1:
`spec.selector` is immutable for Deployments, ReplicaSets and DaemonSets, reported with
Go's rendering of the new selector (`v1.LabelSelector{MatchLabels:map[string]string{...},
MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable`). A nil selector
selects nothing, so a missing selector also fails the template-labels match, as upstream.
StatefulSet templates are not pod-validated, exactly as upstream (a known TODO there).
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.field import (Cause, forbidden, invalid, not_supported,
                                        required)
from navio.api.validation.gorepr import go_json, go_label_selector, go_map
from navio.api.validation.meta import (selector_is_empty, selector_matches, selector_valid,
                                       semantic_equal, validate_annotations, validate_immutable,
                                       validate_label_selector, validate_labels,
                                       validate_nonnegative, validate_object_meta,
                                       validate_object_meta_update)
from navio.api.validation.pod import validate_pod_template_for_controller
from navio.api.validation.podspec import validate_pod_annotations, validate_pod_template_spec

__all__ = ["validate_deployment", "validate_deployment_update", "validate_replica_set",
           "validate_replica_set_update", "validate_daemon_set", "validate_daemon_set_update",
           "validate_stateful_set", "validate_stateful_set_update",
           "validate_controller_revision", "validate_controller_revision_update",
           "validate_int_or_percent", "percent_value"]


def percent_value(v: Any) -> tuple[int, bool]:
    if isinstance(v, str) and not names.is_valid_percent(v):
        return int(v[:-1]), True
    return 0, False


def _int_value(v: Any) -> int:
    # intstr.IntValue: a string that is not a number is 0.
    if isinstance(v, int):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _int_or_percent(v: Any) -> int:
    pct, ok = percent_value(v)
    return pct if ok else _int_value(v)


def validate_int_or_percent(v: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent."""
    if isinstance(v, str):
        return [invalid(path, v, m) for m in names.is_valid_percent(v)]
    if isinstance(v, int):
        return validate_nonnegative(v, path)
    return [invalid(path, go_json(v), "must be an integer or percentage (e.g '5%%')")]


def _not_more_than_100(v: Any, path: str) -> list[Cause]:
    pct, ok = percent_value(v)
    return [invalid(path, v, "must not be greater than 100%")] if ok and pct > 100 else []


def _selector(spec: dict[str, Any], kind: str) -> tuple[list[Cause], bool]:
    """spec.selector required, valid and non-empty; returns (errors, converts cleanly)."""
    sel = spec.get("selector")
    if sel is None:
        return [required("spec.selector")], True
    errs = validate_label_selector(sel, "spec.selector")
    if selector_is_empty(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel),
                            f"empty selector is invalid for {kind}"))
    if not selector_valid(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel), "invalid label selector"))
        return errs, False
    return errs, True


def _template_for_replica_set(spec: dict[str, Any], kind: str, owner: str) -> list[Cause]:
    errs, ok = _selector(spec, kind)
    if ok:
        sel, tmpl = spec.get("selector"), spec.get("template")
        labels = ((tmpl or {}).get("metadata") or {}).get("labels")
        errs += validate_pod_template_for_controller(
            tmpl, not selector_is_empty(sel),
            selector_matches(sel, labels) or selector_is_empty(sel),
            "spec.template", owner)
    return errs


def _deployment_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = validate_nonnegative(spec.get("replicas", 0), "spec.replicas")
    errs += _template_for_replica_set(spec, "deployment", "ReplicaSet")
    strategy = spec.get("strategy") or {}
    t, ru = strategy.get("type", ""), strategy.get("rollingUpdate")
    if t == "Recreate":
        if ru is not None:
            errs.append(forbidden("spec.strategy.rollingUpdate",
                                  "may not be specified when strategy `type` is 'Recreate'"))
    elif t == "RollingUpdate":
        if ru is None:
            errs.append(required("spec.strategy.rollingUpdate",
                                 "this should be defaulted and never be nil"))
        else:
            p = "spec.strategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
            errs += validate_int_or_percent(mu, f"{p}.maxUnavailable")
            errs += validate_int_or_percent(ms, f"{p}.maxSurge")
            if _int_or_percent(mu) == 0 and _int_or_percent(ms) == 0:
                errs.append(invalid(f"{p}.maxUnavailable", mu, "may not be 0 when `maxSurge` is 0"))
            errs += _not_more_than_100(mu, f"{p}.maxUnavailable")
    else:
        errs.append(not_supported("spec.strategy", go_json(strategy),
                                  ["Recreate", "RollingUpdate"]))
    mrs = spec.get("minReadySeconds", 0)
    errs += validate_nonnegative(mrs, "spec.minReadySeconds")
    if spec.get("revisionHistoryLimit") is not None:
        errs += validate_nonnegative(spec["revisionHistoryLimit"], "spec.revisionHistoryLimit")
    if spec.get("rollbackTo") is not None:
        errs += validate_nonnegative(spec["rollbackTo"].get("revision", 0), "spec.rollback.version")
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        errs += validate_nonnegative(pds, "spec.progressDeadlineSeconds")
        if pds <= mrs:
            errs.append(invalid("spec.progressDeadlineSeconds", pds,
                                "must be greater than minReadySeconds"))
    return errs


def _immutable_selector(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    ns, os_ = (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    return validate_immutable(ns, os_, "spec.selector", go_label_selector(ns))


def validate_deployment(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _deployment_spec(obj.get("spec") or {})


def validate_deployment_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _deployment_spec(new.get("spec") or {})
    return errs + _immutable_selector(new, old)


def _replica_set_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = validate_nonnegative(spec.get("replicas", 0), "spec.replicas")
    errs += validate_nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    # Upstream's ReplicaSet message says "deployment" (ValidateReplicaSetSpec).
    return errs + _template_for_replica_set(spec, "deployment", "ReplicaSet")


def validate_replica_set(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _replica_set_spec(obj.get("spec") or {})


def validate_replica_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _replica_set_spec(new.get("spec") or {})
    return errs + _immutable_selector(new, old)


def _daemon_set_spec(spec: dict[str, Any]) -> list[Cause]:
    sel, tmpl = spec.get("selector"), spec.get("template") or {}
    errs = validate_label_selector(sel, "spec.selector")
    labels = (tmpl.get("metadata") or {}).get("labels")
    if selector_valid(sel) and not (selector_matches(sel, labels) or selector_is_empty(sel)):
        errs.append(invalid("spec.template.metadata.labels", go_map(labels),
                            "`selector` does not match template `labels`"))
    if selector_is_empty(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel),
                            "empty selector is invalid for daemonset"))
    errs += validate_pod_template_spec(tmpl, "spec.template")
    pspec = tmpl.get("spec") or {}
    if pspec.get("restartPolicy", "") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  pspec.get("restartPolicy", ""), ["Always"]))
    if pspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in DaemonSet is not Supported"))
    errs += validate_nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    strategy = spec.get("updateStrategy") or {}
    t = strategy.get("type", "")
    if t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            errs.append(required("spec.updateStrategy.rollingUpdate"))
        else:
            p = "spec.updateStrategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
            errs += validate_int_or_percent(mu, f"{p}.maxUnavailable")
            errs += validate_int_or_percent(ms, f"{p}.maxSurge")
            errs += _not_more_than_100(mu, f"{p}.maxUnavailable")
            errs += _not_more_than_100(ms, f"{p}.maxSurge")
            has_u, has_s = _int_or_percent(mu) != 0, _int_or_percent(ms) != 0
            if has_u and has_s:
                errs.append(invalid(f"{p}.maxSurge", ms, "may not be set when maxUnavailable is "
                                                         "non-zero"))
            elif not has_u and not has_s:
                errs.append(required(f"{p}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif t != "OnDelete":
        errs.append(not_supported("spec.updateStrategy", go_json(strategy),
                                  ["RollingUpdate", "OnDelete"]))
    if spec.get("revisionHistoryLimit") is not None:
        errs += validate_nonnegative(spec["revisionHistoryLimit"], "spec.revisionHistoryLimit")
    return errs


def validate_daemon_set(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    return errs + _daemon_set_spec(obj.get("spec") or {})


def validate_daemon_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += _daemon_set_spec(new.get("spec") or {})
    return errs + _immutable_selector(new, old)


def _stateful_set_spec(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    pmp = spec.get("podManagementPolicy", "")
    if not pmp:
        errs.append(required("spec.podManagementPolicy"))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", pmp,
                            "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") or {}
    t, ru = strategy.get("type", ""), strategy.get("rollingUpdate")
    if not t:
        errs.append(required("spec.updateStrategy"))
    elif t == "OnDelete":
        if ru is not None:
            errs.append(invalid("spec.updateStrategy.rollingUpdate", go_json(ru),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif t == "RollingUpdate":
        if ru is not None:
            p = "spec.updateStrategy.rollingUpdate"
            errs += validate_nonnegative(ru.get("partition", 0), f"{p}.partition")
            mu = ru.get("maxUnavailable")
            if mu is not None:
                errs += validate_int_or_percent(mu, f"{p}.maxUnavailable")
                if _int_or_percent(mu) == 0:
                    errs.append(invalid(f"{p}.maxUnavailable", mu, "cannot be 0"))
                errs += _not_more_than_100(mu, f"{p}.maxUnavailable")
    else:
        errs.append(invalid("spec.updateStrategy", go_json(strategy),
                            "must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if policy is not None:
        for f in ("whenDeleted", "whenScaled"):
            v = policy.get(f, "")
            if v not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{f}", v,
                                          ["Retain", "Delete"]))
    errs += validate_nonnegative(spec.get("replicas", 0), "spec.replicas")
    errs += validate_nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    if spec.get("ordinals") is not None:
        errs += validate_nonnegative(spec["ordinals"].get("start", 0), "spec.ordinals.start")
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(sel, "spec.selector")
        if selector_is_empty(sel):
            errs.append(invalid("spec.selector", go_label_selector(sel),
                                "empty selector is invalid for statefulset"))
    tmpl = spec.get("template") or {}
    meta = tmpl.get("metadata") or {}
    if not selector_valid(sel):
        errs.append(invalid("spec.selector", go_label_selector(sel), ""))
    else:
        if sel is None or not selector_is_empty(sel):
            if not selector_matches(sel, meta.get("labels")):
                errs.append(invalid("spec.template.metadata.labels", go_map(meta.get("labels")),
                                    "`selector` does not match template `labels`"))
        errs += validate_labels(meta.get("labels"), "spec.template.labels")
        errs += validate_annotations(meta.get("annotations"), "spec.template.annotations")
        errs += validate_pod_annotations(meta.get("annotations"), tmpl.get("spec") or {},
                                         "spec.template.annotations")
    pspec = tmpl.get("spec") or {}
    if pspec.get("restartPolicy", "") != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  pspec.get("restartPolicy", ""), ["Always"]))
    if pspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


def validate_stateful_set(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_label)
    return errs + _stateful_set_spec(obj.get("spec") or {})


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")


def validate_stateful_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    errs += _stateful_set_spec(spec)
    rest = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    orest = {k: v for k, v in ospec.items() if k not in _STS_MUTABLE}
    if not semantic_equal(rest, orest):
        errs.append(forbidden("spec", "updates to statefulset spec for fields other than "
                                      "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                      "'persistentVolumeClaimRetentionPolicy' and "
                                      "'minReadySeconds' are forbidden"))
    return errs


def validate_controller_revision(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), True, names.name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    return errs + validate_nonnegative(obj.get("revision", 0), "revision")


def validate_controller_revision_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_controller_revision(new)
    return errs + validate_immutable(new.get("data"), old.get("data"), "data",
                                     go_json(new.get("data")))
