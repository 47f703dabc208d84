"""Defaults of the smaller groups (v1.32): discovery.k8s.io EndpointSlice ports (name "" and
protocol TCP, SetDefaults_EndpointPort) and scheduling.k8s.io PriorityClass (preemptionPolicy
PreemptLowerPriority). coordination.k8s.io, events.k8s.io and policy/v1 have no defaults.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_endpoint_slice", "default_priority_class", "default_rbac_binding",
           "KIND_DEFAULTS"]


def default_endpoint_slice(obj: dict[str, Any]) -> None:
    for port in obj.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def default_priority_class(obj: dict[str, Any]) -> None:
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def default_rbac_binding(obj: dict[str, Any]) -> None:
    """rbac/v1 SetDefaults_RoleBinding/ClusterRoleBinding/Subject: the RBAC group on roleRef
    and on User and Group subjects."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = "rbac.authorization.k8s.io"


KIND_DEFAULTS = {
    ("rbac.authorization.k8s.io", "RoleBinding"): default_rbac_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): default_rbac_binding,
    ("discovery.k8s.io", "EndpointSlice"): default_endpoint_slice,
    ("scheduling.k8s.io", "PriorityClass"): default_priority_class,
}
