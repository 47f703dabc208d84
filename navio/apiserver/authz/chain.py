"""The API server's authorization: system:masters, then Node, then RBAC; fail closed.

`Authorization.check(attrs)` asks each authorizer in turn; the first ALLOW or DENY wins, and a
request nobody allows is refused, as is one whose check raised (an authorizer error denies).
Before refusing, the RBAC and pod caches are brought up to date once, so a client that has
just created a binding is not refused because the cache had not seen it yet (this costs one
store revision read, on denials only).

`forbidden(attrs, reason)` is kube's 403 (endpoints/handlers/responsewriters.Forbidden):
`pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the
namespace "default"`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from navio.api import errors
from navio.apiserver.authn import UserInfo
from navio.apiserver.authz.node import NodeAuthorizer
from navio.apiserver.authz.protocol import ALLOW, DENY, NO_OPINION, Attributes, Authorizer
from navio.apiserver.authz.rbac import RBAC_GROUP, RBACAuthorizer, RBACIndex

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources
    from navio.apiserver.watchcache import WatchCache

__all__ = ["Authorization", "forbidden", "forbidden_message", "MASTERS_GROUP"]

log = logging.getLogger(__name__)

MASTERS_GROUP = "system:masters"


def forbidden_message(attrs: Attributes) -> str:
    user = attrs.user.name
    if not attrs.is_resource:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource
    if attrs.subresource:
        resource = f"{resource}/{attrs.subresource}"
    where = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" {where}')


def forbidden(attrs: Attributes, reason: str = "") -> errors.Forbidden:
    msg = forbidden_message(attrs)
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.is_resource or not attrs.resource:
        return errors.Forbidden(f"forbidden: {msg}", details={})
    qualified = errors.qualified_resource(attrs.resource, attrs.group)
    details = {"group": attrs.group, "kind": attrs.resource}
    if attrs.name:
        details = {"name": attrs.name, **details}
        return errors.Forbidden(f'{qualified} "{attrs.name}" is forbidden: {msg}',
                                details=details)
    return errors.Forbidden(f"{qualified} is forbidden: {msg}", details=details)


class Authorization:
    """The authorizer chain over one API server's caches."""

    def __init__(self, resources: "Resources") -> None:
        self.resources = resources
        reg = resources.registry

        def cache(group: str, plural: str) -> "WatchCache":
            kind = reg.resource(group, "v1", plural)
            assert kind is not None, plural
            return resources.cache(kind)

        found: list[tuple["WatchCache", ...]] = []

        def rbac_caches() -> tuple["WatchCache", ...]:
            # Looked up on first use (the caches start after this object is built), then kept.
            if not found:
                found.append(tuple(cache(RBAC_GROUP, p) for p in (
                    "roles", "clusterroles", "rolebindings", "clusterrolebindings")))
            return found[0]

        self.rbac_caches = rbac_caches
        self.index = RBACIndex(self.rbac_caches)
        self.node = NodeAuthorizer(lambda: cache("", "pods"),
                                   lambda: cache("", "persistentvolumeclaims"))
        self.rbac = RBACAuthorizer(self.index)
        self.chain: tuple[Authorizer, ...] = (self.node, self.rbac)
        self._pods = lambda: cache("", "pods")
        # Admission that needs the writer's identity and this chain's rules.
        from navio.apiserver.authz.escalation import EscalationCheck
        from navio.apiserver.noderestriction import node_restriction
        resources.validators[:] = [v for v in resources.validators
                                   if v is not node_restriction
                                   and not isinstance(v, EscalationCheck)]
        # ResourceQuota stays the last validating plugin, as in kube-apiserver: a write these
        # checks refuse must not have been charged.
        from navio.apiserver.quota import resource_quota
        at = resources.validators.index(resource_quota) \
            if resource_quota in resources.validators else len(resources.validators)
        resources.validators[at:at] = [node_restriction, EscalationCheck(self)]

    def check(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) without waiting for the caches."""
        if MASTERS_GROUP in attrs.user.groups:
            return True, ""
        reasons: list[str] = []
        for authorizer in self.chain:
            try:
                decision, reason = authorizer.authorize(attrs)
            except Exception:
                log.exception("authorizer failed", extra={"user": attrs.user.name})
                return False, "authorizer error"
            if decision == ALLOW:
                return True, reason
            if reason:
                reasons.append(reason)
            if decision == DENY:
                return False, "\n".join(reasons)
            assert decision == NO_OPINION
        return False, "\n".join(reasons)

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """`check`, retried once after catching the caches up if it refuses."""
        allowed, reason = self.check(attrs)
        if allowed:
            return allowed, reason
        try:
            revision = await self.resources.store.current_revision()
            for c in (*self.rbac_caches(), self._pods()):
                await c.wait_for(revision)
        except errors.ApiError:
            return allowed, reason
        return self.check(attrs)

    async def require(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) when allowed; raises kube's 403 otherwise."""
        allowed, reason = await self.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
        return allowed, reason

    def user_rules(self, user: UserInfo, namespace: str):  # type: ignore[no-untyped-def]
        return self.index.rules_for(user, namespace)
