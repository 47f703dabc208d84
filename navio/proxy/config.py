"""The proxy's configuration: one frozen value, built by `cli/`, checked when constructed.

Field names follow kube-proxy's flags where one exists (--hostname-override, --proxy-mode,
--cluster-cidr, --min-sync-period, --sync-period, --masquerade-all, --masquerade-bit,
--nodeport-addresses, --bind-address). Defaults are navio's cluster defaults.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProxyConfig", "MODES", "select_mode"]

MODES = ("auto", "nftables", "iptables", "userspace")


@dataclass(frozen=True)
class ProxyConfig:
    kubeconfig: Path
    node_name: str                          # endpoints on this node are local
    netns: str | None = None                # program this network namespace (name or path);
                                            # None: the process's own
    mode: str = "auto"                      # auto: nftables when root and nft exists, else
                                            # iptables when iptables-restore exists
    cluster_cidr: str | None = "10.42.0.0/16"
    service_cidr: str | None = "10.43.0.0/16"
    min_sync_period: float = 0.1            # coalesce bursts of changes; kube-proxy: 1s
    sync_period: float = 30.0               # check that the rules are still in place
    masquerade_all: bool = False
    masquerade_bit: int = 14
    nodeport_addresses: tuple[str, ...] = ()   # node IPs that take NodePorts; () = all local
    bind_address: str = "0.0.0.0"           # userspace mode: where listeners bind
    state_file: Path | None = None          # written after each sync for `navio proxy rules`
    cleanup_on_exit: bool = True            # remove the table / close listeners on shutdown

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ValueError("node_name is required")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        for name in ("cluster_cidr", "service_cidr"):
            value = getattr(self, name)
            if value is not None and ipaddress.ip_network(value, strict=False).version != 4:
                raise ValueError(f"{name} must be an IPv4 CIDR")
        for ip in self.nodeport_addresses:
            if ipaddress.ip_address(ip).version != 4:
                raise ValueError("nodeport_addresses must be IPv4 addresses")
        ipaddress.ip_address(self.bind_address)
        if not 0 < self.min_sync_period <= 1.0:
            raise ValueError("min_sync_period must be in (0, 1] seconds")
        if self.sync_period <= 0:
            raise ValueError("sync_period must be positive")
        if not 0 <= self.masquerade_bit <= 31:
            raise ValueError("masquerade_bit must be in [0, 31]")
        if self.netns is not None and (not self.netns or any(c.isspace() for c in self.netns)):
            raise ValueError("netns must be a namespace name or path")
        if self.netns is not None and self.mode == "userspace":
            raise ValueError("userspace mode cannot program another network namespace")


def select_mode(config: ProxyConfig, *, which=shutil.which) -> str:
    """The mode `config` resolves to: nftables when root and `nft` is installed, iptables
    when root and only `iptables-restore` is, else userspace."""
    if config.mode != "auto":
        return config.mode
    if os.geteuid() == 0 and which("nft"):
        return "nftables"
    if os.geteuid() == 0 and which("iptables-restore") and which("iptables"):
        return "iptables"
    if config.netns is not None:
        raise ValueError("programming a network namespace needs root and nft or iptables")
    return "userspace"
