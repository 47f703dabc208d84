"""Masquerade for pod traffic that leaves the cluster's pod network (flannel's `ip-masq`).

Why: between nodes, pods talk with their own addresses (host-gw routes carry them); but a
packet from a pod to anything outside the cluster CIDR (another host's address, the outside
world when the node has a way out) must carry the node's address, since nothing out there
routes pod ranges back. One nftables table in the node namespace (the host's, or
`--node-netns`), `ip navio-egress`, does that: source in the cluster CIDR and destination
outside both the cluster CIDR and the service CIDR → masquerade. Pod-to-pod traffic, on this
node or another, and Service traffic after the proxy's DNAT to a pod keep their source.

The table is replaced atomically (`nft -f -`) at start and deleted on a clean shutdown; a
failure is logged, never raised (pods still reach each other without it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

__all__ = ["egress_ruleset", "install_egress_masquerade", "remove_egress_masquerade", "TABLE"]

log = logging.getLogger(__name__)

TABLE = "navio-egress"
_TIMEOUT = 30.0


def egress_ruleset(cluster_cidr: str, service_cidr: str) -> str:
    cluster = ipaddress.IPv4Network(cluster_cidr)
    service = ipaddress.IPv4Network(service_cidr)
    return (f"add table ip {TABLE}\n"
            f"delete table ip {TABLE}\n"
            f"table ip {TABLE} {{\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority 100; policy accept;\n"
            f"    ip saddr {cluster} ip daddr != {{ {cluster}, {service} }} "
            f"masquerade fully-random comment \"pod traffic leaving the cluster\"\n"
            f"  }}\n"
            f"}}\n")


def _argv(node_netns: str | None) -> list[str]:
    return (["ip", "netns", "exec", node_netns] if node_netns else []) + ["nft", "-f", "-"]


async def _nft(node_netns: str | None, script: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_argv(node_netns), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), _TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError("nft timed out") from None
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip()[:2000])


async def install_egress_masquerade(node_netns: str | None, cluster_cidr: str,
                                    service_cidr: str) -> bool:
    try:
        await _nft(node_netns, egress_ruleset(cluster_cidr, service_cidr))
    except (OSError, RuntimeError) as exc:
        log.warning("egress masquerade not installed", extra={"error": str(exc)})
        return False
    log.info("egress masquerade installed", extra={"netns": node_netns or "host",
                                                   "cluster_cidr": cluster_cidr})
    return True


async def remove_egress_masquerade(node_netns: str | None) -> None:
    try:
        await _nft(node_netns, f"add table ip {TABLE}\ndelete table ip {TABLE}\n")
    except (OSError, RuntimeError) as exc:
        log.warning("egress masquerade not removed", extra={"error": str(exc)})
