"""The scheduling queue: active, backoff and unschedulable sub-queues of pending pods.

kube-scheduler's PriorityQueue (internal/queue/scheduling_queue.go), without queueing hints:
- activeQ: pods ready to be tried, ordered by PrioritySort (priority desc, then the time the
  pod entered the queue).
- backoffQ: pods waiting out a per-pod exponential backoff: 1 s doubling per attempt up to
  10 s (podInitialBackoffDuration / podMaxBackoffDuration), counted from the last failure.
  Flushed to activeQ every second.
- unschedulable: pods that fit nowhere. A cluster event (node added/changed, assigned pod
  deleted/added/changed, pod group changed) moves the pods whose rejecting plugins care about
  that event to activeQ (or backoffQ while their backoff lasts); pods left there longer than
  5 minutes are flushed every 30 s. If an event arrives while a pod is being scheduled, a
  failure of that attempt goes to backoffQ instead (moveRequestCycle), so the event is not
  missed.
- gated: pods with `spec.schedulingGates` wait here until an update removes the gates.

Guarantees: a pod is in at most one sub-queue, or in flight (popped, not yet done); updates
to a queued pod replace its PodInfo in place; `pop` never returns a deleted pod. All times
come from the injected clock, so tests drive backoff with a FakeClock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from navio.client.clock import REAL_CLOCK, Clock
from navio.scheduler.podinfo import PodInfo

__all__ = ["QueuedPodInfo", "SchedulingQueue", "ACTIVE", "BACKOFF", "UNSCHEDULABLE", "GATED",
           "pod_updated"]

log = logging.getLogger(__name__)

ACTIVE, BACKOFF, UNSCHEDULABLE, GATED, IN_FLIGHT = (
    "active", "backoff", "unschedulable", "gated", "inFlight")
FLUSH_BACKOFF_EVERY = 1.0
FLUSH_UNSCHEDULABLE_EVERY = 30.0


@dataclass(slots=True, eq=False)
class QueuedPodInfo:
    pod: PodInfo
    timestamp: float
    initial_attempt: float | None = None
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    heap_seq: int = 0
    deleted: bool = False

    @property
    def key(self) -> str:
        return self.pod.key


def pod_updated(old: Mapping[str, object], new: Mapping[str, object]) -> bool:
    """isPodUpdated: a change other than status, resourceVersion, generation, managedFields."""
    def strip(p: Mapping[str, object]) -> tuple[object, object]:
        meta = dict(p.get("metadata") or {})  # type: ignore[call-overload]
        for k in ("resourceVersion", "generation", "managedFields"):
            meta.pop(k, None)
        return meta, p.get("spec")
    return strip(old) != strip(new)


class SchedulingQueue:
    def __init__(self, clock: Clock = REAL_CLOCK, *, initial_backoff: float = 1.0,
                 max_backoff: float = 10.0, max_in_unschedulable: float = 300.0,
                 plugin_events: Mapping[str, frozenset[str]] | None = None) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self.plugin_events = dict(plugin_events or {})
        self._pods: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, str] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self._gangs: dict[tuple[str, str], set[str]] = {}      # pod group -> queued keys
        # event -> keys of unschedulable pods a plugin that rejected them cares about it
        # (lazily pruned: membership is re-checked when an event fires).
        self._waiting_for: dict[str, set[str]] = {}
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self.closed = False

    # ---- inspection ------------------------------------------------------------------------

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    def get(self, key: str) -> QueuedPodInfo | None:
        return self._pods.get(key)

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0, IN_FLIGHT: 0}
        for w in self._where.values():
            out[w] += 1
        return out

    def pending(self) -> list[QueuedPodInfo]:
        return [q for k, q in self._pods.items() if self._where.get(k) != IN_FLIGHT]

    def __len__(self) -> int:
        return len(self._pods)

    def group_members(self, namespace: str, group: str) -> list[str]:
        """Keys of queued (not in-flight) pods of pod group `group`."""
        return [k for k in self._gangs.get((namespace, group), ())
                if self._where.get(k) not in (None, IN_FLIGHT)]

    def _track(self, pi: PodInfo, add: bool) -> None:
        if not pi.gang:
            return
        gkey = (pi.namespace, pi.gang)
        if add:
            self._gangs.setdefault(gkey, set()).add(pi.key)
            return
        keys = self._gangs.get(gkey)
        if keys is not None:
            keys.discard(pi.key)
            if not keys:
                del self._gangs[gkey]

    # ---- placement -------------------------------------------------------------------------

    def backoff_duration(self, q: QueuedPodInfo) -> float:
        """calculateBackoffDuration: initial * 2^(attempts-1), capped."""
        d = self.initial_backoff
        for _ in range(1, q.attempts):
            d *= 2
            if d > self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def backoff_expiry(self, q: QueuedPodInfo) -> float:
        return q.timestamp + self.backoff_duration(q)

    def backing_off(self, q: QueuedPodInfo) -> bool:
        return q.attempts > 0 and self.backoff_expiry(q) > self.clock.now()

    def _to_active(self, q: QueuedPodInfo) -> None:
        q.heap_seq = next(self._seq)
        heapq.heappush(self._active, (-q.pod.priority, q.timestamp, q.heap_seq, q.key))
        self._where[q.key] = ACTIVE
        self._ready.set()

    def _to_backoff(self, q: QueuedPodInfo) -> None:
        q.heap_seq = next(self._seq)
        heapq.heappush(self._backoff, (self.backoff_expiry(q), q.heap_seq, q.key))
        self._where[q.key] = BACKOFF

    def _requeue(self, q: QueuedPodInfo) -> None:
        if q.pod.scheduling_gated:
            self._where[q.key] = GATED
        elif self.backing_off(q):
            self._to_backoff(q)
        else:
            self._to_active(q)

    # ---- informer-driven -------------------------------------------------------------------

    def add(self, pi: PodInfo) -> None:
        """A new pending pod (or one seen again): queued unless already known."""
        if pi.key in self._pods:
            self.update(pi)
            return
        q = QueuedPodInfo(pi, self.clock.now())
        self._pods[pi.key] = q
        self._track(pi, True)
        if pi.scheduling_gated:
            self._where[pi.key] = GATED
        else:
            self._to_active(q)

    def update(self, pi: PodInfo) -> None:
        q = self._pods.get(pi.key)
        if q is None:
            self.add(pi)
            return
        old = q.pod
        q.pod = pi
        if old.gang != pi.gang:
            self._track(old, False)
            self._track(pi, True)
        where = self._where.get(pi.key)
        if where == ACTIVE and old.priority != pi.priority:
            self._to_active(q)                    # re-key; the old heap entry goes stale
        elif where == GATED and not pi.scheduling_gated:
            self._to_active(q)
        elif where == UNSCHEDULABLE and pod_updated(old.pod, pi.pod):
            self._requeue(q)

    def delete(self, key: str) -> None:
        q = self._pods.pop(key, None)
        self._where.pop(key, None)
        if q is not None:
            q.deleted = True
            self._track(q.pod, False)

    # ---- the scheduling loop -----------------------------------------------------------------

    def pop_nowait(self) -> QueuedPodInfo | None:
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            q = self._pods.get(key)
            if q is None or q.heap_seq != seq or self._where.get(key) != ACTIVE:
                continue                          # stale entry
            self._where[key] = IN_FLIGHT
            q.attempts += 1
            if q.initial_attempt is None:
                q.initial_attempt = self.clock.now()
            self.scheduling_cycle += 1
            return q
        self._ready.clear()
        return None

    async def pop(self) -> QueuedPodInfo | None:
        """The next pod to schedule; waits while activeQ is empty; None once closed."""
        while not self.closed:
            q = self.pop_nowait()
            if q is not None:
                return q
            await self._ready.wait()
        return None

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    def done(self, key: str) -> None:
        """The pod left the queue for good (bound, or deleted)."""
        if self._where.get(key) == IN_FLIGHT:
            q = self._pods.pop(key, None)
            self._where.pop(key, None)
            if q is not None:
                self._track(q.pod, False)

    def add_unschedulable(self, q: QueuedPodInfo, cycle: int) -> None:
        """AddUnschedulableIfNotPresent, for a pod whose attempt in `cycle` failed."""
        if q.deleted or self._where.get(q.key) != IN_FLIGHT:
            return
        q.timestamp = self.clock.now()
        if self.move_request_cycle >= cycle or not q.unschedulable_plugins:
            self._to_backoff(q)
        else:
            self._where[q.key] = UNSCHEDULABLE
            for plugin in q.unschedulable_plugins:
                for event in self.plugin_events.get(plugin, ()):
                    self._waiting_for.setdefault(event, set()).add(q.key)

    def requeue_backoff(self, q: QueuedPodInfo) -> None:
        """After an error (e.g. a failed binding): retry after the pod's backoff."""
        if q.deleted:
            return
        if q.key not in self._pods:
            self._pods[q.key] = q
            self._track(q.pod, True)
        q.timestamp = self.clock.now()
        self._to_backoff(q)

    def take(self, keys: Iterable[str]) -> list[QueuedPodInfo]:
        """Take the given pods (if queued and not in flight) out to schedule them together,
        as the attempt of a pod group; each counts one attempt."""
        out = []
        for key in keys:
            q = self._pods.get(key)
            if q is None or self._where.get(key) in (None, IN_FLIGHT, GATED):
                continue
            self._where[key] = IN_FLIGHT
            q.attempts += 1
            if q.initial_attempt is None:
                q.initial_attempt = self.clock.now()
            out.append(q)
        return out

    # ---- events and flushes ------------------------------------------------------------------

    def _cares(self, q: QueuedPodInfo, event: str) -> bool:
        if not q.unschedulable_plugins:
            return True
        return any(event in self.plugin_events.get(p, frozenset())
                   for p in q.unschedulable_plugins)

    def move_all(self, event: str, only: Iterable[str] | None = None) -> int:
        """MoveAllToActiveOrBackoffQueue for a cluster `event` (restricted to the keys
        `only`, when given); the number of pods moved. Costs the pods waiting for `event`."""
        waiting = self._waiting_for.get(event)
        self.move_request_cycle = self.scheduling_cycle
        if not waiting:
            return 0
        keys = [k for k in only if k in waiting] if only is not None else list(waiting)
        moved = 0
        for key in keys:
            waiting.discard(key)
            q = self._pods.get(key)
            if q is None or self._where.get(key) != UNSCHEDULABLE or not self._cares(q, event):
                continue
            self._requeue(q)
            moved += 1
        return moved

    def waiting_for(self, event: str) -> list[QueuedPodInfo]:
        """Unschedulable pods that `event` may help (cost: those pods, not the queue)."""
        out = []
        for key in self._waiting_for.get(event, ()):
            q = self._pods.get(key)
            if q is not None and self._where.get(key) == UNSCHEDULABLE:
                out.append(q)
        return out

    def flush_backoff(self) -> int:
        """Move pods whose backoff has expired to activeQ."""
        now = self.clock.now()
        moved = 0
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            q = self._pods.get(key)
            if q is None or q.heap_seq != seq or self._where.get(key) != BACKOFF:
                continue
            self._to_active(q)
            moved += 1
        return moved

    def flush_unschedulable(self) -> int:
        """flushUnschedulablePodsLeftover: pods unschedulable for too long are retried."""
        now = self.clock.now()
        stale = [k for k, w in self._where.items() if w == UNSCHEDULABLE
                 and now - self._pods[k].timestamp > self.max_in_unschedulable]
        for key in stale:
            self._requeue(self._pods[key])
        return len(stale)

    async def run_flushers(self) -> None:
        """Flush backoffQ every second and the unschedulable pods every 30 s, until cancelled."""
        since_unschedulable = 0.0
        while not self.closed:
            await self.clock.sleep(FLUSH_BACKOFF_EVERY)
            self.flush_backoff()
            since_unschedulable += FLUSH_BACKOFF_EVERY
            if since_unschedulable >= FLUSH_UNSCHEDULABLE_EVERY:
                since_unschedulable = 0.0
                self.flush_unschedulable()
