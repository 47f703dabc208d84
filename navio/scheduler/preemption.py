"""DefaultPreemption: make room for a pod that fits nowhere by evicting lower-priority pods.

As defaultpreemption/default_preemption.go and framework/preemption/preemption.go (v1.32):
1. The pod must be eligible: not `preemptionPolicy: Never` ("not eligible due to
   preemptionPolicy=Never."), and no victim of an earlier preemption still terminating on its
   nominated node ("not eligible due to a terminating pod on the nominated node.").
2. Candidate nodes are those that failed with Unschedulable (not UnschedulableAndUnresolvable).
   From a random offset, nodes are dry-run until max(10% of them, 100) candidates are found
   (at least one not violating a PodDisruptionBudget): remove every lower-priority pod, check
   the pod fits, then give back ("reprieve") as many as possible, most important first, PDB-
   protected ones first. A node with no lower-priority pod says "No preemption victims found
   for incoming pod".
3. The best candidate has the fewest PDB violations, then the lowest highest victim priority,
   the lowest sum of priorities, the fewest victims, the latest start among its most important
   victims.
4. Its victims are deleted (after a DisruptionTarget condition), lower-priority pods nominated
   to that node lose their nomination, and the pod is nominated to the node; it is retried
   when the victims are gone.
When no candidate exists the message is a FitError over the dry run, e.g. "preemption: 0/3
nodes are available: 3 No preemption victims found for incoming pod.", appended to the
FailedScheduling message. PodDisruptionBudgets are honoured as upstream does: preferred, not
guaranteed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors import LabelSelector, label_selector_from_spec
from navio.scheduler.algorithm import Algorithm
from navio.scheduler.framework import CycleState, Diagnosis, FitError, Status
from navio.scheduler.nodeinfo import NodeInfo
from navio.scheduler.podinfo import PodInfo

__all__ = ["Preemptor", "PreemptionResult", "NOT_HELPFUL", "NO_VICTIMS"]

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
_LATEST = "9999-12-31T23:59:59Z"     # a pod that has not started counts as starting now


@dataclass
class PreemptionResult:
    node: str = ""                              # nominated node ("" = none)
    victims: list[PodInfo] = field(default_factory=list)
    clear_nominated: list[PodInfo] = field(default_factory=list)
    message: str = ""                           # PostFilterMsg (without "preemption: ")


@dataclass
class _Candidate:
    node: NodeInfo
    victims: list[PodInfo]
    pdb_violations: int


def _start(p: PodInfo) -> str:
    return (p.pod.get("status") or {}).get("startTime") or _LATEST


def _more_important_key(p: PodInfo) -> tuple[int, str]:
    """Sort key: more important first (higher priority, then earlier start)."""
    return (-p.priority, _start(p))


def _preempted_and_terminating(p: PodInfo) -> bool:
    if not p.terminating:
        return False
    for c in (p.pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "DisruptionTarget":
            return c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler"
    return False


def pdb_violations(pods: list[PodInfo], pdbs: list[dict[str, Any]]
                   ) -> tuple[list[PodInfo], list[PodInfo]]:
    """filterPodsWithPDBViolation: (violating, non-violating), order kept."""
    allowed = [int((p.get("status") or {}).get("disruptionsAllowed") or 0) for p in pdbs]
    selectors: list[LabelSelector | None] = []
    for pdb in pdbs:
        try:
            selectors.append(label_selector_from_spec((pdb.get("spec") or {}).get("selector")))
        except BadRequest:
            selectors.append(None)
    violating: list[PodInfo] = []
    ok: list[PodInfo] = []
    for pod in pods:
        violated = False
        if pod.labels:
            for i, pdb in enumerate(pdbs):
                sel = selectors[i]
                meta = pdb.get("metadata") or {}
                if sel is None or meta.get("namespace") != pod.namespace or sel.empty() or \
                        not sel.matches(pod.labels):
                    continue
                if pod.name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else ok).append(pod)
    return violating, ok


class Preemptor:
    def __init__(self, algorithm: Algorithm, pdbs: Callable[[], list[dict[str, Any]]], *,
                 min_candidate_nodes_percentage: int = 10,
                 min_candidate_nodes_absolute: int = 100,
                 rng: random.Random | None = None) -> None:
        self.algorithm = algorithm
        self.cache = algorithm.cache
        self.pdbs = pdbs
        self.min_pct = min_candidate_nodes_percentage
        self.min_abs = min_candidate_nodes_absolute
        self.rng = rng or random.Random()

    def _num_candidates(self, n: int) -> int:
        return min(max(n * self.min_pct // 100, self.min_abs), n)

    def eligible(self, pod: PodInfo, diag: Diagnosis) -> str:
        """PodEligibleToPreemptOthers: "" when eligible, else the reason."""
        if pod.preemption_never:
            return "not eligible due to preemptionPolicy=Never."
        nominated = self.cache.get(pod.nominated_node_name) if pod.nominated_node_name \
            else None
        if nominated is not None and nominated.idx not in diag.unresolvable:
            for other in nominated.pods.values():
                if other.priority < pod.priority and _preempted_and_terminating(other):
                    return "not eligible due to a terminating pod on the nominated node."
        return ""

    def preempt(self, pod: PodInfo, error: FitError) -> PreemptionResult:
        """Find victims for `pod`; the result's `node` is "" when preemption cannot help."""
        diag = error.diagnosis
        reason = self.eligible(pod, diag)
        if reason:
            return PreemptionResult(message=reason)
        nodes = self.cache.node_infos()
        if not nodes:
            return PreemptionResult(message="no nodes available")
        potential = [ni for ni in nodes
                     if ni.idx in diag.failed and ni.idx not in diag.unresolvable] \
            if not error.unresolvable_all else []
        statuses = Diagnosis()
        candidates: list[_Candidate] = []
        if potential:
            try:
                state, active = self.algorithm.pre_filter(pod)
            except FitError:
                potential = []
        if potential:
            pdbs = self.pdbs()
            offset = self.rng.randrange(len(potential))
            want = self._num_candidates(len(potential))
            violating: list[_Candidate] = []
            for i in range(len(potential)):
                ni = potential[(offset + i) % len(potential)]
                victims, violations, st = self._select_victims(state.clone(), active, pod,
                                                               ni.clone(), pdbs)
                if st is None and victims:
                    c = _Candidate(ni, victims, violations)
                    (violating if violations else candidates).append(c)
                    if candidates and len(candidates) + len(violating) >= want:
                        break
                elif st is not None:
                    statuses.add(ni.idx, st)
            candidates += violating
        if not candidates:
            absent = len(nodes) - len(statuses.failed)
            if absent > 0:
                statuses.reasons[NOT_HELPFUL] += absent
            return PreemptionResult(message=str(FitError(pod, len(nodes), statuses)))
        best = self._pick(candidates)
        clear = [p for p in self.algorithm.nominator.pods_on(best.node.name)
                 if p.priority < pod.priority and p.key != pod.key]
        return PreemptionResult(best.node.name, best.victims, clear)

    def _select_victims(self, state: CycleState, active: list[Any], pod: PodInfo,
                        ni: NodeInfo, pdbs: list[dict[str, Any]]
                        ) -> tuple[list[PodInfo], int, Status | None]:
        """SelectVictimsOnNode on a copy of the node and state."""
        exts = self.algorithm.profile.extensions

        def remove(p: PodInfo) -> None:
            ni.remove_pod(p)
            for ext in exts:
                ext.remove_pod(state, pod, p, ni)

        def add(p: PodInfo) -> None:
            ni.add_pod(p)
            for ext in exts:
                ext.add_pod(state, pod, p, ni)

        potential = [p for p in ni.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], 0, Status.unresolvable(NO_VICTIMS)
        for p in potential:
            remove(p)
        st = self.algorithm.filter_node(state, pod, ni, active)
        if st is not None:
            return [], 0, st
        potential.sort(key=_more_important_key)
        violating, non_violating = pdb_violations(potential, pdbs)
        victims: list[PodInfo] = []
        violations = 0

        def reprieve(p: PodInfo) -> bool:
            add(p)
            if self.algorithm.filter_node(state, pod, ni, active) is None:
                return True
            remove(p)
            victims.append(p)
            return False

        for p in violating:
            if not reprieve(p):
                violations += 1
        for p in non_violating:
            reprieve(p)
        if violating and non_violating:
            victims.sort(key=_more_important_key)
        return victims, violations, None

    @staticmethod
    def _pick(candidates: list[_Candidate]) -> _Candidate:
        """pickOneNodeForPreemption."""
        def earliest_top(c: _Candidate) -> str:
            top = c.victims[0].priority
            return min(_start(v) for v in c.victims if v.priority == top)

        scorers: list[Callable[[_Candidate], Any]] = [
            lambda c: -c.pdb_violations,
            lambda c: -c.victims[0].priority,
            lambda c: -sum(v.priority + 2 ** 31 for v in c.victims),
            lambda c: -len(c.victims),
            earliest_top,
        ]
        pool = candidates
        for f in scorers:
            best = max(f(c) for c in pool)
            pool = [c for c in pool if f(c) == best]
            if len(pool) == 1:
                break
        return pool[0]
