"""The RBAC authorizer (kube's plugin/pkg/auth/authorizer/rbac), evaluated from memory.

The four RBAC kinds live in the API server's watch caches; `RBACIndex` turns them into, per
subject (user, group, service account), the list of (namespace, rules) its bindings grant,
and rebuilds that only when one of the four caches has a new event (an O(1) check per
request, no storage read). A request is then checked against the rules of the user's own
bindings and those of its groups: O(rules the user holds). Per-(user, groups) rule lists are
memoised until the next rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from navio.apiserver.authn import UserInfo
from navio.apiserver.authz.protocol import ALLOW, NO_OPINION, Attributes
from navio.apiserver.authz.rules import Rule, compile_rules, rule_allows

if TYPE_CHECKING:
    from navio.apiserver.watchcache import WatchCache

__all__ = ["RBACIndex", "RBACAuthorizer", "Grant", "RBAC_GROUP"]

RBAC_GROUP = "rbac.authorization.k8s.io"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Grant:
    """Rules granted by one binding: cluster-wide when `namespace` is ""."""
    namespace: str
    rules: tuple[Rule, ...]
    binding: str  # "ClusterRoleBinding name" / "RoleBinding ns/name", for reasons
    # Why the binding grants nothing: its role does not exist (kube reports it on denial).
    error: str = ""


def _signature(cache: "WatchCache") -> tuple[int, int]:
    events = cache.events
    return cache.window_start, (events[-1].revision if events else 0)


class RBACIndex:
    """Subject → grants, derived from the RBAC watch caches on demand."""

    def __init__(self, caches: Callable[[], tuple["WatchCache", ...]]) -> None:
        # (roles, clusterroles, rolebindings, clusterrolebindings), resolved lazily: the
        # caches exist only once the API server's resources have started.
        self._caches = caches
        self._sig: tuple[Any, ...] | None = None
        self._users: dict[str, list[Grant]] = {}
        self._groups: dict[str, list[Grant]] = {}
        self._memo: dict[tuple[str, tuple[str, ...]], tuple[Grant, ...]] = {}
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}

    def _fresh(self) -> None:
        caches = self._caches()
        sig = tuple(_signature(c) for c in caches)
        if sig != self._sig:
            self._rebuild(caches)
            self._sig = sig

    def _rebuild(self, caches: tuple["WatchCache", ...]) -> None:
        roles_c, croles_c, rbs_c, crbs_c = caches
        croles = {o["metadata"]["name"]: compile_rules(o.get("rules"))
                  for _, o in croles_c.list()}
        roles = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]):
                 compile_rules(o.get("rules")) for _, o in roles_c.list()}
        users: dict[str, list[Grant]] = {}
        groups: dict[str, list[Grant]] = {}

        def add(binding: dict[str, Any], ns: str, rules: tuple[Rule, ...] | None,
                label: str, ref: dict[str, Any]) -> None:
            # One grant per subject, so that a decision's reason names it as kube's does:
            # `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`.
            error = ""
            if rules is None:
                error = (f'{str(ref.get("kind", "")).lower()}.{RBAC_GROUP} '
                         f'"{ref.get("name", "")}" not found')
                rules = ()
            elif not rules:
                return
            for s in binding.get("subjects") or ():
                kind, name = s.get("kind"), s.get("name", "")
                if kind == "User":
                    users.setdefault(name, []).append(Grant(
                        ns, rules, f'{label} to User "{name}"', error))
                elif kind == "Group":
                    groups.setdefault(name, []).append(Grant(
                        ns, rules, f'{label} to Group "{name}"', error))
                elif kind == "ServiceAccount":
                    sa_ns = s.get("namespace") or ns
                    if sa_ns:
                        users.setdefault(f"{_SA_PREFIX}{sa_ns}:{name}", []).append(Grant(
                            ns, rules, f'{label} to ServiceAccount "{sa_ns}/{name}"', error))

        for _, crb in crbs_c.list():
            ref = crb.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                add(crb, "", croles.get(ref.get("name", "")),
                    f'ClusterRoleBinding "{crb["metadata"]["name"]}" of ClusterRole '
                    f'"{ref.get("name", "")}"', ref)
        for _, rb in rbs_c.list():
            meta = rb["metadata"]
            ns = meta.get("namespace", "")
            ref = rb.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                rules = croles.get(ref.get("name", ""))
            elif ref.get("kind") == "Role":
                rules = roles.get((ns, ref.get("name", "")))
            else:
                continue
            add(rb, ns, rules, f'RoleBinding "{meta["name"]}/{ns}" of {ref.get("kind")} '
                               f'"{ref.get("name", "")}"', ref)
        self._users, self._groups, self._memo = users, groups, {}
        self.cluster_roles, self.roles = croles, roles

    def grants(self, user: UserInfo) -> tuple[Grant, ...]:
        """Every grant that applies to `user` (its own, its groups', its service account's)."""
        self._fresh()
        key = (user.name, user.groups)
        got = self._memo.get(key)
        if got is None:
            out = list(self._users.get(user.name, ()))
            for g in user.groups:
                out.extend(self._groups.get(g, ()))
            got = tuple(out)
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[key] = got
        return got

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        """The rules `user` holds in `namespace` ("" = cluster-wide only)."""
        return [r for g in self.grants(user) if not g.namespace or g.namespace == namespace
                for r in g.rules]

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        self._fresh()
        if kind == "ClusterRole":
            return self.cluster_roles.get(name)
        if kind == "Role":
            return self.roles.get((namespace, name))
        return None


class RBACAuthorizer:
    def __init__(self, index: RBACIndex) -> None:
        self.index = index

    def authorize(self, attrs: Attributes) -> tuple[str, str]:
        ns = attrs.namespace
        verb, is_res, group = attrs.verb, attrs.is_resource, attrs.group
        res, sub, name, path = attrs.resource, attrs.subresource, attrs.name, attrs.path
        for grant in self.index.grants(attrs.user):
            if grant.namespace and grant.namespace != ns:
                continue
            for rule in grant.rules:
                if rule_allows(rule, verb, is_res, group, res, sub, name, path):
                    return ALLOW, f"RBAC: allowed by {grant.binding}"
        # As kube's rule-checking visitor: roles that bindings name but that do not exist.
        errs = list(dict.fromkeys(g.error for g in self.index.grants(attrs.user)
                                  if g.error and (not g.namespace or g.namespace == ns)))
        if not errs:
            return NO_OPINION, ""
        return NO_OPINION, "RBAC: " + (errs[0] if len(errs) == 1 else
                                       "[" + ", ".join(errs) + "]")
