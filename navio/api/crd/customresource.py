"""One CRD's served behaviour: its registry kinds, type definitions, storage conversion,
pruning, defaulting, validation, printer columns and scale paths.

`CustomResource.from_crd(crd)` reads a (validated, defaulted) CustomResourceDefinition; the
API server registers `kinds()` (one `Kind` per served version, each carrying this object as
`Kind.custom`) and `definitions()` (JSON Schema, the form `navio.api.schema` holds, so OpenAPI,
server-side apply and field validation serve custom kinds through their ordinary paths).

Objects are stored in the storage version. Conversion is a pluggable step (`Converter`): the
`None` strategy rewrites apiVersion only; `strategy: Webhook` gives a `WebhookConversion`,
which holds the webhook's configuration. Calling it is I/O, so the API server does it
(navio/apiserver/crdconversion.py, ConversionReview over HTTPS) before these synchronous
steps run: `needs_webhook` tells which objects it must send, and the synchronous `convert`
of a WebhookConversion refuses (500) an object that still needs the webhook rather than
serve it under the wrong version.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from navio.api import errors
from navio.api.crd import cel, pruning, validator
from navio.api.registry import Kind, Subresource

__all__ = ["CustomResource", "Version", "Converter", "NoneConverter", "definition_name",
           "WebhookConversion", "ConversionFailed"]

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_STATUS = Subresource("status", ("get", "patch", "update"))
_SCALE = Subresource("scale", ("get", "patch", "update"), group="autoscaling", version="v1",
                     kind="Scale")


class Converter(Protocol):
    """Converts a custom object to another version of its kind (`apiVersion` given)."""

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NoneConverter:
    """The `None` strategy: only apiVersion changes (kube's nopConverter)."""

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
        if obj.get("apiVersion") == api_version:
            return obj
        return {**obj, "apiVersion": api_version}


class ConversionFailed(errors.ApiError):
    """A conversion webhook failed: kube serves its error as a plain 500 with no reason
    (`Error from server: conversion webhook for <gv>, Kind=<kind> failed: ...`)."""
    code, reason = 500, ""


@dataclass(frozen=True)
class WebhookConversion:
    """The `Webhook` strategy: where the conversion webhook is (`clientConfig`) and which
    ConversionReview versions it understands, in the CRD's order of preference. The call
    itself is made by the API server; synchronously only a same-version "conversion" is
    possible."""
    client_config: dict[str, Any] = field(default_factory=dict, hash=False)
    review_versions: tuple[str, ...] = ("v1",)

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
        if obj.get("apiVersion") == api_version:
            return obj
        raise ConversionFailed(f"conversion webhook for {obj.get('apiVersion')}, "
                                   f"Kind={obj.get('kind')} failed: not called")


def definition_name(group: str, version: str, kind: str) -> str:
    """kube's OpenAPI name for a custom kind: the group reversed (`com.example.stable.v1.X`)."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


@dataclass(frozen=True)
class Version:
    name: str
    served: bool
    storage: bool
    schema: dict[str, Any]
    deprecated: bool = False
    deprecation_warning: str | None = None
    columns: tuple[dict[str, Any], ...] = ()
    status: bool = False
    scale: dict[str, Any] | None = None


@dataclass(frozen=True)
class CustomResource:
    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    namespaced: bool
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    versions: tuple[Version, ...]
    crd_name: str
    # Compared: a CRD update that only changes its conversion re-registers its kinds.
    converter: Converter = field(default_factory=NoneConverter, hash=False)
    # The CRD is being deleted: its objects are being removed, none may be created.
    terminating: bool = False

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_crd(cls, crd: dict[str, Any]) -> "CustomResource":
        spec = crd.get("spec") or {}
        names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
        versions = []
        for v in spec.get("versions") or ():
            subs = v.get("subresources") or {}
            schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or \
                {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            versions.append(Version(
                v["name"], bool(v.get("served")), bool(v.get("storage")), schema,
                bool(v.get("deprecated")), v.get("deprecationWarning"),
                tuple(v.get("additionalPrinterColumns") or ()), "status" in subs,
                subs.get("scale")))
        conversion = spec.get("conversion") or {}
        converter: Converter = NoneConverter()
        if conversion.get("strategy") == "Webhook":
            hook = conversion.get("webhook") or {}
            converter = WebhookConversion(
                dict(hook.get("clientConfig") or {}),
                tuple(hook.get("conversionReviewVersions") or ("v1",)))
        kind = names.get("kind") or spec.get("names", {}).get("kind", "")
        terminating = bool((crd.get("metadata") or {}).get("deletionTimestamp"))
        return cls(spec.get("group", ""), kind, names.get("plural", ""),
                   names.get("singular") or kind.lower(), names.get("listKind") or f"{kind}List",
                   spec.get("scope") == "Namespaced", tuple(names.get("shortNames") or ()),
                   tuple(names.get("categories") or ()), tuple(versions),
                   (crd.get("metadata") or {}).get("name", ""), converter, terminating)

    # -- registry ------------------------------------------------------------------------------
    @property
    def storage_version(self) -> str:
        return next((v.name for v in self.versions if v.storage), self.versions[0].name)

    def version(self, name: str) -> Version | None:
        return next((v for v in self.versions if v.name == name), None)

    def version_of(self, obj: dict[str, Any]) -> Version:
        api_version = str(obj.get("apiVersion") or "")
        v = self.version(api_version.rsplit("/", 1)[-1])
        return v if v is not None else self.versions[0]

    def kinds(self) -> list[Kind]:
        out = []
        for v in self.versions:
            if not v.served:
                continue
            subs = tuple(s for s, on in ((_STATUS, v.status), (_SCALE, v.scale is not None))
                         if on)
            out.append(Kind(self.group, v.name, self.kind, self.plural, self.namespaced,
                            self.short_names, self.categories, subs, singular=self.singular,
                            definition=definition_name(self.group, v.name, self.kind),
                            custom=self))
        return out

    def definitions(self) -> dict[str, dict[str, Any]]:
        """JSON Schema definitions of every served version (root object with ObjectMeta)."""
        defs = {}
        for v in self.versions:
            if not v.served:
                continue
            root = _json_schema(copy.deepcopy(v.schema))
            props = root.setdefault("properties", {})
            props["apiVersion"] = {"type": ["string", "null"], "description": _API_VERSION_DOC}
            props["kind"] = {"type": ["string", "null"], "description": _KIND_DOC}
            props["metadata"] = {"$ref": f"#/$defs/{_OBJECT_META}",
                                 "description": _METADATA_DOC}
            root["type"] = ["object", "null"]
            root["x-kubernetes-group-version-kind"] = [
                {"group": self.group, "kind": self.kind, "version": v.name}]
            defs[definition_name(self.group, v.name, self.kind)] = root
        return defs

    # -- storage -------------------------------------------------------------------------------
    def gv(self, version: str) -> str:
        return f"{self.group}/{version}"

    @property
    def webhook(self) -> WebhookConversion | None:
        """The conversion webhook, for a CRD with `strategy: Webhook`."""
        return self.converter if isinstance(self.converter, WebhookConversion) else None

    def needs_webhook(self, obj: dict[str, Any], api_version: str) -> bool:
        """Whether serving `obj` as `api_version` takes a call to the conversion webhook."""
        return self.webhook is not None and obj.get("apiVersion") != api_version

    def to_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.converter.convert(obj, self.gv(self.storage_version))

    def from_storage(self, obj: dict[str, Any], version: str) -> dict[str, Any]:
        """The stored object as `version` serves it, defaulted as kube defaults on read."""
        out = self.converter.convert(obj, self.gv(version))
        v = self.version(version)
        if v is not None:
            if out is obj:
                out = copy.deepcopy(obj)
            pruning.apply_defaults(out, v.schema)
        return out

    # -- writes --------------------------------------------------------------------------------
    def prune(self, obj: dict[str, Any]) -> list[str]:
        return pruning.prune(obj, self.version_of(obj).schema)

    def default(self, obj: dict[str, Any]) -> None:
        pruning.apply_defaults(obj, self.version_of(obj).schema)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
        v = self.version_of(obj)
        errs = validator.validate(v.schema, obj)
        if old is not None:
            # Validation ratcheting: an error in a value the update did not change stands.
            errs = [e for e in errs if _at(obj, e["field"]) != _at(old, e["field"])
                    or _at(obj, e["field"]) is _MISSING]
        errs += cel.check_rules(v.schema, obj, old, old is not None)
        return errs

    def scale_paths(self, version: str) -> dict[str, Any]:
        v = self.version(version)
        return (v.scale if v is not None else None) or {}

    def warnings(self, version: str) -> list[str]:
        v = self.version(version)
        if v is None or not v.deprecated:
            return []
        return [v.deprecation_warning or f"{self.gv(version)} {self.kind} is deprecated"]


_MISSING = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^\]]*)\]")


def _at(obj: Any, path: str) -> Any:
    """The value at a field-error path (`spec.tags[1]`, `spec.m[key]`), or _MISSING."""
    cur = obj
    for name, idx, key in _STEP.findall(path):
        if idx:
            if not isinstance(cur, list) or int(idx) >= len(cur):
                return _MISSING
            cur = cur[int(idx)]
        else:
            k = name or key
            if not isinstance(cur, dict) or k not in cur:
                return _MISSING
            cur = cur[k]
    return cur


def _json_schema(node: Any) -> Any:
    """A CRD schema node in navio.api.schema's JSON Schema form: `nullable` as a type list,
    specified-nothing objects given empty properties (everything in them is pruned)."""
    if not isinstance(node, dict):
        return node
    for key in ("properties", "patternProperties"):
        if isinstance(node.get(key), dict):
            node[key] = {k: _json_schema(v) for k, v in node[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = _json_schema(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            node[key] = [_json_schema(x) for x in node[key]]
    t = node.get("type")
    if node.get("nullable") and isinstance(t, str):
        node["type"] = [t, "null"]
    if t == "object" and "properties" not in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields") \
            and not node.get("x-kubernetes-embedded-resource"):
        node["properties"] = {}
    return node


_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources")
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#types-kinds")
_METADATA_DOC = ("Standard object's metadata. More info: https://git.k8s.io/community/"
                 "contributors/devel/sig-architecture/api-conventions.md#metadata")
