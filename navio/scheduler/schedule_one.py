"""ScheduleOne: what happens to a pod popped from the queue (schedule_one.go).

A pod is skipped if it is being deleted or already assumed/bound. Otherwise the algorithm
picks a node; the pod is assumed there at once and handed to the binder, and the loop goes on
to the next pod while the binding is written. On success the pod leaves the queue and a
`Scheduled` event is recorded. A binding that fails undoes the assumption and retries the pod
after its backoff (`SchedulerError`). A pod that fits nowhere goes through DefaultPreemption,
then gets its FailedScheduling event and PodScheduled condition, and waits in the
unschedulable queue for a relevant cluster event. Pods of a PodGroup are placed together
(see gang.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from navio.api import errors
from navio.scheduler.algorithm import Algorithm, SchedulerError
from navio.scheduler.binder import Binder
from navio.scheduler.cache import Cache
from navio.scheduler.events import SCHEDULER_ERROR_REASON, Reporter
from navio.scheduler.framework import EVENT_POD_DELETE, FitError
from navio.scheduler.gang import (
    GANG_PLUGIN,
    PHASE_PENDING,
    PHASE_UNSCHEDULABLE,
    GangOutcome,
    PodGroups,
    fit_message,
    not_found_message,
    too_few_message,
)
from navio.scheduler.metrics import SchedulerMetrics
from navio.scheduler.nominator import Nominator
from navio.scheduler.podinfo import PodInfo
from navio.scheduler.preemption import Preemptor
from navio.scheduler.queue import QueuedPodInfo, SchedulingQueue

__all__ = ["ScheduleOne", "Stats"]

log = logging.getLogger(__name__)


class Stats:
    """Counters a benchmark or a test can read."""

    __slots__ = ("attempts", "scheduled", "unschedulable", "errors", "preemptions",
                 "bound", "bind_failures")

    def __init__(self) -> None:
        self.attempts = self.scheduled = self.unschedulable = self.errors = 0
        self.preemptions = self.bound = self.bind_failures = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class ScheduleOne:
    def __init__(self, cache: Cache, queue: SchedulingQueue, algorithm: Algorithm,
                 preemptor: Preemptor, nominator: Nominator, binder: Binder,
                 reporter: Reporter, pod_groups: PodGroups | None,
                 on_bound: Callable[[PodInfo, str], Any] | None = None,
                 metrics: SchedulerMetrics | None = None) -> None:
        self.cache = cache
        self.queue = queue
        self.algorithm = algorithm
        self.preemptor = preemptor
        self.nominator = nominator
        self.binder = binder
        self.reporter = reporter
        self.pod_groups = pod_groups
        self.on_bound = on_bound
        self.metrics = metrics
        self.stats = Stats()

    # ---- one pod --------------------------------------------------------------------------

    def _skip(self, q: QueuedPodInfo) -> bool:
        pi = q.pod
        if pi.terminating or pi.key in self.cache.pods:
            self.queue.done(pi.key)
            return True
        return False

    def __call__(self, q: QueuedPodInfo) -> None:
        if self._skip(q):
            return
        if q.pod.gang and self.pod_groups is not None:
            self._schedule_gang(q)
            return
        cycle = self.queue.scheduling_cycle
        self.stats.attempts += 1
        pi = q.pod
        started = time.perf_counter()
        try:
            result = self.algorithm.schedule(pi)
        except FitError as e:
            self._unschedulable(q, e, cycle, preempt=True)
            self._observe("unschedulable", started)
            return
        except SchedulerError as e:
            self._error(q, str(e))
            self._observe("error", started)
            return
        self._assume_and_bind(pi, result.node)
        self._observe("scheduled", started)

    def _observe(self, result: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.attempt(result, time.perf_counter() - started)

    def _assume_and_bind(self, pi: PodInfo, node: str) -> None:
        self.cache.assume(pi, node)
        self.nominator.delete(pi.key)
        self.stats.scheduled += 1
        self.binder.bind(pi, node, self._bound)

    def _bound(self, pi: PodInfo, node: str, error: BaseException | None) -> None:
        if error is None:
            self.stats.bound += 1
            self.queue.done(pi.key)
            self.reporter.scheduled(pi, node)
            if pi.gang and self.pod_groups is not None:
                self.pod_groups.record(pi.namespace, pi.gang,
                                       bound=len(self.cache.gang_members(pi.namespace,
                                                                         pi.gang)))
            if self.on_bound is not None:
                self.on_bound(pi, node)
            return
        self.stats.bind_failures += 1
        self.cache.forget(pi.key)
        self.queue.move_all(EVENT_POD_DELETE)       # the forgotten room may fit others
        if isinstance(error, errors.NotFound):
            self.queue.done(pi.key)                 # deleted meanwhile
            return
        q = self.queue.get(pi.key)
        if q is None or q.deleted:
            return
        if isinstance(error, errors.Conflict) and "already assigned" in str(error):
            self.queue.done(pi.key)                 # another scheduler won
            return
        self.reporter.failed(pi, f'running Bind plugin "DefaultBinder": {error}',
                             reason=SCHEDULER_ERROR_REASON)
        self.queue.requeue_backoff(q)

    def _error(self, q: QueuedPodInfo, message: str) -> None:
        self.stats.errors += 1
        log.warning("scheduling error", extra={"pod": q.key, "error": message})
        self.reporter.failed(q.pod, message, reason=SCHEDULER_ERROR_REASON)
        q.unschedulable_plugins = set()
        self.queue.requeue_backoff(q)

    def _unschedulable(self, q: QueuedPodInfo, e: FitError, cycle: int, *, preempt: bool,
                       extra: str = "") -> None:
        """handleSchedulingFailure for a FitError, after PostFilter (preemption)."""
        self.stats.unschedulable += 1
        pi = q.pod
        q.unschedulable_plugins = set(e.diagnosis.plugins)
        nominated: str | None = None
        if preempt:
            result = self.preemptor.preempt(pi, e)
            if self.metrics is not None and not result.message.startswith("not eligible"):
                self.metrics.preemption_attempt()
            if result.node:
                self.stats.preemptions += 1
                self._preempt(pi, result.node, result.victims, result.clear_nominated)
                nominated = result.node
            else:
                if result.message:
                    e.diagnosis.post_filter_msg = "preemption: " + result.message
                if not result.message.startswith("not eligible"):
                    nominated = ""
                    self.nominator.delete(pi.key)
        message = str(e) + (" " + extra if extra else "")
        log.debug("pod unschedulable", extra={"pod": pi.key, "reason": message})
        self.reporter.failed(pi, message, nominated=nominated)
        self.queue.add_unschedulable(q, cycle)

    def _preempt(self, pi: PodInfo, node: str, victims: list[PodInfo],
                 clear: list[PodInfo]) -> None:
        log.info("preempting", extra={"pod": pi.key, "node": node,
                                      "victims": [v.key for v in victims]})
        for v in victims:
            if not v.terminating:
                self.reporter.preempt(v, pi, node)
        for other in clear:
            self.nominator.delete(other.key)
            self.reporter.nominate(other, "")
        self.nominator.add(pi, node)

    # ---- a pod group ------------------------------------------------------------------------

    def _schedule_gang(self, q: QueuedPodInfo) -> None:
        assert self.pod_groups is not None
        pi = q.pod
        ns, group = pi.namespace, pi.gang
        cycle = self.queue.scheduling_cycle
        min_member = self.pod_groups.min_member(ns, group)
        if min_member is None:
            self._gang_wait([q], cycle, not_found_message(ns, group), None)
            return
        already = len(self.cache.gang_members(ns, group))
        if already >= min_member:
            self.stats.attempts += 1
            try:
                result = self.algorithm.schedule(pi)
            except FitError as e:
                self._unschedulable(q, e, cycle, preempt=False)
                return
            except SchedulerError as e:
                self._error(q, str(e))
                return
            self._assume_and_bind(pi, result.node)
            return
        siblings = [k for k in self.queue.group_members(ns, group) if k != pi.key]
        members = [q] + [m for m in self.queue.take(siblings) if not self._skip(m)]
        members.sort(key=lambda m: (-m.pod.priority, m.pod.name))
        if already + len(members) < min_member:
            message = too_few_message(ns, group, already + len(members), min_member)
            self._gang_wait(members, cycle, message, GangOutcome(PHASE_PENDING, message,
                                                                 "Pending"))
            return
        placed: list[tuple[QueuedPodInfo, str]] = []
        failures: dict[str, FitError] = {}
        first: FitError | None = None
        for m in members:
            self.stats.attempts += 1
            try:
                result = self.algorithm.schedule(m.pod)
            except FitError as e:
                failures[m.key] = e
                first = first or e
                continue
            except SchedulerError as e:
                self._error(m, str(e))
                continue
            self.cache.assume(m.pod, result.node)
            placed.append((m, result.node))
        if already + len(placed) >= min_member:
            for m, node in placed:
                self.nominator.delete(m.key)
                self.stats.scheduled += 1
                self.binder.bind(m.pod, node, self._bound)
            for m in members:
                if m.key in failures:
                    self._unschedulable(m, failures[m.key], cycle, preempt=False)
            return
        for m, _ in placed:
            self.cache.forget(m.key)
        message = ((str(first) + " ") if first else "") + \
            fit_message(ns, group, already + len(placed), min_member)
        for m in members:
            failure = failures.get(m.key)
            m.unschedulable_plugins = set(failure.diagnosis.plugins) if failure else set()
        self._gang_wait(members, cycle, message,
                        GangOutcome(PHASE_UNSCHEDULABLE, message, "Unschedulable"))

    def _gang_wait(self, members: list[QueuedPodInfo], cycle: int, message: str,
                   outcome: GangOutcome | None) -> None:
        self.stats.unschedulable += len(members)
        for m in members:
            m.unschedulable_plugins = set(m.unschedulable_plugins) | {GANG_PLUGIN}
            self.reporter.failed(m.pod, message)
            self.queue.add_unschedulable(m, cycle)
        if outcome is not None and members and self.pod_groups is not None:
            pi = members[0].pod
            self.pod_groups.record(pi.namespace, pi.gang, outcome)

