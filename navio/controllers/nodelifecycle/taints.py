"""Node taints and pod tolerations as the node lifecycle and taint eviction see them.

Why: the node lifecycle controller turns node conditions into taints and the taint eviction
controller (and the DaemonSet controller) ask whether a pod tolerates them; both answers
must be v1.Toleration.ToleratesTaint and kube's GetMatchingTolerations exactly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UNREACHABLE", "NOT_READY", "UNSCHEDULABLE", "CONDITION_TAINTS",
           "CONDITION_TAINT_KEYS", "condition_taints", "node_condition", "same_taint",
           "has_taint", "tolerates", "matching_tolerations", "min_toleration_seconds"]

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
CONDITION_TAINT_KEYS = {k for m in CONDITION_TAINTS.values() for k in m.values()}


def condition_taints(node: dict[str, Any]) -> list[dict[str, str]]:
    """The NoSchedule taints a node's conditions and `spec.unschedulable` call for."""
    out = []
    for cond in (node.get("status") or {}).get("conditions") or ():
        key = CONDITION_TAINTS.get(cond.get("type"), {}).get(cond.get("status"))
        if key:
            out.append({"key": key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        out.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return out



def node_condition(node: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def same_taint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Taint.MatchTaint: the same key and effect."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def has_taint(node: dict[str, Any], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect
               for t in (node.get("spec") or {}).get("taints") or ())



def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def matching_tolerations(taints: list[dict[str, Any]], tolerations: list[dict[str, Any]]
                         ) -> tuple[bool, list[dict[str, Any]]]:
    """GetMatchingTolerations: whether every taint is tolerated, and the tolerations used."""
    used = []
    for taint in taints:
        tol = next((t for t in tolerations if tolerates(t, taint)), None)
        if tol is None:
            return False, []
        used.append(tol)
    return True, used


def min_toleration_seconds(used: list[dict[str, Any]]) -> float:
    """getMinTolerationTime: the shortest tolerationSeconds, 0 when none, -1 if forever."""
    if not used:
        return 0.0
    seconds = [int(t["tolerationSeconds"]) for t in used
               if t.get("tolerationSeconds") is not None]
    if not seconds:
        return -1.0
    return float(max(min(seconds), 0))

