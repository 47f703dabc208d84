"""Shared scoring of requested-versus-allocatable (noderesources/resource_allocation.go,
least_allocated.go, balanced_allocation.go), per node and over node rows.

- LeastAllocated (NodeResourcesFit's default scoring strategy, cpu and memory weight 1):
  per resource ((allocatable - requested) * 100) // allocatable, 0 when over; the weighted
  mean (integer division) over resources the node has.
- Balanced: fractions requested/allocatable (capped at 1) of cpu and memory; score
  int((1 - std) * 100), std of two fractions = |f1 - f2| / 2.
"requested" is the node's requests plus the pod's: LeastAllocated counts non-zero requests
(100m / 200Mi for containers without one), Balanced the plain requests.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from navio.scheduler.framework import MAX_NODE_SCORE
from navio.scheduler.nodearrays import np
from navio.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["DEFAULT_RESOURCES", "least_allocated", "balanced", "least_allocated_rows",
           "balanced_rows"]

DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))


def _pod_request(pod: "PodInfo", name: str, non_zero: bool) -> int:
    if name == CPU:
        return pod.non0_cpu if non_zero else pod.requests.milli_cpu
    if name == MEMORY:
        return pod.non0_mem if non_zero else pod.requests.memory
    return pod.requests.get(name)


def _alloc_req(node: "NodeInfo", name: str, pod_req: int, non_zero: bool) -> tuple[int, int]:
    """calculateResourceAllocatableRequest: (allocatable, requested incl. the pod)."""
    if name == CPU:
        used = node.non0_cpu if non_zero else node.requested.milli_cpu
        return node.allocatable.milli_cpu, used + pod_req
    if name == MEMORY:
        used = node.non0_mem if non_zero else node.requested.memory
        return node.allocatable.memory, used + pod_req
    if name == EPHEMERAL_STORAGE:
        return node.allocatable.ephemeral_storage, node.requested.ephemeral_storage + pod_req
    if pod_req == 0:
        return 0, 0
    if name in node.allocatable.scalar:
        return node.allocatable.scalar[name], node.requested.scalar.get(name, 0) + pod_req
    return 0, 0


def least_allocated(pod: "PodInfo", node: "NodeInfo",
                    resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES) -> int:
    score = weights = 0
    for name, weight in resources:
        alloc, req = _alloc_req(node, name, _pod_request(pod, name, True), True)
        if alloc == 0:
            continue
        score += (0 if req > alloc else (alloc - req) * MAX_NODE_SCORE // alloc) * weight
        weights += weight
    return score // weights if weights else 0


def balanced(pod: "PodInfo", node: "NodeInfo",
             resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES) -> int:
    fractions = []
    for name, _ in resources:
        alloc, req = _alloc_req(node, name, _pod_request(pod, name, False), False)
        if alloc == 0:
            continue
        fractions.append(min(req / alloc, 1.0))
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def _columns(cache: "Cache", name: str, rows: Any, non_zero: bool) -> tuple[Any, Any]:
    a = cache.arrays
    assert a is not None
    if name == CPU:
        return a.alloc_cpu[rows], (a.non0_cpu if non_zero else a.req_cpu)[rows]
    if name == MEMORY:
        return a.alloc_mem[rows], (a.non0_mem if non_zero else a.req_mem)[rows]
    if name == EPHEMERAL_STORAGE:
        return a.alloc_eph[rows], a.req_eph[rows]
    return a.scalar_alloc_col(name)[rows], a.scalar_req_col(name)[rows]


def _resource_rows(pod: "PodInfo", cache: "Cache", rows: Any, name: str, non_zero: bool
                   ) -> tuple[Any, Any] | None:
    pod_req = _pod_request(pod, name, non_zero)
    if name not in (CPU, MEMORY, EPHEMERAL_STORAGE) and pod_req == 0:
        return None
    alloc, used = _columns(cache, name, rows, non_zero)
    return alloc, used + pod_req


def least_allocated_rows(pod: "PodInfo", cache: "Cache", rows: Any,
                         resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES) -> Any:
    score = np.zeros(len(rows), dtype=np.int64)
    weights = np.zeros(len(rows), dtype=np.int64)
    for name, weight in resources:
        got = _resource_rows(pod, cache, rows, name, True)
        if got is None:
            continue
        alloc, req = got
        has = alloc != 0
        s = np.where(req > alloc, 0, (alloc - req) * MAX_NODE_SCORE // np.where(has, alloc, 1))
        score += np.where(has, s * weight, 0)
        weights += np.where(has, weight, 0)
    return np.where(weights > 0, score // np.maximum(weights, 1), 0)


def balanced_rows(pod: "PodInfo", cache: "Cache", rows: Any,
                  resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES) -> Any:
    fracs, present = [], []
    for name, _ in resources:
        got = _resource_rows(pod, cache, rows, name, False)
        if got is None:
            continue
        alloc, req = got
        has = alloc != 0
        fracs.append(np.minimum(req / np.where(has, alloc, 1), 1.0))
        present.append(has)
    if not fracs:
        return np.full(len(rows), MAX_NODE_SCORE, dtype=np.int64)
    if len(fracs) == 2:
        both = present[0] & present[1]
        std = np.where(both, np.abs((fracs[0] - fracs[1]) / 2), 0.0)
    else:
        f = np.array(fracs)
        p = np.array(present)
        cnt = p.sum(axis=0)
        mean = (f * p).sum(axis=0) / np.maximum(cnt, 1)
        var = (((f - mean) ** 2) * p).sum(axis=0) / np.maximum(cnt, 1)
        pair = np.abs((np.where(p, f, -np.inf).max(axis=0)
                       - np.where(p, f, np.inf).min(axis=0)) / 2)
        std = np.where(cnt > 2, np.sqrt(var), np.where(cnt == 2, pair, 0.0))
    return np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)
