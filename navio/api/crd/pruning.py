"""Pruning and defaulting of custom objects by a structural schema (kube's
apiextensions-apiserver/pkg/apiserver/schema/pruning and .../schema/defaulting).

Pruning drops every field the schema does not specify, except below
`x-kubernetes-preserve-unknown-fields: true`; the root's apiVersion, kind and metadata are
kept, as are those of `x-kubernetes-embedded-resource` objects. It reports the dropped fields'
paths (`spec.foo`, `spec.items[0].bar`), which the API server turns into `unknown field`
warnings or, with `fieldValidation=Strict`, errors.

Defaulting fills `default` values where a field is absent (or null and not nullable), from the
outside in, into objects, array items and map values; defaults are deep-copied. Both work in
place and are idempotent.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["prune", "apply_defaults"]

_ROOT_KEPT = ("apiVersion", "kind", "metadata")


def prune(obj: Any, schema: dict[str, Any]) -> list[str]:
    """Remove unknown fields from `obj` in place; returns their paths."""
    dropped: list[str] = []
    _prune(obj, schema, "", dropped, root=True)
    return dropped


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(value: Any, sch: dict[str, Any] | None, path: str, dropped: list[str],
           root: bool = False) -> None:
    if sch is None:
        return
    if isinstance(value, dict):
        preserve = sch.get("x-kubernetes-preserve-unknown-fields") is True
        props = sch.get("properties") or {}
        addl = sch.get("additionalProperties")
        kept = _ROOT_KEPT if (root or sch.get("x-kubernetes-embedded-resource")) else ()
        for k in list(value):
            if k in kept:           # kube never prunes a resource's own TypeMeta/ObjectMeta
                continue
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is None and (addl is True or preserve):
                continue
            if sub is None:
                del value[k]
                dropped.append(_child(path, k))
                continue
            _prune(value[k], sub, _child(path, k), dropped)
    elif isinstance(value, list):
        items = sch.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", dropped)


def apply_defaults(obj: Any, schema: dict[str, Any]) -> None:
    """Fill in the schema's defaults in `obj`, in place."""
    _default(obj, schema)


def _default(value: Any, sch: dict[str, Any] | None) -> None:
    if sch is None:
        return
    if isinstance(value, dict):
        for k, sub in (sch.get("properties") or {}).items():
            if "default" in sub and (k not in value or (value[k] is None and
                                                        not sub.get("nullable"))):
                value[k] = copy.deepcopy(sub["default"])
        addl = sch.get("additionalProperties")
        props = sch.get("properties") or {}
        for k, v in value.items():
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            _default(v, sub)
    elif isinstance(value, list):
        items = sch.get("items")
        if isinstance(items, dict):
            for item in value:
                _default(item, items)
