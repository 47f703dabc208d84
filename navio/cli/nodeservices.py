"""The Service data plane an agent hosts beside the kubelet: the proxy and the node-local DNS.

Why: issue 8 — "the proxy (in every agent)" makes cluster IPs reach ready pods, and cluster
DNS answers on the DNS Service's address (10.43.0.10) for the pods of this node. Both are
separate components that only read the API (Services, EndpointSlices, Namespaces) with the
node's credentials; they share the agent's process, not its state.

Design (node-local DNS, like Kubernetes' NodeLocal DNSCache):
- the proxy programs the node's network namespace (the host's, or `--node-netns`), with
  nftables when root (iptables where nft is missing), else userspace listeners on the node IP;
  it writes its routing state to `<root-dir>/proxy/rules.txt` for `navio proxy rules`;
- with `--serve-cluster-dns`, the `--cluster-dns` addresses are put on the node's `lo` and
  the DNS server listens there on port 53 (UDP and TCP), in the node's network namespace. The
  `kube-dns` Service carries `service.kubernetes.io/service-proxy-name`, so proxies leave its
  address alone (as kube-proxy does) and pods' queries are delivered to the local server.
  Upstreams (names outside the cluster zone) are the nameservers of the agent's
  `--resolv-conf`.
- a node on the `sim` runtime runs nothing, so it programs nothing either: `--proxy-mode
  auto` means no proxy there (many simulated nodes share one host's network namespace);
- the NetworkPolicy controller (navio/netpol, issue 14) programs the same network namespace
  with nftables and reports the Node condition `NetworkPolicyEnforced`; a simulated node
  enforces nothing and says so in that condition;
- each part restarts with back-off (1 s → 30 s) when it fails, without taking the kubelet
  down; on shutdown the proxy removes its rules and the DNS addresses leave `lo`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from navio.kubelet.config import AgentConfig
from navio.kubelet.netsetup import add_local_ips, remove_local_ips

__all__ = ["NodeServices", "run_node_services", "proxy_state_file", "PROXY_MODES"]

log = logging.getLogger("navio.nodeservices")

PROXY_MODES = ("auto", "nftables", "iptables", "userspace", "none")


@dataclass(frozen=True)
class NodeServices:
    proxy_mode: str = "auto"          # "none": no proxy on this node
    serve_dns: bool = False           # answer on the agent's --cluster-dns addresses

    def __post_init__(self) -> None:
        if self.proxy_mode not in PROXY_MODES:
            raise ValueError(f"--proxy-mode must be one of {', '.join(PROXY_MODES)}")


def proxy_state_file(root_dir: Path) -> Path:
    """Where the agent's proxy writes its routing state (`navio proxy rules` reads it)."""
    return root_dir / "proxy" / "rules.txt"


async def _keep_running(name: str, part: Callable[[], Awaitable[None]]) -> None:
    delay = 1.0
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await part()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if asyncio.get_running_loop().time() - started > 60:
                delay = 1.0
            log.error("node service failed; restarting", exc_info=True,
                      extra={"service": name, "error": str(exc)[:300], "delay": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _proxy(agent: AgentConfig, mode: str) -> None:
    from navio.proxy import ProxyConfig, run
    state = proxy_state_file(agent.root_dir)
    state.parent.mkdir(parents=True, exist_ok=True)
    await run(ProxyConfig(
        kubeconfig=agent.kubeconfig or Path(), node_name=agent.node_name,
        netns=agent.node_netns, mode=mode, cluster_cidr=agent.cluster_cidr,
        service_cidr=agent.service_cidr, state_file=state,
        bind_address=agent.node_ip or "0.0.0.0"))


def _socket_factory(node_netns: str | None) -> Callable[[int, int], socket.socket]:
    if not node_netns:
        return socket.socket
    from navio.runtime import namespaces as ns
    path = os.path.join(ns.NETNS_DIR, node_netns)
    return lambda family, kind: ns.socket_in_netns(path, family, kind)


async def _dns(agent: AgentConfig) -> None:
    from navio.dns import DnsConfig
    from navio.dns.server import run
    ips = agent.cluster_dns
    config = DnsConfig(kubeconfig=agent.kubeconfig or Path(), bind_addresses=ips, port=53,
                       zone=agent.cluster_domain, cluster_dns=ips,
                       resolv_conf=agent.resolv_conf or Path("/dev/null"),
                       service_cidrs=(agent.service_cidr,), pod_cidrs=(agent.cluster_cidr,))
    await add_local_ips(agent.node_netns, ips)
    try:
        await run(config, socket_factory=_socket_factory(agent.node_netns))
    finally:
        await asyncio.shield(remove_local_ips(agent.node_netns, ips))


async def _netpol(agent: AgentConfig) -> None:
    from navio.netpol.controller import NetpolConfig, run, unenforced
    config = NetpolConfig(kubeconfig=agent.kubeconfig or Path(), node_name=agent.node_name,
                          netns=agent.node_netns)
    if agent.runtime == "sim":
        await unenforced(config, "SimulatedNode",
                         "a simulated node has no pod network: NetworkPolicies are not enforced")
    else:
        await run(config)


async def run_node_services(agent: AgentConfig, services: NodeServices) -> None:
    """Run this node's proxy, DNS and NetworkPolicy enforcement until cancelled."""
    parts = [_keep_running("netpol", lambda: _netpol(agent))]
    mode = services.proxy_mode
    if mode == "auto" and agent.runtime == "sim":
        log.info("no proxy on a simulated node", extra={"node": agent.node_name})
        mode = "none"
    if mode != "none":
        parts.append(_keep_running("proxy", lambda: _proxy(agent, mode)))
    if services.serve_dns:
        if not agent.cluster_dns:
            raise ValueError("--serve-cluster-dns needs --cluster-dns")
        parts.append(_keep_running("dns", lambda: _dns(agent)))
    if parts:
        await asyncio.gather(*parts)
