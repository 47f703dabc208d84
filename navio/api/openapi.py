"""The OpenAPI v3 (`/openapi/v3`) and Swagger 2.0 (`/openapi/v2`) documents navio publishes.

kubectl needs them for `explain`, for client-side apply (it builds the strategic merge patch
from the v3 schema) and to learn that the server validates fields itself (a `fieldValidation`
parameter on each kind's PATCH); without a complete v3 document it falls back to `/openapi/v2`
in protobuf (see shared/kubectl-compat.md §3). Both documents derive from the pinned schema
(`navio.api.schema`, JSON Schema) and the registry, and follow the shape of kubernetes/kubernetes'
published `api/openapi-spec/v3/*.json` and `api/openapi-spec/swagger.json`:

- a nullable type list (`["string", "null"]`) becomes its one type; `null` leaves `enum`; the
  `apiVersion`/`kind` enums kubernetes-validate adds to top-level kinds are dropped (upstream has
  none); `$ref`s point at `#/components/schemas/…` (v3) or `#/definitions/…` (v2);
- in v3 a `$ref` with siblings (a description) is wrapped as `allOf: [{$ref}]`, as upstream does;
- IntOrString is `format: int-or-string` with `oneOf: [integer, string]` (v3) or `type: string`
  (v2); Quantity is `oneOf: [string, number]` (v3) or `type: string` (v2), as upstream;
- descriptions, formats, enums, `required` and every `x-kubernetes-*` extension are kept; the
  group-version-kind extension is an array on schemas and a single object on operations;
- `components.schemas` (`definitions`) holds exactly the definitions reachable from the paths,
  so every `$ref` resolves inside its document.

Documents are built lazily, once per state of the registry and of the schema (compared cheaply
on every call), and shared between callers: treat them as read-only. The index's `?hash=` is the
upper-case hex SHA-512 of a document's canonical JSON (as kube-openapi computes its ETag), so it
changes exactly when the document does. The API server serves `v3_index` at `/openapi/v3`,
`v3_document_at(key)` at `/openapi/v3/<key>` (404 when None; with the hash as ETag and
`Cache-Control: public, immutable` when `?hash=` matches, as kube-apiserver does) and
`v2_document` at `/openapi/v2` as JSON (kubectl asks v2 only in protobuf and only when v3 is
unusable, so a protobuf-only Accept there deserves 406 rather than JSON). Responses list only
`application/json` (and its watch stream), the one format navio answers with; upstream also
lists YAML and protobuf.
"""

from __future__ import annotations

import copy
import hashlib
import json
import weakref
from dataclasses import dataclass, field
from typing import Any

from navio.api import schema
from navio.api.openapi_paths import (META, STRING, Operation, PathItem, discovery_operation,
                                     group_prefix, operations, parameter)
from navio.api.registry import Registry

__all__ = ["v3_index", "v3_document", "v3_document_at", "v2_document", "document_hash",
           "V3_PREFIX", "V2_PREFIX"]

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_GVK = "x-kubernetes-group-version-kind"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Upstream descriptions of the two wrapper types (kubernetes-validate drops them).
_INT_OR_STRING_DOC = (
    "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
    "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to "
    "have, for example, a JSON field that can accept a name or number.")
_QUANTITY_DOC = (
    "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors."
    "\n\nThe serialization format is:\n\n``` <quantity>        ::= <signedNumber><suffix>\n\n\t"
    "(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n<digit>"
    "           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>"
    "          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= "
    "\"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= "
    "<binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi "
    "| Ei\n\n\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary."
    "html)\n\n<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = "
    "1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n<decimalExponent> ::= \"e\" "
    "<signedNumber> | \"E\" <signedNumber> ```\n\nNo matter which of the three exponent forms is "
    "used, no quantity may represent a number greater than 2^63-1 in magnitude, nor may it have "
    "more than 3 decimal places. Numbers larger or more precise will be capped or rounded up. "
    "(E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we require larger "
    "or smaller quantities.\n\nWhen a Quantity is parsed from a string, it will remember the "
    "type of suffix it had, and will use the same type again when it is serialized.\n\nBefore "
    "serializing, Quantity will be put in \"canonical form\". This means that Exponent/suffix "
    "will be adjusted up or down (with a corresponding increase or decrease in Mantissa) such "
    "that:\n\n- No precision is lost - No fractional digits will be emitted - The exponent (or "
    "suffix) is as large as possible.\n\nThe sign will be omitted unless the number is negative."
    "\n\nExamples:\n\n- 1.5 will be serialized as \"1500m\" - 1.5Gi will be serialized as "
    "\"1536Mi\"\n\nNote that the quantity will NEVER be internally represented by a floating "
    "point number. That is the whole point of this exercise.\n\nNon-canonical values will still "
    "parse as long as they are well formed, but will be re-emitted in their canonical form. (So "
    "always use canonical form, or don't diff.)\n\nThis format is intended to make it difficult "
    "to use these numbers without writing some sort of special handling code in the hopes that "
    "that will cause implementors to also use a fixed point implementation.")
_WRAPPERS: dict[tuple[str, bool], dict[str, Any]] = {
    (_INT_OR_STRING, True): {"description": _INT_OR_STRING_DOC, "format": "int-or-string",
                             "oneOf": [{"type": "integer"}, {"type": "string"}]},
    (_INT_OR_STRING, False): {"description": _INT_OR_STRING_DOC, "format": "int-or-string",
                              "type": "string"},
    (_QUANTITY, True): {"description": _QUANTITY_DOC,
                        "oneOf": [{"type": "string"}, {"type": "number"}]},
    (_QUANTITY, False): {"description": _QUANTITY_DOC, "type": "string"},
}
_SECURITY = {"BearerToken": {"description": "Bearer Token authentication", "in": "header",
                             "name": "authorization", "type": "apiKey"}}
_INFO = {"title": "Kubernetes", "version": "unversioned"}
# Keys whose value is a map of name -> schema, one schema, or a list of schemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "additionalItems")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf")


@dataclass
class _Built:
    """Everything derived from one state of (registry, schema); rebuilt when that changes."""
    stamp: tuple[Any, ...]
    keep: list[Any]                    # holds the definitions whose ids are in `stamp`
    converted: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, frozenset[str]] = field(default_factory=dict)
    v3: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    v2: dict[str, Any] | None = None


_memo: weakref.WeakKeyDictionary[Registry, _Built] = weakref.WeakKeyDictionary()


def _built(registry: Registry) -> _Built:
    defs = schema.definitions()
    kinds = tuple((k, k.schema_name) for k in registry.kinds())
    # Definition ids are a cheap fingerprint of the schema: add_definitions stores new dicts, and
    # `keep` holds the old ones alive, so an id cannot be reused while this entry exists.
    stamp = (kinds, tuple(defs), tuple(map(id, defs.values())))
    cur = _memo.get(registry)
    if cur is None or cur.stamp != stamp:
        cur = _Built(stamp, list(defs.values()))
        _memo[registry] = cur
    return cur


def document_hash(doc: dict[str, Any]) -> str:
    """Upper-case hex SHA-512 of the document's canonical JSON (kube-openapi's ETag form)."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha512(data.encode()).hexdigest().upper()


def _keys(registry: Registry) -> list[str]:
    keys = ["api", "apis", "version"]
    for group, versions in registry.groups():
        if group:
            keys.append(f"apis/{group}")
        keys.extend(group_prefix(group, v)[0].lstrip("/") for v in versions)
    return sorted(keys)


def v3_index(registry: Registry) -> dict[str, Any]:
    """The `/openapi/v3` discovery document: every served document with its hashed URL."""
    built = _built(registry)
    paths = {}
    for key in _keys(registry):
        if key not in built.hashes:
            doc = v3_document_at(registry, key)
            assert doc is not None
            built.hashes[key] = document_hash(doc)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={built.hashes[key]}"}
    return {"paths": paths}


def v3_document(registry: Registry, group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one served group-version; KeyError if it is not served."""
    doc = v3_document_at(registry, group_prefix(group, version)[0].lstrip("/"))
    if doc is None:
        raise KeyError(f"{group}/{version}" if group else version)
    return doc


def v3_document_at(registry: Registry, key: str) -> dict[str, Any] | None:
    """The document under an index key (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`, `apis`,
    `version`), or None if navio serves no such document."""
    built = _built(registry)
    if key not in built.v3:
        items = _items_at(registry, key)
        built.v3[key] = None if items is None else _document(built, items, v3=True)
    return built.v3[key]


def v2_document(registry: Registry) -> dict[str, Any]:
    """Swagger 2.0 of everything served: every path of every v3 document, one `definitions`."""
    built = _built(registry)
    if built.v2 is None:
        items = [item for key in _keys(registry) for item in _items_at(registry, key) or ()]
        built.v2 = _document(built, items, v3=False)
    return built.v2


def _items_at(registry: Registry, key: str) -> list[tuple[PathItem, str]] | None:
    """Path items of one document, each with its tag; None for an unknown key."""
    if key == "api":
        return [(discovery_operation("/api/", "getCoreAPIVersions", META + "APIVersions",
                                     "get available API versions"), "core")]
    if key == "apis":
        return [(discovery_operation("/apis/", "getAPIVersions", META + "APIGroupList",
                                     "get available API versions"), "apis")]
    if key == "version":
        return [(discovery_operation("/version/", "getCodeVersion",
                                     "io.k8s.apimachinery.pkg.version.Info",
                                     "get the version information for this server"), "version")]
    for group, versions in registry.groups():
        if group and key == f"apis/{group}":
            camel, tag = group_prefix(group, "")[1:]
            return [(discovery_operation(f"/apis/{group}/", f"get{camel}APIGroup",
                                         META + "APIGroup", "get information of a group"),
                     tag.rstrip("_"))]
        for version in versions:
            prefix, infix, tag = group_prefix(group, version)
            if key != prefix.lstrip("/"):
                continue
            items = [discovery_operation(prefix + "/", f"get{infix}APIResources",
                                         META + "APIResourceList", "get available resources")]
            defs = schema.definitions()
            for kind in sorted(registry.in_group_version(group, version),
                               key=lambda k: k.plural):
                if kind.schema_name in defs:     # a kind without a schema gets no paths
                    items.extend(operations(kind, schema.definition_name))
            return [(item, tag) for item in items]
    return None


def _document(built: _Built, items: list[tuple[PathItem, str]], *, v3: bool) -> dict[str, Any]:
    prefix = V3_PREFIX if v3 else V2_PREFIX
    render = _v3_path if v3 else _v2_path
    paths = {item.path: render(item, tag, prefix) for item, tag in items}
    roots = {d for item, _ in items for op in item.operations for d in _op_definitions(op)}
    defs = {name: _converted(built, name, v3) for name in sorted(_closure(built, roots))}
    if v3:
        return {"openapi": "3.0.0", "info": dict(_INFO), "paths": paths,
                "components": {"schemas": defs, "securitySchemes": copy.deepcopy(_SECURITY)}}
    return {"swagger": "2.0", "info": dict(_INFO), "paths": paths, "definitions": defs,
            "security": [{"BearerToken": []}], "securityDefinitions": copy.deepcopy(_SECURITY)}


def _op_definitions(op: Operation) -> list[str]:
    found = [op.body] if op.body else []
    return found + [d for _, _, d, _ in op.responses if d != STRING]


# --- schema conversion -------------------------------------------------------------------------

def _closure(built: _Built, roots: set[str]) -> set[str]:
    defs = schema.definitions()
    seen: set[str] = set()
    stack = [r for r in roots if r in defs]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in built.refs:
            built.refs[name] = frozenset(_refs(defs[name]))
        stack.extend(r for r in built.refs[name] if r not in seen and r in defs)
    return seen


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            name = schema.ref_name(cur)
            if name:
                found.add(name)
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return found


def _converted(built: _Built, name: str, v3: bool) -> dict[str, Any]:
    key = (name, v3)
    if key not in built.converted:
        wrapper = _WRAPPERS.get(key)
        if wrapper is not None:
            built.converted[key] = copy.deepcopy(wrapper)
        else:
            built.converted[key] = _definition(schema.definitions()[name], v3)
    return built.converted[key]


def _definition(source: dict[str, Any], v3: bool) -> dict[str, Any]:
    out = _convert(source, V3_PREFIX if v3 else V2_PREFIX, v3)
    if _GVK in source:
        # kubernetes-validate pins apiVersion/kind with a one-value enum; upstream does not.
        for prop in ("apiVersion", "kind"):
            out.get("properties", {}).get(prop, {}).pop("enum", None)
    return out


def _convert(node: dict[str, Any], prefix: str, v3: bool) -> dict[str, Any]:
    """One JSON Schema node as an OpenAPI schema (new containers; the input is not touched)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            if len(kept) == 1:
                out["type"] = kept[0]
            elif kept:           # not in the v1.32 schema; OpenAPI has no type lists
                out.setdefault("anyOf", []).extend({"type": t} for t in kept)
        elif key == "type" and value == "null":
            continue
        elif key == "enum":
            kept = [v for v in value if v is not None]
            if kept:
                out["enum"] = copy.deepcopy(kept)
        elif key == "$ref" and isinstance(value, str):
            out["$ref"] = prefix + value.rsplit("/", 1)[-1]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _convert(v, prefix, v3) for k, v in value.items()}
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = _convert(value, prefix, v3)
        elif key in _SCHEMA_LIST and isinstance(value, list):
            out.setdefault(key, []).extend(_convert(v, prefix, v3) for v in value)
        else:
            out[key] = copy.deepcopy(value)
    if v3 and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


# --- path rendering ----------------------------------------------------------------------------

def _gvk(op: Operation) -> dict[str, str]:
    assert op.gvk is not None
    group, version, kind = op.gvk
    return {"group": group, "kind": kind, "version": version}


def _schema_ref(definition: str, prefix: str) -> dict[str, Any]:
    return {"type": "string"} if definition == STRING else {"$ref": prefix + definition}


def _param(key: str, name_of: str, v3: bool) -> dict[str, Any]:
    name, where, typ, description = parameter(key, name_of)
    out: dict[str, Any] = {"description": description, "in": where, "name": name}
    if where == "path":
        out["required"] = True
    if v3:
        out["schema"] = {"type": typ, "uniqueItems": True}
    else:
        out |= {"type": typ, "uniqueItems": True}
    return out


def _params(keys: tuple[str, ...], name_of: str, v3: bool) -> list[dict[str, Any]]:
    """Rendered parameters in upstream's order: by name, then location."""
    out = [_param(k, name_of, v3) for k in keys]
    return sorted(out, key=lambda p: (p["name"], p["in"]))


def _common(op: Operation, tag: str) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag]}
    if op.action:
        out["x-kubernetes-action"] = op.action
    if op.gvk:
        out[_GVK] = _gvk(op)
    return out


def _v3_path(item: PathItem, tag: str, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if item.params:
        out["parameters"] = _params(item.params, item.name_of, True)
    for op in item.operations:
        o: dict[str, Any] = {"description": op.description, "operationId": op.operation_id}
        if op.params:
            o["parameters"] = _params(op.params, item.name_of, True)
        if op.body:
            body = {"content": {t: {"schema": {"$ref": prefix + op.body}} for t in op.body_types}}
            o["requestBody"] = {**body, "required": True} if op.body_required else body
        o["responses"] = {code: {"content": {t: {"schema": _schema_ref(d, prefix)} for t in types},
                                 "description": text} for code, text, d, types in op.responses}
        o["responses"]["401"] = {"description": "Unauthorized"}
        out[op.method] = {**o, **_common(op, tag)}
    return out


def _v2_path(item: PathItem, tag: str, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if item.params:
        out["parameters"] = _params(item.params, item.name_of, False)
    for op in item.operations:
        params = []
        if op.body:
            params.append({"in": "body", "name": "body", "schema": {"$ref": prefix + op.body},
                           **({"required": True} if op.body_required else {})})
        params += _params(op.params, item.name_of, False)
        produces = sorted({t for _, _, _, types in op.responses for t in types})
        o: dict[str, Any] = {"consumes": list(op.body_types) if op.body else ["*/*"],
                             "description": op.description, "operationId": op.operation_id,
                             "produces": produces, "schemes": ["https"]}
        if params:
            o["parameters"] = params
        o["responses"] = {code: {"description": text, "schema": _schema_ref(d, prefix)}
                          for code, text, d, _ in op.responses}
        o["responses"]["401"] = {"description": "Unauthorized"}
        out[op.method] = {**o, **_common(op, tag)}
    return out
