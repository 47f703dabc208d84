"""NodeResourcesFit: the pod's requests must fit the node's allocatable minus what the node's
pods (bound and assumed) request; scores nodes by LeastAllocated (noderesources/fit.go).

Filter reasons, all kept: "Too many pods", "Insufficient cpu", "Insufficient memory",
"Insufficient ephemeral-storage", "Insufficient <extended resource>". The status is
Unschedulable (preemption may help) unless the pod requests more of some resource than the
node has in total, then UnschedulableAndUnresolvable (v1.32). A pod requesting nothing only
needs a free pod slot. Requests count init containers and sidecars as Kubernetes does
(resources.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    EVENT_POD_DELETE,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.plugins.resource_allocation import least_allocated, least_allocated_rows
from navio.scheduler.resources import Resource, is_extended_resource_name

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "NodeResourcesFit", "fits_request"]

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"
_PRE_FILTER = "PreFilter" + NAME


def fits_request(req: Resource, node: "NodeInfo",
                 ignored: frozenset[str] = frozenset()) -> list[tuple[str, bool]]:
    """fitsRequest: [(reason, unresolvable)] for every resource the node lacks."""
    out: list[tuple[str, bool]] = []
    alloc, used = node.allocatable, node.requested
    if len(node.pods) + 1 > alloc.allowed_pod_number:
        out.append((TOO_MANY_PODS, False))
    if req.is_zero():
        return out
    if req.milli_cpu > 0 and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        out.append(("Insufficient cpu", req.milli_cpu > alloc.milli_cpu))
    if req.memory > 0 and req.memory > alloc.memory - used.memory:
        out.append(("Insufficient memory", req.memory > alloc.memory))
    if req.ephemeral_storage > 0 and \
            req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        out.append(("Insufficient ephemeral-storage",
                    req.ephemeral_storage > alloc.ephemeral_storage))
    for name, q in req.scalar.items():
        if q == 0 or (name in ignored and is_extended_resource_name(name)):
            continue
        have = alloc.scalar.get(name, 0)
        if q > have - used.scalar.get(name, 0):
            out.append((f"Insufficient {name}", q > have))
    return out


class NodeResourcesFit:
    name = NAME
    events = frozenset({EVENT_POD_DELETE, EVENT_NODE_ADD, EVENT_NODE_UPDATE})

    def __init__(self, ignored_resources: frozenset[str] = frozenset()) -> None:
        self.ignored = ignored_resources

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        state[_PRE_FILTER] = pod.requests
        return None

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        insufficient = fits_request(state[_PRE_FILTER], node, self.ignored)
        if not insufficient:
            return None
        reasons = tuple(r for r, _ in insufficient)
        if any(u for _, u in insufficient):
            return Status.unresolvable(*reasons, plugin=NAME)
        return Status.unschedulable(*reasons, plugin=NAME)

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        a = cache.arrays
        assert a is not None
        n = len(cache.slots)
        req: Resource = state[_PRE_FILTER]
        bad = a.pod_count[:n] + 1 > a.alloc_pods[:n]
        failures: list[tuple[str, Any, Any]] = [(TOO_MANY_PODS, bad, False)]
        if not req.is_zero():
            checks = [("Insufficient cpu", req.milli_cpu, a.alloc_cpu, a.req_cpu),
                      ("Insufficient memory", req.memory, a.alloc_mem, a.req_mem),
                      ("Insufficient ephemeral-storage", req.ephemeral_storage, a.alloc_eph,
                       a.req_eph)]
            for name, q in req.scalar.items():
                if q and not (name in self.ignored and is_extended_resource_name(name)):
                    checks.append((f"Insufficient {name}", q, a.scalar_alloc_col(name),
                                   a.scalar_req_col(name)))
            for reason, q, alloc_col, req_col in checks:
                if q <= 0:
                    continue
                alloc = alloc_col[:n]
                short = q > alloc - req_col[:n]
                failures.append((reason, short, q > alloc))
                bad = bad | short
        return NodeMask(~bad, failures)

    # ---- score (LeastAllocated) ----------------------------------------------------------

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        return None

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        return least_allocated(pod, node)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        return least_allocated_rows(pod, cache, rows)

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        return scores


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin, BatchScorePlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = NodeResourcesFit
    _batch_score_plugin: type[BatchScorePlugin] = NodeResourcesFit
