"""The Node object: registration and status, as kubelet_node_status.go and nodestatus/setters.go.

Why: the scheduler places pods by the node's allocatable resources, controllers watch its
conditions, `kubectl get/describe nodes` shows its addresses and nodeInfo, and the API server
reaches the kubelet through `status.daemonEndpoints` on the InternalIP.

Guarantees:
- Capacity is read from the host: cpu (cores), memory (MemTotal, Ki), ephemeral-storage (the
  root dir's filesystem, Ki), hugepages 0, pods = max-pods. Allocatable subtracts the
  kubelet's default hard eviction thresholds (memory 100Mi, nodefs 10%).
- Conditions carry the kubelet's reasons and messages (KubeletReady "kubelet is posting
  ready status", KubeletHasSufficientMemory, ...); lastTransitionTime changes only with the
  status, lastHeartbeatTime with every write.
- `register` creates the Node, or adopts an existing one (labels and annotations merged).
- `run` recomputes the status every `update_frequency` and writes it (merge PATCH of
  nodes/<name>/status) when it differs from the stored Node's (someone else, e.g. the node
  lifecycle controller, may have set it Unknown) or `report_frequency` passed since the
  last write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from typing import Any, Callable

from navio import KUBERNETES_VERSION, __version__
from navio.api import errors
from navio.client import NODES, Client, TransportError
from navio.kubelet.config import AgentConfig
from navio.kubelet.podstatus import rfc3339
from navio.kubelet.runtimeclass import runtime_handlers
from navio.runtime.protocol import Capabilities

__all__ = ["NodeStatus", "machine_capacity", "allocatable_of"]

log = logging.getLogger(__name__)

_MEMORY_EVICTION = 100 * 1024 * 1024       # memory.available<100Mi
_NODEFS_EVICTION = 0.10                    # nodefs.available<10%
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


# The kubelet's node events for a condition, by type: (reason when False, reason when True).
_NODE_EVENTS = {"MemoryPressure": ("NodeHasSufficientMemory", "NodeHasInsufficientMemory"),
                "DiskPressure": ("NodeHasNoDiskPressure", "NodeHasDiskPressure"),
                "PIDPressure": ("NodeHasSufficientPID", "NodeHasInsufficientPID"),
                "Ready": ("NodeNotReady", "NodeReady")}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _meminfo() -> dict[str, int]:
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def machine_capacity(root_dir: str, max_pods: int) -> dict[str, str]:
    mem = _meminfo().get("MemTotal", 0)
    try:
        st = os.statvfs(root_dir)
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    return {"cpu": str(os.cpu_count() or 1), "ephemeral-storage": f"{disk // 1024}Ki",
            "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": f"{mem // 1024}Ki",
            "pods": str(max_pods)}


def allocatable_of(capacity: dict[str, str]) -> dict[str, str]:
    out = dict(capacity)
    mem = int(capacity["memory"].removesuffix("Ki")) * 1024
    out["memory"] = f"{max(0, mem - _MEMORY_EVICTION) // 1024}Ki"
    disk = int(capacity["ephemeral-storage"].removesuffix("Ki")) * 1024
    out["ephemeral-storage"] = str(int(disk - disk * _NODEFS_EVICTION))
    return out


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _condition(kind: str, ok_is_true: bool, healthy: bool, reasons: tuple[str, str, str, str]
               ) -> dict[str, Any]:
    good_reason, good_msg, bad_reason, bad_msg = reasons
    status = healthy if ok_is_true else not healthy
    return {"type": kind, "status": "True" if status else "False",
            "reason": good_reason if healthy else bad_reason,
            "message": good_msg if healthy else bad_msg}


class NodeStatus:
    def __init__(self, client: Client, config: AgentConfig, *, node_ip: str,
                 capabilities: Capabilities, runtime_name: str,
                 healthy: Callable[[], bool], event: Callable[[str, str, str], None]) -> None:
        self.client = client
        self.config = config
        self.node_ip = node_ip
        self.capabilities = capabilities
        self.runtime_name = runtime_name
        self.healthy = healthy
        self.event = event
        self.capacity = machine_capacity(str(config.root_dir), config.max_pods)
        self.allocatable = allocatable_of(self.capacity)
        self.uid = ""
        self.images: list[dict[str, Any]] = []   # status.images (runtimes with images)
        self._conditions: dict[str, dict[str, Any]] = {}
        self._last_written: dict[str, Any] | None = None
        self._last_write = 0.0

    # ---- the object ---------------------------------------------------------------------

    def labels(self) -> dict[str, str]:
        base = {"beta.kubernetes.io/arch": _ARCH, "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": _ARCH, "kubernetes.io/hostname": self.config.node_name,
                "kubernetes.io/os": "linux"}
        base.update(dict(self.config.node_labels))
        return base

    def annotations(self) -> dict[str, str]:
        out = {"node.alpha.kubernetes.io/ttl": "0",
               "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
        if self.capabilities.notes:
            out["navio.io/runtime-notes"] = "; ".join(self.capabilities.notes)
        return out

    def _conditions_now(self) -> list[dict[str, Any]]:
        mem = _meminfo()
        available = mem.get("MemAvailable", mem.get("MemTotal", 0))
        try:
            st = os.statvfs(str(self.config.root_dir))
            disk_ok = st.f_blocks == 0 or st.f_bavail / st.f_blocks >= _NODEFS_EVICTION
        except OSError:
            disk_ok = True
        ready_ok = self.healthy()
        return [
            _condition("MemoryPressure", False, available >= _MEMORY_EVICTION, (
                "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
                "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
            _condition("DiskPressure", False, disk_ok, (
                "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                "KubeletHasDiskPressure", "kubelet has disk pressure")),
            _condition("PIDPressure", False, True, (
                "KubeletHasSufficientPID", "kubelet has sufficient PID available",
                "KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
            _condition("Ready", True, ready_ok, (
                "KubeletReady", "kubelet is posting ready status",
                "KubeletNotReady", "PLEG is not healthy: the container runtime does not answer")),
        ]

    def status(self) -> dict[str, Any]:
        """The status as it would be written now (heartbeat times set to now)."""
        now = rfc3339(time.time())
        conditions = []
        for c in self._conditions_now():
            old = self._conditions.get(c["type"])
            c["lastHeartbeatTime"] = now
            c["lastTransitionTime"] = old["lastTransitionTime"] \
                if old and old["status"] == c["status"] else now
            conditions.append(c)
        boot_id = _read("/proc/sys/kernel/random/boot_id")
        machine_id = _read("/etc/machine-id")
        return {
            "capacity": dict(self.capacity), "allocatable": dict(self.allocatable),
            "conditions": conditions, **({"images": list(self.images)} if self.images else {}),
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.config.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.port}},
            "nodeInfo": {"machineID": machine_id,
                         "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
                         "bootID": boot_id, "kernelVersion": platform.release(),
                         "osImage": _os_image(),
                         "containerRuntimeVersion": f"{self.runtime_name}://{__version__}",
                         "kubeletVersion": KUBERNETES_VERSION, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": _ARCH},
            "runtimeHandlers": runtime_handlers(self.runtime_name),
        }

    @staticmethod
    def _without_heartbeat(status: dict[str, Any]) -> dict[str, Any]:
        out = dict(status)
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                             for c in status.get("conditions") or ()]
        return out

    # ---- writing ------------------------------------------------------------------------

    async def register(self) -> dict[str, Any]:
        name = self.config.node_name
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": self.labels(),
                             "annotations": self.annotations()},
                "spec": ({"podCIDR": self.config.pod_cidr, "podCIDRs": [self.config.pod_cidr]}
                         if self.config.pod_cidr else {}),
                "status": self.status()}
        try:
            node = await self.client.create(NODES, body)
            log.info("node registered", extra={"node": name})
        except errors.AlreadyExists:
            node = await self.client.patch(NODES, name, {"metadata": {
                "labels": self.labels(), "annotations": self.annotations()}})
            log.info("node already registered; adopted", extra={"node": name})
        self.uid = str(node["metadata"].get("uid", ""))
        for c in (node.get("status") or {}).get("conditions") or ():
            if c.get("type") and c.get("lastTransitionTime"):
                self._conditions[c["type"]] = c
        await self.write(force=True)
        return node

    async def write(self, *, force: bool = False) -> bool:
        """Write the status if it changed or the report interval passed; True if written."""
        status = self.status()
        loop = asyncio.get_running_loop()
        stale = loop.time() - self._last_write >= self.config.node_status_report_frequency
        comparable = self._without_heartbeat(status)
        if not force and not stale and comparable == self._last_written \
                and not await self._overwritten(status):
            return False
        # Strategic merge (as the kubelet does): conditions merge by type, so other node
        # agents' conditions (NetworkPolicyEnforced) survive.
        await self.client.patch_subresource(NODES, self.config.node_name, "status",
                                            {"status": status}, patch_type="strategic")
        for c in status["conditions"]:
            old = self._conditions.get(c["type"])
            if old is None or old.get("status") != c["status"] or not self._last_written:
                reason = _NODE_EVENTS[c["type"]][c["status"] == "True"]
                self.event("Normal", reason,
                           f"Node {self.config.node_name} status is now: {reason}")
            self._conditions[c["type"]] = c
        self._last_written = comparable
        self._last_write = loop.time()
        return True

    async def _overwritten(self, status: dict[str, Any]) -> bool:
        """Whether the stored Node says otherwise about one of our conditions: the node
        lifecycle controller sets them Unknown while this agent could not reach the API
        server. The kubelet compares against the stored Node, not its own last write, so
        that a node coming back writes Ready again at once (not one report interval later)."""
        node = await self.client.get(NODES, self.config.node_name)
        stored = {c.get("type"): c.get("status")
                  for c in (node.get("status") or {}).get("conditions") or ()}
        return any(stored.get(c["type"]) != c["status"] for c in status["conditions"])

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.node_status_update_frequency)
            try:
                await self.write()
            except errors.NotFound:
                log.warning("node object is gone; registering again",
                            extra={"node": self.config.node_name})
                await self.register()
            except (errors.ApiError, TransportError):
                log.warning("node status write failed", extra={"node": self.config.node_name})
