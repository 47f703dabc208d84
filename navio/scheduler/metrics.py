"""The scheduler's Prometheus metrics, named as kube-scheduler's (pkg/scheduler/metrics).

    scheduler_schedule_attempts_total{result,profile}            counter
    scheduler_scheduling_attempt_duration_seconds{result,profile} histogram
    scheduler_pending_pods{queue}                                 gauge: active, backoff,
                                                                  unschedulable, gated
    scheduler_preemption_attempts_total                           counter

`result` is `scheduled`, `unschedulable` or `error`, as kube's. The attempt duration runs from
the pod leaving the queue to its assumption on a node (or its failure); the binding that
follows is asynchronous and not part of it. Pending counts are read from the queue when
scraped. All series live in the process's default registry, served on the scheduler's
secure port (see navio/cli/secureserving.py).
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

__all__ = ["SchedulerMetrics"]

# pkg/scheduler/metrics: ExponentialBuckets(0.001, 2, 15)
_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))
_ATTEMPTS = Counter("scheduler_schedule_attempts",
                    "Number of attempts to schedule pods, by the result. 'unschedulable' means "
                    "a pod could not be scheduled, while 'error' means an internal scheduler "
                    "problem.", ["result", "profile"])
_DURATION = Histogram("scheduler_scheduling_attempt_duration_seconds",
                      "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                      ["result", "profile"], buckets=_BUCKETS)
_PREEMPTIONS = Counter("scheduler_preemption_attempts",
                       "Total preemption attempts in the cluster till now")


class _Pending:
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("scheduler_pending_pods",
                                   "Number of pending pods, by the queue type. 'active' means "
                                   "number of pods in activeQ; 'backoff' means number of pods "
                                   "in backoffQ; 'unschedulable' means number of pods in "
                                   "unschedulablePods that the scheduler attempted to schedule "
                                   "and failed; 'gated' is the number of unschedulable pods "
                                   "that the scheduler never attempted to schedule because "
                                   "they are gated.", labels=["queue"])
        counts = self.counts()
        for queue in ("active", "backoff", "unschedulable", "gated"):
            family.add_metric([queue], counts.get(queue, 0))
        yield family


class SchedulerMetrics:
    """The series of one scheduler profile; `attempt(result, seconds)` per attempt."""

    _pending: _Pending | None = None

    def __init__(self, profile: str, pending: Callable[[], dict[str, int]]) -> None:
        self._children = {r: (_ATTEMPTS.labels(r, profile), _DURATION.labels(r, profile))
                          for r in ("scheduled", "unschedulable", "error")}
        # One pending-pods collector per process: the latest scheduler's queue.
        if SchedulerMetrics._pending is None:
            SchedulerMetrics._pending = _Pending(pending)
            REGISTRY.register(SchedulerMetrics._pending)  # type: ignore[arg-type]
        else:
            SchedulerMetrics._pending.counts = pending

    def attempt(self, result: str, seconds: float) -> None:
        counter, hist = self._children[result]
        counter.inc()
        hist.observe(seconds)

    @staticmethod
    def preemption_attempt() -> None:
        _PREEMPTIONS.inc()
