"""NodeInfo: one node and the pods on it, with running totals (framework/types.go NodeInfo).

Why: fit checks need "allocatable minus what bound and assumed pods request" per node in O(1);
NodeInfo keeps those sums as pods come and go, plus the used host ports and the pods with
affinity terms, which InterPodAffinity reads.

Guarantees: `add_pod`/`remove_pod` are exact inverses; `clone()` copies every mutable total so
that preemption can simulate removing pods without touching the cache. A NodeInfo without a
node object (pods seen before their node) has `node is None` and never passes a filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from navio.scheduler.podinfo import PodInfo
from navio.scheduler.resources import Resource, resource_from_list

__all__ = ["NodeInfo", "ports_conflict"]


def ports_conflict(used: dict[tuple[str, int], set[str]], ip: str, protocol: str,
                   port: int) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 conflicts with every IP on the same port."""
    ips = used.get((protocol, port))
    if not ips:
        return False
    if ip == "0.0.0.0":
        return True
    return ip in ips or "0.0.0.0" in ips


@dataclass(slots=True, eq=False)
class NodeInfo:
    name: str
    idx: int
    node: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, Any], ...] = ()
    unschedulable: bool = False
    allocatable: Resource = field(default_factory=Resource)
    requested: Resource = field(default_factory=Resource)
    non0_cpu: int = 0
    non0_mem: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    generation: int = 0

    def set_node(self, node: dict[str, Any] | None) -> None:
        self.node = node
        if node is None:
            self.labels, self.taints, self.unschedulable = {}, (), False
            self.allocatable = Resource()
            return
        spec = node.get("spec") or {}
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        self.taints = tuple(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = resource_from_list((node.get("status") or {}).get("allocatable"))
        self.generation += 1

    def add_pod(self, pi: PodInfo) -> None:
        self.pods[pi.key] = pi
        if pi.has_affinity:
            self.pods_with_affinity[pi.key] = pi
        if pi.required_anti_affinity_terms:
            self.pods_with_required_anti_affinity[pi.key] = pi
        self.requested.add(pi.requests)
        self.non0_cpu += pi.non0_cpu
        self.non0_mem += pi.non0_mem
        for ip, proto, port in pi.host_ports:
            self.used_ports.setdefault((proto, port), set()).add(ip)
        self.generation += 1

    def remove_pod(self, pi: PodInfo) -> bool:
        """Remove the pod with `pi.key` (its totals as recorded when added); False if absent."""
        have = self.pods.pop(pi.key, None)
        if have is None:
            return False
        self.pods_with_affinity.pop(pi.key, None)
        self.pods_with_required_anti_affinity.pop(pi.key, None)
        self.requested.add(have.requests, -1)
        self.non0_cpu -= have.non0_cpu
        self.non0_mem -= have.non0_mem
        for ip, proto, port in have.host_ports:
            ips = self.used_ports.get((proto, port))
            if ips is not None:
                ips.discard(ip)
                if not ips:
                    del self.used_ports[(proto, port)]
        self.generation += 1
        return True

    def clone(self) -> "NodeInfo":
        return NodeInfo(
            name=self.name, idx=self.idx, node=self.node, labels=self.labels,
            taints=self.taints, unschedulable=self.unschedulable,
            allocatable=self.allocatable, requested=self.requested.copy(),
            non0_cpu=self.non0_cpu, non0_mem=self.non0_mem, pods=dict(self.pods),
            pods_with_affinity=dict(self.pods_with_affinity),
            pods_with_required_anti_affinity=dict(self.pods_with_required_anti_affinity),
            used_ports={k: set(v) for k, v in self.used_ports.items()},
            generation=self.generation)
