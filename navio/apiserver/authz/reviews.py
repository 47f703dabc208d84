"""authorization.k8s.io/v1 reviews: SelfSubjectAccessReview, SubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview (what `kubectl auth can-i` sends).

Each is create-only and never stored: the request's spec is answered with the same authorizer
chain that guards the API, and the object comes back with its status filled in (201), as
kube's pkg/registry/authorization does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from navio.api import errors
from navio.api.registry import Kind
from navio.apiserver.authn import UserInfo
from navio.apiserver.authz.chain import MASTERS_GROUP
from navio.apiserver.authz.node import NODE_RULES, node_identity
from navio.apiserver.authz.protocol import Attributes
from navio.apiserver.authz.rules import to_policy_rule
from navio.apiserver.negotiation import decode_body
from navio.apiserver.requestinfo import RequestInfo

if TYPE_CHECKING:
    from navio.apiserver.authz.chain import Authorization
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["handle", "review_attributes"]


def _invalid(kind: Kind, field: str, value: Any, detail: str) -> errors.Invalid:
    return errors.Invalid(kind.kind, "", [errors.cause("FieldValueInvalid", field, detail,
                                                       value)], group=kind.group)


def review_attributes(kind: Kind, user: UserInfo, spec: dict[str, Any]) -> Attributes:
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (ra is None) == (nra is None):
        raise _invalid(kind, "spec.resourceAttributes", ra if ra is not None else "null",
                       "exactly one of nonResourceAttributes or resourceAttributes must be "
                       "specified")
    if isinstance(nra, dict):
        return Attributes(user, nra.get("verb", ""), False, path=nra.get("path", ""))
    if not isinstance(ra, dict):
        raise _invalid(kind, "spec.resourceAttributes", ra, "must be an object")
    return Attributes(user, ra.get("verb", ""), True, ra.get("group", ""),
                      ra.get("version", ""), ra.get("resource", ""), ra.get("subresource", ""),
                      ra.get("namespace", ""), ra.get("name", ""))


def _subject(kind: Kind, spec: dict[str, Any]) -> UserInfo:
    user, groups = spec.get("user", ""), list(spec.get("groups") or ())
    if not user and not groups:
        raise _invalid(kind, "spec.user,spec.groups", [],
                       "at least one of user or group must be specified")
    return UserInfo(user, tuple(groups), spec.get("uid", ""))


def _rules_review(authz: "Authorization", user: UserInfo, namespace: str) -> dict[str, Any]:
    resource_rules: list[dict[str, Any]] = []
    non_resource: list[dict[str, Any]] = []
    if MASTERS_GROUP in user.groups:
        resource_rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
        non_resource.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
    rules = list(NODE_RULES) if node_identity(user) else []
    rules += authz.user_rules(user, namespace)
    for r in rules:
        pr = to_policy_rule(r)
        if pr.get("nonResourceURLs"):
            non_resource.append({"verbs": pr["verbs"], "nonResourceURLs": pr["nonResourceURLs"]})
        if pr.get("resources") or pr.get("apiGroups"):
            pr.pop("nonResourceURLs", None)
            resource_rules.append(pr)
    # Rules the Node authorizer decides per object are not listable.
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource,
            "incomplete": bool(node_identity(user))}


async def handle(h: "ResourceHandlers", request: web.Request, info: RequestInfo,
                 kind: Kind) -> web.StreamResponse:
    from navio.apiserver.authz import AUTHZ_KEY
    from navio.apiserver.handlers import json_response, read_body
    authz = request.app[AUTHZ_KEY]
    body = decode_body(await read_body(request), request.headers.get("Content-Type"))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the object provided is unrecognized (must be of type "
                                f"{kind.kind})")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    me: UserInfo = request["user"]
    out = {**body, "apiVersion": kind.group_version, "kind": kind.kind,
           "metadata": body.get("metadata") or {"creationTimestamp": None}}
    if kind.kind == "SelfSubjectRulesReview":
        ns = spec.get("namespace", "")
        out["status"] = _rules_review(authz, me, ns)
        return json_response(out, 201)
    if kind.kind == "SelfSubjectAccessReview":
        subject = me
    else:
        subject = _subject(kind, spec)
    attrs = review_attributes(kind, subject, spec)
    if kind.kind == "LocalSubjectAccessReview":
        meta_ns = (body.get("metadata") or {}).get("namespace") or info.namespace
        if meta_ns != info.namespace:
            raise errors.BadRequest(f"spec.resourceAttributes.namespace must match namespace: "
                                    f"{info.namespace}")
        if attrs.namespace != info.namespace:
            raise _invalid(kind, "spec.resourceAttributes.namespace", attrs.namespace,
                           "must match metadata.namespace")
    allowed, reason = await authz.authorize(attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    out["status"] = status
    return json_response(out, 201)
