"""Structural checks of request bodies against the schema, worded as kube-apiserver words them.

kube-apiserver decodes a body into Go structs: a value of the wrong JSON type fails the decode,
and with `fieldValidation=Strict|Warn` every field the struct lacks is reported. navio keeps
objects as dicts, so this module replays both checks on the dict and the schema
(`navio.api.schema`), and prunes what a Go decode would drop. Nothing here mutates its input.

How the API server uses it on POST/PUT (kind K, version V, definition `name`; `body` the raw
JSON), in kube-apiserver's order (`endpoints/handlers/create.go`, `update.go`):

1. `decode_error(obj, name)`: when not None, 400 BadRequest with
   `cannot_handle(K, V, error)`, e.g. `Deployment in version "v1" cannot be handled as a
   Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas
   of type int32`. Kinds without Go types (CRDs) use `type_errors(obj, name)` instead: 422
   Invalid with those causes, as the apiextensions validator reports them.
2. By `fieldValidation` (kubectl sends Strict; a request without it means Warn):
   `errs = strict_errors(unknown_fields(obj, name), duplicate_fields(body))`
   - Strict, errs non-empty: 400 BadRequest `cannot_handle(K, V, strict_decoding_error(errs))`
     (`... strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`);
   - Warn: one `Warning: 299 - "<err>"` header per error (kubectl prints `Warning: <err>`);
   - then, in every mode, store `prune(obj, name)`.
   PATCH applies the patch first and checks the patched object. Its Strict failure is a 422
   Invalid with no kind or name and one cause on field `patch` (`endpoints/handlers/patch.go`):
   `Invalid("", "", [cause("FieldValueInvalid", "patch", strict_decoding_error(errs), value)])`,
   `value` being `go_format(patch)` for strategic merge patch and the patched object's JSON for
   JSON and merge patch. Server-side apply is strict whatever `fieldValidation` says: v1.32
   answers an unknown field with `failed to create typed patch object (default/web; apps/v1,
   Kind=Deployment): .spec.foo: field not declared in schema` (a 500 upstream, kubernetes
   issue #139253; 400 is the proposed fix), its path in structured-merge-diff form
   (`.spec.template.spec.containers[name="web"].imagee`), which this module does not build.

Paths use kube-apiserver's strict-decoding form: `spec.template.spec.containers[0].imagee`
(no leading dot, indices in brackets, map keys as `.key`). Schemas without `properties` and
without an `additionalProperties` schema (RawExtension, FieldsV1, JSON) are opaque, as is
everything below `x-kubernetes-preserve-unknown-fields: true`; `null` is accepted everywhere
(Go's decoder ignores it). Known gaps: named Go string types (`v1.PullPolicy`) are reported as
`string`; time strings are not parsed, so a malformed time is left to semantic validation.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from navio.api import schema
from navio.api.errors import cause

__all__ = ["unknown_fields", "prune", "duplicate_fields", "type_errors", "decode_error",
           "strict_errors", "strict_decoding_error", "cannot_handle", "go_format"]

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_TIMES = ("io.k8s.apimachinery.pkg.apis.meta.v1.Time",
          "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime")
# apimachinery resource.ParseQuantity: the format, then the suffix.
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T",
                      "P", "E"}
_ERR_FORMAT = ("quantities must match the regular expression "
               "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object_shape(sch: dict[str, Any]) -> tuple[dict[str, Any] | None, Any, bool]:
    """(properties or None, additionalProperties, preserve-unknown) of a resolved schema."""
    preserve = sch.get("x-kubernetes-preserve-unknown-fields") is True
    return sch.get("properties"), sch.get("additionalProperties"), preserve


class _Node:
    """What the walks need to know of one schema node, worked out once per node: every
    request walks the same few hundred nodes, and resolving `$ref`s and type lists each time
    was most of the cost of checking a body."""

    __slots__ = ("sch", "name", "target", "types", "props", "addl", "preserve", "embedded",
                 "opaque", "items", "special", "struct", "inner", "array_items", "scalar",
                 "_go_type")

    def __init__(self, sch: dict[str, Any]) -> None:
        self.sch = sch                      # kept alive so that its id stays unique
        self.name = schema.ref_name(sch)
        target = self.target = schema.resolve(sch)
        self.types = frozenset(schema.types_of(target))
        props, addl, preserve = _object_shape(target)
        self.props, self.addl, self.preserve = props, addl, preserve
        self.embedded = target.get("x-kubernetes-embedded-resource") is True
        self.opaque = props is None and not isinstance(addl, dict)
        items = target.get("items")
        self.items = items if isinstance(items, dict) else None
        self.special = {_TIMES[0]: 1, _TIMES[1]: 1, _INT_OR_STRING: 2,
                        _QUANTITY: 3}.get(self.name or "", 0)
        self.struct = props is not None or (self.types == {"object"} and isinstance(addl, dict))
        self.inner = (self.name.rsplit(".", 1)[-1]
                      if self.name and props is not None else None)
        self.array_items = self.items if "array" in self.types else None
        self.scalar = next((t for t in ("string", "integer", "number", "boolean")
                            if t in self.types), "")
        self._go_type: str | None = None

    @property
    def go_type(self) -> str:
        if self._go_type is None:
            self._go_type = _go_type(self.sch)
        return self._go_type


_nodes: dict[int, _Node] = {}
_NODE_CACHE_LIMIT = 20_000   # built-in kinds need a few thousand; bounds fresh-dict callers
_nodes_generation = [0]


def _node(sch: dict[str, Any]) -> _Node:
    n = _nodes.get(id(sch))
    if n is not None and n.sch is sch and _nodes_generation[0] == schema.generation():
        return n
    n = _Node(sch)
    if len(_nodes) >= _NODE_CACHE_LIMIT or _nodes_generation[0] != schema.generation():
        _nodes.clear()
        _nodes_generation[0] = schema.generation()
    _nodes[id(sch)] = n
    return n


def _walk(value: Any, sch: dict[str, Any], path: str, found: list[str], prune_: bool) -> Any:
    n = _node(sch)
    if isinstance(value, dict):
        if n.opaque:
            return value                      # opaque: RawExtension, FieldsV1, preserved maps
        props, addl = n.props, n.addl
        out: dict[str, Any] = {}
        for key, sub in value.items():
            if props is not None and key in props:
                if isinstance(sub, (dict, list)):
                    sub = _walk(sub, props[key], _key(path, key), found, prune_)
            elif isinstance(addl, dict):
                if isinstance(sub, (dict, list)):
                    sub = _walk(sub, addl, _key(path, key), found, prune_)
            elif not (n.preserve or addl is True
                      or (n.embedded and key in ("apiVersion", "kind", "metadata"))):
                found.append(_key(path, key))
                continue
            if prune_:
                out[key] = sub
        return out if prune_ else value
    if isinstance(value, list) and n.items is not None:
        items = [_walk(v, n.items, f"{path}[{i}]", found, prune_)
                 for i, v in enumerate(value)]
        return items if prune_ else value
    return value


def unknown_fields(obj: dict[str, Any], schema_name: str) -> list[str]:
    """Paths of the fields `schema_name` does not declare, in document order
    (`["spec.replica", "spec.template.spec.containers[0].imagee"]`)."""
    found: list[str] = []
    _walk(obj, schema.resolve(schema_name), "", found, False)
    return found


def prune(obj: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """A copy of `obj` without the fields `unknown_fields` reports (what fieldValidation=Ignore
    and Warn store); opaque subtrees and scalars are shared with `obj`, not copied."""
    pruned: dict[str, Any] = _walk(obj, schema.resolve(schema_name), "", [], True)
    return pruned


class _Dups(dict):  # type: ignore[type-arg]
    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Dups:
    out = _Dups()
    out.dups = []
    for key, value in pairs:
        if key in out and key not in out.dups:
            out.dups.append(key)
        out[key] = value
    return out


def duplicate_fields(body: bytes | str) -> list[str]:
    """Paths of keys that appear twice in one JSON object of `body` (kube reports them in Strict
    as `duplicate field "spec.replicas"`); [] for a body that is not JSON."""
    seen_dup = False

    def dict_or_flag(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal seen_dup
        d = dict(pairs)
        if len(d) != len(pairs):
            seen_dup = True
        return d

    try:
        # The C scanner with a cheap hook first: bodies almost never repeat a key, and only
        # then are the paths worth working out.
        json.loads(body, object_pairs_hook=dict_or_flag)
        if not seen_dup:
            return []
        doc = json.loads(body, object_pairs_hook=_pairs)
    except ValueError:
        return []
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        cur, path = stack.pop()
        if isinstance(cur, _Dups):
            found.extend(_key(path, k) for k in cur.dups)
            stack.extend((v, _key(path, k)) for k, v in reversed(cur.items()))
        elif isinstance(cur, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(cur))))
    return found


def strict_errors(unknown: list[str], duplicate: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The per-field errors, as Warning headers carry them: `unknown field "spec.foo"`."""
    return ([f"unknown field {json.dumps(p)}" for p in unknown]
            + [f"duplicate field {json.dumps(p)}" for p in duplicate])


def strict_decoding_error(errors: list[str]) -> str:
    return "strict decoding error: " + ", ".join(errors)


def cannot_handle(kind: str, version: str, detail: str) -> str:
    """The BadRequest message of a body that does not decode (`transformDecodeError`)."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}'


# --- JSON types --------------------------------------------------------------------------------

def _json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _allowed(sch: dict[str, Any]) -> set[str]:
    """JSON types a schema admits (oneOf/anyOf branches included); empty means any."""
    types = set(schema.types_of(sch))
    for key in ("oneOf", "anyOf"):
        for branch in sch.get(key, ()):
            types |= schema.types_of(branch)
    if sch.get("x-kubernetes-int-or-string"):
        types |= {"integer", "string"}
    return types


def _fits(value: Any, types: set[str]) -> bool:
    t = _json_type(value)
    return (not types or t in types or t == "null"
            or (t == "integer" and "number" in types)
            or (t == "number" and "integer" in types and float(value).is_integer()))


def type_errors(obj: dict[str, Any], schema_name: str) -> list[dict[str, str]]:
    """One `details.causes` entry per value of the wrong JSON type, worded as the apiextensions
    validator words them: field `spec.replicas`, message `Invalid value: "string": spec.replicas
    in body must be of type integer: "string"`. Unknown fields are not checked here."""
    causes: list[dict[str, str]] = []
    stack: list[tuple[Any, dict[str, Any], str]] = [(obj, schema.resolve(schema_name), "")]
    while stack:
        value, sch, path = stack.pop()
        sch = schema.resolve(sch)
        types = _allowed(sch)
        if not _fits(value, types):
            got = _json_type(value)
            detail = f"{path or '<root>'} in body must be of type {','.join(sorted(types))}: " \
                     f'"{got}"'
            causes.append(cause("FieldValueTypeInvalid", path, detail, got))
            continue
        props, addl, _ = _object_shape(sch)
        if isinstance(value, dict):
            for key, sub in reversed(value.items()):
                if props is not None and key in props:
                    stack.append((sub, props[key], _key(path, key)))
                elif isinstance(addl, dict):
                    stack.append((sub, addl, _key(path, key)))
        elif isinstance(value, list) and isinstance(sch.get("items"), dict):
            stack.extend((v, sch["items"], f"{path}[{i}]") for i, v in reversed(list(
                enumerate(value))))
    return causes


# --- Go's encoding/json, as sigs.k8s.io/json decodes built-in kinds -----------------------------

class _Hard(Exception):
    """An error returned by a type's own UnmarshalJSON: it stops the decode at once."""


def _go_type(sch: dict[str, Any]) -> str:
    """The Go type `reflect.Type.String()` would print for a field of this schema."""
    name = schema.ref_name(sch)
    target = schema.resolve(sch)
    if name and (target.get("properties") is not None or name in (_INT_OR_STRING, _QUANTITY)):
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    types = schema.types_of(target)
    if "array" in types and isinstance(target.get("items"), dict):
        return "[]" + _go_type(target["items"])
    if "object" in types and isinstance(target.get("additionalProperties"), dict):
        return "map[string]" + _go_type(target["additionalProperties"])
    if "string" in types:
        return "[]uint8" if target.get("format") == "byte" else "string"
    if "integer" in types:
        fmt = target.get("format")
        return fmt if isinstance(fmt, str) and fmt in _INT_RANGES else "int"
    if "number" in types:
        return "float32" if target.get("format") == "float" else "float64"
    return "bool" if "boolean" in types else "interface {}"


def _go_kind(value: Any) -> str:
    """The `Value` of Go's UnmarshalTypeError for a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class _GoDecoder:
    """Replays encoding/json on a dict: the first saved type error, unless a custom
    unmarshaler (IntOrString, Quantity, Time) fails first, which ends the decode."""

    def __init__(self) -> None:
        self.saved: str | None = None

    @staticmethod
    def _message(value: str, struct: str, fields: tuple[str, ...], go_type: str) -> str:
        if fields:
            return (f"json: cannot unmarshal {value} into Go struct field {struct}."
                    f"{'.'.join(fields)} of type {go_type}")
        return f"json: cannot unmarshal {value} into Go value of type {go_type}"

    def _save(self, value: str, struct: str, fields: tuple[str, ...], go_type: str) -> None:
        if self.saved is None:
            self.saved = self._message(value, struct, fields, go_type)

    def decode(self, value: Any, sch: dict[str, Any], struct: str,
               fields: tuple[str, ...]) -> None:
        if value is None:
            return
        n = _node(sch)
        special = n.special
        if special:
            if special == 1:
                if not isinstance(value, str):
                    raise _Hard(self._message(_go_kind(value), struct, fields, "string"))
            elif special == 2:
                if not isinstance(value, str):
                    self._int(value, "int32", struct, fields, hard=True)
            else:
                _quantity(value)
            return
        if n.struct:
            if not isinstance(value, dict):
                self._save(_go_kind(value), struct, fields, n.go_type)
                return
            props = n.props
            if props is not None:
                inner = n.inner or struct
                for key, sub in value.items():
                    if key in props:
                        self.decode(sub, props[key], inner, fields + (key,))
            else:
                addl = n.addl
                for sub in value.values():
                    self.decode(sub, addl, struct, fields)   # map values: no key in the path
            return
        if n.array_items is not None:
            if not isinstance(value, list):
                self._save(_go_kind(value), struct, fields, n.go_type)
                return
            for item in value:
                self.decode(item, n.array_items, struct, fields)
            return
        scalar = n.scalar
        if scalar == "string":
            if not isinstance(value, str):
                self._save(_go_kind(value), struct, fields, n.go_type)
        elif scalar == "integer":
            self._int(value, n.go_type, struct, fields, hard=False)
        elif scalar == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self._save(_go_kind(value), struct, fields, n.go_type)
        elif scalar == "boolean" and not isinstance(value, bool):
            self._save(_go_kind(value), struct, fields, n.go_type)

    def _int(self, value: Any, go_type: str, struct: str, fields: tuple[str, ...], *,
             hard: bool) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = _go_kind(value)
        else:
            low, high = _INT_RANGES.get(go_type, _INT_RANGES["int64"])
            if isinstance(value, int) and low <= value <= high:
                return
            kind = f"number {_number_literal(value)}"
        if hard:
            raise _Hard(self._message(kind, struct, fields, go_type))
        self._save(kind, struct, fields, go_type)


def _number_literal(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _quantity(value: Any) -> None:
    """resource.Quantity.UnmarshalJSON: any JSON literal is parsed as a quantity string."""
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = _number_literal(value)
    match = _QUANTITY_RE.match(text.strip())
    if match is None:
        raise _Hard(_ERR_FORMAT)
    suffix = match.group(2)
    if suffix not in _QUANTITY_SUFFIXES and not re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        raise _Hard("unable to parse quantity's suffix")
    if match.group(1).lstrip("+-").count(".") > 1:
        raise _Hard("unable to parse numeric part of quantity")


_roots: dict[str, dict[str, str]] = {}   # one `$ref` schema per kind, so its node is cached


def decode_error(obj: dict[str, Any], schema_name: str) -> str | None:
    """The error Go's JSON decoder gives for `obj` decoded into the built-in kind
    `schema_name`, or None if it decodes; e.g. `json: cannot unmarshal string into Go struct
    field DeploymentSpec.spec.replicas of type int32`."""
    decoder = _GoDecoder()
    struct = schema_name.rsplit(".", 1)[-1]
    root = _roots.get(schema_name)
    if root is None:
        root = _roots[schema_name] = {"$ref": "#/$defs/" + schema_name}
    try:
        decoder.decode(obj, root, struct, ())
    except _Hard as exc:
        return str(exc)
    return decoder.saved


def go_format(value: Any) -> str:
    """`fmt.Sprintf("%+v", v)` of a decoded JSON value (the value of a failed patch cause):
    `map[spec:map[replicas:2]]`, keys sorted, lists as `[a b]`, null as `<nil>`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
        point = len(digits) + int(exp) - 1            # decimal exponent of the first digit
        if -4 <= point < 21:
            return format(Decimal(repr(value)), "f")
        mant = f"{digits[0]}" + (("." + "".join(map(str, digits[1:]))) if len(digits) > 1 else "")
        return f"{'-' if sign else ''}{mant}e{'+' if point >= 0 else '-'}{abs(point):02d}"
    return str(value)
