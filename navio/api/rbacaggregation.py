"""ClusterRole aggregation (kube's pkg/controller/clusterroleaggregation), as a pure function.

A ClusterRole with an `aggregationRule` holds the union of the rules of every other
ClusterRole whose labels match one of its `clusterRoleSelectors`, in name order, without
duplicates. The controller and the API server's bootstrap both use it.
"""

from __future__ import annotations

from typing import Any, Iterable

from navio.api import errors
from navio.api.selectors import label_selector_from_spec

__all__ = ["aggregated_rules"]


def aggregated_rules(role: dict[str, Any], cluster_roles: Iterable[dict[str, Any]]
                     ) -> list[dict[str, Any]] | None:
    """The rules `role` should hold, or None if it has no aggregationRule."""
    agg = role.get("aggregationRule")
    if not isinstance(agg, dict):
        return None
    selectors = []
    for spec in agg.get("clusterRoleSelectors") or ():
        try:
            selectors.append(label_selector_from_spec(spec))
        except errors.ApiError:
            continue
    name = (role.get("metadata") or {}).get("name")
    out: list[dict[str, Any]] = []
    for other in sorted(cluster_roles, key=lambda r: (r.get("metadata") or {}).get("name", "")):
        meta = other.get("metadata") or {}
        if meta.get("name") == name:
            continue
        labels = meta.get("labels") or {}
        if not any(sel.matches(labels) for sel in selectors):
            continue
        for rule in other.get("rules") or ():
            if rule not in out:
                out.append(rule)
    return out
