"""Zones and their eviction rate limits (nodelifecycle's zone states and
scheduler.RateLimitedTimedQueue).

Why: when many nodes fail at once the network, not the nodes, is likely at fault, so kube
slows down or stops tainting nodes per zone depending on how disrupted the zone is.
"""

from __future__ import annotations

from typing import Any

from navio.client import Clock, TokenBucket

__all__ = ["ZONE_LABELS", "compute_zone_state", "zone_key", "ZoneTainter"]

ZONE_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone")


def compute_zone_state(ready: list[bool], threshold: float) -> tuple[int, str]:
    """ComputeZoneState: (not-ready count, Normal | PartialDisruption | FullDisruption)."""
    not_ready = sum(1 for r in ready if not r)
    if not_ready and not_ready == len(ready):
        return not_ready, "FullDisruption"
    if not_ready > 2 and not_ready / len(ready) >= threshold:
        return not_ready, "PartialDisruption"
    return not_ready, "Normal"



def zone_key(node: dict[str, Any]) -> str:
    """nodetopology.GetZoneKey: "region:\\x00:zone", or "" without either label."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = (labels.get(k, "") for k in ZONE_LABELS)
    return f"{region}:\x00:{zone}" if region or zone else ""



class ZoneTainter:
    """scheduler.RateLimitedTimedQueue: unique node names, drained through a token bucket."""

    def __init__(self, qps: float, clock: Clock) -> None:
        self.clock = clock
        self.queue: dict[str, str] = {}
        self.qps = -1.0
        self.bucket: TokenBucket | None = None
        self.swap(qps)

    def swap(self, qps: float) -> None:
        if qps == self.qps:
            return
        was_waiting = self.bucket is not None and not self.bucket.try_take()
        self.qps = qps
        self.bucket = TokenBucket(qps, 1, clock=self.clock) if qps > 0 else None
        if was_waiting and self.bucket is not None:
            self.bucket.try_take()       # carry a spent token over, as SwapLimiter does

    def take(self) -> str | None:
        if not self.queue or self.bucket is None or not self.bucket.try_take():
            return None
        name = next(iter(self.queue))
        del self.queue[name]
        return name

