"""Authentication: who sent a request.

Client certificates verified against the cluster CA during the TLS handshake: the subject CN
is the user, each O a group, as Kubernetes reads them. Otherwise an `Authorization: Bearer`
token is given to the token authenticators the server installed (`BEARER`: service-account
JWTs, bootstrap tokens), in order, as kube's union authenticator does; a presented token that
none accepts is 401 even where anonymous access would do. A request with no credentials is
anonymous, which only the health and version endpoints accept.

Tokens are never logged or echoed in errors.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from navio.api import errors
from navio.apiserver import revocation

__all__ = ["UserInfo", "authenticate", "authenticate_token", "BEARER", "TokenAuthenticator",
           "TokenRejected", "bearer_token"]


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    # kube's user.Info Extra: sorted (key, values) pairs.
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_anonymous(self) -> bool:
        return self.name == "system:anonymous"

    def to_api(self) -> dict[str, object]:
        """authentication.k8s.io/v1 UserInfo."""
        out: dict[str, object] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


class TokenRejected(Exception):
    """A token authenticator recognised the token and refused it; the message is the
    reason TokenReview reports (never the token itself)."""


# A token authenticator: the user, None when the token is not its kind, or TokenRejected.
TokenAuthenticator = Callable[[str, "tuple[str, ...] | None"], "UserInfo | None"]
BEARER = web.AppKey("navio.bearer_authenticators", list)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def authenticate_token(authenticators: list[TokenAuthenticator], token: str,
                       audiences: tuple[str, ...] | None = None) -> UserInfo:
    """The user `token` authenticates; TokenRejected (with the reasons) otherwise."""
    reasons = []
    for check in authenticators:
        try:
            user = check(token, audiences)
        except TokenRejected as exc:
            reasons.append(str(exc))
            continue
        if user is not None:
            return user
    raise TokenRejected("[" + ", ".join(reasons or ["invalid bearer token"]) + "]"
                        if len(reasons) != 1 else reasons[0])


# A TLS connection's verified client certificate never changes: read it once per connection
# (the revocation check still runs on every request).
_PEERS: "weakref.WeakKeyDictionary[Any, tuple[UserInfo | None, dict[str, Any]]]" = \
    weakref.WeakKeyDictionary()


def _client_certificate(request: web.Request) -> UserInfo | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    known = _PEERS.get(ssl_object)
    if known is None:
        cert = ssl_object.getpeercert()
        known = _PEERS[ssl_object] = (_cert_user(cert) if cert else None, cert or {})
    user, cert = known
    if user is None or revocation.is_revoked(request, cert):
        return None
    return user


def _cert_user(cert: dict[str, Any]) -> UserInfo | None:
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None
    return UserInfo(cn, tuple(orgs) + ("system:authenticated",))


def authenticate(request: web.Request) -> UserInfo | None:
    """The user a request is authenticated as, or None when it carries no credentials;
    raises Unauthorized for a bearer token no authenticator accepts."""
    user = _client_certificate(request)
    if user is not None:
        return user
    token = bearer_token(request)
    if token is None:
        return None
    try:
        return authenticate_token(request.app.get(BEARER) or [], token)
    except TokenRejected:
        raise errors.Unauthorized("Unauthorized") from None
