"""Nominated pods: pods that preempted others and wait for room on a node they were promised.

Why: between a preemption and the victims' departure, the preemptor's place must not be taken
by a lower-priority pod; kube-scheduler's PodNominator records `status.nominatedNodeName`, and
filters count nominated pods of equal or higher priority as if already on the node.

Guarantees: a pod is nominated to at most one node; `pods_on(node, priority, exclude)` returns
the pods nominated there with priority >= `priority`, other than `exclude`.
"""

from __future__ import annotations

from navio.scheduler.podinfo import PodInfo

__all__ = ["Nominator"]


class Nominator:
    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def add(self, pi: PodInfo, node: str) -> None:
        self.delete(pi.key)
        if node:
            self._by_node.setdefault(node, {})[pi.key] = pi
            self._node_of[pi.key] = node

    def delete(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is not None:
            pods = self._by_node.get(node)
            if pods is not None:
                pods.pop(key, None)
                if not pods:
                    del self._by_node[node]

    def node_of(self, key: str) -> str:
        return self._node_of.get(key, "")

    def pods_on(self, node: str, priority: int | None = None, exclude: str = ""
                ) -> list[PodInfo]:
        pods = self._by_node.get(node)
        if not pods:
            return []
        return [p for k, p in pods.items()
                if k != exclude and (priority is None or p.priority >= priority)]

    def nodes(self) -> list[str]:
        return list(self._by_node)

    def __bool__(self) -> bool:
        return bool(self._by_node)
