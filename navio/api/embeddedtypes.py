"""Structural OpenAPI v3 schemas of built-in types, for CustomResourceDefinitions that embed
them (a training job's pod template), as controller-gen writes them into CRD manifests.

Why: CRDs navio installs itself (PyTorchJob) embed core types; their schemas come from the
same kubernetes-validate definitions as everything else instead of being copied by hand.

The result is a CRD `openAPIV3Schema` fragment: every `$ref` inlined with its description,
JSON Schema type lists reduced to one type (`nullable` where null was allowed is dropped, as
controller-gen does), IntOrString as `x-kubernetes-int-or-string`, Quantity as an
int-or-string with kube's quantity pattern, `metadata` of embedded objects as the
name, namespace, labels, annotations and finalizers a template may carry, and the strategic
merge patch extensions removed (CRDs reject them); list types and map keys are kept.
"""

from __future__ import annotations

from typing import Any

from navio.api import schema

__all__ = ["structural_schema"]

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                     r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
# controller-gen's generateEmbeddedObjectMeta: the metadata a template may carry (a bare
# `type: object` would let kube prune a pod template's labels).
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_EMBEDDED_META = {"annotations": _STRING_MAP, "labels": _STRING_MAP,
                  "finalizers": {"type": "array", "items": {"type": "string"}},
                  "name": {"type": "string"}, "namespace": {"type": "string"}}
_DROPPED = {"x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy",
            "x-kubernetes-group-version-kind", "x-kubernetes-unions", "$schema", "oneOf"}


def structural_schema(definition: str, descriptions: bool = True) -> dict[str, Any]:
    """The structural schema of the named definition (`io.k8s.api.core.v1.PodTemplateSpec`)."""
    return _convert({"$ref": f"#/$defs/{definition}"}, descriptions, ())


def _convert(node: dict[str, Any], descriptions: bool, seen: tuple[str, ...]
             ) -> dict[str, Any]:
    name = schema.ref_name(node)
    if name is not None:
        desc = node.get("description")
        if name == _INT_OR_STRING:
            out: dict[str, Any] = {"x-kubernetes-int-or-string": True,
                                   "anyOf": [{"type": "integer"}, {"type": "string"}]}
        elif name == _QUANTITY:
            out = {"x-kubernetes-int-or-string": True, "pattern": _QUANTITY_PATTERN,
                   "anyOf": [{"type": "integer"}, {"type": "string"}]}
        elif name == _OBJECT_META:
            out = {"type": "object", "properties": _EMBEDDED_META}
        elif name in seen:              # recursive types (none in pods) stay open
            out = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        else:
            out = _convert(schema.definitions()[name], descriptions, seen + (name,))
        if desc and descriptions:
            out = {"description": desc, **{k: v for k, v in out.items() if k != "description"}}
        elif not descriptions:
            out.pop("description", None)
        return out
    out = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "description" and not descriptions):
            continue
        if key == "type":
            types = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
            if types:
                out["type"] = types[0]
        elif key == "properties":
            out["properties"] = {k: _convert(v, descriptions, seen) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, descriptions, seen)
        elif key == "allOf" and len(value) == 1:
            out.update(_convert(value[0], descriptions, seen))
        else:
            out[key] = value
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return out
