"""The contracts between the scheduling algorithm and its plugins (framework/interface.go).

One Protocol per extension point. A plugin module implements the per-node form (`filter`,
`score`), which is the reference semantics; where evaluating all nodes at once pays, it adds
the batched form (`filter_nodes`, `score_nodes`) over the cache's node arrays, and a unit test
proves the two agree. Per-pod facts are computed once in `pre_filter` / `pre_score` and kept
in the CycleState under "PreFilter<Name>" / "PreScore<Name>".

Return conventions: `None` means Success (saves an allocation per node); a pre-* hook returns
`SKIP` to take the plugin out of this cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.framework import CycleState, NodeMask, Status
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["Plugin", "QueueSortPlugin", "FilterPlugin", "BatchFilterPlugin",
           "PreFilterExtensions", "ScorePlugin", "BatchScorePlugin", "Feasible"]


class Plugin(Protocol):
    name: str
    # Cluster events (framework.EVENT_*) after which a pod this plugin rejected is retried.
    events: frozenset[str]


class QueueSortPlugin(Protocol):
    name: str

    def less(self, a: Any, b: Any) -> bool: ...


class FilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None: ...

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


class BatchFilterPlugin(FilterPlugin, Protocol):
    def filter_nodes(self, state: CycleState, pod: PodInfo, cache: Cache) -> NodeMask:
        """The verdict for every node row at once; must agree with `filter`."""
        ...


class PreFilterExtensions(Protocol):
    """Keep pre-filter state right when a pod is added to or removed from a node in a
    simulation (nominated pods, preemption victims)."""

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                node: NodeInfo) -> None: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node: NodeInfo) -> None: ...


class Feasible(Protocol):
    """The nodes that passed filtering, in evaluation order."""

    @property
    def nodes(self) -> list[NodeInfo]: ...

    @property
    def rows(self) -> Any: ...   # numpy int array of node rows (batched mode only)


class ScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, feasible: Feasible
                  ) -> Status | None: ...

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...

    def normalize(self, state: CycleState, pod: PodInfo, scores: Any,
                  feasible: Feasible) -> Any:
        """Scores (a list, or an int64 array in batched mode) mapped to 0..100."""
        ...


class BatchScorePlugin(ScorePlugin, Protocol):
    def score_nodes(self, state: CycleState, pod: PodInfo, cache: Cache, rows: Any) -> Any:
        """int64 scores for node `rows`; must agree with `score`."""
        ...
