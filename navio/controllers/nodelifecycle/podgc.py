"""Pods of deleted nodes: the orphan half of kube-controller-manager's pod garbage
collector (pkg/controller/podgc gcOrphaned, v1.32).

Guarantee: pods bound to a node that has been gone for `pod-gc-quarantine` (40 s) and that
the API server confirms gone are marked Failed with DisruptionTarget "DeletionByPodGC" and
deleted without grace.
"""

from __future__ import annotations

import logging
from typing import Any

from navio.api import errors
from navio.client import NODES, PODS, Clock, Informer
from navio.controllers.nodelifecycle.times import timestamp

__all__ = ["OrphanPodCollector"]

log = logging.getLogger(__name__)


class OrphanPodCollector:
    """Remembers since when each missing node has pods; run `collect` every pass."""

    def __init__(self, client: Any, pods: Informer, clock: Clock, quarantine: float) -> None:
        self.client, self.pods, self.clock, self.quarantine = client, pods, clock, quarantine
        self._missing: dict[str, float] = {}

    async def collect(self, names: set[str]) -> None:
        """Force-delete pods bound to nodes missing from `names` for the quarantine."""
        now = self.clock.now()
        orphans: dict[str, list[dict[str, Any]]] = {}
        for pod in self.pods.list():
            node = (pod.get("spec") or {}).get("nodeName")
            if node and node not in names:
                orphans.setdefault(node, []).append(pod)
        self._missing = {n: self._missing.get(n, now) for n in orphans}
        for node, pods in orphans.items():
            if now - self._missing[node] < self.quarantine:
                continue
            try:
                await self.client.get(NODES, node)
                continue                  # the cache is behind: the node exists
            except errors.NotFound:
                pass
            for pod in pods:
                await self._force_delete(pod)

    async def _force_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        status: dict[str, Any] = {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": timestamp()}]}
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            status["phase"] = "Failed"
        try:
            await self.client.patch_subresource(PODS, meta["name"], "status",
                                                {"status": status}, meta["namespace"],
                                                patch_type="strategic")
            await self.client.delete(PODS, meta["name"], meta["namespace"],
                                     grace_period_seconds=0)
            log.info("orphaned pod deleted", extra={"pod": f"{meta['namespace']}/{meta['name']}",
                                                    "node": pod["spec"]["nodeName"]})
        except errors.NotFound:
            pass

