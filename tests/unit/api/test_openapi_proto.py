"""The OpenAPI v2 protobuf encoding, read back with a minimal protobuf wire reader."""

from __future__ import annotations

import json
import struct
from typing import Any

from navio.api import openapi, openapi_proto
from navio.api.registry import default_registry


def _fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited, floats."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(buf, pos)
            out.append((field, v))
        elif wire == 1:
            out.append((field, struct.unpack("<d", buf[pos:pos + 8])[0]))
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            out.append((field, buf[pos:pos + n]))
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    assert pos == len(buf)
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _get(buf: bytes, field: int) -> list[Any]:
    return [v for f, v in _fields(buf) if f == field]


def _named(buf: bytes, field: int) -> dict[str, bytes]:
    return {_get(e, 1)[0].decode(): _get(e, 2)[0] for e in _get(buf, field)}


def test_media_type_negotiation() -> None:
    assert openapi_proto.wants_protobuf(
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert openapi_proto.wants_protobuf(
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json")
    assert not openapi_proto.wants_protobuf("application/json")
    assert not openapi_proto.wants_protobuf(None)


def test_document_definitions_and_vendor_extensions() -> None:
    doc = openapi.v2_document(default_registry())
    buf = openapi_proto.encode(doc)
    assert _get(buf, 1) == [b"2.0"]
    info = _get(buf, 2)[0]
    assert _get(info, 1) == [b"Kubernetes"]
    definitions = _named(_get(buf, 9)[0], 1)
    assert set(definitions) == set(doc["definitions"])

    cm = definitions["io.k8s.api.core.v1.ConfigMap"]
    props = _named(_get(cm, 25)[0], 1)
    assert set(props) == set(doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"])
    # data: type object with additionalProperties {type: string}
    data = props["data"]
    assert _get(_get(data, 22)[0], 1) == [b"object"]
    additional = _get(data, 21)[0]
    assert _get(_get(_get(additional, 1)[0], 22)[0], 1) == [b"string"]
    # metadata is a $ref
    assert _get(props["metadata"], 1) == [
        doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"]["$ref"]
        .encode()]
    vendor = {_get(e, 1)[0].decode(): _get(_get(e, 2)[0], 2)[0] for e in _get(cm, 31)}
    gvk = json.loads(vendor["x-kubernetes-group-version-kind"])
    assert gvk == [{"group": "", "kind": "ConfigMap", "version": "v1"}]


def test_paths_parameters_and_responses() -> None:
    doc = openapi.v2_document(default_registry())
    buf = openapi_proto.encode(doc)
    paths = _named(_get(buf, 8)[0], 2)
    assert set(paths) == {p for p in doc["paths"] if p.startswith("/")}
    item = paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    delete = _get(item, 5)[0]
    assert _get(delete, 5) == [b"deleteCoreV1NamespacedConfigMap"]
    params = _get(delete, 8)
    body = _get(_get(params[0], 1)[0], 1)[0]          # ParametersItem.parameter.body_parameter
    assert _get(body, 2) == [b"body"] and _get(body, 3) == [b"body"]
    query = _get(_get(_get(params[1], 1)[0], 2)[0], 3)[0]   # non_body_parameter.query
    assert _get(query, 4) == [b"dryRun"] and _get(query, 2) == [b"query"]
    path_params = _get(item, 9)
    path = _get(_get(_get(path_params[0], 1)[0], 2)[0], 4)[0]   # non_body_parameter.path
    assert _get(path, 4) == [b"name"] and _get(path, 1) == [1]
    responses = _named(_get(delete, 9)[0], 1)
    assert set(responses) == {"200", "202", "401"}
    ok = _get(_get(responses["200"], 1)[0], 2)[0]     # ResponseValue.response.schema
    assert _get(_get(ok, 1)[0], 1) == [b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"]


def test_boolean_additional_properties_and_defaults_are_kept() -> None:
    buf = openapi_proto.encode({"swagger": "2.0", "definitions": {"x": {
        "type": "object", "additionalProperties": False, "default": {"a": 1},
        "enum": ["p", "q"], "minimum": 1.5, "required": ["a"], "x-k": True}}})
    schema = _named(_get(buf, 9)[0], 1)["x"]
    assert _fields(_get(schema, 21)[0]) == [(2, 0)]       # boolean false, present in the oneof
    assert json.loads(_get(_get(schema, 5)[0], 2)[0]) == {"a": 1}
    assert [json.loads(_get(e, 2)[0]) for e in _get(schema, 20)] == ["p", "q"]
    assert _get(schema, 9) == [1.5]
    assert _get(schema, 19) == [b"a"]
