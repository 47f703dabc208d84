"""Node heartbeats of every simulated node, paced: Lease renewals and node status reports.

Why: kube's kubelet renews its Lease every 10 s (`nodeLeaseDurationSeconds` 40 ÷ 4) and
writes node status only on change or every `nodeStatusReportFrequency` (5 min). 5,000 nodes
renewing in step would hit the API server with 5,000 writes at once every 10 s; spread evenly
they are a steady 500 writes/s. So one loop walks the nodes round-robin in small ticks,
`ceil(N × tick ÷ interval)` nodes per tick, with a bounded number of writes in flight (when
the server is slower than the pace, the loop waits instead of piling up requests).

Guarantees: a failed node is skipped (no Lease renewal, no status), which is the whole of
a simulated failure; a node's status is written when it is due (every `status_interval`) or
forced (recovery); a Lease write that conflicts re-reads the Lease and retries once, a
missing Lease is created again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

from navio.api import errors
from navio.client import LEASES, NODES, Client, TransportError
from navio.sim.nodes import LEASE_NAMESPACE, NodeShape, SimNode

__all__ = ["Heartbeats"]

log = logging.getLogger(__name__)

_TICK = 0.1


class Heartbeats:
    def __init__(self, client: Client, shape: NodeShape, nodes: Callable[[], list[SimNode]], *,
                 lease_interval: float = 10.0, status_interval: float = 300.0,
                 in_flight: int = 64) -> None:
        self.client = client
        self.shape = shape
        self.nodes = nodes
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.renewals = 0
        self.failures = 0

    async def run(self) -> None:
        cursor = 0
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            nodes = self.nodes()
            if nodes:
                per_tick = max(1, math.ceil(len(nodes) * _TICK / self.lease_interval))
                for _ in range(min(per_tick, len(nodes))):
                    cursor %= len(nodes)
                    node = nodes[cursor]
                    cursor += 1
                    if node.failed:
                        continue
                    await self._slots.acquire()
                    task = asyncio.create_task(self._beat(node))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            next_tick += _TICK
            delay = next_tick - loop.time()
            if delay < -self.lease_interval:      # far behind: do not try to catch up
                next_tick = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))

    async def _beat(self, node: SimNode) -> None:
        try:
            if not node.uid:
                await self.register(node)
            await self.renew(node)
            if time.monotonic() - node.status_at >= self.status_interval:
                await self.report(node)
        except (errors.ApiError, TransportError) as exc:
            self.failures += 1
            log.debug("sim heartbeat failed", extra={"node": self.shape.name(node.index),
                                                     "error": type(exc).__name__})
        finally:
            self._slots.release()

    async def register(self, node: SimNode) -> None:
        """Create the Node (or adopt the one a previous sim left) and report it Ready."""
        now = time.time()
        node.ready_since = node.ready_since or now
        try:
            obj = await self.client.create(NODES, self.shape.node_body(node))
            node.status_at = time.monotonic()
        except errors.AlreadyExists:
            obj = await self.client.get(NODES, self.shape.name(node.index))
            node.status_at = 0.0          # adopted: report our status at once
        node.uid = str(obj["metadata"].get("uid", ""))
        node.lease_rv = ""

    async def renew(self, node: SimNode) -> None:
        """Renew (or create) the node's Lease once."""
        name = self.shape.name(node.index)
        for _ in range(2):
            try:
                if not node.lease_rv:
                    lease = await self.client.create(LEASES, self.shape.lease_body(node),
                                                     LEASE_NAMESPACE)
                else:
                    lease = await self.client.update(LEASES, self.shape.lease_body(node),
                                                     LEASE_NAMESPACE)
            except errors.AlreadyExists:
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
                node.lease_rv = str(lease["metadata"].get("resourceVersion", ""))
                continue
            except errors.Conflict:
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
                node.lease_rv = str(lease["metadata"].get("resourceVersion", ""))
                continue
            except errors.NotFound:
                node.lease_rv = ""
                continue
            node.lease_rv = str(lease["metadata"].get("resourceVersion", ""))
            self.renewals += 1
            return

    async def report(self, node: SimNode) -> None:
        """Write the node's status (conditions with a fresh heartbeat), as a merge patch."""
        now = time.time()
        if not node.ready_since:
            node.ready_since = now
        await self.client.patch_subresource(NODES, self.shape.name(node.index), "status",
                                            {"status": self.shape.node_status(node, now)})
        node.status_at = time.monotonic()
