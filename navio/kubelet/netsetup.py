"""The node's network settings around the pods' bridge (the agent's part, not the runtime's).

Why: PLATFORM.md — pods on the bridge need IP forwarding and `bridge-nf-call-iptables` in the
node namespace for Service traffic; and when the node namespace is the host's (a real node,
which has a default route out), packets for cluster or service addresses with no local
route must be dropped on the machine instead of leaving it: low-priority blackhole routes
(metric 4000) do that, while the bridge's own, more specific route still wins.

Guarantees: best effort and idempotent (`replace`); failures are logged, never raised;
blackhole routes are only added in the host namespace (a test's node netns has no route out
already); nothing else in the host's routing is touched.
"""

from __future__ import annotations

import asyncio
import logging
import os

from navio.runtime import namespaces as ns

__all__ = ["prepare_node_network"]

log = logging.getLogger(__name__)

_METRIC = 4000
_SYSCTLS = (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1"))


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


def _blackholes(cidrs: tuple[str, ...]) -> None:
    from pyroute2 import AsyncIPRoute

    async def work() -> None:
        async with AsyncIPRoute() as ipr:
            for cidr in cidrs:
                await ipr.route("replace", dst=cidr, type="blackhole", priority=_METRIC)

    loop = asyncio.SelectorEventLoop()     # pyroute2 needs a stdlib loop, not uvloop
    try:
        loop.run_until_complete(work())
    finally:
        loop.close()


async def prepare_node_network(node_netns: str | None, cluster_cidr: str,
                               service_cidr: str) -> None:
    try:
        if node_netns:
            done = await asyncio.to_thread(ns.run_in_netns,
                                           os.path.join(ns.NETNS_DIR, node_netns), _write_sysctls)
        else:
            done = await asyncio.to_thread(_write_sysctls)
        log.info("node network sysctls set", extra={"sysctls": ",".join(done) or "none",
                                                    "netns": node_netns or "host"})
        if not node_netns:
            await asyncio.to_thread(_blackholes, (cluster_cidr, service_cidr))
            log.info("blackhole routes set", extra={"cidrs": f"{cluster_cidr},{service_cidr}",
                                                    "metric": _METRIC})
    except Exception:
        log.warning("node network setup failed", exc_info=True)
