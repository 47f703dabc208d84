"""Validation of custom objects against a CRD version's structural schema.

kube-apiserver validates custom objects with kube-openapi's validator and turns its results into
field errors (apiextensions-apiserver/pkg/apiserver/validation/validation.go); messages here are
worded as those: `spec.replicas: Invalid value: "string": spec.replicas in body must be of type
integer: "string"`, `spec.cronSpec in body should match '<pattern>'`, `should be less than or
equal to 10`, `Unsupported value: "c": supported values: "a", "b"`, `Too many: 4: must have at
most 3 items`. The root's apiVersion, kind and metadata are ObjectMeta's business (validated
generically), except inside `x-kubernetes-embedded-resource` nodes. Pure: returns causes.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import uuid
from typing import Any, Callable

from navio.api.errors import GoValue, cause, go_float, go_quote
from navio.api.validation import field

__all__ = ["validate", "json_type", "go_value"]

Cause = dict[str, str]


def json_type(value: Any) -> str:
    """kube-openapi's name for a value's JSON type."""
    if value is None:
        return "null"
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
    return "object"


def _go_repr(v: Any) -> str:
    """Go's %#v of an unstructured (JSON-decoded) value."""
    if isinstance(v, dict):
        inner = ", ".join(f"{go_quote(str(k))}:{_go_repr(v[k])}" for k in sorted(v))
        return f"map[string]interface {{}}{{{inner}}}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_repr(x) for x in v) + "}"
    if isinstance(v, str):
        return go_quote(v)
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    return str(v)


def go_value(v: Any) -> Any:
    """A bad value as field errors print it: maps and lists in Go's %#v form."""
    return GoValue(_go_repr(v)) if isinstance(v, (dict, list)) else v


def _type_ok(value: Any, typ: str) -> bool:
    t = json_type(value)
    if typ == "number":
        return t in ("integer", "number")
    return t == typ


def _num(v: Any) -> str:
    return str(v) if isinstance(v, int) else go_float(float(v))


# -- formats (kube-openapi strfmt, as apiextensions registers them) ---------------------------
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DURATION = re.compile(r"^(-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _is_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", s))
    except ValueError:
        return False


def _is_datetime(s: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
                        s):
        return False
    try:
        dt.datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _is_ip(s: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(s).version == version
    except ValueError:
        return False


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
        return "/" in s
    except ValueError:
        return False


def _is_uuid(s: str) -> bool:
    try:
        uuid.UUID(s)
        return len(s) == 36
    except ValueError:
        return False


def _is_byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
        return True
    except ValueError:
        return False


_FORMATS: dict[str, Callable[[str], bool]] = {
    "hostname": lambda s: len(s) <= 253 and bool(_DNS1123.match(s)),
    "ipv4": lambda s: _is_ip(s, 4),
    "ipv6": lambda s: _is_ip(s, 6),
    "cidr": _is_cidr,
    "mac": lambda s: bool(_MAC.match(s)),
    "uuid": _is_uuid,
    "uuid3": _is_uuid, "uuid4": _is_uuid, "uuid5": _is_uuid,
    "email": lambda s: bool(_EMAIL.match(s)),
    "date": _is_date,
    "date-time": _is_datetime,
    "datetime": _is_datetime,
    "duration": lambda s: bool(_DURATION.match(s)),
    "byte": _is_byte,
    "uri": lambda s: bool(re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", s)),
    "isbn10": lambda s: bool(re.fullmatch(r"\d{9}[\dX]", s)),
    "isbn13": lambda s: bool(re.fullmatch(r"\d{13}", s)),
    "hexcolor": lambda s: bool(re.fullmatch(r"#([0-9A-Fa-f]{3}){1,2}", s)),
    "rgbcolor": lambda s: bool(re.fullmatch(r"rgb\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\)", s)),
    "ssn": lambda s: bool(re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", s)),
    "creditcard": lambda s: bool(re.fullmatch(r"\d{13,19}", s)),
}


def _go_regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


class _Walker:
    def __init__(self) -> None:
        self.errs: list[Cause] = []

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.errs.append(cause("FieldValueInvalid", path, detail, go_value(value)))

    def walk(self, value: Any, sch: dict[str, Any], path: str, root: bool = False) -> None:
        name = path or "<root>"
        if value is None:
            if sch.get("nullable") or sch.get("x-kubernetes-preserve-unknown-fields") and \
                    "type" not in sch:
                return
            if "type" in sch or sch.get("x-kubernetes-int-or-string"):
                want = sch.get("type") or "integer,string"
                self.errs.append(cause("FieldValueTypeInvalid", path,
                                       f'{name} in body must be of type {want}: "null"',
                                       "null"))
            return
        if sch.get("x-kubernetes-int-or-string"):
            if json_type(value) not in ("integer", "string"):
                t = json_type(value)
                self.errs.append(cause("FieldValueTypeInvalid", path,
                                       f'{name} in body must be of type integer,string: "{t}"',
                                       t))
                return
        typ = sch.get("type")
        if typ and not _type_ok(value, typ):
            t = json_type(value)
            self.errs.append(cause("FieldValueTypeInvalid", path,
                                   f'{name} in body must be of type {typ}: "{t}"', t))
            return
        for sub in sch.get("allOf") or ():
            self.walk(value, sub, path)
        enum = sch.get("enum")
        if enum is not None and value not in enum:
            self.errs.append(field.not_supported(path, go_value(value),
                                                [_enum_text(e) for e in enum]))
        if isinstance(value, str):
            self._string(value, sch, path, name)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._number(value, sch, path, name)
        elif isinstance(value, list):
            self._array(value, sch, path, name)
        elif isinstance(value, dict):
            self._object(value, sch, path, name, root)

    def _string(self, value: str, sch: dict[str, Any], path: str, name: str) -> None:
        n = len(value)
        if "maxLength" in sch and n > sch["maxLength"]:
            self.errs.append(field.too_long_max_length(path, int(sch["maxLength"])))
        if "minLength" in sch and n < sch["minLength"]:
            self.invalid(path, value, f"{name} in body should be at least {sch['minLength']} "
                                      "chars long")
        if "pattern" in sch:
            rx = _go_regex(sch["pattern"])
            if rx is not None and not rx.search(value):
                self.invalid(path, value, f"{name} in body should match '{sch['pattern']}'")
        fmt = sch.get("format")
        check = _FORMATS.get(fmt or "")
        if check is not None and not check(value):
            self.invalid(path, value, f'{name} in body must be of type {fmt}: "{value}"')

    def _number(self, value: float, sch: dict[str, Any], path: str, name: str) -> None:
        if "maximum" in sch:
            mx = sch["maximum"]
            if sch.get("exclusiveMaximum") and value >= mx:
                self.invalid(path, value, f"{name} in body should be less than {_num(mx)}")
            elif value > mx:
                self.invalid(path, value, f"{name} in body should be less than or equal to "
                                          f"{_num(mx)}")
        if "minimum" in sch:
            mn = sch["minimum"]
            if sch.get("exclusiveMinimum") and value <= mn:
                self.invalid(path, value, f"{name} in body should be greater than {_num(mn)}")
            elif value < mn:
                self.invalid(path, value, f"{name} in body should be greater than or equal to "
                                          f"{_num(mn)}")
        mult = sch.get("multipleOf")
        if mult and (value / mult) != int(value / mult):
            self.invalid(path, value, f"{name} in body should be a multiple of {_num(mult)}")
        fmt = sch.get("format")
        if fmt in ("int32", "int64") and isinstance(value, int):
            bits = 31 if fmt == "int32" else 63
            if not -(1 << bits) <= value < (1 << bits):
                self.invalid(path, value, f'{name} in body must be of type {fmt}: "{value}"')

    def _array(self, value: list[Any], sch: dict[str, Any], path: str, name: str) -> None:
        if "maxItems" in sch and len(value) > sch["maxItems"]:
            self.errs.append(field.too_many(path, len(value), int(sch["maxItems"])))
        if "minItems" in sch and len(value) < sch["minItems"]:
            self.invalid(path, value, f"{name} in body should have at least {sch['minItems']} "
                                      "items")
        if sch.get("uniqueItems") and _has_duplicates(value):
            self.invalid(path, value, f"{name} in body shouldn't contain duplicates")
        items = sch.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self.walk(item, items, f"{path}[{i}]")
        self._list_type(value, sch, path)

    def _list_type(self, value: list[Any], sch: dict[str, Any], path: str) -> None:
        lt = sch.get("x-kubernetes-list-type")
        if lt == "set":
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    self.errs.append(field.duplicate(f"{path}[{i}]", go_value(item)))
                else:
                    seen.append(item)
        elif lt == "map":
            keys = sch.get("x-kubernetes-list-map-keys") or []
            seen_keys: list[tuple[Any, ...]] = []
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                k = tuple(item.get(x) for x in keys)
                if k in seen_keys:
                    shown = {x: item.get(x) for x in keys}
                    self.errs.append(field.duplicate(f"{path}[{i}]", go_value(shown)))
                else:
                    seen_keys.append(k)

    def _object(self, value: dict[str, Any], sch: dict[str, Any], path: str, name: str,
                root: bool) -> None:
        props = sch.get("properties") or {}
        for req in sch.get("required") or ():
            if req not in value:
                self.errs.append(field.required(field.child(path, req)))
        if "maxProperties" in sch and len(value) > sch["maxProperties"]:
            self.errs.append(field.too_many(path, len(value), int(sch["maxProperties"])))
        if "minProperties" in sch and len(value) < sch["minProperties"]:
            self.invalid(path, value, f"{name} in body should have at least "
                                      f"{sch['minProperties']} properties")
        addl = sch.get("additionalProperties")
        for k, v in value.items():
            if root and k in ("apiVersion", "kind", "metadata"):
                continue
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is not None:
                self.walk(v, sub, field.child(path, k))
        if sch.get("x-kubernetes-embedded-resource"):
            for k in ("apiVersion", "kind"):
                if not value.get(k):
                    self.errs.append(field.required(field.child(path, k), "must not be empty"))


def _enum_text(v: Any) -> str:
    return v if isinstance(v, str) else _num(v) if isinstance(v, (int, float)) and \
        not isinstance(v, bool) else str(v).lower() if isinstance(v, bool) else repr(v)


def _has_duplicates(items: list[Any]) -> bool:
    seen: list[Any] = []
    for x in items:
        if x in seen:
            return True
        seen.append(x)
    return False


def validate(schema: dict[str, Any], obj: dict[str, Any]) -> list[Cause]:
    """Field errors of custom object `obj` under a version's `openAPIV3Schema`."""
    w = _Walker()
    w.walk(obj, schema, "", root=True)
    return w.errs
