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


def _walk(value: Any, sch: dict[str, Any], path: str, found: list[str], prune_: bool) -> Any:
    sch = schema.resolve(sch)
    if isinstance(value, dict):
        props, addl, preserve = _object_shape(sch)
        if props is None and not isinstance(addl, dict):
            return value                      # opaque: RawExtension, FieldsV1, preserved maps
        embedded = sch.get("x-kubernetes-embedded-resource") is True
        out: dict[str, Any] = {}
        for key, sub in value.items():
            p = _key(path, key)
            if props is not None and key in props:
                sub = _walk(sub, props[key], p, found, prune_)
            elif isinstance(addl, dict):
                sub = _walk(sub, addl, p, found, prune_)
            elif not (preserve or addl is True
                      or (embedded and key in ("apiVersion", "kind", "metadata"))):
                found.append(p)
                continue
            out[key] = sub
        return out if prune_ else value
    if isinstance(value, list) and isinstance(sch.get("items"), dict):
        items = [_walk(v, sch["items"], f"{path}[{i}]", found, prune_)
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
    try:
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
        name = schema.ref_name(sch)
        target = schema.resolve(sch)
        if name in _TIMES:
            if not isinstance(value, str):
                raise _Hard(self._message(_go_kind(value), struct, fields, "string"))
            return
        if name == _INT_OR_STRING:
            if not isinstance(value, str):
                self._int(value, "int32", struct, fields, hard=True)
            return
        if name == _QUANTITY:
            _quantity(value)
            return
        types = schema.types_of(target)
        props = target.get("properties")
        addl = target.get("additionalProperties")
        go_type = _go_type(sch)
        if props is not None or (types == {"object"} and isinstance(addl, dict)):
            if not isinstance(value, dict):
                self._save(_go_kind(value), struct, fields, go_type)
                return
            inner = name.rsplit(".", 1)[-1] if name and props is not None else struct
            for key, sub in value.items():
                if props is not None and key in props:
                    self.decode(sub, props[key], inner, fields + (key,))
                elif props is None and isinstance(addl, dict):
                    self.decode(sub, addl, struct, fields)   # map values: no key in the path
            return
        if "array" in types and isinstance(target.get("items"), dict):
            if not isinstance(value, list):
                self._save(_go_kind(value), struct, fields, go_type)
                return
            for item in value:
                self.decode(item, target["items"], struct, fields)
        elif "string" in types:
            if not isinstance(value, str):
                self._save(_go_kind(value), struct, fields, go_type)
        elif "integer" in types:
            self._int(value, go_type, struct, fields, hard=False)
        elif "number" in types:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self._save(_go_kind(value), struct, fields, go_type)
        elif "boolean" in types and not isinstance(value, bool):
            self._save(_go_kind(value), struct, fields, go_type)

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


def decode_error(obj: dict[str, Any], schema_name: str) -> str | None:
    """The error Go's JSON decoder gives for `obj` decoded into the built-in kind
    `schema_name`, or None if it decodes; e.g. `json: cannot unmarshal string into Go struct
    field DeploymentSpec.spec.replicas of type int32`."""
    decoder = _GoDecoder()
    struct = schema_name.rsplit(".", 1)[-1]
    try:
        decoder.decode(obj, {"$ref": "#/$defs/" + schema_name}, struct, ())
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
