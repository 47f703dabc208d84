"""The authentication API: TokenRequest, TokenReview and SelfSubjectReview.

- `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token` (authentication.k8s.io/v1
  TokenRequest, kube's pkg/registry/core/serviceaccount/storage/token.go): audiences default
  to the API server's, `expirationSeconds` to 3600 (at least 600, at most 2^32), and the token
  may be bound to a Pod (and the Pod's Node), a Secret or a Node of the same namespace whose
  uid, when given, must match. The answer carries `status.token` and `expirationTimestamp`.
- `POST /apis/authentication.k8s.io/v1/tokenreviews`: whether a token authenticates, as whom,
  for which audiences (`kubectl` and webhooks use it).
- `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`: who the caller is
  (`kubectl auth whoami`).
None of these objects is stored; tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from aiohttp import web

from navio.api import errors
from navio.api.registry import Kind
from navio.apiserver.authn import BEARER, TokenRejected, UserInfo, authenticate_token
from navio.apiserver.tokens import Bound, TokenAuthority

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["AUTHORITY", "token_request", "token_review", "self_subject_review",
           "MIN_EXPIRATION", "DEFAULT_EXPIRATION"]

AUTHORITY = web.AppKey("navio.token_authority", TokenAuthority)
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
DEFAULT_EXPIRATION = 3600
_GROUP = "authentication.k8s.io"


def _authority(request: web.Request) -> TokenAuthority:
    authority = request.app.get(AUTHORITY)
    if authority is None:
        raise errors.ServiceUnavailable("service account tokens are not configured")
    return authority


async def _decoded(request: web.Request, kind_name: str) -> dict[str, Any]:
    from navio.apiserver.handlers import read_body
    from navio.apiserver.negotiation import decode_body
    body = decode_body(await read_body(request), request.headers.get("Content-Type"))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the object provided is unrecognized (must be of type "
                                f"{kind_name})")
    api_version, k = body.get("apiVersion"), body.get("kind")
    if api_version and api_version != f"{_GROUP}/v1":
        raise errors.BadRequest(f"the API version in the data ({api_version}) does not match "
                                f"the expected API version ({_GROUP}/v1)")
    if k and k != kind_name:
        raise errors.BadRequest(f"the kind in the data ({k}) does not match the expected kind "
                                f"({kind_name})")
    return body


def _rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(kind: str, field: str, value: Any, detail: str) -> errors.Invalid:
    return errors.Invalid(kind, "", [errors.cause("FieldValueInvalid", field, detail, value)],
                          group=_GROUP)


async def token_request(h: "ResourceHandlers", request: web.Request, sa_kind: Kind, ns: str,
                        name: str) -> web.Response:
    from navio.apiserver.handlers import json_response
    authority = _authority(request)
    req = await _decoded(request, "TokenRequest")
    meta = dict(req.get("metadata") or {})
    if meta.get("name") and meta["name"] != name:
        raise errors.BadRequest(f"metadata.name ({meta['name']}) must match the service "
                                f"account name ({name})")
    if meta.get("namespace") and meta["namespace"] != ns:
        raise errors.BadRequest(f"metadata.namespace ({meta['namespace']}) must match the "
                                f"namespace of the service account ({ns})")
    sa = await h.resources.get(sa_kind, ns, name)
    spec = {k: v for k, v in (req.get("spec") or {}).items() if v is not None}
    audiences = [str(a) for a in spec.get("audiences") or ()] or list(authority.audiences)
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = DEFAULT_EXPIRATION
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise errors.BadRequest("spec.expirationSeconds must be an integer")
    if expiration < MIN_EXPIRATION:
        raise _invalid("TokenRequest", "spec.expirationSeconds", expiration,
                       "may not specify a duration less than 10 minutes")
    if expiration > MAX_EXPIRATION:
        raise _invalid("TokenRequest", "spec.expirationSeconds", expiration,
                       "may not specify a duration larger than 2^32 seconds")
    bound = Bound()
    ref = spec.get("boundObjectRef")
    if ref:
        bound = await _bind(h, name, ns, ref)
    now = authority.clock()
    token = authority.issue(sa, audiences, expiration, bound, now=now)
    spec["audiences"], spec["expirationSeconds"] = audiences, expiration
    out = {"kind": "TokenRequest", "apiVersion": f"{_GROUP}/v1",
           "metadata": {"name": sa["metadata"]["name"], "namespace": ns,
                        "creationTimestamp": _rfc3339(now)},
           "spec": spec,
           "status": {"token": token, "expirationTimestamp": _rfc3339(now + expiration)}}
    return json_response(out, 201)


async def _bind(h: "ResourceHandlers", sa_name: str, ns: str, ref: dict[str, Any]) -> Bound:
    api_version, kind, obj_name = ref.get("apiVersion", ""), ref.get("kind", ""), \
        str(ref.get("name", ""))
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
    if group or plural is None:
        gvk = f"{api_version or '/'}, Kind={kind}" if "/" in api_version else \
            f"/{api_version}, Kind={kind}"
        raise errors.BadRequest(f'cannot bind token for serviceaccount "{sa_name}" to object '
                                f"of type {gvk}")
    k = h.resources.registry.resource("", "v1", plural)
    assert k is not None
    obj = await h.resources.get(k, ns if k.namespaced else "", obj_name)
    uid = str(obj["metadata"].get("uid"))
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.Conflict(
            f'Operation cannot be fulfilled on {kind} "{obj_name}": the UID in the bound '
            f"object reference ({ref['uid']}) does not match the UID in record. The object "
            "might have been deleted and then recreated",
            details={"name": obj_name, "kind": kind})
    if kind == "Secret":
        return Bound(secret=(obj_name, uid))
    if kind == "Node":
        return Bound(node=(obj_name, uid))
    node_ref = None
    node_name = (obj.get("spec") or {}).get("nodeName")
    if node_name:
        node_kind = h.resources.registry.resource("", "v1", "nodes")
        assert node_kind is not None
        node = h.resources.cache(node_kind).get(node_kind.storage_key("", node_name))
        if node is not None:
            node_ref = (node_name, str(node["metadata"].get("uid")))
    return Bound(pod=(obj_name, uid), node=node_ref)


async def token_review(h: "ResourceHandlers", request: web.Request, kind: Kind
                       ) -> web.Response:
    from navio.apiserver.handlers import json_response
    review = await _decoded(request, "TokenReview")
    spec = dict(review.get("spec") or {})
    token = spec.get("token")
    if not token or not isinstance(token, str):
        raise errors.BadRequest("token is required for TokenReview in authentication")
    wanted = tuple(str(a) for a in spec.get("audiences") or ())
    authority = request.app.get(AUTHORITY)
    default_auds = authority.audiences if authority else ()
    status: dict[str, Any] = {"user": {}}
    try:
        user = authenticate_token(request.app.get(BEARER) or [], token, wanted or None)
        status.update(authenticated=True, user=user.to_api(),
                      audiences=_accepted(authority, token, wanted) or list(wanted
                                                                            or default_auds))
    except TokenRejected as exc:
        status["error"] = str(exc)
    meta = {k: v for k, v in (review.get("metadata") or {}).items() if k in ("name",)}
    meta["creationTimestamp"] = None
    return json_response({"kind": "TokenReview", "apiVersion": f"{_GROUP}/v1",
                          "metadata": meta, "spec": spec, "status": status}, 201)


def _accepted(authority: TokenAuthority | None, token: str, wanted: tuple[str, ...]
              ) -> list[str]:
    if authority is None or not authority.is_ours(token):
        return []
    try:
        return authority.authenticate(token, wanted or None)[1]
    except TokenRejected:
        return []


async def self_subject_review(h: "ResourceHandlers", request: web.Request, kind: Kind
                              ) -> web.Response:
    from navio.apiserver.handlers import json_response
    await _decoded(request, "SelfSubjectReview")
    user: UserInfo = request["user"]
    return json_response({"kind": "SelfSubjectReview", "apiVersion": f"{_GROUP}/v1",
                          "metadata": {"creationTimestamp": _rfc3339(
                              dt.datetime.now(dt.timezone.utc).timestamp())},
                          "status": {"userInfo": user.to_api()}}, 201)
