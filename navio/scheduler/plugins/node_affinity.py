"""NodeAffinity: `nodeSelector` and required node affinity must match; preferred node affinity
terms add their weights to the score (nodeaffinity/node_affinity.go).

PreFilter skips pods with neither; terms that pin `metadata.name` (In) narrow the cycle to
those nodes (PreFilterResult), and terms that each pin conflicting names fail the pod with
"pod affinity terms conflict". Filter fails UnschedulableAndUnresolvable with
"node(s) didn't match Pod's node affinity/selector". Score skips pods without preferred terms
and normalises to 0..100 by the best node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    SKIP,
    CycleState,
    NodeMask,
    Status,
    default_normalize,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.nodeselector import RequiredNodeAffinity, preferred_score, term_mask

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "ERR_REASON_POD", "ERR_REASON_CONFLICT", "NodeAffinity"]

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_CONFLICT = "pod affinity terms conflict"
_PRE_FILTER = "PreFilter" + NAME
_FAIL = Status.unresolvable(ERR_REASON_POD, plugin=NAME)


def _pinned_names(terms: list[dict[str, Any]]) -> set[str] | None:
    """Union over terms of the node names each term pins with `metadata.name In`, or None if
    some term pins none (then every node is eligible)."""
    names: set[str] | None = None
    for t in terms:
        term_names: set[str] | None = None
        for r in t.get("matchFields") or ():
            if r.get("key") == "metadata.name" and r.get("operator") == "In":
                s = set(r.get("values") or ())
                term_names = s if term_names is None else term_names & s
        if term_names is None:
            return None
        names = term_names if names is None else names | term_names
    return names


class NodeAffinity:
    name = NAME
    events = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        required = pod.required_node_affinity
        if required is None and pod.node_selector is None:
            return SKIP
        state[_PRE_FILTER] = RequiredNodeAffinity(pod.node_selector, required)
        terms = (required or {}).get("nodeSelectorTerms") or []
        if not terms:
            return None
        names = _pinned_names(terms)
        if names is not None and not names:
            return Status.unresolvable(ERR_REASON_CONFLICT, plugin=NAME)
        if names:
            state.restrict_nodes(names, NAME)
        return None

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        return None if state[_PRE_FILTER].matches(node) else _FAIL

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        ok = state[_PRE_FILTER].mask(cache)
        return NodeMask(ok, [(ERR_REASON_POD, ~ok, True)])

    # ---- score ---------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        return None if pod.preferred_node_affinity else SKIP

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        return preferred_score(pod.preferred_node_affinity, node)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        total = np.zeros(len(rows), dtype=np.int64)
        for p in pod.preferred_node_affinity:
            weight = int(p.get("weight") or 0)
            if weight:
                total += weight * term_mask(p.get("preference") or {}, cache)[rows]
        return total

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        return default_normalize(scores)


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin, BatchScorePlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = NodeAffinity
    _batch_score_plugin: type[BatchScorePlugin] = NodeAffinity
