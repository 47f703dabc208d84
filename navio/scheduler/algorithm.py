"""One scheduling cycle for one pod: PreFilter → Filter → PreScore → Score → pick a node.

This is kube-scheduler's schedulePod / findNodesThatFitPod / prioritizeNodes / selectHost
(schedule_one.go, v1.32), with the same sampling: nodes are visited in nodeTree order (one
node of each zone in turn), filtering stops once `numFeasibleNodesToFind` nodes fit
(percentageOfNodesToScore; adaptive 50% - nodes/125, at least 5% and 100 nodes), starting
where the previous cycle stopped, and only those nodes are scored. Ties between the best nodes
are broken uniformly at random.

Two evaluation modes give the same answers (tests/unit/scheduler/test_batch_agreement.py):
- batched (numpy available): every filter plugin judges all node rows in a few vectorised
  operations; the first N feasible rows in rotation order are then scored as arrays;
- per node: plugins judge node by node, stopping at N feasible, as upstream does.
Nominated pods (preemptors waiting for room) of equal or higher priority are counted on their
node in both modes. The cycle never awaits, so it sees the cache as one consistent snapshot.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from navio.scheduler.cache import Cache
from navio.scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    FitError,
    NoNodesAvailable,
    Status,
)
from navio.scheduler.nodearrays import np
from navio.scheduler.nodeinfo import NodeInfo
from navio.scheduler.nominator import Nominator
from navio.scheduler.podinfo import PodInfo

__all__ = ["Profile", "Algorithm", "ScheduleResult", "SchedulerError",
           "num_feasible_nodes_to_find"]

log = logging.getLogger(__name__)

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


class SchedulerError(Exception):
    """A plugin failed (Code.ERROR): the pod is retried after backoff."""


def num_feasible_nodes_to_find(percentage: int, num_all: int) -> int:
    """numFeasibleNodesToFind."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    if percentage == 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    n = num_all * percentage // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class Profile:
    """The plugins of one scheduler profile, in upstream's default order."""

    filters: list[Any]
    scorers: list[tuple[Any, int]]
    extensions: list[Any] = field(default_factory=list)   # PreFilterExtensions

    def plugin_events(self) -> dict[str, frozenset[str]]:
        out = {p.name: p.events for p in self.filters}
        out.update({p.name: p.events for p, _ in self.scorers})
        return out


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


class _Feasible:
    __slots__ = ("rows", "_nodes", "_cache")

    def __init__(self, cache: Cache, rows: Any = None, nodes: list[NodeInfo] | None = None
                 ) -> None:
        self._cache, self.rows, self._nodes = cache, rows, nodes

    @property
    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            slots = self._cache.slots
            self._nodes = [slots[i] for i in self.rows.tolist()]  # type: ignore[misc]
        return self._nodes


def _absent_status(state: CycleState) -> Status:
    plugins = " ".join(sorted(set(state.node_names_plugins)))
    return Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{plugins}]")


class Algorithm:
    def __init__(self, cache: Cache, profile: Profile, nominator: Nominator | None = None, *,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None,
                 batch: bool | None = None) -> None:
        self.cache = cache
        self.profile = profile
        self.nominator = nominator or Nominator()
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        can_batch = cache.arrays is not None and \
            all(hasattr(p, "filter_nodes") for p in profile.filters) and \
            all(hasattr(p, "score_nodes") for p, _ in profile.scorers)
        self.batch = can_batch if batch is None else (batch and can_batch)
        self.next_start = 0

    # ---- PreFilter -----------------------------------------------------------------------

    def pre_filter(self, pod: PodInfo) -> tuple[CycleState, list[Any]]:
        """Run every PreFilter; the state and the filter plugins still active. Raises FitError
        when one rejects the pod, SchedulerError when one fails."""
        state = CycleState()
        for p in self.profile.filters:
            st = p.pre_filter(state, pod)
            if st is None:
                continue
            if st.code == Code.SKIP:
                state.skip_filter.add(p.name)
            elif st.is_rejected():
                diag = Diagnosis(pre_filter_msg=st.message, plugins={p.name})
                rows = [ni.idx for ni in self.cache.node_infos()]
                diag.failed.update(rows)
                if st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                    diag.unresolvable.update(rows)
                raise FitError(pod, self.cache.num_nodes, diag)
            else:
                raise SchedulerError(f"running PreFilter plugin {p.name!r}: {st.message}")
        return state, [p for p in self.profile.filters if p.name not in state.skip_filter]

    # ---- Filter, one node -------------------------------------------------------------------

    def _filters(self, state: CycleState, pod: PodInfo, node: NodeInfo, active: list[Any]
                 ) -> Status | None:
        for p in active:
            st = p.filter(state, pod, node)
            if st is not None:
                if st.code == Code.ERROR:
                    raise SchedulerError(f"running Filter plugin {p.name!r}: {st.message}")
                return st
        return None

    def filter_node(self, state: CycleState, pod: PodInfo, node: NodeInfo, active: list[Any]
                    ) -> Status | None:
        """RunFilterPluginsWithNominatedPods: with nominated pods of >= priority added first
        (if any), then as is; None when the node fits."""
        nominated = self.nominator.pods_on(node.name, pod.priority, exclude=pod.key) \
            if self.nominator else []
        if nominated:
            state2, node2 = state.clone(), node.clone()
            for other in nominated:
                node2.add_pod(other)
                for ext in self.profile.extensions:
                    ext.add_pod(state2, pod, other, node2)
            st = self._filters(state2, pod, node2, active)
            if st is not None:
                return st
        return self._filters(state, pod, node, active)

    # ---- the cycle ----------------------------------------------------------------------

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        """Pick a node for `pod`; raises FitError (fits nowhere) or SchedulerError."""
        cache = self.cache
        if cache.num_nodes == 0:
            raise NoNodesAvailable(pod, 0, Diagnosis())
        state, active = self.pre_filter(pod)
        if pod.nominated_node_name:
            ni = cache.get(pod.nominated_node_name)
            if ni is not None and (state.node_names is None or ni.name in state.node_names) \
                    and self.filter_node(state, pod, ni, active) is None:
                return ScheduleResult(ni.name, 1, 1)
        to_find = num_feasible_nodes_to_find(self.percentage, cache.num_nodes)
        if self.batch:
            feasible, diag_fn = self._find_batch(state, pod, active, to_find)
        else:
            feasible, diag_fn = self._find_per_node(state, pod, active, to_find)
        count = len(feasible.rows) if feasible.rows is not None else len(feasible.nodes)
        if count == 0:
            raise FitError(pod, cache.num_nodes, diag_fn())
        if count == 1:
            return ScheduleResult(feasible.nodes[0].name, count, 1)
        return ScheduleResult(self._select(state, pod, feasible), count, count)

    def _rotation_end(self, start: int, last: int | None, n: int) -> None:
        processed = n if last is None else (last - start) % n + 1
        self.next_start = (start + processed) % n if n else 0

    def _find_per_node(self, state: CycleState, pod: PodInfo, active: list[Any],
                       to_find: int) -> tuple[_Feasible, Any]:
        slots = self.cache.slots
        order = self.cache.node_order()
        n = len(order)
        start = self.next_start % n if n else 0
        diag = Diagnosis()
        absent = _absent_status(state) if state.node_names is not None else None
        feasible: list[NodeInfo] = []
        last = None
        for off in range(n):
            pos = (start + off) % n
            ni = slots[order[pos]]
            assert ni is not None
            if absent is not None and ni.name not in state.node_names:  # type: ignore[operator]
                diag.add(ni.idx, absent)
                continue
            st = self.filter_node(state, pod, ni, active)
            if st is None:
                feasible.append(ni)
                if len(feasible) == to_find:
                    last = pos
                    break
            else:
                diag.add(ni.idx, st)
        self._rotation_end(start, last, n)
        return _Feasible(self.cache, None, feasible), lambda: diag

    def _find_batch(self, state: CycleState, pod: PodInfo, active: list[Any],
                    to_find: int) -> tuple[_Feasible, Any]:
        cache = self.cache
        arrays = cache.arrays
        assert arrays is not None
        n = len(cache.slots)
        alive = arrays.valid[:n].copy()
        verdicts: list[tuple[str, Any, list[Any]]] = []
        if state.node_names is not None:
            allowed = np.zeros(n, dtype=bool)
            for name in state.node_names:
                ni = cache.get(name)
                if ni is not None:
                    allowed[ni.idx] = True
            out = alive & ~allowed
            verdicts.append(("", out, [(_absent_status(state).message, out, True)]))
            alive &= allowed
        for p in active:
            mask = p.filter_nodes(state, pod, cache)
            newly = alive & ~mask.ok
            if newly.any():
                verdicts.append((p.name, newly, mask.failures))
                alive &= mask.ok
        extra: list[tuple[int, Status]] = []
        if self.nominator:
            for name in self.nominator.nodes():
                ni = cache.get(name)
                if ni is None or not alive[ni.idx]:
                    continue
                if not self.nominator.pods_on(name, pod.priority, exclude=pod.key):
                    continue
                st = self.filter_node(state, pod, ni, active)
                if st is not None:
                    alive[ni.idx] = False
                    extra.append((ni.idx, st))
        perm = cache.node_order_array()
        count = len(perm)
        positions = np.flatnonzero(alive[perm])
        start = self.next_start % count if count else 0
        k = int(np.searchsorted(positions, start))
        if k:
            positions = np.concatenate((positions[k:], positions[:k]))
        last = None
        if len(positions) > to_find:
            positions = positions[:to_find]
            last = int(positions[-1])
        self._rotation_end(start, last, count)
        ordered = perm[positions]

        def diagnose() -> Diagnosis:
            diag = Diagnosis()
            unresolvable = np.zeros(n, dtype=bool)
            failed = np.zeros(n, dtype=bool)
            for plugin, newly, failures in verdicts:
                if plugin:
                    diag.plugins.add(plugin)
                failed |= newly
                for reason, m, unres in failures:
                    hit = newly & m
                    c = int(np.count_nonzero(hit))
                    if c:
                        diag.reasons[reason] += c
                    if unres is True:
                        unresolvable |= hit
                    elif unres is not False:
                        unresolvable |= hit & unres
            diag.failed.update(np.flatnonzero(failed).tolist())
            diag.unresolvable.update(np.flatnonzero(unresolvable).tolist())
            for row, st in extra:
                diag.add(row, st)
            return diag

        return _Feasible(cache, ordered), diagnose

    # ---- Score --------------------------------------------------------------------------

    def _select(self, state: CycleState, pod: PodInfo, feasible: _Feasible) -> str:
        scorers = []
        for p, weight in self.profile.scorers:
            st = p.pre_score(state, pod, feasible)
            if st is not None and st.code == Code.SKIP:
                continue
            if st is not None and not st.is_success():
                raise SchedulerError(f"running PreScore plugin {p.name!r}: {st.message}")
            scorers.append((p, weight))
        if self.batch:
            rows = feasible.rows
            total = np.zeros(len(rows), dtype=np.int64)
            for p, weight in scorers:
                scores = p.normalize(state, pod, p.score_nodes(state, pod, self.cache, rows),
                                     feasible)
                total += weight * scores
            best = int(total.max())
            ties = np.flatnonzero(total == best)
            pick = int(ties[self.rng.randrange(len(ties))]) if len(ties) > 1 else int(ties[0])
            return self.cache.slots[int(rows[pick])].name  # type: ignore[union-attr]
        nodes = feasible.nodes
        totals = [0] * len(nodes)
        for p, weight in scorers:
            scores = p.normalize(state, pod, [p.score(state, pod, ni) for ni in nodes],
                                 feasible)
            for i, s in enumerate(scores):
                totals[i] += weight * s
        best = max(totals)
        tied = [i for i, t in enumerate(totals) if t == best]
        chosen = tied[self.rng.randrange(len(tied))] if len(tied) > 1 else tied[0]
        return nodes[chosen].name

