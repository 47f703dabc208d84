"""Typed API errors, each mapping to one Kubernetes `Status` (code + reason).

Raised anywhere inside navio; only the API edge turns them into HTTP responses.

    ApiError
    ├── BadRequest            400 BadRequest
    ├── Unauthorized          401 Unauthorized
    ├── Forbidden             403 Forbidden
    ├── NotFound              404 NotFound
    ├── MethodNotAllowed      405 MethodNotAllowed
    ├── NotAcceptable         406 NotAcceptable
    ├── AlreadyExists         409 AlreadyExists
    ├── Conflict              409 Conflict
    ├── Expired               410 Expired
    ├── TooLarge              413 RequestEntityTooLarge
    ├── UnsupportedMediaType  415 UnsupportedMediaType
    ├── Invalid               422 Invalid   (details.causes: one per field)
    ├── TooManyRequests       429 TooManyRequests
    ├── InternalError         500 InternalError
    ├── ServiceUnavailable    503 ServiceUnavailable
    └── Timeout               504 Timeout
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "MethodNotAllowed",
    "NotAcceptable", "AlreadyExists", "Conflict", "Expired", "TooLarge", "UnsupportedMediaType",
    "Invalid", "TooManyRequests", "InternalError", "ServiceUnavailable", "Timeout",
    "cause", "to_status", "qualified_resource", "GoValue", "go_quote", "go_float",
]


class ApiError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class Expired(ApiError):
    code, reason = 410, "Expired"


class TooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    """422: `causes` are `{"reason", "message", "field"}` dicts, one per bad field."""

    code, reason = 422, "Invalid"

    def __init__(self, kind: str, name: str, causes: list[dict[str, str]], *,
                 group: str = "") -> None:
        qualified = f"{kind}.{group}" if group else kind
        # field.ErrorList.ToAggregate: "<field>: <body>" per error, duplicates dropped, a
        # single error bare and several bracketed (apimachinery/pkg/util/errors/errors.go).
        parts = list(dict.fromkeys(f"{c['field']}: {c['message']}" if "field" in c
                                   else c["message"] for c in causes))
        body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        super().__init__(f'{qualified} "{name}" is invalid: {body}',
                         details={"name": name, "group": group, "kind": kind, "causes": causes})
        self.causes = causes


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(ApiError):
    code, reason = 504, "Timeout"


# Field error reasons and message prefixes, as apimachinery's field.ErrorType prints them
# (k8s.io/apimachinery/pkg/util/validation/field/errors.go, ErrorType.String).
_CAUSE_PREFIX = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueNotFound": "Not found",
    "FieldValueTypeInvalid": "Invalid value",
    "InternalError": "Internal error",
}
# ErrorBody prints the bad value for every type except these four.
_NO_VALUE_REASONS = frozenset({"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong",
                               "InternalError"})


class GoValue(str):
    """A bad value already rendered as Go's fmt prints it (`%#v` of a struct, a nil map...).

    `cause()` emits it verbatim; use it where Kubernetes passes a Go value whose rendering
    cannot be derived from the JSON form, e.g. `v1.LabelSelector{MatchLabels:...}`."""

    __slots__ = ()


def go_quote(s: str) -> str:
    """Go's strconv.Quote: printable runes kept, the rest escaped as Go escapes them."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o <= 0xDFFF:        # not valid UTF-8: Go prints the replacement rune
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def go_float(f: float) -> str:
    """Go's `%v` of a float64 (strconv 'g', shortest): exponent form below 1e-4 or from 1e6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    r = repr(f)
    mantissa, _, exp = r.partition("e")
    digits = mantissa.lstrip("-").replace(".", "")
    point = mantissa.lstrip("-").find(".")
    lead = len(digits) - len(digits.lstrip("0"))
    e10 = (int(exp) if exp else 0) + (point if point >= 0 else len(digits)) - 1 - lead
    sig = digits.strip("0") or "0"
    sign = "-" if r.startswith("-") else ""
    if sig == "0":
        return sign + "0"
    if e10 < -4 or e10 >= 6:
        m = sig[0] + ("." + sig[1:] if len(sig) > 1 else "")
        return f"{sign}{m}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    if e10 >= len(sig) - 1:
        return sign + sig + "0" * (e10 - len(sig) + 1)
    if e10 >= 0:
        return sign + sig[:e10 + 1] + "." + sig[e10 + 1:]
    return sign + "0." + "0" * (-e10 - 1) + sig


def _render(value: Any) -> str:
    """The bad value as field.Error.ErrorBody prints it (`%v` for numbers and bools, `%q`
    for strings, `%#v` for maps and slices of strings)."""
    if isinstance(value, GoValue):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        items = ", ".join(f"{go_quote(str(k))}:{go_quote(v)}" for k, v in sorted(value.items()))
        return f"map[string]string{{{items}}}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    import json
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_NO_VALUE = object()


def cause(reason: str, field: str, detail: str = "", value: Any = _NO_VALUE) -> dict[str, str]:
    """One `details.causes` entry worded as Kubernetes' field.Error.ErrorBody() prints it.

    `cause("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", -1)`
    gives message `Invalid value: -1: must be greater than or equal to 0`. Required,
    Forbidden, TooLong and InternalError never print the value; the others do when given."""
    prefix = _CAUSE_PREFIX.get(reason, reason)
    if value is not _NO_VALUE and reason not in _NO_VALUE_REASONS:
        message = f"{prefix}: {_render(value)}"
    else:
        message = prefix
    if detail:
        message = f"{message}: {detail}"
    return {"reason": reason, "message": message, "field": field}


def qualified_resource(resource: str, group: str) -> str:
    """`pods`, `deployments.apps`: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def to_status(exc: ApiError) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": exc.message,
                              "reason": exc.reason, "code": exc.code}
    if not exc.reason:
        del status["reason"]        # StatusReasonUnknown is omitted, as kube omits it
    if exc.details:
        status["details"] = exc.details
    return status
