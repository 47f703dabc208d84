"""Field errors as apimachinery's `field` package makes them, returned as `details.causes` dicts.

Each constructor mirrors one of k8s.io/apimachinery/pkg/util/validation/field/errors.go
(Kubernetes v1.32) and words its message through `navio.api.errors.cause`, so a cause reads
exactly as kube-apiserver's `Invalid value: "x": detail`. Paths are plain strings written as
`field.Path.String()` prints them: `spec.containers[0].image`, `metadata.labels[app]`, and `[]`
for the root path of `field.NewPath("")`.
"""

from __future__ import annotations

from typing import Any

from navio.api.errors import GoValue, cause, go_quote

__all__ = ["Cause", "required", "invalid", "not_supported", "duplicate", "forbidden",
           "too_long", "too_long_max_length", "too_many", "not_found", "internal",
           "OMIT", "child", "index", "key", "GoValue", "go_quote"]

Cause = dict[str, str]

# field.OmitValueType{}: the value is left out of the message ("Invalid value: <detail>").
OMIT = object()


def child(path: str, *names: str) -> str:
    """`path.Child(names...)`."""
    for n in names:
        path = f"{path}.{n}" if path else n
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def required(path: str, detail: str = "") -> Cause:
    return cause("FieldValueRequired", path, detail)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    if value is OMIT:
        return cause("FieldValueInvalid", path, detail)
    return cause("FieldValueInvalid", path, detail, value)


def not_supported(path: str, value: Any, valid: list[str] | tuple[str, ...] | None) -> Cause:
    """`supported values: "a", "b"` in the order given (callers pass Go's order: the literal
    list, or `sets.List()`, which is sorted)."""
    detail = ("supported values: " + ", ".join(go_quote(v) for v in valid)) if valid else ""
    return cause("FieldValueNotSupported", path, detail, value)


def duplicate(path: str, value: Any) -> Cause:
    return cause("FieldValueDuplicate", path, "", value)


def forbidden(path: str, detail: str) -> Cause:
    return cause("FieldValueForbidden", path, detail)


def too_long(path: str, max_length: int) -> Cause:
    """field.TooLong: the value is never printed (v1.32 wording: `may not be more than N bytes`)."""
    unit = "byte" if max_length == 1 else "bytes"
    return cause("FieldValueTooLong", path,
                 f"may not be more than {max_length} {unit}" if max_length >= 0
                 else "value is too long")


def too_long_max_length(path: str, max_length: int) -> Cause:
    return cause("FieldValueTooLong", path,
                 f"may not be longer than {max_length}" if max_length >= 0 else "value is too long")


def too_many(path: str, actual: int, max_quantity: int) -> Cause:
    unit = "item" if max_quantity == 1 else "items"
    return cause("FieldValueTooMany", path, f"must have at most {max_quantity} {unit}", actual)


def not_found(path: str, value: Any) -> Cause:
    return cause("FieldValueNotFound", path, "", value)


def internal(path: str, detail: str) -> Cause:
    return cause("InternalError", path, detail)
