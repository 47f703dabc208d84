"""NodeName: a pod that names its node (`spec.nodeName`) fits only that node
(nodename/node_name.go). The scheduler only takes pods without a nodeName, so in practice this
plugin is skipped; it is kept for fidelity (and for preemption's simulations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    SKIP,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.nodearrays import np

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["NAME", "ERR_REASON", "NodeName"]

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"
_FAIL = Status.unresolvable(ERR_REASON, plugin=NAME)


class NodeName:
    name = NAME
    events = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        return None if pod.node_name else SKIP

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        if not pod.node_name or pod.node_name == node.name:
            return None
        return _FAIL

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        n = len(cache.slots)
        ok = np.zeros(n, dtype=bool)
        ni = cache.get(pod.node_name)
        if ni is not None:
            ok[ni.idx] = True
        return NodeMask(ok, [(ERR_REASON, ~ok, True)])


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = NodeName
