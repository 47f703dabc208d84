"""Authorization: who may do what (issue #3).

`authorize_request(request)` runs in the API server's middleware right after authentication:
it applies impersonation headers, then asks the authorizer chain (system:masters, Node, RBAC)
about the request's attributes and raises kube's 403 when nothing allows it. The chain reads
only memory (watch caches), so the check is cheap on the hot path.
"""

from __future__ import annotations

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
    _, reason = await authz.require(attributes_for(info, user, request.query))
    request[DECISION_KEY] = ("allow", reason)
