"""The kubelet's /stats/summary (pkg/kubelet/apis/stats/v1alpha1 Summary), minimal.

Why: tools read a node's and its pods' resource usage from the kubelet's Summary API (through
the API server's nodes/proxy). navio serves its core: node CPU and memory from /proc, and for
every pod bound here the usage of its running containers as the runtime samples it (cgroup
counters in the process runtime), summed per pod.

Guarantees: field names and units are the Summary API's (cumulative CPU in
usageCoreNanoSeconds, memory in bytes, times RFC 3339); a container the runtime cannot
sample is left out, never reported as zero. Not served: usageNanoCores (needs a rate over two
samples), file system, network and volume stats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from typing import Any, Mapping, Protocol

from navio.runtime.protocol import ContainerStats, Runtime

__all__ = ["StatsHost", "summary"]


class StatsHost(Protocol):
    runtime: Runtime

    def pods(self) -> list[dict[str, Any]]: ...
    def pod_status(self, pod: dict[str, Any]) -> dict[str, Any]: ...


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node(node_name: str, now: float) -> dict[str, Any]:
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # - idle, iowait
    meminfo: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            meminfo[key] = int(rest.split()[0]) * 1024
    with open("/proc/uptime") as f:
        boot = now - float(f.read().split()[0])
    total, available = meminfo.get("MemTotal", 0), meminfo.get("MemAvailable", 0)
    usage = total - meminfo.get("MemFree", 0)
    return {"nodeName": node_name, "startTime": _time(boot),
            "cpu": {"time": _time(now), "usageCoreNanoSeconds": busy * 1_000_000_000 // tick},
            "memory": {"time": _time(now), "availableBytes": available, "usageBytes": usage,
                       "workingSetBytes": total - available}}


def _container(name: str, started: str | None, s: ContainerStats) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if started:
        out["startTime"] = started
    out["cpu"] = {"time": _time(s.timestamp), "usageCoreNanoSeconds": s.cpu_usage_ns}
    out["memory"] = {"time": _time(s.timestamp), "usageBytes": s.memory_usage_bytes,
                     "workingSetBytes": s.memory_working_set_bytes}
    return out


async def _pod(host: StatsHost, pod: Mapping[str, Any], now: float) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    status = host.pod_status(dict(pod))
    out: dict[str, Any] = {"podRef": {"name": meta.get("name"),
                                      "namespace": meta.get("namespace"),
                                      "uid": meta.get("uid")}}
    if status.get("startTime"):
        out["startTime"] = status["startTime"]
    containers = []
    for entry in (*(status.get("initContainerStatuses") or ()),
                  *(status.get("containerStatuses") or ())):
        running = (entry.get("state") or {}).get("running")
        cid = str(entry.get("containerID") or "").split("://", 1)[-1]
        if running is None or not cid:
            continue
        sample = await host.runtime.stats(cid)
        if sample is not None:
            containers.append(_container(str(entry.get("name")), running.get("startedAt"),
                                         sample))
    out["containers"] = containers
    if containers:
        out["cpu"] = {"time": _time(now), "usageCoreNanoSeconds": sum(
            c["cpu"]["usageCoreNanoSeconds"] for c in containers)}
        out["memory"] = {"time": _time(now), **{k: sum(c["memory"][k] for c in containers)
                                               for k in ("usageBytes", "workingSetBytes")}}
    return out


async def summary(host: StatsHost, node_name: str) -> dict[str, Any]:
    now = time.time()
    node = await asyncio.to_thread(_node, node_name, now)
    return {"node": node, "pods": [await _pod(host, p, now) for p in host.pods()]}
