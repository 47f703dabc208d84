"""RBAC escalation prevention (kube's pkg/registry/rbac/{role,clusterrole,rolebinding,
clusterrolebinding}/policybased): nobody grants permissions they do not hold.

A user may create or change a Role/ClusterRole only with rules they hold themselves in that
namespace, unless allowed the `escalate` verb on it; and may bind a role only if they hold its
rules or are allowed the `bind` verb on it. Members of system:masters (kube's
EscalationAllowed) and server-internal writes are exempt. Refusals are kube's 403:
`... is attempting to grant RBAC permissions not currently held:` followed by the missing
rules, one per line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from navio.api import errors
from navio.apiserver.authz.protocol import Attributes
from navio.apiserver.authz.rbac import RBAC_GROUP
from navio.apiserver.authz.rules import compact_string, compile_rules, covers

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.authz.chain import Authorization
    from navio.apiserver.resources import Resources

__all__ = ["EscalationCheck"]

_ROLE_RESOURCE = {"Role": "roles", "ClusterRole": "clusterroles"}
_KINDS = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
          "ClusterRoleBinding": "clusterrolebindings"}


def _forbidden(resource: str, name: str, message: str) -> errors.Forbidden:
    return errors.Forbidden(f'{resource}.{RBAC_GROUP} "{name}" is forbidden: {message}',
                            details={"name": name, "group": RBAC_GROUP, "kind": resource})


_SERVER_META = ("ownerReferences", "finalizers", "managedFields", "resourceVersion",
                "generation")


def _only_gc_fields(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """kube's IsOnlyMutatingGCFields: an update touching only owner references and
    finalizers (what the garbage collector writes) needs no escalation check."""
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (o.get("metadata") or {}).items() if k not in _SERVER_META}
        return {**o, "metadata": meta}
    return strip(new) == strip(old)


class EscalationCheck:
    def __init__(self, authz: "Authorization") -> None:
        self.authz = authz

    async def __call__(self, resources: "Resources", req: "Request") -> None:
        kind = req.kind
        if kind.group != RBAC_GROUP or kind.kind not in _KINDS or req.operation == "DELETE":
            return
        user = req.opts.user
        if user is None or "system:masters" in user.groups:
            return
        if req.old is not None and _only_gc_fields(req.obj, req.old):
            return
        meta = req.obj.get("metadata") or {}
        ns, name = meta.get("namespace", "") if kind.namespaced else "", meta.get("name", "")
        resource = _KINDS[kind.kind]
        if kind.kind in _ROLE_RESOURCE:
            await self._role(req, user, resource, ns, name)
        else:
            await self._binding(req, user, resource, ns, name)

    async def _allowed(self, user: Any, verb: str, resource: str, ns: str, name: str) -> bool:
        allowed, _ = await self.authz.authorize(
            Attributes(user, verb, True, RBAC_GROUP, "v1", resource, "", ns, name))
        return allowed

    async def _role(self, req: "Request", user: Any, resource: str, ns: str,
                    name: str) -> None:
        obj, old = req.obj, req.old
        if await self._allowed(user, "escalate", resource, ns, name):
            return
        if obj.get("aggregationRule") is not None and (
                old is None or obj.get("aggregationRule") != old.get("aggregationRule")):
            raise _forbidden(resource, name, "must have cluster-admin privileges to use the "
                                             "aggregationRule")
        self._confirm(user, resource, ns, name, compile_rules(obj.get("rules")))

    async def _binding(self, req: "Request", user: Any, resource: str, ns: str,
                       name: str) -> None:
        obj = req.obj
        ref = obj.get("roleRef") or {}
        role_resource = _ROLE_RESOURCE.get(ref.get("kind", ""))
        if role_resource is None:
            return  # validation refuses the kind
        if await self._allowed(user, "bind", role_resource, ns, ref.get("name", "")):
            return
        rules = self.authz.index.role_rules(ref.get("kind", ""), ns, ref.get("name", ""))
        if rules is None:
            # A role created a moment ago may not be in the cache yet.
            for c in self.authz.rbac_caches():
                await c.consistent()
            rules = self.authz.index.role_rules(ref.get("kind", ""), ns, ref.get("name", ""))
        if rules is None:
            raise errors.NotFound(f'{role_resource}.{RBAC_GROUP} "{ref.get("name", "")}" '
                                  f'not found', details={"name": ref.get("name", ""),
                                                         "group": RBAC_GROUP,
                                                         "kind": role_resource})
        self._confirm(user, resource, ns, name, rules)

    def _confirm(self, user: Any, resource: str, ns: str, name: str, rules: Any) -> None:
        owner = self.authz.index.rules_for(user, ns)
        missing = covers(owner, rules)
        if not missing:
            return
        groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
        lines = "\n".join(compact_string(m) for m in missing)
        raise _forbidden(resource, name, f'user "{user.name}" (groups={groups}) is attempting '
                                         f"to grant RBAC permissions not currently held:\n"
                                         f"{lines}")
