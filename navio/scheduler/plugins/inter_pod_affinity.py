"""InterPodAffinity: required pod affinity / anti-affinity by topology key, both ways, and
preferred terms as score (interpodaffinity/filtering.go, scoring.go, v1.32).

Filter, in upstream's order (first failure wins):
1. every required affinity term's topology key must be on the node, and its domain must hold
   a pod matching *all* the pod's required affinity terms — unless no such pod exists anywhere
   and the pod matches its own terms (the first pod of a self-affine group):
   UnschedulableAndUnresolvable "node(s) didn't match pod affinity rules";
2. no pod matching a required anti-affinity term in the node's domain:
   Unschedulable "node(s) didn't match pod anti-affinity rules";
3. no existing pod whose required anti-affinity term matches this pod in the node's domain:
   Unschedulable "node(s) didn't satisfy existing pods anti-affinity rules".
The incoming pod's namespaceSelectors are resolved to namespaces in PreFilter, as upstream
merges them; existing pods' terms are matched against this pod's namespace labels.

Score: topology domains gain (or lose) the weights of preferred terms matched between the
pod and existing pods, and existing pods' required affinity terms matching the pod add
hardPodAffinityWeight (1); nodes score the sum over their labels, normalised min–max.

Performance: existing pods' terms come from the cache's term index (one match per distinct
term), and pods matching a selector from its label index, so PreFilter costs the matching
pods, not all pods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from navio.api.selectors import NOTHING, LabelSelector
from navio.scheduler.cache import (
    PREFERRED_AFFINITY,
    PREFERRED_ANTI,
    REQUIRED_AFFINITY,
    REQUIRED_ANTI,
)
from navio.scheduler.framework import (
    ALL_EVENTS,
    EVENT_POD_GROUP,
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.podinfo import AffinityTerm
from navio.scheduler.topology import Pair, has_label, per_row

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "ERR_REASON_AFFINITY", "ERR_REASON_ANTI_AFFINITY",
           "ERR_REASON_EXISTING_ANTI_AFFINITY", "InterPodAffinity"]

NAME = "InterPodAffinity"
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
_PRE_FILTER, _PRE_SCORE = "PreFilter" + NAME, "PreScore" + NAME
_FAIL_AFF = Status.unresolvable(ERR_REASON_AFFINITY, plugin=NAME)
_FAIL_ANTI = Status.unschedulable(ERR_REASON_ANTI_AFFINITY, plugin=NAME)
_FAIL_EXISTING = Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY, plugin=NAME)

NamespaceLabels = Callable[[str], dict[str, str]]
NamespacesMatching = Callable[[LabelSelector], list[str]]


def _add(counts: dict[Pair, int], pair: Pair, n: int) -> None:
    counts[pair] = counts.get(pair, 0) + n


@dataclass(slots=True)
class _FilterState:
    affinity_terms: tuple[AffinityTerm, ...]
    anti_terms: tuple[AffinityTerm, ...]
    ns_labels: dict[str, str]
    existing_anti: dict[Pair, int] = field(default_factory=dict)
    affinity_counts: dict[Pair, int] = field(default_factory=dict)
    anti_counts: dict[Pair, int] = field(default_factory=dict)

    def clone(self) -> "_FilterState":
        return replace(self, existing_anti=dict(self.existing_anti),
                       affinity_counts=dict(self.affinity_counts),
                       anti_counts=dict(self.anti_counts))

    def update(self, pod: "PodInfo", other: "PodInfo", node: "NodeInfo", sign: int) -> None:
        """updateWithPod: account for `other` added to (1) or removed from (-1) `node`."""
        labels = node.labels
        for t in other.required_anti_affinity_terms:
            if t.topology_key in labels and t.matches(pod.namespace, pod.labels,
                                                      self.ns_labels):
                _add(self.existing_anti, (t.topology_key, labels[t.topology_key]), sign)
        if self.affinity_terms and all(t.matches(other.namespace, other.labels, None)
                                       for t in self.affinity_terms):
            for t in self.affinity_terms:
                if t.topology_key in labels:
                    _add(self.affinity_counts, (t.topology_key, labels[t.topology_key]), sign)
        for t in self.anti_terms:
            if t.topology_key in labels and t.matches(other.namespace, other.labels, None):
                _add(self.anti_counts, (t.topology_key, labels[t.topology_key]), sign)


class InterPodAffinity:
    name = NAME
    events = ALL_EVENTS - {EVENT_POD_GROUP}

    def __init__(self, cache: "Cache", ns_labels: NamespaceLabels,
                 namespaces_matching: NamespacesMatching, hard_pod_affinity_weight: int = 1
                 ) -> None:
        self.cache = cache
        self.ns_labels = ns_labels
        self.namespaces_matching = namespaces_matching
        self.hard_weight = hard_pod_affinity_weight

    # ---- shared ------------------------------------------------------------------------

    def _merge(self, term: AffinityTerm) -> AffinityTerm:
        """mergeAffinityTermNamespacesIfNotEmpty: a non-empty namespaceSelector becomes the
        namespaces it selects now (an empty one keeps matching every namespace)."""
        if term.namespace_selector.empty():
            return term
        extra = self.namespaces_matching(term.namespace_selector)
        return replace(term, namespaces=term.namespaces | frozenset(extra),
                       namespace_selector=NOTHING)

    def _term_namespaces(self, term: AffinityTerm) -> list[str]:
        if term.namespace_selector.empty():
            return self.cache.namespaces_with_pods()
        return sorted(term.namespaces)

    def _node_pair(self, pi: "PodInfo", key: str) -> Pair | None:
        ni = self.cache.nodes.get(self.cache.pod_node.get(pi.key, ""))
        if ni is None or ni.node is None or key not in ni.labels:
            return None
        return (key, ni.labels[key])

    # ---- filter ------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        cache = self.cache
        ns_labels = self.ns_labels(pod.namespace)
        s = _FilterState(tuple(self._merge(t) for t in pod.required_affinity_terms),
                         tuple(self._merge(t) for t in pod.required_anti_affinity_terms),
                         ns_labels)
        for entry in cache.terms[REQUIRED_ANTI].values():
            t = entry.term
            if not t.matches(pod.namespace, pod.labels, ns_labels):
                continue
            for row, n in entry.counts.items():
                ni = cache.slots[row]
                if ni is not None and ni.node is not None and t.topology_key in ni.labels:
                    _add(s.existing_anti, (t.topology_key, ni.labels[t.topology_key]), n)
        if s.affinity_terms:
            first, rest = s.affinity_terms[0], s.affinity_terms[1:]
            for other in cache.matching_pods(self._term_namespaces(first), first.selector):
                if all(t.matches(other.namespace, other.labels, None) for t in rest):
                    for t in s.affinity_terms:
                        pair = self._node_pair(other, t.topology_key)
                        if pair is not None:
                            _add(s.affinity_counts, pair, 1)
        for t in s.anti_terms:
            # matching_pods applies the term's namespaces and selector (t.matches).
            for other in cache.matching_pods(self._term_namespaces(t), t.selector):
                pair = self._node_pair(other, t.topology_key)
                if pair is not None:
                    _add(s.anti_counts, pair, 1)
        if not s.existing_anti and not s.affinity_terms and not s.anti_terms:
            return SKIP
        state[_PRE_FILTER] = s
        return None

    def add_pod(self, state: CycleState, pod: "PodInfo", added: "PodInfo",
                node: "NodeInfo") -> None:
        if _PRE_FILTER in state:
            state[_PRE_FILTER].update(pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: "PodInfo", removed: "PodInfo",
                   node: "NodeInfo") -> None:
        if _PRE_FILTER in state:
            state[_PRE_FILTER].update(pod, removed, node, -1)

    @staticmethod
    def _self_affine(s: _FilterState, pod: "PodInfo") -> bool:
        return not s.affinity_counts and bool(s.affinity_terms) and all(
            t.matches(pod.namespace, pod.labels, None) for t in s.affinity_terms)

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        s: _FilterState = state[_PRE_FILTER]
        labels = node.labels
        exist = True
        for t in s.affinity_terms:
            if t.topology_key not in labels:
                return _FAIL_AFF
            if s.affinity_counts.get((t.topology_key, labels[t.topology_key]), 0) <= 0:
                exist = False
        if not exist and not self._self_affine(s, pod):
            return _FAIL_AFF
        if s.anti_counts:
            for t in s.anti_terms:
                v = labels.get(t.topology_key)
                if v is not None and s.anti_counts.get((t.topology_key, v), 0) > 0:
                    return _FAIL_ANTI
        if s.existing_anti:
            for k, v in labels.items():
                if s.existing_anti.get((k, v), 0) > 0:
                    return _FAIL_EXISTING
        return None

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        s: _FilterState = state[_PRE_FILTER]
        n = len(cache.slots)
        ok_aff = np.ones(n, dtype=bool)
        if s.affinity_terms:
            labelled = np.ones(n, dtype=bool)
            exist = np.ones(n, dtype=bool)
            for t in s.affinity_terms:
                labelled &= has_label(cache, t.topology_key)
                exist &= per_row(cache, t.topology_key, s.affinity_counts) > 0
            ok_aff = labelled & (exist | self._self_affine(s, pod))
        anti = np.zeros(n, dtype=bool)
        if s.anti_counts:
            for t in s.anti_terms:
                anti |= per_row(cache, t.topology_key, s.anti_counts) > 0
        existing = np.zeros(n, dtype=bool)
        for key in {k for k, _ in s.existing_anti}:
            existing |= per_row(cache, key, s.existing_anti) > 0
        fail_aff = ~ok_aff
        fail_anti = ok_aff & anti
        fail_existing = ok_aff & ~anti & existing
        return NodeMask(ok_aff & ~anti & ~existing,
                        [(ERR_REASON_AFFINITY, fail_aff, True),
                         (ERR_REASON_ANTI_AFFINITY, fail_anti, False),
                         (ERR_REASON_EXISTING_ANTI_AFFINITY, fail_existing, False)])

    # ---- score -------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        cache = self.cache
        scores: dict[Pair, int] = {}
        ns_labels = self.ns_labels(pod.namespace)
        for sign, weighted in ((1, pod.preferred_affinity_terms),
                               (-1, pod.preferred_anti_affinity_terms)):
            for w in weighted:
                t = self._merge(w.term)
                for other in cache.matching_pods(self._term_namespaces(t), t.selector):
                    pair = self._node_pair(other, t.topology_key)
                    if pair is not None:
                        _add(scores, pair, sign * w.weight)
        for category, sign, weight in ((REQUIRED_AFFINITY, 1, self.hard_weight),
                                       (PREFERRED_AFFINITY, 1, None),
                                       (PREFERRED_ANTI, -1, None)):
            if category == REQUIRED_AFFINITY and self.hard_weight <= 0:
                continue
            for entry in cache.terms[category].values():
                t = entry.term
                if not t.matches(pod.namespace, pod.labels, ns_labels):
                    continue
                amount = sign * (entry.weight if weight is None else weight)
                for row, n in entry.counts.items():
                    ni = cache.slots[row]
                    if ni is not None and ni.node is not None and t.topology_key in ni.labels:
                        _add(scores, (t.topology_key, ni.labels[t.topology_key]), amount * n)
        if not scores:
            return SKIP
        state[_PRE_SCORE] = scores
        return None

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        scores: dict[Pair, int] = state[_PRE_SCORE]
        labels = node.labels
        return sum(n for (k, v), n in scores.items() if labels.get(k) == v)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        scores: dict[Pair, int] = state[_PRE_SCORE]
        total = np.zeros(len(rows), dtype=np.int64)
        for key in {k for k, _ in scores}:
            total += per_row(cache, key, scores, rows)
        return total

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        if isinstance(scores, list):
            if not scores:
                return scores
            lo, hi = min(scores), max(scores)
            diff = hi - lo
            return [int(MAX_NODE_SCORE * ((s - lo) / diff)) if diff > 0 else 0 for s in scores]
        if not len(scores):
            return scores
        lo, hi = int(scores.min()), int(scores.max())
        diff = hi - lo
        if diff <= 0:
            return np.zeros(len(scores), dtype=np.int64)
        return np.trunc(MAX_NODE_SCORE * ((scores - lo) / diff)).astype(np.int64)


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin, BatchScorePlugin, PreFilterExtensions

    _batch_filter_plugin: type[BatchFilterPlugin] = InterPodAffinity
    _batch_score_plugin: type[BatchScorePlugin] = InterPodAffinity
    _pre_filter_extensions: type[PreFilterExtensions] = InterPodAffinity
