"""Resource amounts as the scheduler counts them: integers, cpu in millicores.

Why: every fit check and score compares a pod's requests with a node's allocatable minus what
its pods request; parsing quantity strings each time would dominate the cycle, so amounts are
parsed once (memoised) into ints, as kube-scheduler's `framework.Resource` holds int64s.

Guarantees (k8s.io/component-helpers/resource PodRequests and framework/types.go, v1.32):
- A pod's requests are the sum over regular containers, then the max with each init
  container's request (plus the restartable "sidecar" init containers started before it), then
  sidecars are added to the sum, then `spec.overhead`. Pod-level resources are not supported.
- `non_zero=True` fills a missing cpu/memory request of each container with 100m / 200Mi
  (schedutil.DefaultMilliCPURequest / DefaultMemoryRequest), as scoring counts it.
- cpu is `MilliValue()`, everything else `Value()` (rounded up), as `Resource.Add` does.
- Only cpu, memory, ephemeral-storage, pods and scalar names (extended `a/b`,
  `*kubernetes.io/*`, `hugepages-*`, `attachable-volumes-*`) are counted; others are ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from navio.api.quantity import QuantityError, milli_value, value

__all__ = [
    "CPU", "MEMORY", "EPHEMERAL_STORAGE", "PODS", "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_MEMORY_REQUEST", "Resource", "amount", "is_scalar_resource_name",
    "is_extended_resource_name", "resource_from_list", "pod_requests",
]

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100                # 0.1 core
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024     # 200 MiB


def is_extended_resource_name(name: str) -> bool:
    """v1helper.IsExtendedResourceName: not native (`a/b` outside kubernetes.io), not quota."""
    native = "/" not in name or "kubernetes.io/" in name
    return not native and not name.startswith("requests.")


def is_scalar_resource_name(name: str) -> bool:
    """schedutil.IsScalarResourceName: extended, prefixed-native, hugepages, attachable."""
    return (is_extended_resource_name(name) or "kubernetes.io/" in name
            or name.startswith("hugepages-") or name.startswith("attachable-volumes-"))


@functools.lru_cache(maxsize=4096)
def amount(name: str, quantity: str) -> int:
    """The integer a scheduler counts for `quantity` of resource `name` (0 if unparsable)."""
    try:
        return milli_value(str(quantity)) if name == CPU else value(str(quantity))
    except (QuantityError, TypeError):
        return 0


@dataclass(slots=True)
class Resource:
    """framework.Resource: cpu in millicores, bytes, pod count and scalar resources."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pod_number: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    def add(self, other: "Resource", sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        self.allowed_pod_number += sign * other.allowed_pod_number
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def copy(self) -> "Resource":
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage,
                        self.allowed_pod_number, dict(self.scalar))

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage
                    or any(self.scalar.values()))

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pod_number
        return self.scalar.get(name, 0)


def _from_amounts(amounts: Mapping[str, int]) -> Resource:
    r = Resource()
    for name, n in amounts.items():
        if name == CPU:
            r.milli_cpu = n
        elif name == MEMORY:
            r.memory = n
        elif name == EPHEMERAL_STORAGE:
            r.ephemeral_storage = n
        elif name == PODS:
            r.allowed_pod_number = n
        elif is_scalar_resource_name(name):
            r.scalar[name] = n
    return r


def resource_from_list(rl: Mapping[str, Any] | None) -> Resource:
    """A ResourceList (e.g. `status.allocatable`) as a Resource."""
    return _from_amounts({k: amount(k, v) for k, v in (rl or {}).items()})


def _container_requests(c: Mapping[str, Any], non_zero: bool) -> dict[str, int]:
    reqs = (c.get("resources") or {}).get("requests") or {}
    out = {k: amount(k, v) for k, v in reqs.items()}
    if non_zero:
        # applyNonMissing: only an absent entry is filled; an explicit "0" stays 0.
        out.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
        out.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
    return out


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = max(into.get(k, v), v)


def pod_request_amounts(spec: Mapping[str, Any], non_zero: bool = False) -> dict[str, int]:
    """resource.PodRequests as {resource name: int amount}."""
    reqs: dict[str, int] = {}
    for c in spec.get("containers") or ():
        _add(reqs, _container_requests(c, non_zero))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        creq = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":
            # A sidecar runs alongside everything started after it.
            _add(reqs, creq)
            _add(sidecars, creq)
            use = dict(sidecars)
        else:
            use = dict(creq)
            _add(use, sidecars)
        _max(init_max, use)
    _max(reqs, init_max)
    overhead = spec.get("overhead")
    if overhead:
        _add(reqs, {k: amount(k, v) for k, v in overhead.items()})
    return reqs


def pod_requests(spec: Mapping[str, Any]) -> tuple[Resource, int, int]:
    """(requests, non-zero cpu, non-zero memory) of a pod spec, as NodeInfo.AddPod counts."""
    req = _from_amounts(pod_request_amounts(spec))
    req.allowed_pod_number = 0
    non0 = pod_request_amounts(spec, non_zero=True)
    return req, non0.get(CPU, 0), non0.get(MEMORY, 0)
