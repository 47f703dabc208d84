"""Authentication: who sent a request.

Client certificates verified against the cluster CA during the TLS handshake: the subject CN
is the user, each O a group, as Kubernetes reads them. A request with no credentials is
anonymous, which only the health and version endpoints accept. (Service-account and bootstrap
tokens join here with the security work.)
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from navio.apiserver import revocation

__all__ = ["UserInfo", "authenticate"]


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    @property
    def is_anonymous(self) -> bool:
        return self.name == "system:anonymous"


def authenticate(request: web.Request) -> UserInfo | None:
    """The user a request is authenticated as, or None when it carries no credentials."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert or revocation.is_revoked(request, cert):
        return None
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
