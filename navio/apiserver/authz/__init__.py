"""Authorization: who may do what (issue #3).

`authorize_request(request)` runs in the API server's middleware right after authentication:
it applies impersonation headers, then asks the authorizer chain (system:masters, Node, RBAC)
about the request's attributes and raises kube's 403 when nothing allows it. The chain reads
only memory (watch caches), so the check is cheap on the hot path.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from navio.apiserver.authz.chain import Authorization, forbidden, forbidden_message
from navio.apiserver.authz.protocol import Attributes, attributes_for
from navio.apiserver.requestinfo import parse_request

__all__ = ["Authorization", "Attributes", "AUTHZ_KEY", "DECISION_KEY", "IMPERSONATOR_KEY",
           "attributes_for", "authorize_request", "forbidden", "forbidden_message"]

AUTHZ_KEY = web.AppKey("navio.authz", Authorization)
# request[DECISION_KEY]: ("allow" | "forbid", reason), for audit logging.
DECISION_KEY = "navio.authz.decision"
# request[IMPERSONATOR_KEY]: the authenticated user when the request impersonates another.
IMPERSONATOR_KEY = "navio.authz.impersonator"
_STREAMS = frozenset({"exec", "attach", "portforward"})


async def authorize_request(request: web.Request) -> None:
    """Authorize `request` (its `user` already set), or raise Forbidden."""
    from navio.apiserver.authz.impersonation import impersonate
    authz = request.app[AUTHZ_KEY]
    real = request["user"]
    user = await impersonate(authz, real, request.headers,
                             lambda h: list(request.headers.getall(h, [])))
    if user is not real:
        request[IMPERSONATOR_KEY] = real          # audit's `user`; `request["user"]` acts
        request["user"] = user
    info = parse_request(request.method, request.path, request.query)
    # What kube's audit annotates (authorization.k8s.io/decision and /reason).
    request[DECISION_KEY] = ("forbid", "")
    attrs = attributes_for(info, user, request.query)
    _, reason = await authz.require(attrs)
    if attrs.verb == "get" and attrs.group == "" and attrs.resource == "pods" and \
            attrs.subresource in _STREAMS:
        # AuthorizePodWebsocketUpgradeCreatePermission (on by default since v1.31): a
        # WebSocket GET that opens exec/attach/port-forward also needs `create`.
        await authz.require(dataclasses.replace(attrs, verb="create"))
    request[DECISION_KEY] = ("allow", reason)
