"""Cluster IPs and node ports taken through other API servers on the same store.

Why: each API server hands out Service cluster IPs and node ports from an in-memory
allocator rebuilt from the stored Services at start. With several API servers on one etcd
(an HA control plane), a Service created through another server would otherwise stay unknown
to this one's allocator until it restarts, and the address could be handed out twice. So each
server follows the Services watch cache (fed by etcd, every server's writes included) and
reserves what it sees.

Guarantees and limits: addresses and ports of every stored Service are reserved here within
the watch's delay; they are not released on deletes seen this way (a release could race with
this server's own allocation of the same address), so an address freed through another server
becomes free here at the next restart. Two servers allocating within that delay can still
pick the same address; kube-apiserver closes that gap with a compare-and-swap on a stored
range bitmap (`/registry/ranges/serviceips`), which navio does not keep yet.
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
            finally:
                watcher.close()
            await asyncio.sleep(0.1)   # the cache re-listed (or closed us): start over

    return asyncio.get_running_loop().create_task(run(), name="shared allocations")
