"""The Kubernetes v1.32 type schema, loaded once from the pinned `kubernetes-validate` package.

Every other part of navio that needs to know a type's shape (OpenAPI documents, strategic merge
patch keys, field validation, server-side apply list types) reads it from here, so no type is
written out by hand. The file is JSON Schema (draft 2020-12): `$ref`s look like
`#/$defs/<name>` and optional fields have type lists such as `["string", "null"]`.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["KUBERNETES_SCHEMA_VERSION", "definitions", "definition_name", "resolve",
           "ref_name", "subschema", "types_of", "add_definitions", "generation"]

KUBERNETES_SCHEMA_VERSION = "v1.32.0"
_REF_PREFIX = "#/$defs/"

# Definitions added at run time (CRDs, navio's own kinds among them) beside the built-in ones.
_extra: dict[str, dict[str, Any]] = {}


@functools.cache
def _builtin() -> dict[str, dict[str, Any]]:
    path = (resources.files("kubernetes_validate") / "kubernetes-json-schema"
            / f"{KUBERNETES_SCHEMA_VERSION}-local" / "_definitions.json")
    defs: dict[str, dict[str, Any]] = json.loads(path.read_bytes())["$defs"]
    return defs


def definitions() -> dict[str, dict[str, Any]]:
    """All type definitions by name (`io.k8s.api.core.v1.Pod`); do not mutate."""
    if not _extra:
        return _builtin()
    return {**_builtin(), **_extra}


def add_definitions(defs: dict[str, dict[str, Any]]) -> None:
    """Register further definitions (in the same JSON Schema form) under their names."""
    global _generation
    _extra.update(defs)
    _gvk_index.cache_clear()
    _generation += 1


_generation = 0


def generation() -> int:
    """A number that changes whenever definitions are added: caches of resolved schemas
    compare it to know when to start over."""
    return _generation


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition name of a kind (`("apps", "v1", "Deployment")` →
    `io.k8s.api.apps.v1.Deployment`), or None if the schema has no such kind."""
    return _gvk_index().get((group, version, kind))


def ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    # A dict here is a property named "$ref" (JSONSchemaProps has one), not a reference.
    return ref[len(_REF_PREFIX):] if isinstance(ref, str) and ref.startswith(_REF_PREFIX) \
        else None


def resolve(schema: dict[str, Any] | str) -> dict[str, Any]:
    """A schema with its `$ref` followed (a definition name is accepted too)."""
    if isinstance(schema, str):
        return definitions()[schema]
    seen = 0
    while (name := ref_name(schema)) is not None and seen < 32:
        schema = _extra[name] if name in _extra else _builtin()[name]
        seen += 1
    return schema


def types_of(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, without "null" (`["string", "null"]` → {"string"})."""
    t = resolve(schema).get("type")
    if t is None:
        return set()
    return ({t} if isinstance(t, str) else set(t)) - {"null"}


def subschema(schema: dict[str, Any] | str, path: list[str | int]) -> dict[str, Any] | None:
    """Walk `path` (field names; ints step into array items) from a schema; None if absent."""
    cur = resolve(schema)
    for step in path:
        if isinstance(step, int):
            items = cur.get("items")
            if items is None:
                return None
            cur = resolve(items)
            continue
        props = cur.get("properties")
        if props and step in props:
            cur = resolve(props[step])
        elif isinstance(cur.get("additionalProperties"), dict):
            cur = resolve(cur["additionalProperties"])
        else:
            return None
    return cur
