"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in equal
proportion after placing the pod (noderesources/balanced_allocation.go, v1.32: best-effort
pods are scored too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.scheduler.framework import CycleState, Status
from navio.scheduler.plugins.resource_allocation import balanced, balanced_rows

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "NodeResourcesBalancedAllocation"]

NAME = "NodeResourcesBalancedAllocation"


class NodeResourcesBalancedAllocation:
    name = NAME
    events: frozenset[str] = frozenset()

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        return None

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        return balanced(pod, node)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        return balanced_rows(pod, cache, rows)

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        return scores


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchScorePlugin

    _batch_score_plugin: type[BatchScorePlugin] = NodeResourcesBalancedAllocation
