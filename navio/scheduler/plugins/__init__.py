"""The in-tree plugins, one module each, named as kube-scheduler names them.

`default_profile` assembles them in the default profile's order (apis/config/v1
default_plugins.go): filters NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity; scores with default weights
TaintToleration 3, NodeAffinity 2, NodeResourcesFit 1 (LeastAllocated), PodTopologySpread 2,
InterPodAffinity 2, NodeResourcesBalancedAllocation 1. VolumeBinding filters after
NodeResourcesFit when the scheduler hands in its volume listers. The other volume plugins,
ImageLocality and SchedulingGates' plugin form are not included (gated pods are held by the
queue).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from navio.scheduler.algorithm import Profile
from navio.scheduler.plugins import (
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_balanced_allocation,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    priority_sort,
    taint_toleration,
    volume_binding,
)

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.plugins.inter_pod_affinity import NamespaceLabels, NamespacesMatching
    from navio.scheduler.plugins.pod_topology_spread import DefaultSelector

__all__ = ["DEFAULT_WEIGHTS", "default_profile"]

DEFAULT_WEIGHTS: Mapping[str, int] = {
    taint_toleration.NAME: 3,
    node_affinity.NAME: 2,
    node_resources_fit.NAME: 1,
    pod_topology_spread.NAME: 2,
    inter_pod_affinity.NAME: 2,
    node_resources_balanced_allocation.NAME: 1,
}


def _no_labels(namespace: str) -> dict[str, str]:
    return {}


def _no_namespaces(selector: object) -> list[str]:
    return []


def default_profile(cache: "Cache", weights: Mapping[str, int] | None = None, *,
                    ns_labels: "NamespaceLabels" = _no_labels,
                    namespaces_matching: "NamespacesMatching" = _no_namespaces,
                    default_selector: "DefaultSelector | None" = None,
                    hard_pod_affinity_weight: int = 1,
                    volume_binding: "volume_binding.VolumeBinding | None" = None) -> Profile:
    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    taints = taint_toleration.TaintToleration()
    affinity = node_affinity.NodeAffinity()
    fit = node_resources_fit.NodeResourcesFit()
    spread = pod_topology_spread.PodTopologySpread(cache, default_selector)
    inter = inter_pod_affinity.InterPodAffinity(cache, ns_labels, namespaces_matching,
                                                hard_pod_affinity_weight)
    balanced = node_resources_balanced_allocation.NodeResourcesBalancedAllocation()
    filters = [node_unschedulable.NodeUnschedulable(), node_name.NodeName(), taints, affinity,
               node_ports.NodePorts(), fit, *([volume_binding] if volume_binding else []),
               spread, inter]
    scorers = [(p, w[p.name]) for p in (taints, affinity, fit, spread, inter, balanced)
               if w.get(p.name, 0) > 0]
    return Profile(filters, scorers, [spread, inter])


QUEUE_SORT = priority_sort.PrioritySort
