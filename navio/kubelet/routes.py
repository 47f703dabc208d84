"""host-gw routing: every other node's pod CIDR is routed via that node's InternalIP.

Why: with one pod range per node (node IPAM), a pod's packet for a pod on another node leaves
through its own node's bridge gateway; when the nodes share a link (flannel's host-gw
backend) a plain route `<their podCIDR> via <their InternalIP>` in each node's network
namespace (the host's, or `--node-netns`) is all it takes. The packet keeps the pod's source
address both ways (nothing here rewrites it; only the proxy masquerades Service traffic).

Guarantees:
- An informer on Nodes drives the routes: a Node with `spec.podCIDR[s]` and an InternalIP
  gets its routes within a moment of appearing; changed addresses replace them; a deleted
  Node's routes are removed. This node's own range is never routed (its bridge has it).
- Routes carry their own protocol number (`ROUTE_PROTO`), so each pass also removes routes of
  ours that no Node explains any more (e.g. a Node deleted while the agent was down), and
  nothing else in the namespace's routing table is touched.
- A failed netlink call is retried; `stop()` removes every route this agent installed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from navio.client import NODES, Client, Informer
from navio.kubelet.netsetup import run_netlink

__all__ = ["NodeRoutes", "desired_routes", "ROUTE_PROTO"]

log = logging.getLogger(__name__)

ROUTE_PROTO = 78          # rtm_protocol of navio's host-gw routes (unassigned in rt_protos)
_RETRY = 2.0

Routes = dict[str, str]   # pod CIDR -> gateway (the node's InternalIP)


def _internal_ip(node: dict[str, Any]) -> str | None:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == "InternalIP" and a.get("address"):
            try:
                if ipaddress.ip_address(a["address"]).version == 4:
                    return str(a["address"])
            except ValueError:
                continue
    return None


def desired_routes(nodes: list[dict[str, Any]], self_name: str, *,
                   local_cidr: str | None = None, local_ip: str | None = None) -> Routes:
    """Pod CIDR -> InternalIP of every other node that has both (IPv4 only). A range that
    overlaps this node's own, or a gateway that is loopback or this node's address, is
    never routed: such Nodes (simulated ones, a misconfiguration) cannot be reached so."""
    mine = ipaddress.ip_network(local_cidr, strict=False) if local_cidr else None
    out: Routes = {}
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        if meta.get("name") == self_name:
            continue
        gw = _internal_ip(node)
        cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        if gw is None or gw == local_ip or ipaddress.ip_address(gw).is_loopback:
            continue
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if net.version == 4 and not (mine is not None and net.overlaps(mine)):
                out[str(net)] = gw
    return out


class NodeRoutes:
    """Keeps the node namespace's host-gw routes equal to `desired_routes(Nodes)`."""

    def __init__(self, client: Client, node_name: str, node_netns: str | None, *,
                 pod_cidr: str | None = None, node_ip: str | None = None) -> None:
        self.node_name = node_name
        self.pod_cidr, self.node_ip = pod_cidr, node_ip
        self.node_netns = node_netns
        self.nodes = Informer(client, NODES)
        self.nodes.add_handler(on_add=lambda n: self._kick(), on_delete=lambda n: self._kick(),
                               on_update=lambda old, new: self._kick())
        self.installed: Routes = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self.nodes.start()
        self._task = asyncio.create_task(self._loop(), name="host-gw routes")

    async def _loop(self) -> None:
        while not await self.nodes.wait_synced(60):
            log.warning("node list not synced yet; host-gw routes wait")
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.nodes.has_synced():
                continue
            want = desired_routes(self.nodes.list(), self.node_name,
                                  local_cidr=self.pod_cidr, local_ip=self.node_ip)
            try:
                await asyncio.to_thread(run_netlink, self.node_netns,
                                        lambda ipr: _sync(ipr, want))
                if want != self.installed:
                    log.info("host-gw routes synced", extra={
                        "netns": self.node_netns or "host",
                        "routes": ",".join(f"{c} via {g}" for c, g in sorted(want.items()))})
                self.installed = want
            except Exception:
                log.warning("host-gw route sync failed; retrying", exc_info=True)
                await asyncio.sleep(_RETRY)
                self._wake.set()

    async def stop(self) -> None:
        """Stop watching Nodes and remove every route of ours (a clean shutdown)."""
        await self.nodes.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await asyncio.to_thread(run_netlink, self.node_netns, lambda ipr: _sync(ipr, {}))
            self.installed = {}
            log.info("host-gw routes removed", extra={"netns": self.node_netns or "host"})
        except Exception:
            log.warning("removing host-gw routes failed", exc_info=True)


async def _sync(ipr: Any, want: Routes) -> None:
    """Make the main table's routes of protocol ROUTE_PROTO exactly `want`. Every route is
    tried; the first failure is raised afterwards (the caller retries)."""
    failed: Exception | None = None
    have: Routes = {}
    async for r in await ipr.route("dump", table=254, proto=ROUTE_PROTO):
        if r.get("proto") != ROUTE_PROTO:
            continue
        dst = f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
        have[dst] = r.get_attr("RTA_GATEWAY") or ""
    for dst, gw in have.items():
        if want.get(dst) != gw:
            try:
                await ipr.route("del", dst=dst, table=254, proto=ROUTE_PROTO)
            except Exception as exc:
                failed = failed or exc
    for dst, gw in want.items():
        if have.get(dst) != gw:
            try:
                await ipr.route("replace", dst=dst, gateway=gw, table=254, proto=ROUTE_PROTO)
            except Exception as exc:     # e.g. a gateway not on any link of this namespace
                log.warning("host-gw route not added", extra={"dst": dst, "via": gw,
                                                               "error": str(exc)})
                failed = failed or exc
    if failed is not None:
        raise failed
