"""The agent's (kubelet's) configuration: one frozen value built by `navio agent` or `navio server`.

Why: STYLE §12 — one config per component, validated when it is built, with the kubelet's own
flag names and defaults where Kubernetes has them (`--port=10250`, `--root-dir`,
`--node-ip`, `--cluster-dns`, `--max-pods=110`, `--node-status-update-frequency=10s`, ...).

Guarantees: a constructed `AgentConfig` is internally consistent (ports in range, a valid pod
CIDR, TLS files given together, credentials only as files). Nothing here touches the network
or the filesystem except `default_root_dir`, which only reads the effective uid.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["AgentConfig", "RuntimeName", "default_node_name", "default_root_dir"]

RuntimeName = Literal["auto", "oci", "process", "sim"]


def default_root_dir() -> Path:
    """The kubelet keeps its state in /var/lib/kubelet; navio's agent uses /var/lib/navio/agent
    as root and the user's data dir otherwise."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/navio/agent")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "navio" / "agent"


def default_node_name() -> str:
    """The kubelet's default: the hostname, lower-cased (`--hostname-override` changes it)."""
    return socket.gethostname().lower()


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs; see `navio agent --help` for each field's flag.

    `kubeconfig`: credentials to reach the API server. `server` + `token_file` + `ca_file`:
    join with a bootstrap token (TLS bootstrap, `navio.kubelet.bootstrap`); the kubeconfig
    it writes is `kubeconfig` if given, else `root_dir/kubelet.kubeconfig`.
    `node_ip`: the node's InternalIP (None: the address of the default route's interface).
    `address`/`port`: where the kubelet API listens (TLS). Without `tls_cert_file` the agent
    makes a self-signed serving certificate under `root_dir/pki`, which an API server that
    verifies kubelet certificates will not accept. `client_ca_file`: the CA whose client
    certificates may use the kubelet API (required: there is no anonymous access).
    `node_netns`: run the pods' bridge inside this named netns (tests). `isolation`: None =
    namespaces/cgroups/mounts when root."""

    node_name: str = field(default_factory=default_node_name)
    kubeconfig: Path | None = None
    server: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    ca_cert_hash: str | None = None
    root_dir: Path = field(default_factory=default_root_dir)
    runtime: RuntimeName = "process"
    registry_config: Path | None = None      # oci: registries.yaml (mirrors, insecure hosts)
    image_gc_high_threshold: int = 85        # kubelet imageGCHighThresholdPercent
    image_gc_low_threshold: int = 80         # kubelet imageGCLowThresholdPercent
    pod_cidr: str | None = "10.42.0.0/24"   # None: the range node IPAM assigns the Node
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    node_netns: str | None = None
    bridge: str = "navio0"
    pod_network_backend: str = "host-gw"    # how other nodes' pods are reached: or "vxlan"
    pod_mtu: int = 0                        # pods' interface MTU (0: the kernel's default)
    lb_server_port: int = 6444              # the local API load balancer (several --server)
    node_ip: str | None = None
    address: str = "0.0.0.0"
    port: int = 10250
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    client_ca_file: Path | None = None
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")
    max_pods: int = 110
    node_labels: tuple[tuple[str, str], ...] = ()
    node_status_update_frequency: float = 10.0
    node_status_report_frequency: float = 60.0
    node_lease_duration_seconds: int = 40
    sync_frequency: float = 60.0
    relist_period: float = 1.0
    cgroup_parent: str = "/navio"
    isolation: bool | None = None
    kube_api_qps: float = 50.0
    kube_api_burst: int = 100
    verbosity: int = 0

    def __post_init__(self) -> None:
        if not self.node_name or len(self.node_name) > 253:
            raise ValueError("--node-name must be 1-253 characters")
        if self.kubeconfig is None and self.server is None:
            raise ValueError("give --kubeconfig (or --server with --token-file)")
        if self.server is not None and self.token_file is None and self.kubeconfig is None:
            raise ValueError("--server needs --token-file")
        if self.ca_cert_hash is not None and not (
                self.ca_cert_hash.startswith("sha256:") and len(self.ca_cert_hash) == 71):
            raise ValueError("--ca-cert-hash looks like sha256:<64 hex digits>")
        if self.token_file is not None and (self.server is None or self.ca_file is None):
            raise ValueError("--token-file needs --server and --ca-file (the cluster CA "
                             "certificate)")
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port {self.port}: not a valid TCP port")
        for name in ("pod_cidr", "cluster_cidr", "service_cidr"):
            if getattr(self, name) is None:
                continue
            try:
                ipaddress.IPv4Network(getattr(self, name), strict=True)
            except ValueError as exc:
                raise ValueError(f"--{name.replace('_', '-')}: {exc}") from None
        if (self.tls_cert_file is None) != (self.tls_private_key_file is None):
            raise ValueError("--tls-cert-file and --tls-private-key-file go together")
        if self.node_ip is not None:
            ipaddress.ip_address(self.node_ip)
        for ip in self.cluster_dns:
            ipaddress.ip_address(ip)
        if self.max_pods < 1:
            raise ValueError("--max-pods must be positive")
        if self.node_status_update_frequency <= 0 or self.node_status_report_frequency <= 0:
            raise ValueError("node status frequencies must be positive")
        if self.node_lease_duration_seconds < 1:
            raise ValueError("--node-lease-duration-seconds must be positive")
        if self.node_netns is not None and ("/" in self.node_netns or not self.node_netns):
            raise ValueError("--node-netns is a name under /run/netns")
        if not 0 <= self.image_gc_low_threshold <= self.image_gc_high_threshold <= 100:
            raise ValueError("image GC thresholds: 0 <= low <= high <= 100")
        if self.pod_network_backend not in ("host-gw", "vxlan"):
            raise ValueError("--pod-network-backend must be host-gw or vxlan")
        if self.pod_mtu and not 576 <= self.pod_mtu <= 65535:
            raise ValueError("pod MTU must be 576-65535")

    @property
    def lease_renew_interval(self) -> float:
        """kubelet renews its Lease every 25% of the lease duration (10 s for 40 s)."""
        return self.node_lease_duration_seconds * 0.25

    @property
    def pods_dir(self) -> Path:
        return self.root_dir / "pods"

    @property
    def pod_logs_dir(self) -> Path:
        return self.root_dir / "pod-logs"

    @property
    def runtime_state_dir(self) -> Path:
        return self.root_dir / "runtime"

    @property
    def image_dir(self) -> Path:
        return self.root_dir / "images"
