"""NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate the
`node.kubernetes.io/unschedulable:NoSchedule` taint (nodeunschedulable/node_unschedulable.go).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.taints import UNSCHEDULABLE_TAINT, tolerates_taint

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["NAME", "ERR_REASON_UNSCHEDULABLE", "NodeUnschedulable"]

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
_KEY = "PreFilter" + NAME
_FAIL = Status.unresolvable(ERR_REASON_UNSCHEDULABLE, plugin=NAME)


class NodeUnschedulable:
    name = NAME
    events = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        state[_KEY] = tolerates_taint(pod.tolerations, UNSCHEDULABLE_TAINT)
        return None

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        if not node.unschedulable or state[_KEY]:
            return None
        return _FAIL

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        assert cache.arrays is not None
        n = len(cache.slots)
        if state[_KEY]:
            return NodeMask(np.ones(n, dtype=bool))
        bad = cache.arrays.unschedulable[:n]
        return NodeMask(~bad, [(ERR_REASON_UNSCHEDULABLE, bad, True)])


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = NodeUnschedulable
