"""networking.k8s.io/v1 defaulting (pkg/apis/networking/v1/defaults.go, v1.32)."""

from __future__ import annotations

from typing import Any

__all__ = ["KIND_DEFAULTS", "default_network_policy"]


def default_network_policy(obj: dict[str, Any]) -> None:
    """SetDefaults_NetworkPolicy and _NetworkPolicyPort: ports' protocol TCP; policyTypes
    [Ingress] (+ Egress when there are egress rules) when unset."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


KIND_DEFAULTS = {("networking.k8s.io", "NetworkPolicy"): default_network_policy}
