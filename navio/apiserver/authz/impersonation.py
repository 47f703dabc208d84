"""Impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
`Impersonate-Extra-*`), as kube's filters/impersonation.go does it.

Each requested identity part is authorized with verb `impersonate` on `users`, `groups`,
`serviceaccounts` (for `system:serviceaccount:NS:NAME`), `uids` or `userextras/KEY`; any
refusal is a 403 naming that part. The request then runs as the impersonated user, who is
`system:authenticated` (unless anonymous) and, for a service account, in the service account
groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from navio.api import errors
from navio.apiserver.authn import UserInfo
from navio.apiserver.authz.protocol import Attributes

if TYPE_CHECKING:
    from navio.apiserver.authz.chain import Authorization

__all__ = ["impersonate", "IMPERSONATE_HEADERS"]

IMPERSONATE_HEADERS = ("Impersonate-User", "Impersonate-Group", "Impersonate-Uid")
_SA_PREFIX = "system:serviceaccount:"
_AUTHN_GROUP = "authentication.k8s.io"


def _wants(headers: Mapping[str, str]) -> bool:
    return any(h.lower().startswith("impersonate-") for h in headers)


async def impersonate(authz: "Authorization", user: UserInfo, headers: Mapping[str, str],
                      getall: Callable[[str], list[str]]) -> UserInfo:
    """The user to act as: `user` itself when no impersonation header is present."""
    if not _wants(headers):
        return user
    from navio.apiserver.authz.chain import forbidden
    name = headers.get("Impersonate-User", "")
    groups = [g for g in getall("Impersonate-Group")]
    uid = headers.get("Impersonate-Uid", "")
    extras = [h for h in headers if h.lower().startswith("impersonate-extra-")]
    if not name and (groups or uid or extras):
        raise errors.BadRequest("requested impersonation of groups, uid or extra without "
                                "impersonating a user")
    checks: list[Attributes] = []
    sa_groups: list[str] = []
    if name.startswith(_SA_PREFIX) and name.count(":") == 3:
        _, _, ns, sa = name.split(":")
        checks.append(Attributes(user, "impersonate", True, "", "", "serviceaccounts", "",
                                 ns, sa))
        if not groups:
            sa_groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    elif name:
        checks.append(Attributes(user, "impersonate", True, "", "", "users", "", "", name))
    for g in groups:
        checks.append(Attributes(user, "impersonate", True, "", "", "groups", "", "", g))
    if uid:
        checks.append(Attributes(user, "impersonate", True, _AUTHN_GROUP, "", "uids", "", "",
                                 uid))
    for h in extras:
        key = h[len("Impersonate-Extra-"):].lower()
        for value in getall(h):
            checks.append(Attributes(user, "impersonate", True, _AUTHN_GROUP, "", "userextras",
                                     key, "", value))
    for attrs in checks:
        allowed, reason = await authz.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
    all_groups = groups + sa_groups
    if name != "system:anonymous" and "system:authenticated" not in all_groups:
        all_groups.append("system:authenticated")
    elif name == "system:anonymous" and "system:unauthenticated" not in all_groups:
        all_groups.append("system:unauthenticated")
    return UserInfo(name, tuple(all_groups), uid)
