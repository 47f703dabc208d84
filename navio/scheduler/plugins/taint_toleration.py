"""TaintToleration: NoSchedule/NoExecute taints must be tolerated; untolerated
PreferNoSchedule taints lower a node's score (tainttoleration/taint_toleration.go).

Filter fails UnschedulableAndUnresolvable with "node(s) had untolerated taint {key: value}"
naming the node's first untolerated taint. Score counts untolerated PreferNoSchedule taints
(tolerations with effect PreferNoSchedule or empty only), normalised in reverse: the fewest
such taints scores 100.

Batched: nodes with identical taint lists share a signature (nodearrays), so each distinct
taint list is checked against the pod's tolerations once per cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    CycleState,
    NodeMask,
    Status,
    default_normalize,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.taints import count_intolerable_prefer_no_schedule, first_untolerated

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "TaintToleration", "untolerated_reason"]

NAME = "TaintToleration"


def untolerated_reason(taint: Mapping[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


class TaintToleration:
    name = NAME
    events = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        return None

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        if not node.taints:
            return None
        taint = first_untolerated(node.taints, pod.tolerations)
        if taint is None:
            return None
        return Status.unresolvable(untolerated_reason(taint), plugin=NAME)

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        arrays = cache.arrays
        assert arrays is not None
        n = len(cache.slots)
        if len(arrays.sig_taints) == 1:
            return NodeMask(np.ones(n, dtype=bool))
        sigs = arrays.taint_sig[:n]
        ok_sig = np.ones(len(arrays.sig_taints), dtype=bool)
        reasons: dict[str, list[int]] = {}
        for sig, taints in enumerate(arrays.sig_taints):
            taint = first_untolerated(taints, pod.tolerations) if taints else None
            if taint is not None:
                ok_sig[sig] = False
                reasons.setdefault(untolerated_reason(taint), []).append(sig)
        ok = ok_sig[sigs]
        failures = [(reason, np.isin(sigs, ids), True) for reason, ids in reasons.items()]
        return NodeMask(ok, failures)

    # ---- score ---------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        return None

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        return count_intolerable_prefer_no_schedule(node.taints, pod.tolerations)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        arrays = cache.arrays
        assert arrays is not None
        if len(arrays.sig_taints) == 1:
            return np.zeros(len(rows), dtype=np.int64)
        per_sig = np.array([count_intolerable_prefer_no_schedule(t, pod.tolerations)
                            for t in arrays.sig_taints], dtype=np.int64)
        return per_sig[arrays.taint_sig[rows]]

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        return default_normalize(scores, reverse=True)


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin, BatchScorePlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = TaintToleration
    _batch_score_plugin: type[BatchScorePlugin] = TaintToleration
