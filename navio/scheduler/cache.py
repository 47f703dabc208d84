"""The scheduler's cache: nodes, the pods on them, and the pods it has assumed.

Why: kube-scheduler decides from memory (internal/cache/cache.go), never from the API in the
cycle. A pod is *assumed* on its node the moment the cycle picks the node, before the binding
is written, so the next cycle already sees the node's resources taken (optimistic binding);
if the binding fails the assumption is *forgotten*.

Guarantees:
- The scheduling cycle runs without awaiting, so it reads the live cache as a consistent
  snapshot; nothing here copies nodes per cycle.
- A pod is counted on at most one node. When the informer reports an assumed pod as bound,
  the assumption is confirmed (or moved, if it was bound elsewhere); `forget` of a pod no longer
  assumed is a no-op.
- Indexes kept current with every change: pods by (namespace, label key, value) and by
  namespace, so that "pods matching a selector" costs the matching pods, not all pods; and the
  (anti-)affinity terms of existing pods grouped by meaning (`TermEntry`), so that symmetric
  checks cost one match per distinct term instead of one per pod.
- `arrays` (when numpy is available) mirrors every node row; see nodearrays.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from navio.api.selectors import LabelSelector, Requirement
from navio.api.selectors.labels import DOUBLE_EQUALS, EQUALS, IN
from navio.scheduler.nodearrays import ARRAYS_AVAILABLE, NodeArrays
from navio.scheduler.nodeinfo import NodeInfo
from navio.scheduler.podinfo import AffinityTerm, PodInfo

__all__ = ["Cache", "TermEntry", "REQUIRED_ANTI", "REQUIRED_AFFINITY", "PREFERRED_AFFINITY",
           "PREFERRED_ANTI"]

log = logging.getLogger(__name__)

REQUIRED_ANTI, REQUIRED_AFFINITY = "requiredAnti", "requiredAffinity"
PREFERRED_AFFINITY, PREFERRED_ANTI = "preferredAffinity", "preferredAnti"


@dataclass(slots=True, eq=False)
class TermEntry:
    """One distinct term of existing pods, and on which node rows pods carry it."""

    term: AffinityTerm
    weight: int
    counts: dict[int, int] = field(default_factory=dict)


def _zone_key(labels: dict[str, str]) -> str:
    """utilnode.GetZoneKey: region and zone (GA labels, then the beta ones), "" if neither."""
    region = labels.get("topology.kubernetes.io/region") or \
        labels.get("failure-domain.beta.kubernetes.io/region") or ""
    zone = labels.get("topology.kubernetes.io/zone") or \
        labels.get("failure-domain.beta.kubernetes.io/zone") or ""
    return f"{region}:\x00:{zone}" if region or zone else ""


def _terms_of(pi: PodInfo) -> Iterable[tuple[str, AffinityTerm, int]]:
    for t in pi.required_anti_affinity_terms:
        yield REQUIRED_ANTI, t, 1
    for t in pi.required_affinity_terms:
        yield REQUIRED_AFFINITY, t, 1
    for w in pi.preferred_affinity_terms:
        yield PREFERRED_AFFINITY, w.term, w.weight
    for w in pi.preferred_anti_affinity_terms:
        yield PREFERRED_ANTI, w.term, w.weight


class Cache:
    def __init__(self, use_arrays: bool = True) -> None:
        self.nodes: dict[str, NodeInfo] = {}          # includes node-less (ghost) rows
        self.slots: list[NodeInfo | None] = []
        self._free: list[int] = []
        self.pods: dict[str, PodInfo] = {}             # assigned and assumed pods
        self.pod_node: dict[str, str] = {}
        self.assumed: set[str] = set()
        self.num_nodes = 0
        # Node order for sampling (nodeTree): zones round-robin, nodes in the order added.
        self._added: dict[str, int] = {}
        self._zone: dict[str, str] = {}
        self._seq = 0
        self._order: list[int] | None = None
        self._order_array: Any = None
        self.arrays: NodeArrays | None = NodeArrays() if use_arrays and ARRAYS_AVAILABLE \
            else None
        self._by_label: dict[tuple[str, str, str], set[str]] = {}
        self._by_namespace: dict[str, set[str]] = {}
        self.terms: dict[str, dict[tuple[Any, ...], TermEntry]] = {
            REQUIRED_ANTI: {}, REQUIRED_AFFINITY: {}, PREFERRED_AFFINITY: {},
            PREFERRED_ANTI: {}}
        self.gangs: dict[tuple[str, str], set[str]] = {}   # (ns, group) -> assigned pod keys

    # ---- nodes -----------------------------------------------------------------------------

    def _row(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            idx = self._free.pop() if self._free else len(self.slots)
            if idx == len(self.slots):
                self.slots.append(None)
            ni = NodeInfo(name=name, idx=idx)
            self.slots[idx] = ni
            self.nodes[name] = ni
        return ni

    def _sync(self, ni: NodeInfo) -> None:
        if self.arrays is not None:
            self.arrays.sync(ni)

    def set_node(self, node: dict[str, Any]) -> NodeInfo:
        """Add or update a node from its API object."""
        name = (node.get("metadata") or {}).get("name") or ""
        ni = self._row(name)
        if ni.node is None:
            self.num_nodes += 1
            self._seq += 1
            self._added[name] = self._seq
            self._order = None
        ni.set_node(node)
        zone = _zone_key(ni.labels)
        if self._zone.get(name) != zone:
            self._zone[name] = zone
            self._order = None
        self._sync(ni)
        return ni

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None or ni.node is None:
            return
        self.num_nodes -= 1
        self._added.pop(name, None)
        self._zone.pop(name, None)
        self._order = None
        ni.set_node(None)
        if ni.pods:
            self._sync(ni)          # keep the row (without a node) until its pods go
        else:
            self._drop_row(ni)

    def _drop_row(self, ni: NodeInfo) -> None:
        del self.nodes[ni.name]
        self.slots[ni.idx] = None
        self._free.append(ni.idx)
        if self.arrays is not None:
            self.arrays.clear(ni.idx)

    def node_infos(self) -> list[NodeInfo]:
        """Nodes that exist, in row order."""
        return [ni for ni in self.slots if ni is not None and ni.node is not None]

    def node_order(self) -> list[int]:
        """Rows of the existing nodes in the order a cycle samples them: one node of each
        zone in turn (zones in the order first seen), as kube-scheduler's nodeTree lists."""
        if self._order is None:
            zones: dict[str, list[int]] = {}
            for name in sorted(self._added, key=self._added.__getitem__):
                zones.setdefault(self._zone.get(name, ""), []).append(self.nodes[name].idx)
            lists = list(zones.values())
            order: list[int] = []
            for i in range(max((len(rows) for rows in lists), default=0)):
                order.extend(rows[i] for rows in lists if i < len(rows))
            self._order = order
            self._order_array = None
        return self._order

    def node_order_array(self) -> Any:
        order = self.node_order()
        if self._order_array is None:
            from navio.scheduler.nodearrays import np
            self._order_array = np.array(order, dtype=np.int64)
        return self._order_array

    def get(self, name: str) -> NodeInfo | None:
        ni = self.nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    # ---- pods ------------------------------------------------------------------------------

    def _index(self, pi: PodInfo, idx: int, sign: int) -> None:
        keys = [(pi.namespace, k, v) for k, v in pi.labels.items()]
        if sign > 0:
            for k in keys:
                self._by_label.setdefault(k, set()).add(pi.key)
            self._by_namespace.setdefault(pi.namespace, set()).add(pi.key)
            if pi.gang:
                self.gangs.setdefault((pi.namespace, pi.gang), set()).add(pi.key)
        else:
            for k in keys:
                s = self._by_label.get(k)
                if s is not None:
                    s.discard(pi.key)
                    if not s:
                        del self._by_label[k]
            s = self._by_namespace.get(pi.namespace)
            if s is not None:
                s.discard(pi.key)
            if pi.gang:
                g = self.gangs.get((pi.namespace, pi.gang))
                if g is not None:
                    g.discard(pi.key)
                    if not g:
                        del self.gangs[(pi.namespace, pi.gang)]
        for category, term, weight in _terms_of(pi):
            table = self.terms[category]
            tkey = term.key + (weight,)
            entry = table.get(tkey)
            if entry is None:
                if sign < 0:
                    continue
                entry = table[tkey] = TermEntry(term, weight)
            n = entry.counts.get(idx, 0) + sign
            if n > 0:
                entry.counts[idx] = n
            else:
                entry.counts.pop(idx, None)
                if not entry.counts:
                    del table[tkey]

    def _place(self, pi: PodInfo, node_name: str) -> None:
        ni = self._row(node_name)
        ni.add_pod(pi)
        self.pods[pi.key] = pi
        self.pod_node[pi.key] = node_name
        self._index(pi, ni.idx, 1)
        self._sync(ni)

    def _unplace(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        node_name = self.pod_node.pop(key, None)
        if pi is None or node_name is None:
            return pi
        ni = self.nodes.get(node_name)
        if ni is not None:
            ni.remove_pod(pi)
            self._index(pi, ni.idx, -1)
            if ni.node is None and not ni.pods:
                self._drop_row(ni)
            else:
                self._sync(ni)
        return pi

    def add_pod(self, pi: PodInfo) -> None:
        """A pod the API reports bound to `pi.node_name` (confirms a matching assumption)."""
        self.assumed.discard(pi.key)
        if pi.key in self.pods:
            self._unplace(pi.key)
        self._place(pi, pi.node_name)

    update_pod = add_pod

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.discard(key)
        return self._unplace(key)

    def assume(self, pi: PodInfo, node_name: str) -> None:
        """Count `pi` on `node_name` before its binding is stored."""
        if pi.key in self.pods:
            self._unplace(pi.key)
        self._place(pi, node_name)
        self.assumed.add(pi.key)

    def forget(self, key: str) -> None:
        """Undo `assume` (binding failed); a no-op once the binding was confirmed."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def node_of(self, key: str) -> str | None:
        return self.pod_node.get(key)

    # ---- queries ---------------------------------------------------------------------------

    def _candidates(self, namespace: str, selector: LabelSelector
                    ) -> tuple[set[str], Requirement | None]:
        """Keys of pods that may match, from the smallest index posting; and the
        requirement that posting already guarantees."""
        best: set[str] | None = None
        used = None
        for r in selector.requirements:
            if r.operator in (EQUALS, DOUBLE_EQUALS, IN):
                if len(r.values) == 1:
                    found = self._by_label.get((namespace, r.key, r.values[0]), set())
                else:
                    found = set()
                    for v in r.values:
                        found |= self._by_label.get((namespace, r.key, v), set())
                if best is None or len(found) < len(best):
                    best, used = found, r
        if best is None:
            return self._by_namespace.get(namespace, set()), None
        return best, used

    def matching_pods(self, namespaces: Iterable[str], selector: LabelSelector,
                      skip_terminating: bool = False) -> list[PodInfo]:
        """Assigned or assumed pods in `namespaces` whose labels match `selector`."""
        if selector.nothing:
            return []
        out = []
        pods = self.pods
        for ns in namespaces:
            keys, used = self._candidates(ns, selector)
            rest = [r for r in selector.requirements if r is not used]
            for key in keys:
                pi = pods[key]
                if skip_terminating and pi.terminating:
                    continue
                if not rest or all(r.matches(pi.labels) for r in rest):
                    out.append(pi)
        return out

    def count_matching(self, namespaces: Iterable[str], selector: LabelSelector,
                       skip_terminating: bool = False) -> dict[int, int]:
        """{node row: number of matching pods on it}."""
        counts: dict[int, int] = {}
        for pi in self.matching_pods(namespaces, selector, skip_terminating):
            ni = self.nodes.get(self.pod_node[pi.key])
            if ni is not None:
                counts[ni.idx] = counts.get(ni.idx, 0) + 1
        return counts

    def namespaces_with_pods(self) -> list[str]:
        return [ns for ns, keys in self._by_namespace.items() if keys]

    def gang_members(self, namespace: str, group: str) -> set[str]:
        """Keys of assigned or assumed pods labelled with pod group `group`."""
        return self.gangs.get((namespace, group), set())
