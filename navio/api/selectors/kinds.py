"""Which field selectors each kind supports, and the field values an object offers.

Kubernetes checks a field selector in two independent layers, mirrored here:

1. `check_field_selector` — the per-kind field-label conversion functions
   (`AddFieldLabelConversionFunc` in pkg/apis/core/v1/conversion.go,
   pkg/apis/batch/v1/conversion.go, pkg/apis/events/v1/conversion.go). They accept or reject
   each label (a 400 with the kind's own wording) and rename some: pods' legacy `spec.host` is
   `spec.nodeName`, events.k8s.io's `regarding.*` are the core `involvedObject.*`. A kind with
   no conversion function falls back to `runtime.DefaultMetaV1FieldSelectorConversion`, which
   accepts only `metadata.name` and `metadata.namespace` — every apps/v1 kind included, so
   `status.replicas` on ReplicaSets is rejected exactly as kube-apiserver rejects it.
2. `selectable_fields` — the registry strategies' `ToSelectableFields` / `GetAttrs`
   (pkg/registry/*/strategy.go): the string value of every selectable field of one object.

The two lists differ on purpose, as upstream: pods accept `status.podIPs` but never set it (so
only `status.podIPs=` matches), and namespaces, PVs and PVCs set a legacy `name` that no
selector can reach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors.field_errors import go_quote
from navio.api.selectors.fields import FieldRequirement, FieldSelector, parse_field_selector

__all__ = ["selectable_fields", "check_field_selector", "supported_field_labels"]

_META = ("metadata.name", "metadata.namespace")


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _default_rejection(label: str) -> str:
    return (f'{go_quote(label)} is not a known field selector: only "metadata.name", '
            '"metadata.namespace"')


# (group, kind) → (label → canonical label, rejection message). pkg/apis/*/v*/conversion.go.
_CONVERSIONS: dict[tuple[str, str], tuple[dict[str, str], Callable[[str], str]]] = {
    ("", "Pod"): ({**{k: k for k in (
        *_META, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
        "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
        "status.podIPs", "status.nominatedNodeName")},
        "spec.host": "spec.nodeName"}, _not_supported),  # spec.host: old v1 clients
    ("", "Node"): ({k: k for k in ("metadata.name", "spec.unschedulable")}, _not_supported),
    ("", "ReplicationController"): ({k: k for k in (*_META, "status.replicas")},
                                    _not_supported),
    ("", "Event"): ({k: k for k in (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type", *_META)},
        _not_supported),
    ("", "Namespace"): ({k: k for k in ("status.phase", "metadata.name")}, _not_supported),
    ("", "Secret"): ({k: k for k in ("type", *_META)}, _not_supported),
    ("", "Service"): ({k: k for k in (*_META, "spec.clusterIP", "spec.type")}, _not_supported),
    ("batch", "Job"): ({k: k for k in (*_META, "status.successful")},
                       lambda label: f"field label {go_quote(label)} not supported for Job"),
    ("events.k8s.io", "Event"): ({
        "reason": "reason",
        "regarding.kind": "involvedObject.kind",
        "regarding.namespace": "involvedObject.namespace",
        "regarding.name": "involvedObject.name",
        "regarding.uid": "involvedObject.uid",
        "regarding.apiVersion": "involvedObject.apiVersion",
        "regarding.resourceVersion": "involvedObject.resourceVersion",
        "regarding.fieldPath": "involvedObject.fieldPath",
        "reportingController": "reportingComponent",
        "source": "source",  # upstream TODO: "There's no source field any more."
        "type": "type",
        "metadata.namespace": "metadata.namespace",
        "metadata.name": "metadata.name",
    }, _not_supported),
}
_DEFAULT_CONVERSION = ({k: k for k in _META}, _default_rejection)


def supported_field_labels(group: str, kind: str) -> list[str]:
    """The field labels a selector on this kind may use, as a client would spell them."""
    return sorted(_CONVERSIONS.get((group, kind), _DEFAULT_CONVERSION)[0])


def check_field_selector(group: str, kind: str,
                         selector: FieldSelector | str) -> FieldSelector:
    """Validate `selector` for `kind` and return it with labels in their canonical spelling
    (ready for `selectable_fields`); an unsupported label raises BadRequest with Kubernetes'
    per-kind message, e.g. `field label not supported: foo`."""
    if isinstance(selector, str):
        selector = parse_field_selector(selector)
    accepted, reject = _CONVERSIONS.get((group, kind), _DEFAULT_CONVERSION)
    converted = []
    for r in selector.requirements:
        if r.field not in accepted:
            raise BadRequest(reject(r.field))
        converted.append(FieldRequirement(accepted[r.field], r.operator, r.value))
    return FieldSelector(tuple(converted))


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _s(value: Any) -> str:
    """A field's string form: Go's zero value for missing, `true`/`false` for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    # The internal type keeps PodIPs only; v1 podIP wins when both are set (core/v1 conversion).
    pod_ip = status.get("podIP") or next(
        (ip.get("ip", "") for ip in status.get("podIPs") or () if isinstance(ip, Mapping)), "")
    return {
        "spec.nodeName": _s(spec.get("nodeName")),
        "spec.restartPolicy": _s(spec.get("restartPolicy")),
        "spec.schedulerName": _s(spec.get("schedulerName")),
        "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
        "spec.hostNetwork": _s(bool(spec.get("hostNetwork"))),
        "status.phase": _s(status.get("phase")),
        "status.podIP": _s(pod_ip),
        "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
    }


def _event_fields(ev: Mapping[str, Any], ref_key: str, source: str) -> dict[str, str]:
    ref = ev.get(ref_key) or {}
    fields = {f"involvedObject.{k}": _s(ref.get(k)) for k in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    reporting = _s(ev.get("reportingComponent" if ref_key == "involvedObject"
                          else "reportingController"))
    fields.update({"reason": _s(ev.get("reason")), "type": _s(ev.get("type")),
                   "reportingComponent": reporting,
                   # core/v1 Event: source.component, else reportingController.
                   "source": _s(_get(ev, source, "component")) or reporting})
    return fields


_SPECIFIC: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict[str, str]]] = {
    ("", "Pod"): _pod_fields,
    ("", "Node"): lambda o: {"spec.unschedulable": _s(bool(_get(o, "spec", "unschedulable")))},
    ("", "Namespace"): lambda o: {"status.phase": _s(_get(o, "status", "phase")),
                                  "name": _s(_get(o, "metadata", "name"))},
    ("", "PersistentVolume"): lambda o: {"name": _s(_get(o, "metadata", "name"))},
    ("", "PersistentVolumeClaim"): lambda o: {"name": _s(_get(o, "metadata", "name"))},
    ("", "Secret"): lambda o: {"type": _s(o.get("type"))},
    ("", "Service"): lambda o: {"spec.clusterIP": _s(_get(o, "spec", "clusterIP")),
                                "spec.type": _s(_get(o, "spec", "type"))},
    ("", "ReplicationController"): lambda o: {
        "status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ("apps", "ReplicaSet"): lambda o: {"status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ("batch", "Job"): lambda o: {"status.successful": _s(_get(o, "status", "succeeded") or 0)},
    ("", "Event"): lambda o: _event_fields(o, "involvedObject", "source"),
    ("events.k8s.io", "Event"): lambda o: _event_fields(o, "regarding", "deprecatedSource"),
}


def selectable_fields(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable field set of `obj`, keyed by canonical label, values as strings.

    Always has `metadata.name` and `metadata.namespace` (empty for cluster-scoped objects,
    which is what Kubernetes' missing-key lookup yields as well)."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _s(meta.get("name")),
              "metadata.namespace": _s(meta.get("namespace"))}
    specific = _SPECIFIC.get((group, kind))
    if specific is not None:
        fields.update(specific(obj))
    return fields
