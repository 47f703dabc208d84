"""The kubelet's Prometheus metrics, named as kube's (pkg/kubelet/metrics), on :10250/metrics.

    kubelet_running_pods                    gauge: pods with a running sandbox (read when
                                            scraped)
    kubelet_pod_start_duration_seconds      histogram: from the kubelet first seeing a pod to
                                            the pod reported Running
    kubelet_node_name{node}                 gauge 1: the node's name

with the client's rest_client_* and workqueue_* and process_* in the same (default) registry.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

from prometheus_client import REGISTRY, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["PodStartTracker", "register_node", "exposition"]

# pkg/kubelet/metrics: PodStartDuration buckets
_BUCKETS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600,
            900, 1200, 1800, 2700, 3600)
_START = Histogram("kubelet_pod_start_duration_seconds",
                   "Duration in seconds from kubelet seeing a pod for the first time to the pod "
                   "starting to run", buckets=_BUCKETS)


class _NodeCollector:
    def __init__(self, node: str, running: Callable[[], int]) -> None:
        self.node, self.running = node, running

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pods = GaugeMetricFamily("kubelet_running_pods",
                                 "Number of pods that have a running pod sandbox")
        pods.add_metric([], self.running())
        yield pods
        name = GaugeMetricFamily("kubelet_node_name", "The node's name. The count is always 1.",
                                 labels=["node"])
        name.add_metric([self.node], 1)
        yield name


_collector: _NodeCollector | None = None


def register_node(node: str, running: Callable[[], int]) -> None:
    """Report this process's node (the latest one, when tests run several in one process)."""
    global _collector
    if _collector is None:
        _collector = _NodeCollector(node, running)
        REGISTRY.register(_collector)  # type: ignore[arg-type]
    else:
        _collector.node, _collector.running = node, running


def exposition() -> bytes:
    return generate_latest(REGISTRY)


class PodStartTracker:
    """First sight of each pod, and one observation when it is first reported Running."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._started: set[str] = set()

    def status(self, uid: str, phase: str | None, *, was_running: bool = False) -> None:
        """A status computed for the pod; `was_running`: the API already showed it Running
        when first seen (a restarted kubelet), so it is no start of ours."""
        if uid not in self._seen:
            self._seen[uid] = time.monotonic()
            if was_running:
                self._started.add(uid)
        first = self._seen[uid]
        if phase == "Running" and uid not in self._started:
            self._started.add(uid)
            _START.observe(time.monotonic() - first)

    def forget(self, uid: str) -> None:
        self._seen.pop(uid, None)
        self._started.discard(uid)
