"""rbac.authorization.k8s.io/v1 validation (kube's pkg/apis/rbac/validation, v1.32).

Roles and ClusterRoles: each rule needs verbs, and either non-resource URLs (cluster roles
only, alone) or apiGroups and resources; an aggregationRule needs selectors. Bindings: roleRef
in the RBAC group naming a Role or ClusterRole (a ClusterRoleBinding only a ClusterRole) and
never changed afterwards; subjects of kind User, Group (RBAC group) or ServiceAccount (core
group, with a namespace in cluster bindings). Names are path-segment names (ValidateRBACName).
"""

from __future__ import annotations

from typing import Any

from navio.api.errors import GoValue, go_quote
from navio.api.validation import names
from navio.api.validation.field import Cause, index, invalid, not_supported, required
from navio.api.validation.gorepr import go_strings
from navio.api.validation.meta import (validate_label_selector, validate_object_meta,
                                       validate_object_meta_update)

__all__ = ["validate_role", "validate_role_update", "validate_cluster_role",
           "validate_cluster_role_update", "validate_role_binding",
           "validate_role_binding_update", "validate_cluster_role_binding",
           "validate_cluster_role_binding_update"]

GROUP = "rbac.authorization.k8s.io"
_NAME = names.validate_path_segment_name


def _rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not rule.get("verbs"):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            errs.append(invalid(f"{path}.nonResourceURLs", go_strings(urls),
                                "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.append(invalid(f"{path}.nonResourceURLs", go_strings(urls),
                                "rules cannot apply to both regular resources and non-resource "
                                "URLs"))
        return errs
    if not rule.get("apiGroups"):
        errs.append(required(f"{path}.apiGroups",
                             "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errs.append(required(f"{path}.resources",
                             "resource rules must supply at least one resource"))
    return errs


def _rules(obj: dict[str, Any], namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    for i, r in enumerate(obj.get("rules") or []):
        errs += _rule(r if isinstance(r, dict) else {}, namespaced, index("rules", i))
    return errs


def validate_role(obj: dict[str, Any]) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), True, _NAME) + _rules(obj, True)


def validate_role_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_role(new)


def validate_cluster_role(obj: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), False, _NAME) + _rules(obj, False)
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict):
        selectors = agg.get("clusterRoleSelectors") or []
        if not selectors:
            errs.append(required("aggregationRule.clusterRoleSelectors",
                                 "at least one clusterRoleSelector required if "
                                 "aggregationRule is non-nil"))
        for i, sel in enumerate(selectors):
            errs += validate_label_selector(sel, index("aggregationRule.clusterRoleSelectors",
                                                       i))
    return errs


def validate_cluster_role_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return validate_object_meta_update(new.get("metadata"), old.get("metadata")) + \
        validate_cluster_role(new)


def _role_ref(ref: dict[str, Any], kinds: list[str]) -> list[Cause]:
    errs: list[Cause] = []
    if ref.get("apiGroup", "") != GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    if ref.get("kind", "") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name", "")
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs += [invalid("roleRef.name", name, m) for m in _NAME(name, False)]
    return errs


def _subject(s: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    errs: list[Cause] = []
    name, kind, group = s.get("name", ""), s.get("kind", ""), s.get("apiGroup", "")
    if not name:
        errs.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            errs += [invalid(f"{path}.name", name, m)
                     for m in names.name_is_dns_subdomain(name, False)]
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not s.get("namespace"):
            errs.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _binding(obj: dict[str, Any], namespaced: bool, kinds: list[str]) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), namespaced, _NAME)
    errs += _role_ref(obj.get("roleRef") or {}, kinds)
    for i, s in enumerate(obj.get("subjects") or []):
        errs += _subject(s if isinstance(s, dict) else {}, namespaced, index("subjects", i))
    return errs


def _ref_repr(ref: dict[str, Any]) -> GoValue:
    return GoValue(f"rbac.RoleRef{{APIGroup:{go_quote(ref.get('apiGroup', ''))}, "
                   f"Kind:{go_quote(ref.get('kind', ''))}, Name:{go_quote(ref.get('name', ''))}}}")


def _binding_update(new: dict[str, Any], old: dict[str, Any], namespaced: bool,
                    kinds: list[str]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if (new.get("roleRef") or {}) != (old.get("roleRef") or {}):
        errs.append(invalid("roleRef", _ref_repr(new.get("roleRef") or {}),
                            "cannot change roleRef"))
    return errs + _binding(new, namespaced, kinds)


def validate_role_binding(obj: dict[str, Any]) -> list[Cause]:
    return _binding(obj, True, ["Role", "ClusterRole"])


def validate_role_binding_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return _binding_update(new, old, True, ["Role", "ClusterRole"])


def validate_cluster_role_binding(obj: dict[str, Any]) -> list[Cause]:
    return _binding(obj, False, ["ClusterRole"])


def validate_cluster_role_binding_update(new: dict[str, Any],
                                         old: dict[str, Any]) -> list[Cause]:
    return _binding_update(new, old, False, ["ClusterRole"])
