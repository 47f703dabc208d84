"""Taints and tolerations, matched as k8s.io/api/core/v1 toleration.go and v1helper do.

Used by NodeUnschedulable (the `node.kubernetes.io/unschedulable` taint), TaintToleration and
PodTopologySpread's nodeTaintsPolicy. Pure functions over the API's dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE", "HARD_EFFECTS",
           "UNSCHEDULABLE_TAINT", "tolerates", "tolerates_taint", "first_untolerated",
           "count_intolerable_prefer_no_schedule"]

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
HARD_EFFECTS = frozenset({NO_SCHEDULE, NO_EXECUTE})    # DoNotScheduleTaintsFilterFunc
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": NO_SCHEDULE}

Taint = Mapping[str, Any]
Toleration = Mapping[str, Any]


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Toleration.ToleratesTaint: empty effect/key match any; operator Exists or Equal."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates_taint(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: Sequence[Taint], tolerations: Sequence[Toleration],
                      effects: frozenset[str] = HARD_EFFECTS) -> Taint | None:
    """FindMatchingUntoleratedTaint: the first taint with one of `effects` not tolerated."""
    for taint in taints:
        if (taint.get("effect") or "") in effects and not tolerates_taint(tolerations, taint):
            return taint
    return None


def count_intolerable_prefer_no_schedule(taints: Sequence[Taint],
                                         tolerations: Sequence[Toleration]) -> int:
    """TaintToleration's score input: PreferNoSchedule taints no PreferNoSchedule-or-any
    toleration tolerates."""
    soft = [t for t in tolerations if (t.get("effect") or "") in ("", PREFER_NO_SCHEDULE)]
    return sum(1 for taint in taints
               if taint.get("effect") == PREFER_NO_SCHEDULE and not tolerates_taint(soft, taint))
