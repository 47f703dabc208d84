"""The node's network settings around the pods' bridge (the agent's part, not the runtime's).

Why: PLATFORM.md — pods on the bridge need IP forwarding and `bridge-nf-call-iptables` in the
node namespace for Service traffic; the node's own connections to a cluster IP need a route
for the service CIDR (the proxy's DNAT happens after the route lookup, so without one they
fail with ENETUNREACH, and a blackhole route fails them with EINVAL); the node-local cluster
DNS needs its Service address (10.43.0.10) on the node, so that pods' queries to it are
delivered locally. And when the node namespace is the host's (a real node, which has a
default route out), packets for cluster or service addresses with no local route must be
dropped on the machine instead of leaving it: low-priority blackhole routes (metric 4000) do
that, while the bridge's own, more specific routes still win.

Guarantees:
- The service CIDR is routed to the pods' bridge (created here when missing, with the gateway
  address, as the runtime would create it): an un-DNATed packet for a service address can
  only reach the local bridge, never a route out. Metric 3000: below the blackhole's.
- `add_local_ips` puts the DNS Service addresses this node serves on `lo` as /32s, and
  `remove_local_ips` takes them away again.
- Best effort and idempotent (`replace`, existing addresses kept); failures are logged, never
  raised; blackhole routes are only added in the host namespace (a test's node netns has no
  route out already); nothing else in the host's routing is touched.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from navio.runtime import namespaces as ns

__all__ = ["prepare_node_network", "add_local_ips", "remove_local_ips", "bridge_gateway",
           "run_netlink"]

log = logging.getLogger(__name__)

_METRIC = 4000
_SERVICE_ROUTE_METRIC = 3000
_SYSCTLS = (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1"))


def bridge_gateway(pod_cidr: str) -> tuple[str, int]:
    """The bridge's address (the pod CIDR's first) and prefix length."""
    net = ipaddress.IPv4Network(pod_cidr)
    return str(net.network_address + 1), net.prefixlen


def _write_sysctls() -> list[str]:
    done = []
    for key, value in _SYSCTLS:
        path = f"/proc/sys/{key}"
        try:
            with open(path, "w") as f:
                f.write(value)
            done.append(key)
        except OSError:
            pass
    return done


def _netlink(node_netns: str | None, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run `work(ipr)` with an AsyncIPRoute of the node namespace (blocking)."""
    from pyroute2 import AsyncIPRoute

    async def main() -> None:
        ipr = (AsyncIPRoute(netns=node_netns, groups=0, flags=0) if node_netns
               else AsyncIPRoute(groups=0))
        async with ipr:
            await work(ipr)

    loop = asyncio.SelectorEventLoop()     # pyroute2 needs a stdlib loop, not uvloop
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


run_netlink = _netlink     # for the agent's other netlink users (host-gw routes)


def _ignore_exists(exc: Exception) -> bool:
    return getattr(exc, "code", None) == errno.EEXIST


async def _ensure_bridge(ipr: Any, bridge: str, gateway: str, prefixlen: int) -> int:
    found = await ipr.link_lookup(ifname=bridge)
    if not found:
        try:
            await ipr.link("add", ifname=bridge, kind="bridge")
        except Exception as exc:
            if not _ignore_exists(exc):
                raise
        found = await ipr.link_lookup(ifname=bridge)
    index = int(found[0])
    have = {a.get("address") async for a in await ipr.addr("dump", index=index)}
    if gateway not in have:
        try:
            await ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        except Exception as exc:
            if not _ignore_exists(exc):
                raise
    await ipr.link("set", index=index, state="up")
    return index


async def _add_local_ips(ipr: Any, ips: tuple[str, ...]) -> None:
    lo = int((await ipr.link_lookup(ifname="lo"))[0])
    have = {a.get("address") async for a in await ipr.addr("dump", index=lo)}
    for ip in ips:
        if ip not in have:
            try:
                await ipr.addr("add", index=lo, address=ip, prefixlen=32)
            except Exception as exc:
                if not _ignore_exists(exc):
                    raise


def _routes(node_netns: str | None, *, host: bool, cluster_cidr: str, service_cidr: str,
            bridge: str, gateway: str, prefixlen: int) -> None:
    async def work(ipr: Any) -> None:
        if host:
            for cidr in (cluster_cidr, service_cidr):
                await ipr.route("replace", dst=cidr, type="blackhole", priority=_METRIC)
        index = await _ensure_bridge(ipr, bridge, gateway, prefixlen)
        await ipr.route("replace", dst=service_cidr, oif=index, priority=_SERVICE_ROUTE_METRIC,
                        prefsrc=gateway)
    _netlink(node_netns, work)


async def prepare_node_network(node_netns: str | None, cluster_cidr: str, service_cidr: str,
                               *, bridge: str = "navio0", pod_cidr: str = "10.42.0.0/24"
                               ) -> None:
    gateway, prefixlen = bridge_gateway(pod_cidr)
    try:
        if node_netns:
            done = await asyncio.to_thread(ns.run_in_netns,
                                           os.path.join(ns.NETNS_DIR, node_netns), _write_sysctls)
        else:
            done = await asyncio.to_thread(_write_sysctls)
        log.info("node network sysctls set", extra={"sysctls": ",".join(done) or "none",
                                                    "netns": node_netns or "host"})
        await asyncio.to_thread(_routes, node_netns, host=not node_netns,
                                cluster_cidr=cluster_cidr, service_cidr=service_cidr,
                                bridge=bridge, gateway=gateway, prefixlen=prefixlen)
        log.info("node routes set", extra={
            "netns": node_netns or "host", "service_route": f"{service_cidr} dev {bridge}",
            "blackholes": "" if node_netns else f"{cluster_cidr},{service_cidr}"})
    except Exception:
        log.warning("node network setup failed", exc_info=True)


async def add_local_ips(node_netns: str | None, ips: tuple[str, ...]) -> None:
    """Put `ips` on the node's `lo` as /32s (the DNS Service addresses this node serves), so
    that pods' packets to them are delivered locally. Raises on failure."""
    if ips:
        await asyncio.to_thread(_netlink, node_netns, lambda ipr: _add_local_ips(ipr, ips))
        log.info("local service addresses set", extra={"netns": node_netns or "host",
                                                       "ips": ",".join(ips)})


async def remove_local_ips(node_netns: str | None, ips: tuple[str, ...]) -> None:
    """Take `ips` off the node's `lo` again (on a clean shutdown); best effort."""
    if not ips or (node_netns and not os.path.exists(os.path.join(ns.NETNS_DIR, node_netns))):
        return

    async def work(ipr: Any) -> None:
        lo = int((await ipr.link_lookup(ifname="lo"))[0])
        for ip in ips:
            try:
                await ipr.addr("del", index=lo, address=ip, prefixlen=32)
            except Exception:
                pass
    try:
        await asyncio.to_thread(_netlink, node_netns, work)
    except Exception:
        log.warning("removing local addresses failed", exc_info=True)
