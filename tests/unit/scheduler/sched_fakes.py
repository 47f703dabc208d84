"""Builders of nodes, pods and caches for the scheduler's unit tests."""

from __future__ import annotations

import random
from typing import Any

from navio.scheduler.algorithm import Algorithm
from navio.scheduler.cache import Cache
from navio.scheduler.framework import CycleState
from navio.scheduler.nodeinfo import NodeInfo
from navio.scheduler.plugins import default_profile
from navio.scheduler.podinfo import PodInfo, pod_info

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False, **extra_alloc: str) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **extra_alloc}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {HOSTNAME: name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc}}


def container(cpu: str | None = None, memory: str | None = None, name: str = "c",
              ports: list[dict[str, Any]] | None = None, **more: str) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(more)
    c: dict[str, Any] = {"name": name, "image": "x", "resources": {"requests": requests}}
    if ports:
        c["ports"] = ports
    return c


def pod(name: str = "p", ns: str = "default", labels: dict[str, str] | None = None,
        cpu: str | None = None, memory: str | None = None, node_name: str = "",
        containers: list[dict[str, Any]] | None = None, priority: int | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": containers if containers is not None else [container(cpu, memory)]}
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                         "labels": labels or {}},
            "spec": body, "status": {}}


def info(p: dict[str, Any]) -> PodInfo:
    return pod_info(p)


def cache_with(nodes: list[dict[str, Any]], pods: list[dict[str, Any]] = (),
               arrays: bool = True) -> Cache:
    """A cache holding `nodes` and the assigned `pods` (each must have a nodeName)."""
    c = Cache(use_arrays=arrays)
    for n in nodes:
        c.set_node(n)
    for p in pods:
        c.add_pod(info(p))
    return c


def algorithm(c: Cache, seed: int = 1, batch: bool = True, **profile_kw: Any) -> Algorithm:
    return Algorithm(c, default_profile(c, **profile_kw), rng=random.Random(seed), batch=batch)


def run_filter(plugin: Any, p: PodInfo, ni: NodeInfo) -> Any:
    """PreFilter then Filter of one plugin on one node; "skip" if PreFilter skipped."""
    state = CycleState()
    st = plugin.pre_filter(state, p)
    if st is not None and st.code.name == "SKIP":
        return "skip"
    if st is not None:
        return st
    return plugin.filter(state, p, ni)


def reasons(status: Any) -> tuple[str, ...]:
    return () if status is None or status == "skip" else status.reasons
