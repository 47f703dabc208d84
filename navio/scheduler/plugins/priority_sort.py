"""PrioritySort: the queue order — higher `priority` first, then earlier queue timestamp.

queuesort/priority_sort.go: Less(p1, p2) = p1.priority > p2.priority, or equal priority and
p1 entered the queue first. `sort_key` is the same order as a heap key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from navio.scheduler.queue import QueuedPodInfo

__all__ = ["NAME", "PrioritySort"]

NAME = "PrioritySort"


class PrioritySort:
    name = NAME

    def less(self, a: "QueuedPodInfo", b: "QueuedPodInfo") -> bool:
        pa, pb = a.pod.priority, b.pod.priority
        return pa > pb or (pa == pb and a.timestamp < b.timestamp)

    @staticmethod
    def sort_key(q: "QueuedPodInfo") -> tuple[int, float]:
        return (-q.pod.priority, q.timestamp)


if TYPE_CHECKING:
    from navio.scheduler.protocol import QueueSortPlugin

    _queue_sort_plugin: type[QueueSortPlugin] = PrioritySort
