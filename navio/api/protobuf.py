"""Decode `application/vnd.kubernetes.protobuf` request bodies into the dicts JSON clients send.

kubectl's typed commands (`create deployment|configmap|secret|job|…`, `auth can-i|whoami`,
`create token`) POST protobuf and never retry as JSON; the API edge turns such a body into a
plain dict with `decode(body)` and handles it like a JSON body. A body is `k8s\x00` then a
`runtime.Unknown` whose `typeMeta` names apiVersion and kind and whose `raw` holds the message.
Decoding is generic, driven by the wire schema `data/protobuf-v1.32.json` (loaded once, lazily):
varints (int32/int64 plain two's complement, no zigzag), strings, bytes (base64 in JSON),
sub-messages, repeated fields packed or not, maps (entry key=1, value=2); the file's `json_forms`
types get their JSON form (Time, MicroTime, Duration, Quantity, IntOrString, FieldsV1,
RawExtension, ExtraValue/Verbs as arrays).

Guarantees: the result is kubectl's own JSON for the object (`json.Marshal` of the same Go
value), `apiVersion` and `kind` first, less `null`s and all-zero non-pointer structs. A field
number the v1.32 schema lacks (a newer client), a wrong wire type, truncation, an over-long
varint, bad magic, an unknown kind or an unsupported envelope raise `BadRequest` saying so:
nothing is dropped silently. Content-type checks are the caller's.

Empty values. Go's generated Marshal writes every non-pointer field, empty or not (`name: ""`,
`generation: 0`, an empty `creationTimestamp`), and a pointer field only when set: on the wire a
zero is noise for a non-pointer field but data for a pointer (`replicas: 0`, `emptyDir: {}`,
`automountServiceAccountToken: false`). So, as the client's JSON would:
- a pointer field present on the wire is kept whatever its value;
- a zero non-pointer scalar is dropped if its json tag has `omitempty`, else kept (required
  fields such as `containerPort`, PriorityClass `value`);
- a non-pointer struct whose fields are all zero is dropped (Go cannot tell it from absent);
- a zero Time/MicroTime (no bytes, 0 seconds or Go's zero instant) and an empty RawExtension or
  FieldsV1 are dropped everywhere (their JSON is `null`);
- list elements and map values are always kept (a label value `""` is data).
The schema file does not say which fields are pointers or lack `omitempty`: `_POINTER` and
`_NOT_OMITEMPTY` hold one bit per `optional` field of the file, in file order, read from
kubectl 1.32.4's Go type descriptors (`--go-fields` in
tests/unit/api/fixtures/capture_protobuf.py regenerates them; a test checks them). `_JSON_NAMES`
fixes the file where a name is not the JSON name: Go structs embedded `json:",inline"` (Volume's
VolumeSource, Probe's ProbeHandler, SecretKeySelector's LocalObjectReference, …), whose fields
belong to the parent object, and a few mis-cased names.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from importlib import resources
from typing import Any, NamedTuple

from navio.api.errors import BadRequest

__all__ = ["MAGIC", "MEDIA_TYPE", "decode"]

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

_SCHEMA_FILE = "protobuf-v1.32.json"
_SCHEMA_VERSION = "v1.32.4"
_OPTIONAL_FIELDS = 2897  # bits in each mask below: guards against a changed schema file
# One bit per `optional` field of the schema file, in file order (LSB first): the Go field is a
# pointer (`*int32`, `*bool`, `*PodSecurityContext`, …).
_POINTER = (
    "ADQ6AI0OnD/gGLDLD1GAAzuDAbsEcP6AGbDLD1FEEAGAACACFIBRoAAG/AAwNCABAEYD9QAADB1IABABCsAoUAADfgAA"
    "hgYkAAMAAAAAjAEDAMAYMIAJXAHo9H2MSQsAABgDOvq+HwAwgSsAje9jTFoAAGNAR9/3AwCgPgDf/8MTDuoDAAQAwPCH"
    "gT9ceATwHSHEF1ACGk4Y4AAAPK8i5gMnHIACQgQIBICAAgp/AAkAAIEnDsQAAAAA/Ab//78cQQEgAFtY/29A6n8QACIA"
    "/AAIBAADAAgIIAApif8fJCCAXxACQvgkQPH/////gff/4P9AEABBAABCgALAaKAEghz8AAzwwACQDYABNwAkA2DADQDJ"
    "ABhwA0AyAAYcgDCyIBn8QAAiiCzIAWAwEx4IDwQAEABAAAAoeTCEAUAAICh5YAgDgABAEAThhzROGKYGwwA/pHHCMAgA"
    "AAAAfAAAACFEATBMBgIAAAAA"
)
# Likewise: a non-pointer scalar whose json tag lacks `omitempty` (Go's JSON writes its zero).
_NOT_OMITEMPTY = (
    "QYBBEGDwIwAABgAQQAxvAIAAAADxjwAABgAQQAy66AIThAE8AAMAABggABiCgEAIgwAAABCGICAQwgAegAEAAAwQAAhD"
    "EBAIAAQAAAAAAAAQAQAAAFHmIjAQCwIhkgRqBwcMhAVBAIDKXAQGchAIkSTt4ICBuCAIAFAQAAYAAADgAQGAUAIRCgBA"
    "AkCghxkDAoAIaACZIAAAGQLkwUAICBAAAAAMEEGUGXwHHMAAGuQwwAYAMQD/CwAGACAAAAAAgsAACICmAAAAAAAAgAUE"
    "AEMgYAwIKRAGGOCAAAAAQAQAgABMgQdbFwYAAAAAIgAACgAKABAAQBiAB2AQAAAIYAAAMEAAEAFoAGDuSABaAJg7EoAW"
    "AOaOBKAFgLkjCAEMGAIAAAAAAAMGABCIAMAD4AHwAsALAK/DAsB4CA5whMMCgPEQHOAIgiAAYAghoAEBNAIAQwgBjYAB"
    "oIvPgPf/DwAAAMADGADAkPgB"
)
# "<package under k8s.io.api.>: <message> <number> <JSON name, or - for an inlined embedded
# struct>, …;" for each field whose name in the schema file is not its JSON name.
_JSON_NAMES = """
admissionregistration.v1: MutatingWebhookConfiguration 2 webhooks,
    ValidatingWebhookConfiguration 2 webhooks, NamedRuleWithOperations 2 -, RuleWithOperations
    2 -, Validation 1 expression, Variable 1 name, Variable 2 expression;
admissionregistration.v1alpha1: NamedRuleWithOperations 2 -, Validation 1 expression, Variable
    1 name, Variable 2 expression;
admissionregistration.v1beta1: MutatingWebhookConfiguration 2 webhooks,
    ValidatingWebhookConfiguration 2 webhooks, NamedRuleWithOperations 2 -, Validation 1
    expression, Variable 1 name, Variable 2 expression;
authentication.v1: BoundObjectReference 4 uid;
core.v1: ConfigMapEnvSource 1 -, ConfigMapKeySelector 1 -, ConfigMapProjection 1 -,
    ConfigMapVolumeSource 1 -, EphemeralContainer 1 -, PersistentVolumeSpec 2 -, Probe 1 -,
    SecretEnvSource 1 -, SecretKeySelector 1 -, SecretProjection 1 -, Volume 2 -;
extensions.v1beta1: IngressRule 2 -;
networking.v1: IngressRule 2 -, IngressClassParametersReference 1 apiGroup;
networking.v1beta1: IngressRule 2 -, IngressClassParametersReference 1 apiGroup;
resource.v1alpha3: DeviceAllocationConfiguration 3 -, DeviceClaimConfiguration 2 -,
    DeviceClassConfiguration 1 -;
resource.v1beta1: DeviceAllocationConfiguration 3 -, DeviceClaimConfiguration 2 -,
    DeviceClassConfiguration 1 -;
"""
# API groups whose proto package is not the group's first label ("" is the core group).
_GROUP_PACKAGES = {"": "core", "internal.apiserver.k8s.io": "apiserverinternal"}
_META = "k8s.io.apimachinery.pkg.apis.meta."
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_SCALARS = frozenset({"string", "bytes", "bool", "int32", "int64"})
_MAX_DEPTH = 64
_ZERO_TIME_SECONDS = -62135596800  # Go's time.Time{} (0001-01-01) as Unix seconds
_ABSENT = object()  # a value whose JSON is null: the field is left out


class _Field(NamedTuple):
    number: int
    name: str          # JSON name; "" for an inlined embedded struct
    label: str         # optional | repeated | map
    type: str          # scalar name or message name; for maps the value type
    key_type: str      # maps only
    pointer: bool      # Go pointer: present on the wire means set, even to zero
    not_omitempty: bool  # non-pointer scalar whose zero Go's JSON still writes


@functools.cache
def _schema() -> dict[str, dict[int, _Field]]:
    """Every message's fields by number, with _JSON_NAMES, _POINTER and _NOT_OMITEMPTY applied."""
    data = json.loads((resources.files("navio.api") / "data" / _SCHEMA_FILE).read_bytes())
    if data.get("kubernetes") != _SCHEMA_VERSION:
        raise RuntimeError(f"{_SCHEMA_FILE} is not the {_SCHEMA_VERSION} schema")
    names = {}
    for package in " ".join(_JSON_NAMES.split()).rstrip(";").split(";"):
        prefix, _, entries = package.partition(":")
        for entry in entries.split(","):
            msg, num, name = entry.split()
            names[f"k8s.io.api.{prefix.strip()}.{msg}", int(num)] = "" if name == "-" else name
    pointer, not_omitempty = base64.b64decode(_POINTER), base64.b64decode(_NOT_OMITEMPTY)
    messages: dict[str, dict[int, _Field]] = {}
    i = 0
    for msg, specs in data["messages"].items():
        fields = messages[msg] = {}
        for spec in specs:
            num, name, label = spec[0], names.get((msg, spec[0]), spec[1]), spec[2]
            is_pointer = is_written = False
            if label == "optional":
                is_pointer = bool(pointer[i >> 3] >> (i & 7) & 1)
                is_written = bool(not_omitempty[i >> 3] >> (i & 7) & 1)
                i += 1
            key = spec[3] if label == "map" else ""
            fields[num] = _Field(num, name, label, spec[-1], key, is_pointer, is_written)
    if i != _OPTIONAL_FIELDS:
        raise RuntimeError(f"{_SCHEMA_FILE} does not match navio.api.protobuf's field table")
    return messages


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object (`apiVersion`, `kind`, then the fields) a protobuf body carries."""
    return _decode(bytes(body), 0)


def _decode(body: bytes, depth: int) -> dict[str, Any]:
    if body[:4] != MAGIC:
        raise BadRequest("protobuf body does not start with the k8s\\x00 magic bytes")
    env = _collect(body[4:], _UNKNOWN, _schema()[_UNKNOWN])
    type_meta = _collect(b"".join(env.get(1, [])), "runtime.TypeMeta",
                         _schema()["k8s.io.apimachinery.pkg.runtime.TypeMeta"])
    api_version, kind = (_text(type_meta.get(n, [b""])[-1]) for n in (1, 2))
    encoding, content_type = (_text(env.get(n, [b""])[-1]) for n in (3, 4))
    if not kind or not api_version:
        raise BadRequest("protobuf body does not name its apiVersion and kind")
    if encoding or content_type.split(";")[0].strip() not in ("", MEDIA_TYPE):
        raise BadRequest("protobuf body has unsupported contentEncoding/contentType "
                         f"{encoding!r}/{content_type!r}")
    obj, _ = _object(env.get(2, [b""])[-1], _message_name(api_version, kind), depth)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _message_name(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    package = _GROUP_PACKAGES.get(group, group.split(".")[0])
    for name in (f"k8s.io.api.{package}.{version}.{kind}", f"{_META}{version}.{kind}"):
        if name in _schema():
            return name
    raise BadRequest(f"protobuf body of unknown kind {kind!r} in {api_version!r}: "
                     "no such type in the Kubernetes v1.32 protobuf schema")


# --- wire format -------------------------------------------------------------------------------

def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise BadRequest(f"protobuf body truncated inside a varint in {where}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise BadRequest(f"protobuf body has an over-long varint in {where}")


def _collect(buf: bytes, where: str, fields: dict[int, _Field]) -> dict[int, list[Any]]:
    """Each field number's wire values in order: ints (varint) or bytes (length-delimited)."""
    got: dict[int, list[Any]] = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, where)
        num, wire = key >> 3, key & 7
        field = fields.get(num)
        if field is None:
            raise BadRequest(f"protobuf body has field number {num} (wire type {wire}) in "
                             f"{where}, unknown to the Kubernetes v1.32 schema")
        varint_ok = field.label != "map" and field.type in ("bool", "int32", "int64")
        if wire == 0 and varint_ok:
            value, pos = _varint(buf, pos, where)
        elif wire == 2 and (not varint_ok or field.label == "repeated"):
            size, pos = _varint(buf, pos, where)
            if pos + size > end:
                raise BadRequest(f"protobuf body truncated in field {num} of {where}")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise BadRequest(f"protobuf body has wire type {wire} for field {num} "
                             f"({field.name or 'inline'}: {field.type}) of {where}")
        got.setdefault(num, []).append(value)
    return got


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")  # as Go's JSON encoder writes invalid UTF-8


def _scalars(type_: str, value: Any, where: str) -> list[Any]:
    """One wire value of a scalar field as Python values (several for a packed repeated one)."""
    if type_ == "string":
        return [_text(value)]
    if type_ == "bytes":
        return [value]
    if isinstance(value, bytes):  # packed
        out, pos = [], 0
        while pos < len(value):
            item, pos = _varint(value, pos, where)
            out.extend(_scalars(type_, item, where))
        return out
    if type_ == "bool":
        return [value != 0]
    bits = 32 if type_ == "int32" else 64
    value &= (1 << bits) - 1
    return [value - (1 << bits) if value >> (bits - 1) else value]


def _json_scalar(value: Any) -> Any:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


# --- messages ----------------------------------------------------------------------------------

def _object(buf: bytes, msg: str, depth: int) -> tuple[dict[str, Any], bool]:
    """A message as a JSON object, and whether every field in it is zero."""
    if depth > _MAX_DEPTH:
        raise BadRequest(f"protobuf body nests messages deeper than {_MAX_DEPTH} levels")
    fields = _schema()[msg]
    got = _collect(buf, msg, fields)
    out: dict[str, Any] = {}
    all_zero = True
    for field in fields.values():
        values = got.get(field.number)
        if not values:
            continue
        where = f"{msg}.{field.name}"
        if field.label == "repeated":
            out[field.name] = [_json_value(field.type, item, depth, where)
                               for value in values for item in _elements(field.type, value,
                                                                          where)]
            all_zero = False
            continue
        if field.label == "map":
            out[field.name] = _map(field, values, depth, where)
            all_zero = False
            continue
        if field.type in _SCALARS:
            value = _scalars(field.type, values[-1], where)[-1]
            zero = not value
            if zero and not field.pointer and not field.not_omitempty:
                continue
        else:  # repeated occurrences of a message field merge, as in Go
            value, zero = _message(b"".join(values), field.type, depth + 1)
            if value is _ABSENT or (zero and not field.pointer):
                continue
        all_zero = all_zero and zero and not field.pointer
        if not field.name:  # embedded struct: its fields are the parent's
            out.update(value)
        else:
            out[field.name] = _json_scalar(value)
    return out, all_zero


def _elements(type_: str, value: Any, where: str) -> list[Any]:
    return _scalars(type_, value, where) if type_ in _SCALARS else [value]


def _json_value(type_: str, value: Any, depth: int, where: str) -> Any:
    """A list element or map value: scalars as JSON, messages decoded, nulls as None."""
    if type_ in _SCALARS:
        return _json_scalar(value)
    result, _ = _message(value, type_, depth + 1)
    return None if result is _ABSENT else result


def _map(field: _Field, entries: list[bytes], depth: int, where: str) -> dict[str, Any]:
    entry_fields = {1: _Field(1, "key", "optional", field.key_type, "", True, False),
                    2: _Field(2, "value", "optional", field.type, "", True, False)}
    out: dict[str, Any] = {}
    for entry in entries:
        got = _collect(entry, where, entry_fields)
        key: Any = ""
        if 1 in got:
            key = _scalars(field.key_type, got[1][-1], where)[-1]
        if field.type not in _SCALARS:
            value = _json_value(field.type, b"".join(got.get(2, [])), depth, where)
        elif 2 in got:
            value = _json_scalar(_scalars(field.type, got[2][-1], where)[-1])
        else:
            value = {"string": "", "bytes": "", "bool": False}.get(field.type, 0)
        out[str(key)] = value
    return out


def _message(buf: bytes, msg: str, depth: int) -> tuple[Any, bool]:
    """A sub-message's JSON value (or _ABSENT for JSON null) and whether it is Go's zero value."""
    form = _FORMS.get(msg) or (_items if msg.endswith(".ExtraValue") else None)
    if form is None:
        return _object(buf, msg, depth)
    fields = _schema()[msg]
    got = _collect(buf, msg, fields)
    plain: dict[str, Any] = {}
    for num, values in got.items():
        field = fields[num]
        items = [item for value in values
                 for item in _scalars(field.type, value, f"{msg}.{field.name}")]
        plain[field.name] = items if field.label == "repeated" else items[-1]
    return form(plain, msg, depth)


def _time(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    seconds, nanos = fields.get("seconds", 0), fields.get("nanos", 0)
    if (seconds == 0 and nanos == 0) or seconds == _ZERO_TIME_SECONDS:
        return _ABSENT, True
    try:
        when = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds,
                                                                  microseconds=nanos // 1000)
    except OverflowError:
        raise BadRequest(f"protobuf body has an out-of-range {msg}: {seconds}s") from None
    micro = msg.endswith(".MicroTime")  # UTC, RFC 3339, 4-digit year like Go's
    return when.isoformat(timespec="microseconds" if micro else "seconds") + "Z", False


def _duration(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    ns = fields.get("duration", 0)
    return _go_duration(ns), ns == 0


def _go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 1h2m3.5s, 10m0s, 1.5ms, 2µs, 7ns, 0s."""
    sign, ns = ("-" if ns < 0 else ""), abs(ns)

    def frac(v: int, digits: int) -> str:
        whole, rest = divmod(v, 10 ** digits)
        tail = f"{rest:0{digits}d}".rstrip("0")
        return f"{whole}.{tail}" if tail else str(whole)

    if ns < 1_000:
        return f"{sign}{ns}ns" if ns else "0s"
    if ns < 1_000_000:
        return f"{sign}{frac(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{frac(ns, 6)}ms"
    text = frac(ns % 60_000_000_000, 9) + "s"
    minutes = ns // 60_000_000_000
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _quantity(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    text = fields.get("string", "")
    return text or "0", text in ("", "0")


def _int_or_string(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    if fields.get("type", 0) == 1:
        text = fields.get("strVal", "")
        return text, text == ""
    number = fields.get("intVal", 0)
    return number, number == 0


def _embedded_json(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    raw = fields.get("raw", fields.get("Raw", b""))
    if not raw:
        return _ABSENT, True
    if raw[:4] == MAGIC:  # an embedded object sent as protobuf itself
        return _decode(raw, depth + 1), False
    try:
        return json.loads(raw), False
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"protobuf body has invalid JSON in {msg}: {exc}") from None


def _items(fields: dict[str, Any], msg: str, depth: int) -> tuple[Any, bool]:
    items = fields.get("items", [])
    return items, not items


_FORMS = {
    _META + "v1.Time": _time,
    _META + "v1.MicroTime": _time,
    _META + "v1.Duration": _duration,
    _META + "v1.FieldsV1": _embedded_json,
    _META + "v1.Verbs": _items,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _quantity,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
}
