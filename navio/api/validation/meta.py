"""ObjectMeta, labels, annotations and label selectors, validated as Kubernetes v1.32 does.

Mirrors apimachinery/pkg/api/validation/objectmeta.go, apimachinery/pkg/apis/meta/v1/validation
and core validation's wrappers (which add the "standard finalizer name" rule). Map entries are
checked in the JSON order (Go's order is random, so any order is faithful). Also holds the
helpers shared by every kind: non-negative numbers, immutable fields and semantic equality
(apimachinery's Semantic.DeepEqual treats empty and missing lists or maps as equal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from navio.api.errors import BadRequest
from navio.api.selectors import LabelSelector, label_selector_from_spec
from navio.api.validation import names
from navio.api.validation.field import Cause, child, forbidden, index, invalid, required, too_long
from navio.api.validation.gorepr import go_json, go_strings

__all__ = [
    "NameFn", "IS_NEGATIVE", "FIELD_IMMUTABLE", "TOTAL_ANNOTATION_SIZE_LIMIT",
    "validate_nonnegative", "validate_label_name", "validate_labels", "validate_annotations",
    "validate_label_selector", "selector_valid", "selector_matches", "selector_is_empty",
    "validate_owner_references",
    "validate_finalizers", "validate_object_meta", "validate_object_meta_update",
    "validate_immutable", "semantic_equal", "validate_template_object_meta", "go_time",
]

NameFn = Callable[[str, bool], list[str]]
IS_NEGATIVE = "must be greater than or equal to 0"
FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
_FIELD_MANAGER_MAX = 128


def validate_nonnegative(value: Any, path: str) -> list[Cause]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, IS_NEGATIVE)]
    return []


def validate_label_name(name: str, path: str) -> list[Cause]:
    return [invalid(path, name, m) for m in names.is_qualified_name(name)]


def validate_labels(labels: Any, path: str) -> list[Cause]:
    """Key and value errors are both reported on the map's own path (not `[key]`)."""
    errs: list[Cause] = []
    for k, v in (labels or {}).items():
        errs += validate_label_name(k, path)
        errs += [invalid(path, v, m) for m in names.is_valid_label_value(str(v))]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    total = 0
    for k, v in (annotations or {}).items():
        # The rule is a qualified name except that case does not matter.
        errs += [invalid(path, k, m) for m in names.is_qualified_name(k.lower())]
        total += len(k.encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _requirement_errors(expr: dict[str, Any], path: str, allow_invalid_values: bool) -> list[Cause]:
    errs: list[Cause] = []
    op, values = expr.get("operator", ""), expr.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"),
                                 "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"),
                                  "may not be specified when `operator` is 'Exists' or "
                                  "'DoesNotExist'"))
    else:
        errs.append(invalid(child(path, "operator"), op, "not a valid selector operator"))
    errs += validate_label_name(expr.get("key", ""), child(path, "key"))
    if not allow_invalid_values:
        for i, v in enumerate(values):
            errs += [invalid(index(child(path, "values"), i), v, m)
                     for m in names.is_valid_label_value(str(v))]
    return errs


def validate_label_selector(sel: Any, path: str, allow_invalid_values: bool = False) -> list[Cause]:
    if sel is None:
        return []
    errs = validate_labels(sel.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        errs += _requirement_errors(expr, index(child(path, "matchExpressions"), i),
                                    allow_invalid_values)
    return errs


def _as_selector(sel: Any) -> LabelSelector | None:
    try:
        return label_selector_from_spec(sel)
    except BadRequest:
        return None


def selector_valid(sel: Any) -> bool:
    """Whether metav1.LabelSelectorAsSelector succeeds (nil and empty selectors do)."""
    return _as_selector(sel) is not None


def selector_is_empty(sel: Any) -> bool:
    """labels.Selector.Empty(): true only for a non-nil selector with no requirements."""
    s = _as_selector(sel)
    return s is not None and s.empty()


def selector_matches(sel: Any, labels: Any) -> bool:
    """A nil selector selects nothing; an empty one everything; an invalid one nothing."""
    s = _as_selector(sel)
    return s is not None and s.matches(labels or {})


def _owner_reference(ref: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    api_version = ref.get("apiVersion", "")
    parts = api_version.split("/")
    # schema.ParseGroupVersion: "v1", "g/v"; anything else yields an empty version.
    version = parts[-1] if len(parts) <= 2 else ""
    if not version:
        errs.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
    if not ref.get("kind"):
        errs.append(invalid(child(path, "kind"), ref.get("kind", ""), "must not be empty"))
    if not ref.get("name"):
        errs.append(invalid(child(path, "name"), ref.get("name", ""), "must not be empty"))
    if not ref.get("uid"):
        errs.append(invalid(child(path, "uid"), ref.get("uid", ""), "must not be empty"))
    if api_version == "v1" and ref.get("kind") == "Event":
        errs.append(invalid(path, go_json(ref),
                            "/v1, Kind=Event is disallowed from being an owner"))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[Cause]:
    """Errors name the list itself, not an index (objectmeta.go passes fldPath through)."""
    errs: list[Cause] = []
    first = ""
    for ref in refs or []:
        errs += _owner_reference(ref, path)
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first:
                errs.append(invalid(path, go_json(refs),
                                    "Only one reference can have Controller set to true. Found "
                                    f'"true" in references for {first} and {current}'))
            else:
                first = current
    return errs


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    """ValidateFinalizers: qualified names, and never both orphan and foreground deletion."""
    errs: list[Cause] = []
    finalizers = finalizers or []
    for f in finalizers:
        errs += [invalid(path, f, m) for m in names.is_qualified_name(f)]
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(invalid(path, go_strings(finalizers),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _kube_finalizers(finalizers: Any, path: str) -> list[Cause]:
    # core validation's validateKubeFinalizerName, per index.
    return [invalid(index(path, i), f, "name is neither a standard finalizer name nor is it "
                                       "fully qualified")
            for i, f in enumerate(finalizers or [])
            if "/" not in f and f not in _STANDARD_FINALIZERS]


def _managed_fields(entries: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, e in enumerate(entries or []):
        p = index(path, i)
        if e.get("operation") not in ("Apply", "Update"):
            errs.append(invalid(child(p, "operation"), e.get("operation", ""),
                                "must be `Apply` or `Update`"))
        if e.get("fieldsType") and e["fieldsType"] != "FieldsV1":
            errs.append(invalid(child(p, "fieldsType"), e["fieldsType"], "must be `FieldsV1`"))
        manager = e.get("manager", "")
        if len(manager) > _FIELD_MANAGER_MAX:
            errs.append(too_long(child(p, "manager"), _FIELD_MANAGER_MAX))
        for pos, ch in enumerate(manager):
            if not ch.isprintable():
                errs.append(invalid(child(p, "manager"), manager,
                                    f"invalid character U+{ord(ch):04X} (at position {pos})"))
        if len(e.get("subresource", "")) > 256:
            errs.append(too_long(child(p, "subresource"), 256))
    return errs


def validate_object_meta(meta: Any, namespaced: bool, name_fn: NameFn, path: str = "metadata",
                         kube_finalizers: bool = True) -> list[Cause]:
    """ValidateObjectMeta on create: generateName, name, namespace, then the common checks."""
    meta = meta or {}
    errs: list[Cause] = []
    if meta.get("generateName"):
        errs += [invalid(child(path, "generateName"), meta["generateName"], m)
                 for m in name_fn(meta["generateName"], True)]
    name = meta.get("name", "")
    if not name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    else:
        errs += [invalid(child(path, "name"), name, m) for m in name_fn(name, False)]
    ns = meta.get("namespace", "")
    if namespaced:
        if not ns:
            errs.append(required(child(path, "namespace")))
        else:
            errs += [invalid(child(path, "namespace"), ns, m)
                     for m in names.name_is_dns_label(ns, False)]
    elif ns:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs += validate_nonnegative(meta.get("generation", 0), child(path, "generation"))
    errs += _common(meta, path, kube_finalizers)
    return errs


def _common(meta: dict[str, Any], path: str, kube_finalizers: bool) -> list[Cause]:
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"))
    errs += _managed_fields(meta.get("managedFields"), child(path, "managedFields"))
    if kube_finalizers:
        errs += _kube_finalizers(meta.get("finalizers"), child(path, "finalizers"))
    return errs


def go_time(value: Any) -> Any:
    """metav1.Time as its String() prints (`2006-01-02 15:04:05 +0000 UTC`)."""
    from navio.api.errors import GoValue
    if not isinstance(value, str):
        return value
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.utcoffset():
        t = (t - t.utcoffset()).replace(tzinfo=None)   # metav1.Time prints in UTC
    return GoValue(f"{t.year:04d}-{t:%m-%d %H:%M:%S} +0000 UTC")


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata",
                                kube_finalizers: bool = True) -> list[Cause]:
    new, old = new or {}, old or {}
    errs: list[Cause] = []
    if old.get("deletionTimestamp"):
        extra = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if extra:
            errs.append(forbidden(child(path, "finalizers"),
                                  "no new finalizers can be added if the object is being "
                                  f"deleted, found new finalizers {go_strings(extra)}"))
    if not new.get("resourceVersion"):
        errs.append(invalid(child(path, "resourceVersion"), new.get("resourceVersion", ""),
                            "must be specified for an update"))
    if new.get("generation", 0) < old.get("generation", 0):
        errs.append(invalid(child(path, "generation"), new.get("generation", 0),
                            "must not be decremented"))
    for f in ("name", "namespace", "uid"):
        errs += validate_immutable(new.get(f, ""), old.get(f, ""), child(path, f))
    if new.get("creationTimestamp") != old.get("creationTimestamp"):
        # A value type upstream: unset prints as Go's zero time, not null.
        errs.append(invalid(child(path, "creationTimestamp"),
                            go_time(new.get("creationTimestamp") or "0001-01-01T00:00:00Z"),
                            FIELD_IMMUTABLE))
    if new.get("deletionTimestamp") != old.get("deletionTimestamp"):
        errs.append(invalid(child(path, "deletionTimestamp"), go_time(new.get("deletionTimestamp")),
                            FIELD_IMMUTABLE))
    errs += validate_immutable(new.get("deletionGracePeriodSeconds"),
                               old.get("deletionGracePeriodSeconds"),
                               child(path, "deletionGracePeriodSeconds"))
    errs += validate_labels(new.get("labels"), child(path, "labels"))
    errs += validate_annotations(new.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(new.get("ownerReferences"), child(path, "ownerReferences"))
    errs += _managed_fields(new.get("managedFields"), child(path, "managedFields"))
    if kube_finalizers:
        errs += _kube_finalizers(new.get("finalizers"), child(path, "finalizers"))
    return errs


def _normal(v: Any) -> Any:
    if isinstance(v, dict):
        out = {k: _normal(x) for k, x in v.items() if x is not None}
        return {k: x for k, x in out.items() if x != [] and x != {}}
    if isinstance(v, list):
        return [_normal(x) for x in v]
    return v


def semantic_equal(a: Any, b: Any) -> bool:
    """apimachinery Semantic.DeepEqual on JSON forms: null, [] and {} equal a missing field."""
    return _normal(a) == _normal(b)


def validate_immutable(new: Any, old: Any, path: str, shown: Any = ...) -> list[Cause]:
    """ValidateImmutableField: the *new* value is reported, rendered by `shown` if given."""
    if semantic_equal(new, old):
        return []
    return [invalid(path, new if shown is ... else shown, FIELD_IMMUTABLE)]


def validate_template_object_meta(meta: Any, path: str) -> list[Cause]:
    """ValidateTemplateObjectMeta (PVC templates): only labels and annotations may be set."""
    meta = meta or {}
    errs = validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    for k, v in meta.items():
        unset = v in (None, "", [], {}, 0)
        if k not in ("labels", "annotations", "creationTimestamp") and not unset:
            errs.append(forbidden(child(path, k), "cannot be set"))
    return errs

