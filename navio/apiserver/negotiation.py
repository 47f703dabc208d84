"""Content negotiation: request bodies in, response forms out.

Bodies arrive as JSON, YAML or Kubernetes protobuf (kubectl's typed commands) and all become the
same dict. Responses are JSON; a client that asks for `as=Table` gets a Table and one that asks
for `as=PartialObjectMetadata[List]` gets metadata only. A client that accepts neither JSON
nor anything navio can produce gets 406, as kube-apiserver answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from navio.api import errors, protobuf

__all__ = ["MAX_BODY_BYTES", "Output", "decode_body", "choose_output", "JSON", "PROTOBUF"]

# kube-apiserver's limit on request bodies (3 MiB).
MAX_BODY_BYTES = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml",
                "application/apply-patch+cbor")
_ACCEPTED = (JSON, YAML, PROTOBUF)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(raw: bytes, content_type: str | None, *, patch: bool = False) -> Any:
    """Parse a request body into plain data; 400 for a malformed one, 415 for a media type
    navio does not read."""
    mt = media_type(content_type)
    if patch:
        if mt not in _PATCH_TYPES:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(_PATCH_TYPES[:4])}")
        if mt == "application/apply-patch+yaml":
            return _yaml(raw)
        return _json(raw)
    if mt in ("", JSON, "*/*"):
        return _json(raw)
    if mt in (YAML, "application/x-yaml", "text/yaml"):
        return _yaml(raw)
    if mt == PROTOBUF:
        return protobuf.decode(raw)
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(_ACCEPTED)}")


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"the object provided is unrecognized: {exc}") from None


def _yaml(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.BadRequest(
            f"error converting YAML to JSON: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True, slots=True)
class Output:
    """What the client asked to get back. `form` is `object`, `table`, `metadata`."""

    form: str = "object"
    content_type: str = JSON

    @property
    def is_table(self) -> bool:
        return self.form == "table"


_TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _params(part: str) -> tuple[str, dict[str, str]]:
    fields = [f.strip() for f in part.split(";")]
    params = {}
    for f in fields[1:]:
        if "=" in f:
            k, v = f.split("=", 1)
            params[k.strip()] = v.strip()
    return fields[0].lower(), params


def choose_output(accept: str | None, *, listing: bool) -> Output:
    """Pick the response form from an Accept header, first acceptable entry wins."""
    if not accept:
        return Output()
    saw_other = False
    for part in accept.split(","):
        mt, params = _params(part)
        if mt not in (JSON, "*/*", "application/*", YAML):
            saw_other = saw_other or bool(mt)
            continue
        as_ = params.get("as")
        if as_ is None:
            return Output()
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if as_ == "Table":
            return Output("table", _TABLE_CT)
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            if (as_ == "PartialObjectMetadataList") != listing:
                continue
            return Output("metadata",
                          f"application/json;as={as_};v={params['v']};g=meta.k8s.io")
    raise errors.NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf, application/json;as=Table;v=v1;g=meta.k8s.io")


def partial_metadata(obj: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata", {})}


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)
