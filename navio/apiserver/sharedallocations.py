"""Cluster IPs and node ports taken through other API servers on the same store.

Why: each API server hands out Service cluster IPs and node ports from an in-memory
allocator rebuilt from the stored Services at start. With several API servers on one etcd
(an HA control plane), a Service created through another server would otherwise stay unknown
to this one's allocator until it restarts, and the address could be handed out twice. So each
server follows the Services watch cache (fed by etcd, every server's writes included) and
reserves what it sees.

The store, not this follower, is what keeps allocations unique: every allocated value is a
claim key created with the store's create-if-absent guard (`allocationclaims`). Following only
keeps the in-memory allocators' suggestions good — values taken elsewhere are not offered, and
values released through another server (its Service deleted) are offered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from navio.apiserver.resources import Resources

__all__ = ["follow_shared_allocations"]

log = logging.getLogger(__name__)


def _reserve(resources: Resources, service: dict[str, Any]) -> None:
    spec = service.get("spec") or {}
    for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
        if ip and ip != "None" and resources.service_ips.contains(ip):
            with contextlib.suppress(ValueError):
                resources.service_ips.reserve(ip)
    for port in spec.get("ports") or ():
        if isinstance(port, dict) and port.get("nodePort"):
            with contextlib.suppress(ValueError):
                resources.node_ports.reserve(int(port["nodePort"]))


def _forget(resources: Resources, service: dict[str, Any]) -> None:
    """A deleted Service's values are free again in memory (its server deletes the claims; if
    one is still there, allocating it meets the claim and moves on)."""
    spec = service.get("spec") or {}
    for ip in spec.get("clusterIPs") or ():
        resources.service_ips.release(ip)
    for port in spec.get("ports") or ():
        if isinstance(port, dict) and port.get("nodePort"):
            resources.node_ports.release(int(port["nodePort"]))


def follow_shared_allocations(resources: Resources) -> "asyncio.Task[None]":
    """Start following; cancel the task to stop."""
    kind = resources.registry.resource("", "v1", "services")
    assert kind is not None
    cache = resources.cache(kind)

    async def run() -> None:
        while True:
            watcher, current = cache.watch_from_now("", None)
            for service in current:
                _reserve(resources, service)
            try:
                while (item := await watcher.next(None)) is not None:
                    _, event = item
                    if event.type != "DELETED":
                        _reserve(resources, event.object)
                    else:
                        _forget(resources, event.object)
            finally:
                watcher.close()
            await asyncio.sleep(0.1)   # the cache re-listed (or closed us): start over

    return asyncio.get_running_loop().create_task(run(), name="shared allocations")
