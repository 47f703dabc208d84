"""Routes to other nodes' pods: host-gw (via their InternalIP) or the VXLAN overlay.

Why: with one pod range per node (node IPAM), a pod's packet for a pod on another node leaves
through its own node's bridge gateway; when the nodes share a link (flannel's host-gw
backend) a plain route `<their podCIDR> via <their InternalIP>` in each node's network
namespace (the host's, or `--node-netns`) is all it takes. The packet keeps the pod's source
address both ways (nothing here rewrites it; only the proxy masquerades Service traffic).

Guarantees:
- An informer on Nodes drives the routes: a Node with `spec.podCIDR[s]` and an InternalIP
  gets its routes within a moment of appearing; changed addresses replace them; a deleted
  Node's routes are removed, and so are those of a Node the control plane found silent
  (Ready `Unknown`: its host went away) until it reports again. This node's own range is
  never routed (its bridge has it).
- Routes carry their own protocol number (`ROUTE_PROTO`), so each pass also removes routes of
  ours that no Node explains any more (e.g. a Node deleted while the agent was down), and
  nothing else in the namespace's routing table is touched.
- A failed netlink call is retried; `stop()` removes every route this agent installed.
- With `backend="vxlan"` (nodes on different subnets; vxlan.py) the Node's annotations
  announce this node's VTEP first, and each pass keeps the `navio.1` device, its FDB and
  neighbour entries and the onlink routes through it equal to the other vxlan Nodes';
  `stop()` also removes the device.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from navio.api import errors
from navio.client import NODES, Client, Informer, TransportError
from navio.kubelet import vxlan
from navio.kubelet.netsetup import run_netlink

__all__ = ["NodeRoutes", "desired_routes", "reachable", "ROUTE_PROTO", "BACKENDS"]

log = logging.getLogger(__name__)

ROUTE_PROTO = 78          # rtm_protocol of navio's host-gw routes (unassigned in rt_protos)
_RETRY = 2.0

BACKENDS = ("host-gw", "vxlan")

Routes = dict[str, str]   # pod CIDR -> gateway (the node's InternalIP)
# pod CIDR -> (gateway, device index of an onlink route through the vxlan device, or None)
_Installed = dict[str, tuple[str, int | None]]


def _internal_ip(node: dict[str, Any]) -> str | None:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == "InternalIP" and a.get("address"):
            try:
                if ipaddress.ip_address(a["address"]).version == 4:
                    return str(a["address"])
            except ValueError:
                continue
    return None


def reachable(node: dict[str, Any]) -> bool:
    """False once node lifecycle has marked the Node silent (Ready Unknown: its kubelet
    stopped reporting): its pods are being replaced elsewhere, so its routes are withdrawn
    (issue 16) and come back when it reports Ready again. A Node that has not reported yet
    keeps them."""
    ready = next((c for c in (node.get("status") or {}).get("conditions") or ()
                  if c.get("type") == "Ready"), None)
    return ready is None or ready.get("status") != "Unknown"


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
    """Keeps the node namespace's routes to other nodes' pods equal to what the Nodes say:
    `desired_routes` (host-gw) or `vxlan.desired_vteps` (vxlan)."""

    def __init__(self, client: Client, node_name: str, node_netns: str | None, *,
                 pod_cidr: str | None = None, node_ip: str | None = None,
                 backend: str = "host-gw") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"pod network backend must be one of {', '.join(BACKENDS)}")
        if backend == "vxlan" and not (pod_cidr and node_ip):
            raise ValueError("the vxlan backend needs this node's pod CIDR and address")
        self.backend = backend
        self.client = client
        self.node_name = node_name
        self.pod_cidr, self.node_ip = pod_cidr, node_ip
        self.node_netns = node_netns
        self.nodes = Informer(client, NODES)
        self.nodes.add_handler(on_add=lambda n: self._kick(), on_delete=lambda n: self._kick(),
                               on_update=lambda old, new: self._kick())
        self.installed: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self.nodes.start()
        self._task = asyncio.create_task(self._loop(), name=f"{self.backend} routes")

    async def _announce(self) -> bool:
        """Publish this node's VTEP in its Node's annotations; False if that failed."""
        try:
            await self.client.patch(NODES, self.node_name, {"metadata": {
                "annotations": vxlan.node_annotations(str(self.node_ip))}})
            return True
        except (errors.ApiError, TransportError) as exc:
            log.warning("vxlan annotations not written; retrying",
                        extra={"node": self.node_name, "error": str(exc)[:200]})
            return False

    def _announced(self) -> bool:
        mine = self.nodes.get(self.node_name)
        notes = ((mine or {}).get("metadata") or {}).get("annotations") or {}
        return all(notes.get(k) == v
                   for k, v in vxlan.node_annotations(str(self.node_ip)).items())

    def _work(self) -> tuple[dict[str, str], Any]:
        """(gateway per pod CIDR, for the log; the netlink work making it so)."""
        nodes = [n for n in self.nodes.list() if reachable(n)]
        if self.backend == "vxlan":
            vteps = vxlan.desired_vteps(nodes, self.node_name, local_cidr=self.pod_cidr,
                                        local_ip=self.node_ip)
            return ({c: f"{v.gateway} dev {vxlan.DEVICE} ({v.public_ip})"
                     for c, v in vteps.items()},
                    lambda ipr: _sync_vxlan(ipr, vteps, str(self.node_ip),
                                            str(self.pod_cidr)))
        want = desired_routes(nodes, self.node_name, local_cidr=self.pod_cidr,
                              local_ip=self.node_ip)
        return want, lambda ipr: _sync(ipr, {c: (g, None) for c, g in want.items()})

    async def _loop(self) -> None:
        while not await self.nodes.wait_synced(60):
            log.warning("node list not synced yet; pod network routes wait")
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.nodes.has_synced():
                continue
            # (at start, and again if the Node was made anew)
            retry = (self.backend == "vxlan" and not self._announced()
                     and not await self._announce())
            want, work = self._work()
            try:
                await asyncio.to_thread(run_netlink, self.node_netns, work)
                if want != self.installed:
                    log.info(f"{self.backend} routes synced", extra={
                        "netns": self.node_netns or "host",
                        "routes": ",".join(f"{c} via {g}" for c, g in sorted(want.items()))})
                self.installed = want
                if retry:
                    await asyncio.sleep(_RETRY)
                    self._wake.set()
            except Exception:
                log.warning(f"{self.backend} route sync failed; retrying", exc_info=True)
                await asyncio.sleep(_RETRY)
                self._wake.set()

    async def stop(self) -> None:
        """Stop watching Nodes and remove every route of ours (a clean shutdown)."""
        await self.nodes.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

        async def remove(ipr: Any) -> None:
            await _sync(ipr, {})
            if self.backend == "vxlan":
                await vxlan.remove_device(ipr)
        try:
            await asyncio.to_thread(run_netlink, self.node_netns, remove)
            self.installed = {}
            log.info(f"{self.backend} routes removed", extra={"netns": self.node_netns or "host"})
        except Exception:
            log.warning(f"removing {self.backend} routes failed", exc_info=True)


async def _sync_vxlan(ipr: Any, vteps: dict[str, vxlan.Vtep], node_ip: str,
                      pod_cidr: str) -> None:
    index = await vxlan.ensure_device(ipr, node_ip, pod_cidr, await vxlan.pod_mtu(ipr, node_ip))
    await vxlan.sync_neighbours(ipr, index, vteps)
    await _sync(ipr, {c: (v.gateway, index) for c, v in vteps.items()})


async def _sync(ipr: Any, want: _Installed) -> None:
    """Make the main table's routes of protocol ROUTE_PROTO exactly `want` (a gateway, and
    the device of an onlink route). Every route is tried; the first failure is raised
    afterwards (the caller retries)."""
    failed: Exception | None = None
    have: _Installed = {}
    async for r in await ipr.route("dump", table=254, proto=ROUTE_PROTO):
        if r.get("proto") != ROUTE_PROTO:
            continue
        dst = f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
        onlink = bool(r["flags"] & vxlan.ONLINK)
        have[dst] = (r.get_attr("RTA_GATEWAY") or "", r.get_attr("RTA_OIF") if onlink else None)
    for dst, got in have.items():
        if want.get(dst) != got:
            try:
                await ipr.route("del", dst=dst, table=254, proto=ROUTE_PROTO)
            except Exception as exc:
                failed = failed or exc
    for dst, (gw, oif) in want.items():
        if have.get(dst) != (gw, oif):
            extra: dict[str, Any] = {} if oif is None else {"oif": oif, "flags": vxlan.ONLINK}
            try:
                await ipr.route("replace", dst=dst, gateway=gw, table=254, proto=ROUTE_PROTO,
                                **extra)
            except Exception as exc:     # e.g. a gateway not on any link of this namespace
                log.warning("pod network route not added", extra={"dst": dst, "via": gw,
                                                                   "error": str(exc)})
                failed = failed or exc
    if failed is not None:
        raise failed
