"""NodePorts: a pod's hostPorts must be free on the node (nodeports/node_ports.go).

A port is taken when another pod uses the same protocol and port on the same hostIP, or either
side binds 0.0.0.0. Skipped for pods without hostPorts (the common case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    EVENT_POD_DELETE,
    SKIP,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.nodeinfo import ports_conflict

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["NAME", "ERR_REASON", "NodePorts", "fits_ports"]

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
_FAIL = Status.unschedulable(ERR_REASON, plugin=NAME)


def fits_ports(want: tuple[tuple[str, str, int], ...], node: "NodeInfo") -> bool:
    used = node.used_ports
    return not used or not any(ports_conflict(used, ip, proto, port)
                               for ip, proto, port in want)


class NodePorts:
    name = NAME
    events = frozenset({EVENT_POD_DELETE, EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        return None if fits_ports(pod.host_ports, node) else _FAIL

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        n = len(cache.slots)
        ok = np.ones(n, dtype=bool)
        for ni in cache.slots:
            if ni is not None and ni.used_ports and not fits_ports(pod.host_ports, ni):
                ok[ni.idx] = False
        return NodeMask(ok, [(ERR_REASON, ~ok, False)])


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = NodePorts
