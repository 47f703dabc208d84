"""The simulator: N simulated nodes in one process, their pods, and failure on demand.

Why: scale tests need thousands of nodes that behave, through the API, like kubelets (kwok,
kubemark), on one small machine. This ties the pieces together and is the Python API tests
use (`Simulator.fail`, `recover`, `state`); `navio sim` and its control endpoint wrap it.

Guarantees:
- Nodes register through the paced heartbeat loop (so registering 5,000 nodes is paced like
  their Leases are) and become Ready at once; `registered` is set when all have.
- One watch of the simulated Nodes (label `type=navio-sim`) notices a healthy node that the
  API shows not Ready (the node lifecycle controller marked it Unknown while the sim was
  slow, or it was just adopted) and has its status re-reported at the next beat, and notices
  a deleted Node, which registers again, as the kubelet does.
- `fail(nodes)` stops the nodes' heartbeats and their pod handling; `recover(nodes)` restarts
  both, reports Ready again and starts the pods that were bound meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Iterable

from navio.api import errors
from navio.client import NODES, Client, TransportError, WatchStreamError
from navio.sim.heartbeat import Heartbeats
from navio.sim.nodes import SIM_LABEL, NodeShape, SimNode
from navio.sim.pods import PodSimulator

__all__ = ["Simulator", "parse_fraction"]

log = logging.getLogger(__name__)


def parse_fraction(text: str, total: int) -> int:
    """`5%` or `0.05` of `total` nodes, or a plain count `12`; at least 1 when non-zero."""
    text = text.strip()
    try:
        if text.endswith("%"):
            frac = float(text[:-1]) / 100.0
        elif "." in text:
            frac = float(text)
        else:
            return max(0, min(int(text), total))
    except ValueError:
        raise ValueError(f"expected a percentage (5%), a fraction (0.05) or a count, "
                         f"got {text!r}") from None
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"fraction {text!r} is not between 0 and 100%")
    return min(total, max(1, round(total * frac))) if frac > 0 else 0


class Simulator:
    def __init__(self, client: Client, count: int, *, shape: NodeShape | None = None,
                 startup_delay: float = 0.0, lease_interval: float = 10.0,
                 status_interval: float = 300.0, workers: int = 32, in_flight: int = 64,
                 seed: int | None = None) -> None:
        self.client = client
        self.shape = shape or NodeShape()
        if count > self.shape.max_nodes:
            raise ValueError(f"{count} nodes do not fit: the cluster CIDR has room for "
                             f"{self.shape.max_nodes} node CIDRs")
        self.nodes = [SimNode(i) for i in range(count)]
        self.heartbeats = Heartbeats(client, self.shape, lambda: self.nodes,
                                     lease_interval=lease_interval,
                                     status_interval=status_interval, in_flight=in_flight)
        self.pods = PodSimulator(client, self.shape, self.node_of,
                                 startup_delay=startup_delay, workers=workers)
        self.registered = asyncio.Event()
        self._rng = random.Random(seed)

    def node_of(self, name: str) -> SimNode | None:
        prefix = self.shape.prefix + "-"
        if not name.startswith(prefix):
            return None
        digits = name[len(prefix):]
        if not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
            return None
        index = int(digits)
        return self.nodes[index] if index < len(self.nodes) else None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.heartbeats.run())
            tg.create_task(self._watch_registered())
            tg.create_task(self._watch_nodes())
            tg.create_task(self.pods.run())

    async def _watch_registered(self) -> None:
        while not all(n.uid for n in self.nodes):
            await asyncio.sleep(0.2)
        log.info("simulated nodes registered", extra={"nodes": len(self.nodes)})
        self.registered.set()

    async def _watch_nodes(self) -> None:
        """One watch for all simulated Nodes: re-report a healthy node the API shows not
        Ready; register again a node that was deleted."""
        selector = f"{SIM_LABEL[0]}={SIM_LABEL[1]}"
        rv = ""
        while True:
            try:
                if not rv:
                    listed = await self.client.list(NODES, label_selector=selector)
                    for obj in listed.get("items") or ():
                        self._node_seen(obj)
                    rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                async with self.client.watch(NODES, label_selector=selector,
                                             resource_version=rv,
                                             timeout_seconds=300) as stream:
                    async for ev in stream:
                        if ev.type == "DELETED":
                            self._node_gone(ev.object)
                        elif ev.type != "BOOKMARK":
                            self._node_seen(ev.object)
                        rv = str(ev.object.get("metadata", {}).get("resourceVersion") or rv)
            except asyncio.CancelledError:
                raise
            except errors.Expired:
                rv = ""
            except (errors.ApiError, TransportError, WatchStreamError) as exc:
                log.info("sim node watch interrupted", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)

    def _node_seen(self, obj: dict[str, Any]) -> None:
        node = self.node_of(str(obj.get("metadata", {}).get("name", "")))
        if node is None or node.failed or not node.uid:
            return
        if obj["metadata"].get("uid") != node.uid:
            return
        for c in (obj.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready" and c.get("status") != "True":
                node.status_at = 0.0          # due at the next beat
                if c.get("status") == "Unknown":
                    node.ready_since = time.time()

    def _node_gone(self, obj: dict[str, Any]) -> None:
        node = self.node_of(str(obj.get("metadata", {}).get("name", "")))
        if node is not None and obj["metadata"].get("uid") == node.uid:
            node.uid = ""                     # registers again at its next beat
            node.lease_rv = ""

    # ---- failure on demand --------------------------------------------------------------

    def _resolve(self, nodes: Iterable[str | int | SimNode]) -> list[SimNode]:
        out = []
        for n in nodes:
            node = n if isinstance(n, SimNode) else \
                self.nodes[n] if isinstance(n, int) else self.node_of(n)
            if node is None:
                raise KeyError(f"no simulated node {n!r}")
            out.append(node)
        return out

    def fail(self, nodes: Iterable[str | int | SimNode]) -> list[str]:
        """Stop these nodes' heartbeats (and their kubelets' work); their names."""
        picked = self._resolve(nodes)
        for node in picked:
            node.failed = True
        if picked:
            log.info("simulated nodes failed", extra={"nodes": len(picked)})
        return [self.shape.name(n.index) for n in picked]

    def fail_random(self, count: int) -> list[str]:
        """Fail `count` healthy nodes picked at random (seeded by `seed`)."""
        healthy = [n for n in self.nodes if not n.failed]
        return self.fail(self._rng.sample(healthy, min(count, len(healthy))))

    def recover(self, nodes: Iterable[str | int | SimNode] | None = None) -> list[str]:
        """Restart heartbeats of these (default: all failed) nodes; report them Ready."""
        picked = [n for n in self.nodes if n.failed] if nodes is None else \
            self._resolve(nodes)
        for node in picked:
            if node.failed:
                node.failed = False
                node.ready_since = time.time()
                node.status_at = 0.0
                self.pods.node_recovered(node)
        return [self.shape.name(n.index) for n in picked]

    def state(self) -> dict[str, Any]:
        """A summary for the control endpoint and tests."""
        return {"nodes": len(self.nodes),
                "registered": sum(1 for n in self.nodes if n.uid),
                "failed": [self.shape.name(n.index) for n in self.nodes if n.failed],
                "pods": len(self.pods.pods),
                "running": sum(n.pods for n in self.nodes),
                "leaseRenewals": self.heartbeats.renewals,
                "heartbeatFailures": self.heartbeats.failures}
