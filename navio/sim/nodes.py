"""One simulated node: its compact state and the Node, Lease and status bodies it writes.

Why: `navio sim` keeps thousands of nodes in one process (as kwok does), so a node is a slotted
record of a few fields, and every API body is built from it when needed, never kept.

Guarantees:
- Node `i` always gets the same name (`<prefix>-<i>`), pod CIDR (block `i` of the sim's
  `--cluster-cidr` cut into `/node-cidr-mask-size` blocks) and InternalIP (127.1.0.0/16 +
  i: loopback, so nothing the API server might dial for it leaves the machine). A restarted
  sim therefore adopts its own Nodes unchanged.
- Pod IPs come from the node's own CIDR: .1 is the gateway, pods get .2 upward; a released
  address is reused (lowest first).
- Nodes are recognisable as kwok's are: label `type: navio-sim` (kwok: `type: kwok`) and
  annotation `navio.io/node: sim` (kwok: `kwok.x-k8s.io/node: fake`). Like kwok, no taint is
  added, so ordinary workloads schedule onto them (kube's own density test with hollow nodes
  does the same); isolate them with a taint of your own if needed.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import datetime, timezone
from typing import Any

from navio import KUBERNETES_VERSION, __version__

__all__ = ["SimNode", "NodeShape", "SIM_LABEL", "SIM_ANNOTATION", "LEASE_NAMESPACE",
           "rfc3339", "micro_time"]

SIM_LABEL = ("type", "navio-sim")
SIM_ANNOTATION = ("navio.io/node", "sim")
LEASE_NAMESPACE = "kube-node-lease"
_NODE_IP_BASE = int(ipaddress.IPv4Address("127.1.0.0"))
_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def rfc3339(ts: float | None = None) -> str:
    """metav1.Time: seconds precision, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def micro_time(ts: float | None = None) -> str:
    """metav1.MicroTime: microseconds precision, UTC."""
    now = datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeShape:
    """What every simulated node of one sim looks like (shared, not per node)."""

    __slots__ = ("prefix", "cluster", "mask", "capacity", "lease_seconds", "kubelet_port")

    def __init__(self, *, prefix: str = "sim-node", cluster_cidr: str = "10.128.0.0/10",
                 node_cidr_mask_size: int = 24, pods_per_node: int = 110, cpu: str = "32",
                 memory: str = "256Gi", lease_seconds: int = 40,
                 kubelet_port: int = 10250) -> None:
        self.prefix = prefix
        self.cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
        if not self.cluster.prefixlen <= node_cidr_mask_size <= 30:
            raise ValueError(f"node CIDR mask size {node_cidr_mask_size} does not fit in "
                             f"cluster CIDR {cluster_cidr}")
        self.mask = node_cidr_mask_size
        self.capacity = {"cpu": cpu, "memory": memory, "pods": str(pods_per_node),
                         "ephemeral-storage": "1Ti", "hugepages-1Gi": "0",
                         "hugepages-2Mi": "0"}
        self.lease_seconds = lease_seconds
        self.kubelet_port = kubelet_port

    @property
    def max_nodes(self) -> int:
        return 1 << (self.mask - self.cluster.prefixlen)

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def cidr(self, index: int) -> str:
        base = int(self.cluster.network_address) + (index << (32 - self.mask))
        return f"{ipaddress.IPv4Address(base)}/{self.mask}"

    def node_ip(self, index: int) -> str:
        return str(ipaddress.IPv4Address(_NODE_IP_BASE + 2 + index))

    # ---- bodies -----------------------------------------------------------------------

    def node_body(self, node: "SimNode") -> dict[str, Any]:
        name = self.name(node.index)
        cidr = self.cidr(node.index)
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    SIM_LABEL[0]: SIM_LABEL[1], "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"},
                    "annotations": {SIM_ANNOTATION[0]: SIM_ANNOTATION[1],
                                    "node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "status": self.node_status(node)}

    def node_status(self, node: "SimNode", now: float | None = None) -> dict[str, Any]:
        """The whole status as the kubelet reports it (conditions with heartbeat `now`)."""
        stamp = rfc3339(now)
        since = rfc3339(node.ready_since) if node.ready_since else stamp
        ip = self.node_ip(node.index)
        return {
            "capacity": dict(self.capacity), "allocatable": dict(self.capacity),
            "conditions": [{"type": t, "status": s, "reason": r, "message": m,
                            "lastHeartbeatTime": stamp, "lastTransitionTime": since}
                           for t, s, r, m in _CONDITIONS],
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": self.name(node.index)}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {"machineID": f"sim{node.index:029d}",
                         "systemUUID": f"sim{node.index:029d}",
                         "bootID": f"sim{node.index:029d}", "kernelVersion": "simulated",
                         "osImage": "navio simulated node",
                         "containerRuntimeVersion": f"sim://{__version__}",
                         "kubeletVersion": KUBERNETES_VERSION, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"}}

    def lease_body(self, node: "SimNode", now: float | None = None) -> dict[str, Any]:
        name = self.name(node.index)
        meta: dict[str, Any] = {"name": name, "namespace": LEASE_NAMESPACE}
        if node.lease_rv:
            meta["resourceVersion"] = node.lease_rv
        if node.uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                        "uid": node.uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": name, "leaseDurationSeconds": self.lease_seconds,
                         "renewTime": micro_time(now)}}


class SimNode:
    """One simulated node's state: a few small fields (see `bytes_per_node` in the tests)."""

    __slots__ = ("index", "uid", "lease_rv", "failed", "ready_since", "status_at", "used_ips",
                 "pods")

    def __init__(self, index: int) -> None:
        self.index = index
        self.uid = ""
        self.lease_rv = ""          # the Lease's resourceVersion after our last write
        self.failed = False         # heartbeats stopped (simulated failure)
        self.ready_since = 0.0      # when Ready last became True (lastTransitionTime)
        self.status_at = 0.0        # monotonic time of the last status report
        self.used_ips = 0           # bitmap of used host offsets in the pod CIDR
        self.pods = 0               # pods this node runs (reported Running)

    def take_ip(self, shape: NodeShape) -> str | None:
        """The lowest free pod address in this node's CIDR (None when it is full)."""
        hosts = (1 << (32 - shape.mask)) - 1        # excluding the broadcast address
        free = ~self.used_ips & ~0b11               # .0 network, .1 gateway
        offset = (free & -free).bit_length() - 1
        if offset >= hosts or offset < 0:
            return None
        self.used_ips |= 1 << offset
        return self._ip(shape, offset)

    def mark_ip(self, shape: NodeShape, ip: str) -> bool:
        """Record an address already in use (adopted pods); False if not in this CIDR."""
        offset = self._offset(shape, ip)
        if offset is None:
            return False
        self.used_ips |= 1 << offset
        return True

    def release_ip(self, shape: NodeShape, ip: str) -> None:
        offset = self._offset(shape, ip)
        if offset is not None:
            self.used_ips &= ~(1 << offset)

    def _ip(self, shape: NodeShape, offset: int) -> str:
        base = int(shape.cluster.network_address) + (self.index << (32 - shape.mask))
        return str(ipaddress.IPv4Address(base + offset))

    def _offset(self, shape: NodeShape, ip: str) -> int | None:
        base = int(shape.cluster.network_address) + (self.index << (32 - shape.mask))
        try:
            offset = int(ipaddress.IPv4Address(ip)) - base
        except ValueError:
            return None
        return offset if 1 < offset < (1 << (32 - shape.mask)) - 1 else None
