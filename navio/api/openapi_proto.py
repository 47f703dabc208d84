"""The OpenAPI v2 document as protobuf: gnostic's `openapi.v2.Document`, as kube-apiserver
serves `/openapi/v2` to `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.

kubectl reads that form (`discovery.OpenAPISchema`) for client-side validation whenever the
OpenAPI v3 path does not apply, e.g. for every item of a `kind: List` manifest, and cannot parse
JSON there. `encode(doc)` turns the Swagger 2.0 dict of `navio.api.openapi.v2_document` into the
message gnostic's compiler builds from the same JSON (google/gnostic openapiv2/OpenAPIv2.proto):

- objects keyed by name (definitions, properties, paths, responses, security definitions) become
  repeated `Named*` pairs in document order;
- oneofs are chosen as gnostic chooses them: a parameter with `in: body` is a BodyParameter, else
  a NonBodyParameter by `in` (header, formData, query, path); `$ref` makes a JsonReference;
  `additionalProperties` is a Schema or a boolean; a response schema of type `file` a FileSchema;
- `x-…` keys become `vendor_extension` NamedAny entries and `default`, `example` and `enum`
  values become `Any`s, each holding its value as YAML text (JSON, which YAML parsers read);
- proto3 defaults (empty strings, false, 0) are left out, except inside a oneof.
Keys the message has no field for are dropped, as gnostic's compiler reports and skips them.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import orjson

__all__ = ["MEDIA_TYPE", "encode", "wants_protobuf"]

# What kube-openapi's handler answers with: the requested `…v2@v1.0+protobuf` is not a valid
# MIME type (Go's mime.ParseMediaType, which client-go applies to responses, rejects the `@`).
MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_MEDIA_TYPES = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", MEDIA_TYPE)


def wants_protobuf(accept: str | None) -> bool:
    """Whether an Accept header asks for the protobuf form before (or instead of) JSON."""
    for part in (accept or "").split(","):
        mt = part.split(";", 1)[0].strip()
        if mt in _MEDIA_TYPES:
            return True
        if mt in ("application/json", "*/*", "application/*"):
            return False
    return False


# --- wire format ---------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _string(field: int, s: str) -> bytes:
    return _len(field, s.encode())


# --- message specs -------------------------------------------------------------------------------
# Per message: JSON key -> (field number, encoder of the value). Encoders return b"" to skip.

Enc = Callable[[int, Any], bytes]


def _s(field: int, v: Any) -> bytes:
    return _string(field, v) if isinstance(v, str) and v else b""


def _b(field: int, v: Any) -> bytes:
    return _key(field, 0) + b"\x01" if v is True else b""


def _i(field: int, v: Any) -> bytes:
    return _key(field, 0) + _varint(int(v)) if isinstance(v, (int, float)) and v else b""


def _d(field: int, v: Any) -> bytes:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v:
        return b""
    return _key(field, 1) + struct.pack("<d", float(v))


def _rs(field: int, v: Any) -> bytes:
    items = [v] if isinstance(v, str) else v if isinstance(v, list) else []
    return b"".join(_string(field, x) for x in items if isinstance(x, str))


def _any_payload(v: Any) -> bytes:
    return _string(2, orjson.dumps(v).decode())          # Any.yaml


def _any(field: int, v: Any) -> bytes:
    return _len(field, _any_payload(v))


def _rany(field: int, v: Any) -> bytes:
    return b"".join(_any(field, x) for x in v) if isinstance(v, list) else b""


def _msg(name: str) -> Enc:
    def enc(field: int, v: Any) -> bytes:
        return _len(field, _encode(name, v)) if isinstance(v, dict) else b""
    return enc


def _rmsg(name: str) -> Enc:
    def enc(field: int, v: Any) -> bytes:
        items = v if isinstance(v, list) else []
        return b"".join(_len(field, _encode(name, x)) for x in items if isinstance(x, dict))
    return enc


def _named(value_enc: Callable[[Any], bytes]) -> Enc:
    """A JSON object as repeated Named* (name = 1, value = 2) pairs."""
    def enc(field: int, v: Any) -> bytes:
        if not isinstance(v, dict):
            return b""
        return b"".join(_len(field, _string(1, k) + _len(2, value_enc(x)))
                        for k, x in v.items())
    return enc


def _wrapped(field_no: int, inner: Enc) -> Enc:
    """A message whose only content is `inner` at `field_no` (Properties, Definitions, …)."""
    def enc(field: int, v: Any) -> bytes:
        body = inner(field_no, v)
        return _len(field, body) if isinstance(v, dict) else b""
    return enc


_PRIMITIVE_ITEMS_KEYS = {
    "type": (1, _s), "format": (2, _s), "items": (3, _msg("PrimitivesItems")),
    "collectionFormat": (4, _s), "default": (5, _any), "maximum": (6, _d),
    "exclusiveMaximum": (7, _b), "minimum": (8, _d), "exclusiveMinimum": (9, _b),
    "maxLength": (10, _i), "minLength": (11, _i), "pattern": (12, _s), "maxItems": (13, _i),
    "minItems": (14, _i), "uniqueItems": (15, _b), "enum": (16, _rany), "multipleOf": (17, _d),
}


def _param_keys(with_empty_value: bool) -> dict[str, tuple[int, Enc]]:
    # Header/Path sub-schemas lack allowEmptyValue, so every later number shifts by one.
    keys: dict[str, tuple[int, Enc]] = {"required": (1, _b), "in": (2, _s),
                                        "description": (3, _s), "name": (4, _s)}
    order = ["type", "format", "items", "collectionFormat", "default", "maximum",
             "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
             "pattern", "maxItems", "minItems", "uniqueItems", "enum", "multipleOf"]
    n = 5
    if with_empty_value:
        keys["allowEmptyValue"] = (5, _b)
        n = 6
    for k in order:
        keys[k] = (n, _PRIMITIVE_ITEMS_KEYS[k][1])
        n += 1
    keys["x-"] = (n, _b)   # placeholder: the vendor extension field number
    return keys


def _schema_payload(v: Any) -> bytes:
    return _encode("Schema", v) if isinstance(v, dict) else b""


def _additional_properties(field: int, v: Any) -> bytes:
    if isinstance(v, bool):
        return _len(field, _key(2, 0) + (b"\x01" if v else b"\x00"))
    return _len(field, _len(1, _schema_payload(v))) if isinstance(v, dict) else b""


def _type_item(field: int, v: Any) -> bytes:
    return _len(field, _rs(1, v)) if v else b""


def _items_item(field: int, v: Any) -> bytes:
    items = [v] if isinstance(v, dict) else v if isinstance(v, list) else []
    return _len(field, b"".join(_len(1, _schema_payload(x)) for x in items))


def _parameters_item(v: dict[str, Any]) -> bytes:
    if "$ref" in v:
        return _len(2, _encode("JsonReference", v))
    if v.get("in") == "body":
        return _len(1, _len(1, _encode("BodyParameter", v)))
    sub = {"header": (1, "HeaderParameterSubSchema"), "formData": (2, "FormDataParameterSubSchema"),
           "query": (3, "QueryParameterSubSchema"), "path": (4, "PathParameterSubSchema")}
    field, name = sub.get(v.get("in", ""), (3, "QueryParameterSubSchema"))
    return _len(1, _len(2, _len(field, _encode(name, v))))


def _rparams(field: int, v: Any) -> bytes:
    items = v if isinstance(v, list) else []
    return b"".join(_len(field, _parameters_item(x)) for x in items if isinstance(x, dict))


def _response_value(v: Any) -> bytes:
    if not isinstance(v, dict):
        return b""
    if "$ref" in v:
        return _len(2, _encode("JsonReference", v))
    return _len(1, _encode("Response", v))


def _schema_item(field: int, v: Any) -> bytes:
    if not isinstance(v, dict):
        return b""
    if v.get("type") == "file":
        return _len(field, _len(2, _encode("FileSchema", v)))
    return _len(field, _len(1, _schema_payload(v)))


def _security_item(v: Any) -> bytes:
    if not isinstance(v, dict):
        return b""
    if v.get("type") == "basic":
        return _len(1, _encode("BasicAuthenticationSecurity", v))
    return _len(2, _encode("ApiKeySecurity", v))


def _string_array(v: Any) -> bytes:
    return _rs(1, v)


def _rsecurity(field: int, v: Any) -> bytes:
    items = v if isinstance(v, list) else []
    return b"".join(_len(field, _named(_string_array)(1, x)) for x in items
                    if isinstance(x, dict))


_SPECS: dict[str, dict[str, tuple[int, Enc]]] = {
    "Document": {"swagger": (1, _s), "info": (2, _msg("Info")), "host": (3, _s),
                 "basePath": (4, _s), "schemes": (5, _rs), "consumes": (6, _rs),
                 "produces": (7, _rs), "paths": (8, _msg("Paths")),
                 "definitions": (9, _wrapped(1, _named(_schema_payload))),
                 "security": (12, _rsecurity),
                 "securityDefinitions": (13, _wrapped(1, _named(_security_item))),
                 "tags": (14, _rmsg("Tag")), "externalDocs": (15, _msg("ExternalDocs")),
                 "x-": (16, _b)},
    "Info": {"title": (1, _s), "version": (2, _s), "description": (3, _s),
             "termsOfService": (4, _s), "contact": (5, _msg("Contact")),
             "license": (6, _msg("License")), "x-": (7, _b)},
    "Contact": {"name": (1, _s), "url": (2, _s), "email": (3, _s), "x-": (4, _b)},
    "License": {"name": (1, _s), "url": (2, _s), "x-": (3, _b)},
    "Tag": {"name": (1, _s), "description": (2, _s), "externalDocs": (3, _msg("ExternalDocs")),
            "x-": (4, _b)},
    "ExternalDocs": {"description": (1, _s), "url": (2, _s), "x-": (3, _b)},
    "Paths": {"x-": (1, _b), "/": (2, _b)},      # paths are handled in _encode
    "PathItem": {"$ref": (1, _s), "get": (2, _msg("Operation")), "put": (3, _msg("Operation")),
                 "post": (4, _msg("Operation")), "delete": (5, _msg("Operation")),
                 "options": (6, _msg("Operation")), "head": (7, _msg("Operation")),
                 "patch": (8, _msg("Operation")), "parameters": (9, _rparams), "x-": (10, _b)},
    "Operation": {"tags": (1, _rs), "summary": (2, _s), "description": (3, _s),
                  "externalDocs": (4, _msg("ExternalDocs")), "operationId": (5, _s),
                  "produces": (6, _rs), "consumes": (7, _rs), "parameters": (8, _rparams),
                  "responses": (9, _msg("Responses")), "schemes": (10, _rs),
                  "deprecated": (11, _b), "security": (12, _rsecurity), "x-": (13, _b)},
    "Responses": {"x-": (2, _b)},                 # response codes are handled in _encode
    "Response": {"description": (1, _s), "schema": (2, _schema_item), "x-": (5, _b)},
    "JsonReference": {"$ref": (1, _s), "description": (2, _s)},
    "BodyParameter": {"description": (1, _s), "name": (2, _s), "in": (3, _s),
                      "required": (4, _b), "schema": (5, _msg("Schema")), "x-": (6, _b)},
    "QueryParameterSubSchema": _param_keys(True),
    "FormDataParameterSubSchema": _param_keys(True),
    "HeaderParameterSubSchema": _param_keys(False),
    "PathParameterSubSchema": _param_keys(False),
    "PrimitivesItems": {**_PRIMITIVE_ITEMS_KEYS, "x-": (18, _b)},
    "Schema": {"$ref": (1, _s), "format": (2, _s), "title": (3, _s), "description": (4, _s),
               "default": (5, _any), "multipleOf": (6, _d), "maximum": (7, _d),
               "exclusiveMaximum": (8, _b), "minimum": (9, _d), "exclusiveMinimum": (10, _b),
               "maxLength": (11, _i), "minLength": (12, _i), "pattern": (13, _s),
               "maxItems": (14, _i), "minItems": (15, _i), "uniqueItems": (16, _b),
               "maxProperties": (17, _i), "minProperties": (18, _i), "required": (19, _rs),
               "enum": (20, _rany), "additionalProperties": (21, _additional_properties),
               "type": (22, _type_item), "items": (23, _items_item),
               "allOf": (24, lambda f, v: b"".join(_len(f, _schema_payload(x))
                                                   for x in (v if isinstance(v, list) else []))),
               "properties": (25, _wrapped(1, _named(_schema_payload))),
               "discriminator": (26, _s), "readOnly": (27, _b), "xml": (28, _msg("Xml")),
               "externalDocs": (29, _msg("ExternalDocs")), "example": (30, _any),
               "x-": (31, _b)},
    "FileSchema": {"format": (1, _s), "title": (2, _s), "description": (3, _s),
                   "default": (4, _any), "required": (5, _rs), "type": (6, _s),
                   "readOnly": (7, _b), "externalDocs": (8, _msg("ExternalDocs")),
                   "example": (9, _any), "x-": (10, _b)},
    "Xml": {"name": (1, _s), "namespace": (2, _s), "prefix": (3, _s), "attribute": (4, _b),
            "wrapped": (5, _b), "x-": (6, _b)},
    "ApiKeySecurity": {"type": (1, _s), "name": (2, _s), "in": (3, _s), "description": (4, _s),
                       "x-": (5, _b)},
    "BasicAuthenticationSecurity": {"type": (1, _s), "description": (2, _s), "x-": (3, _b)},
}


def _encode(name: str, v: dict[str, Any]) -> bytes:
    spec = _SPECS[name]
    out = []
    vendor = b""
    if name == "Paths":
        out.append(b"".join(_len(2, _string(1, k) + _len(2, _encode("PathItem", x)))
                            for k, x in v.items() if k.startswith("/") and isinstance(x, dict)))
    elif name == "Responses":
        out.append(b"".join(_len(1, _string(1, k) + _len(2, _response_value(x)))
                            for k, x in v.items() if not k.startswith("x-")))
    for k, x in v.items():
        if k.startswith("x-"):
            if "x-" in spec:
                vendor += _len(spec["x-"][0], _string(1, k) + _len(2, _any_payload(x)))
            continue
        entry = spec.get(k)
        if entry is not None and k != "x-":
            out.append(entry[1](entry[0], x))
    out.append(vendor)
    return b"".join(out)


def encode(document: dict[str, Any]) -> bytes:
    """The serialized `openapi.v2.Document` of a Swagger 2.0 document dict."""
    return _encode("Document", document)
