"""The authorizer contract: request attributes in, a decision and a reason out.

Mirrors k8s.io/apiserver/pkg/authorization/authorizer: an authorizer answers ALLOW, DENY or
NO_OPINION (let the next one decide); a chain allows a request only if some authorizer allows
it before any denies, so anything no rule allows is refused (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol

from navio.apiserver.authn import UserInfo
from navio.apiserver.requestinfo import RequestInfo

__all__ = ["ALLOW", "DENY", "NO_OPINION", "Attributes", "Authorizer", "attributes_for"]

ALLOW, DENY, NO_OPINION = "Allow", "Deny", "NoOpinion"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request asks to do, as kube's authorizer.AttributesRecord holds it."""
    user: UserInfo
    verb: str
    is_resource: bool
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> tuple[str, str]:
        """(decision, reason)."""
        ...


def _field_name(query: Mapping[str, str]) -> str:
    """`metadata.name=X` of a list/watch's field selector: such a request names X, as
    kube's RequestInfoFactory records it (so resourceNames rules can allow it)."""
    sel = query.get("fieldSelector", "")
    for part in sel.split(","):
        key, sep, value = part.partition("=")
        if key.strip() == "metadata.name" and sep:
            return value.lstrip("=").strip()
    return ""


def attributes_for(info: RequestInfo, user: UserInfo, query: Mapping[str, str]) -> Attributes:
    if not info.is_resource:
        return Attributes(user, info.verb, False, path=info.path)
    name = info.name
    if not name and info.verb in ("list", "watch"):
        name = _field_name(query)
    return Attributes(user, info.verb, True, info.group, info.version, info.resource,
                      info.subresource, info.namespace, name, info.path)
