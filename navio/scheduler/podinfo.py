"""PodInfo: the facts about one pod the scheduler needs, parsed once per pod version.

Why: a pod is read by every plugin in every cycle (as the pod to place, and as a pod already
on a node); parsing its requests, ports, tolerations and affinity terms once when the informer
delivers it keeps the cycle free of dict walking and quantity parsing, as kube-scheduler's
framework.PodInfo does (framework/types.go).

Guarantees:
- A PodInfo never mutates the pod dict it wraps (that dict is the informer's shared copy).
- Affinity terms follow framework.AffinityTerm: with neither `namespaces` nor
  `namespaceSelector` a term applies to the pod's own namespace; a nil namespaceSelector matches
  no namespace, an empty one every namespace. A term whose selector does not parse is dropped
  and the pod's other terms are kept (validation refuses such pods, so this only guards
  against bad data).
- `priority` is `spec.priority` when set, else the value of `spec.priorityClassName`'s
  PriorityClass, else the global default PriorityClass, else 0 (the Priority admission
  plugin's resolution, done here because the API server may not have done it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors import NOTHING, LabelSelector, label_selector_from_spec
from navio.scheduler.resources import Resource, pod_requests

__all__ = ["PodInfo", "AffinityTerm", "WeightedAffinityTerm", "pod_info", "ref",
           "GANG_LABEL", "PriorityResolver"]

GANG_LABEL = "scheduling.navio.dev/pod-group"

PriorityResolver = Callable[[Mapping[str, Any]], int]


def ref(pod: Mapping[str, Any]) -> str:
    """`ns/name`, as klog.KObj prints a pod."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """framework.AffinityTerm: which pods (namespaces × selector) a term is about, and where."""

    namespaces: frozenset[str]
    selector: LabelSelector
    topology_key: str
    namespace_selector: LabelSelector = NOTHING

    def matches(self, namespace: str, labels: Mapping[str, str] | None,
                ns_labels: Mapping[str, str] | None) -> bool:
        """True when a pod in `namespace` with `labels` is one this term is about."""
        if namespace in self.namespaces or self.namespace_selector.matches(ns_labels):
            return self.selector.matches(labels)
        return False

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the term's meaning: equal keys select the same pods in the same way."""
        return (self.namespaces, str(self.selector), self.selector.nothing, self.topology_key,
                str(self.namespace_selector), self.namespace_selector.nothing)


@dataclass(frozen=True, slots=True)
class WeightedAffinityTerm:
    term: AffinityTerm
    weight: int


def _term(namespace: str, spec: Mapping[str, Any]) -> AffinityTerm:
    selector = label_selector_from_spec(spec.get("labelSelector"))
    ns_spec = spec.get("namespaceSelector")
    names = spec.get("namespaces") or []
    namespaces = frozenset(names) if (names or ns_spec is not None) else frozenset({namespace})
    return AffinityTerm(namespaces, selector, spec.get("topologyKey", ""),
                        label_selector_from_spec(ns_spec))


def _terms(namespace: str, specs: Any) -> tuple[AffinityTerm, ...]:
    out = []
    for spec in specs or ():
        try:
            out.append(_term(namespace, spec))
        except BadRequest:
            continue
    return tuple(out)


def _weighted(namespace: str, specs: Any) -> tuple[WeightedAffinityTerm, ...]:
    out = []
    for spec in specs or ():
        weight = int(spec.get("weight") or 0)
        if weight == 0:
            continue
        try:
            out.append(WeightedAffinityTerm(_term(namespace, spec.get("podAffinityTerm") or {}),
                                            weight))
        except BadRequest:
            continue
    return tuple(out)


def _host_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """(hostIP, protocol, hostPort) of containers and sidecars with a hostPort (NodePorts)."""
    out = []
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or ()
                   if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            port = int(p.get("hostPort") or 0)
            if port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return tuple(out)


@dataclass(slots=True, eq=False)
class PodInfo:
    pod: dict[str, Any]
    key: str
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    priority: int
    node_name: str
    scheduler_name: str
    terminating: bool
    requests: Resource
    non0_cpu: int
    non0_mem: int
    host_ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[dict[str, Any], ...]
    node_selector: dict[str, str] | None
    required_node_affinity: dict[str, Any] | None     # the NodeSelector (nodeSelectorTerms)
    preferred_node_affinity: tuple[dict[str, Any], ...]
    required_affinity_terms: tuple[AffinityTerm, ...]
    required_anti_affinity_terms: tuple[AffinityTerm, ...]
    preferred_affinity_terms: tuple[WeightedAffinityTerm, ...]
    preferred_anti_affinity_terms: tuple[WeightedAffinityTerm, ...]
    spread_constraints: tuple[dict[str, Any], ...]
    gang: str
    nominated_node_name: str
    start_time: str
    scheduling_gated: bool
    preemption_never: bool

    @property
    def has_affinity(self) -> bool:
        """Any pod (anti-)affinity term: such pods are in NodeInfo.PodsWithAffinity."""
        return bool(self.required_affinity_terms or self.required_anti_affinity_terms
                    or self.preferred_affinity_terms or self.preferred_anti_affinity_terms)


def _no_priority_classes(pod: Mapping[str, Any]) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def pod_info(pod: dict[str, Any], priority_of: PriorityResolver = _no_priority_classes
             ) -> PodInfo:
    """Parse `pod` (not copied, never mutated) into a PodInfo."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    namespace = meta.get("namespace") or "default"
    name = meta.get("name") or ""
    affinity = spec.get("affinity") or {}
    node_aff = affinity.get("nodeAffinity") or {}
    pod_aff = affinity.get("podAffinity") or {}
    anti_aff = affinity.get("podAntiAffinity") or {}
    requests, non0_cpu, non0_mem = pod_requests(spec)
    labels = meta.get("labels") or {}
    priority = spec.get("priority")
    return PodInfo(
        pod=pod, key=f"{namespace}/{name}", uid=meta.get("uid") or "", namespace=namespace,
        name=name, labels=labels,
        priority=int(priority) if priority is not None else priority_of(pod),
        node_name=spec.get("nodeName") or "",
        scheduler_name=spec.get("schedulerName") or "default-scheduler",
        terminating=bool(meta.get("deletionTimestamp")),
        requests=requests, non0_cpu=non0_cpu, non0_mem=non0_mem,
        host_ports=_host_ports(spec),
        tolerations=tuple(spec.get("tolerations") or ()),
        node_selector=spec.get("nodeSelector"),
        required_node_affinity=node_aff.get("requiredDuringSchedulingIgnoredDuringExecution"),
        preferred_node_affinity=tuple(
            node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()),
        required_affinity_terms=_terms(
            namespace, pod_aff.get("requiredDuringSchedulingIgnoredDuringExecution")),
        required_anti_affinity_terms=_terms(
            namespace, anti_aff.get("requiredDuringSchedulingIgnoredDuringExecution")),
        preferred_affinity_terms=_weighted(
            namespace, pod_aff.get("preferredDuringSchedulingIgnoredDuringExecution")),
        preferred_anti_affinity_terms=_weighted(
            namespace, anti_aff.get("preferredDuringSchedulingIgnoredDuringExecution")),
        spread_constraints=tuple(spec.get("topologySpreadConstraints") or ()),
        gang=labels.get(GANG_LABEL, ""),
        nominated_node_name=status.get("nominatedNodeName") or "",
        start_time=status.get("startTime") or "",
        scheduling_gated=bool(spec.get("schedulingGates")),
        preemption_never=spec.get("preemptionPolicy") == "Never",
    )
