"""PodTopologySpread: spread matching pods evenly over topology domains
(podtopologyspread/filtering.go, scoring.go, common.go; v1.32 with nodeInclusionPolicy and
minDomains).

Filter (DoNotSchedule constraints): for each constraint in order, the node must carry the
topology key (else UnschedulableAndUnresolvable "node(s) didn't match pod topology spread
constraints (missing required label)") and placing the pod must keep
`matching pods in the node's domain + (1 if the pod matches itself) - global minimum` within
`maxSkew` (else Unschedulable "node(s) didn't match pod topology spread constraints"). Domains
are the values of the key on nodes that carry every constraint's key and pass the inclusion
policies (nodeAffinityPolicy Honor by default: the pod's nodeSelector/required affinity;
nodeTaintsPolicy Ignore by default); the global minimum is 0 while fewer than minDomains
domains exist. Only non-terminating pods of the pod's namespace count.

Score (ScheduleAnyway constraints, or the system defaults — hostname maxSkew 3 and zone
maxSkew 5 over the selector of the pod's Services and owning ReplicaSet / StatefulSet /
ReplicationController): fewer matching pods in the node's domains scores higher, weighted by
log(number of domains + 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from navio.api.errors import BadRequest
from navio.api.selectors import LabelSelector, Requirement, label_selector_from_spec
from navio.api.selectors.labels import IN
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
from navio.scheduler.nodeselector import RequiredNodeAffinity
from navio.scheduler.taints import first_untolerated
from navio.scheduler.topology import Pair, has_label, per_row

if TYPE_CHECKING:
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo
    from navio.scheduler.protocol import Feasible

__all__ = ["NAME", "ERR_REASON_CONSTRAINTS_NOT_MATCH", "ERR_REASON_NODE_LABEL_NOT_MATCH",
           "PodTopologySpread", "Constraint", "HOSTNAME", "ZONE"]

NAME = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
HOSTNAME, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
_PRE_FILTER, _PRE_SCORE = "PreFilter" + NAME, "PreScore" + NAME
_FAIL_LABEL = Status.unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH, plugin=NAME)
_FAIL_SKEW = Status.unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH, plugin=NAME)

DefaultSelector = Callable[["PodInfo"], LabelSelector]


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_affinity: bool = True
    honor_taints: bool = False


def constraints_of(pod: "PodInfo", action: str) -> tuple[Constraint, ...]:
    """filterTopologySpreadConstraints: the pod's constraints with `whenUnsatisfiable ==
    action`, matchLabelKeys folded into the selector."""
    out = []
    for c in pod.spread_constraints:
        if (c.get("whenUnsatisfiable") or "DoNotSchedule") != action:
            continue
        try:
            selector = label_selector_from_spec(c.get("labelSelector"))
        except BadRequest:
            continue
        keys = [k for k in c.get("matchLabelKeys") or () if k in pod.labels]
        if keys and not selector.nothing:
            reqs = selector.requirements + tuple(Requirement(k, IN, (pod.labels[k],))
                                                 for k in keys)
            selector = LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
        out.append(Constraint(int(c.get("maxSkew") or 1), c.get("topologyKey", ""), selector,
                              int(c.get("minDomains") or 1),
                              (c.get("nodeAffinityPolicy") or "Honor") == "Honor",
                              (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"))
    return tuple(out)


@dataclass(slots=True)
class _FilterState:
    constraints: tuple[Constraint, ...]
    affinity: RequiredNodeAffinity
    pairs: dict[Pair, int] = field(default_factory=dict)     # TpPairToMatchNum
    domains: dict[str, int] = field(default_factory=dict)    # TpKeyToDomainsNum
    minimum: dict[str, int] = field(default_factory=dict)    # critical path minimum

    def clone(self) -> "_FilterState":
        return replace(self, pairs=dict(self.pairs), domains=dict(self.domains),
                       minimum=dict(self.minimum))

    def min_match(self, c: Constraint) -> int:
        if self.domains.get(c.topology_key, 0) < c.min_domains:
            return 0
        return self.minimum.get(c.topology_key, 0)

    def recompute_minimum(self) -> None:
        self.domains, self.minimum = {}, {}
        for (k, _), n in self.pairs.items():
            self.domains[k] = self.domains.get(k, 0) + 1
            self.minimum[k] = min(self.minimum.get(k, n), n)


def _included(c: Constraint, pod: "PodInfo", node: "NodeInfo",
              affinity: RequiredNodeAffinity) -> bool:
    """matchNodeInclusionPolicies."""
    if c.honor_affinity and not affinity.matches(node):
        return False
    if c.honor_taints and first_untolerated(node.taints, pod.tolerations) is not None:
        return False
    return True


def _included_rows(c: Constraint, pod: "PodInfo", cache: "Cache",
                   affinity: RequiredNodeAffinity) -> Any:
    n = len(cache.slots)
    ok = np.ones(n, dtype=bool)
    if c.honor_affinity and not affinity.empty:
        ok &= affinity.mask(cache)
    if c.honor_taints:
        arrays = cache.arrays
        assert arrays is not None
        sig_ok = np.array([first_untolerated(t, pod.tolerations) is None
                           for t in arrays.sig_taints], dtype=bool)
        ok &= sig_ok[arrays.taint_sig[:n]]
    return ok


def _has_keys(node: "NodeInfo", constraints: tuple[Constraint, ...]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


class PodTopologySpread:
    name = NAME
    events = ALL_EVENTS - {EVENT_POD_GROUP}

    def __init__(self, cache: "Cache", default_selector: DefaultSelector | None = None
                 ) -> None:
        self.cache = cache
        self.default_selector = default_selector

    def _counts(self, pod: "PodInfo", c: Constraint) -> dict[int, int]:
        return self.cache.count_matching([pod.namespace], c.selector, skip_terminating=True)

    # ---- filter ------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        constraints = constraints_of(pod, "DoNotSchedule")
        if not constraints:
            return SKIP
        s = _FilterState(constraints, RequiredNodeAffinity(pod.node_selector,
                                                           pod.required_node_affinity))
        cache = self.cache
        if cache.arrays is not None:
            valid = cache.arrays.valid[: len(cache.slots)].copy()
            for c in constraints:
                valid &= has_label(cache, c.topology_key)
            for c in constraints:
                rows = np.flatnonzero(valid & _included_rows(c, pod, cache, s.affinity))
                col = cache.arrays.label(c.topology_key)
                per_node = np.zeros(len(cache.slots), dtype=np.int64)
                for row, k in self._counts(pod, c).items():
                    per_node[row] = k
                ids = col.ids[rows]
                present = np.bincount(ids, minlength=len(col.values)) > 0
                sums = np.bincount(ids, weights=per_node[rows], minlength=len(col.values))
                for vid in np.flatnonzero(present).tolist():
                    s.pairs[(c.topology_key, col.values[vid])] = int(sums[vid])
        else:
            for c in constraints:
                counts = self._counts(pod, c)
                for ni in cache.node_infos():
                    if _has_keys(ni, constraints) and _included(c, pod, ni, s.affinity):
                        pair = (c.topology_key, ni.labels[c.topology_key])
                        s.pairs[pair] = s.pairs.get(pair, 0) + counts.get(ni.idx, 0)
        s.recompute_minimum()
        state[_PRE_FILTER] = s
        return None

    def _update(self, state: CycleState, pod: "PodInfo", other: "PodInfo", node: "NodeInfo",
                delta: int) -> None:
        s: _FilterState | None = state.get(_PRE_FILTER)
        if s is None or other.namespace != pod.namespace or node.node is None or \
                not _has_keys(node, s.constraints):
            return
        for c in s.constraints:
            if c.selector.matches(other.labels) and _included(c, pod, node, s.affinity):
                pair = (c.topology_key, node.labels[c.topology_key])
                s.pairs[pair] = s.pairs.get(pair, 0) + delta
        s.recompute_minimum()

    def add_pod(self, state: CycleState, pod: "PodInfo", added: "PodInfo",
                node: "NodeInfo") -> None:
        self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: "PodInfo", removed: "PodInfo",
                   node: "NodeInfo") -> None:
        self._update(state, pod, removed, node, -1)

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        s: _FilterState = state[_PRE_FILTER]
        for c in s.constraints:
            value = node.labels.get(c.topology_key)
            if value is None:
                return _FAIL_LABEL
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = s.pairs.get((c.topology_key, value), 0) + self_match - s.min_match(c)
            if skew > c.max_skew:
                return _FAIL_SKEW
        return None

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        s: _FilterState = state[_PRE_FILTER]
        n = len(cache.slots)
        undecided = np.ones(n, dtype=bool)
        no_label = np.zeros(n, dtype=bool)
        skewed = np.zeros(n, dtype=bool)
        for c in s.constraints:
            missing = undecided & ~has_label(cache, c.topology_key)
            no_label |= missing
            undecided &= ~missing
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = per_row(cache, c.topology_key, s.pairs) + self_match - s.min_match(c)
            over = undecided & (skew > c.max_skew)
            skewed |= over
            undecided &= ~over
        return NodeMask(undecided, [(ERR_REASON_NODE_LABEL_NOT_MATCH, no_label, True),
                                    (ERR_REASON_CONSTRAINTS_NOT_MATCH, skewed, False)])

    # ---- score -------------------------------------------------------------------------

    def _score_constraints(self, pod: "PodInfo") -> tuple[tuple[Constraint, ...], bool]:
        if pod.spread_constraints:
            return constraints_of(pod, "ScheduleAnyway"), True
        if self.default_selector is None:
            return (), True
        selector = self.default_selector(pod)
        if selector.empty() or selector.nothing:
            return (), False
        return (Constraint(3, HOSTNAME, selector), Constraint(5, ZONE, selector)), False

    def pre_score(self, state: CycleState, pod: "PodInfo", feasible: "Feasible"
                  ) -> Status | None:
        constraints, require_all = self._score_constraints(pod)
        if not constraints:
            return SKIP
        nodes = feasible.nodes
        if not nodes:
            return SKIP
        ignored = {ni.idx for ni in nodes
                   if require_all and not _has_keys(ni, constraints)}
        pairs: dict[Pair, float] = {}
        sizes = [0] * len(constraints)
        for ni in nodes:
            if ni.idx in ignored:
                continue
            for i, c in enumerate(constraints):
                if c.topology_key == HOSTNAME:
                    continue
                pair = (c.topology_key, ni.labels.get(c.topology_key, ""))
                if pair not in pairs:
                    pairs[pair] = 0
                    sizes[i] += 1
        weights = [math.log((len(nodes) - len(ignored) if c.topology_key == HOSTNAME
                             else sizes[i]) + 2) for i, c in enumerate(constraints)]
        affinity = RequiredNodeAffinity(pod.node_selector, pod.required_node_affinity)
        host_counts: dict[int, int] = {}
        for c in constraints:
            counts = self._counts(pod, c)
            if c.topology_key == HOSTNAME:
                host_counts = counts
                continue
            for row, k in counts.items():
                other = self.cache.slots[row]
                if other is None or other.node is None:
                    continue
                if require_all and not _has_keys(other, constraints):
                    continue
                if not _included(c, pod, other, affinity):
                    continue
                pair = (c.topology_key, other.labels.get(c.topology_key, ""))
                if pair in pairs:
                    pairs[pair] += k
        state[_PRE_SCORE] = (constraints, ignored, pairs, weights, host_counts)
        return None

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        constraints, ignored, pairs, weights, host_counts = state[_PRE_SCORE]
        if node.idx in ignored:
            return 0
        total = 0.0
        for i, c in enumerate(constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            cnt = host_counts.get(node.idx, 0) if c.topology_key == HOSTNAME else \
                pairs[(c.topology_key, value)]
            total += cnt * weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5)

    def score_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache", rows: Any
                    ) -> Any:
        constraints, ignored, pairs, weights, host_counts = state[_PRE_SCORE]
        total = np.zeros(len(rows), dtype=np.float64)
        for i, c in enumerate(constraints):
            labelled = has_label(cache, c.topology_key, rows)
            if c.topology_key == HOSTNAME:
                cnt = np.zeros(len(rows), dtype=np.float64)
                if host_counts:
                    lookup = np.zeros(len(cache.slots), dtype=np.float64)
                    for row, k in host_counts.items():
                        lookup[row] = k
                    cnt = lookup[rows]
            else:
                cnt = per_row(cache, c.topology_key, pairs, rows, dtype=np.float64)
            total = np.where(labelled, total + (cnt * weights[i] + (c.max_skew - 1)), total)
        out = np.floor(total + 0.5).astype(np.int64)
        if ignored:
            out[np.isin(rows, list(ignored))] = 0
        return out

    def normalize(self, state: CycleState, pod: "PodInfo", scores: Any,
                  feasible: "Feasible") -> Any:
        ignored = state[_PRE_SCORE][1]
        if isinstance(scores, list):
            keep = [s for ni, s in zip(feasible.nodes, scores) if ni.idx not in ignored]
            lo, hi = min(keep, default=0), max(keep, default=0)
            out: list[int] = []
            for ni, s in zip(feasible.nodes, scores):
                if ni.idx in ignored:
                    out.append(0)
                elif hi == 0:
                    out.append(MAX_NODE_SCORE)
                else:
                    out.append(MAX_NODE_SCORE * (hi + lo - s) // hi)
            return out
        rows = feasible.rows
        mask = ~np.isin(rows, list(ignored)) if ignored else np.ones(len(rows), dtype=bool)
        if not mask.any():
            return np.zeros(len(rows), dtype=np.int64)
        lo, hi = int(scores[mask].min()), int(scores[mask].max())
        if hi == 0:
            arr = np.full(len(rows), MAX_NODE_SCORE, dtype=np.int64)
        else:
            arr = MAX_NODE_SCORE * (hi + lo - scores) // hi
        return np.where(mask, arr, 0)


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin, BatchScorePlugin, PreFilterExtensions

    _batch_filter_plugin: type[BatchFilterPlugin] = PodTopologySpread
    _batch_score_plugin: type[BatchScorePlugin] = PodTopologySpread
    _pre_filter_extensions: type[PreFilterExtensions] = PodTopologySpread
