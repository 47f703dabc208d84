"""Work queue of object keys, with delays and per-key retry backoff.

Why: a controller's event handlers only enqueue keys and workers reconcile them (client-go's
util/workqueue: queue.go, delaying_queue.go, rate_limiting_queue.go), so bursts of events for
one object collapse into one reconcile and failures retry without hot loops.

Guarantees:
- A key is held at most once while waiting and is never handed to two workers at the same
  time; re-adding a key that is being processed schedules one more pass after `done`.
- Keys are handed out in the order they became ready (FIFO).
- `add_after(key, d)` makes the key ready after `d` seconds; a key already waiting keeps the
  earlier of its two ready times. `add_rate_limited` waits as the rate limiter says
  (default: client-go's DefaultControllerRateLimiter, 5 ms → 1000 s per key under a
  10 qps / 100 burst bucket); `forget` ends a key's failure streak.
- After `shut_down()` additions are ignored and `get()` returns None at once, also to workers
  already waiting. Unlike client-go, keys still queued are not handed out: navio stops intake
  and exits promptly, and reconciles are level-based, so the next start re-derives them from
  the informers' initial list. `shut_down_with_drain` also waits (bounded) for the keys being
  processed to be `done`.
- Time comes from an injectable `Clock`, so tests drive delays with `FakeClock.step`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Hashable

from navio.client.clock import REAL_CLOCK, Clock
from navio.client.metrics import queue_metrics
from navio.client.ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = ["WorkQueue"]

_log = logging.getLogger("navio.workqueue")


class WorkQueue:
    def __init__(self, *, rate_limiter: RateLimiter | None = None, clock: Clock = REAL_CLOCK,
                 name: str = "") -> None:
        self.name = name
        self._clock = clock
        self._limiter = rate_limiter or default_controller_rate_limiter(clock)
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiting: dict[Hashable, float] = {}            # key -> ready time
        self._heap: list[tuple[float, int, Hashable]] = []   # may hold superseded entries
        self._seq = itertools.count()
        self._getters: list[asyncio.Future[None]] = []
        self._idle: list[asyncio.Future[None]] = []
        self._shutting_down = False
        # workqueue_* metrics of a named queue (client-go: only named queues are measured)
        self._metrics = queue_metrics(name)
        self._added: dict[Hashable, float] = {}
        self._started: dict[Hashable, float] = {}

    # ---- the basic queue (queue.go) -----------------------------------------------------

    def add(self, key: Hashable) -> None:
        """Mark `key` as needing a pass; a no-op if it is already queued."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._metrics is not None:
            self._metrics.adds.inc()
            self._metrics.depth.inc()
            self._added.setdefault(key, time.monotonic())
        if key in self._processing:
            return                       # handed out again by `done`
        self._queue.append(key)
        self._wake()

    async def get(self) -> Hashable | None:
        """The next ready key, waiting for one; None once the queue is shut down.

        The caller owns the key until it calls `done(key)`."""
        loop = asyncio.get_running_loop()
        while True:
            self._promote()
            if self._shutting_down:
                return None
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                if self._metrics is not None:
                    now = time.monotonic()
                    self._metrics.depth.dec()
                    self._metrics.latency.observe(now - self._added.pop(key, now))
                    self._started[key] = now
                return key
            fut: asyncio.Future[None] = loop.create_future()
            self._getters.append(fut)
            delay = self._next_delay()
            try:
                if delay is None:
                    await fut
                else:
                    sleeper = asyncio.ensure_future(self._clock.sleep(delay))
                    try:
                        await asyncio.wait({fut, sleeper}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        sleeper.cancel()
            finally:
                if fut in self._getters:
                    self._getters.remove(fut)

    def done(self, key: Hashable) -> None:
        """End processing of `key`; queues it again if it was added meanwhile."""
        if key not in self._processing:
            return
        self._processing.discard(key)
        if self._metrics is not None:
            start = self._started.pop(key, None)
            if start is not None:
                self._metrics.work.observe(time.monotonic() - start)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake()
        if not self._processing:
            for fut in self._idle:
                if not fut.done():
                    fut.set_result(None)
            self._idle.clear()

    def __len__(self) -> int:
        """Keys ready to be handed out (not those in process or still delayed)."""
        self._promote()
        return len(self._queue)

    def shut_down(self) -> None:
        """Stop intake and release every waiting `get` with None; safe to repeat."""
        self._shutting_down = True
        self._waiting.clear()
        self._heap.clear()
        self._wake()

    async def shut_down_with_drain(self, timeout: float) -> bool:
        """`shut_down`, then wait up to `timeout` for keys in process to be done; False if
        some were still in process at the deadline."""
        self.shut_down()
        if not self._processing:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # ---- delays (delaying_queue.go) -----------------------------------------------------

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add `key` once `delay` seconds have passed (at once when `delay <= 0`)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self._clock.now() + delay
        current = self._waiting.get(key)
        if current is not None and current <= ready:
            return
        self._waiting[key] = ready
        heapq.heappush(self._heap, (ready, next(self._seq), key))
        self._wake()                     # a sleeping getter may now need to wake earlier

    def _promote(self) -> None:
        now = self._clock.now()
        while self._heap and self._heap[0][0] <= now:
            ready, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) != ready:
                continue                 # superseded by an earlier ready time
            del self._waiting[key]
            self.add(key)

    def _next_delay(self) -> float | None:
        while self._heap:
            ready, _, key = self._heap[0]
            if self._waiting.get(key) == ready:
                return max(0.0, ready - self._clock.now())
            heapq.heappop(self._heap)
        return None

    def _wake(self) -> None:
        # Every parked getter re-checks; workers are few, and this cannot lose a wake-up.
        for fut in self._getters:
            if not fut.done():
                fut.set_result(None)

    # ---- retries (rate_limiting_queue.go) -----------------------------------------------

    def add_rate_limited(self, key: Hashable) -> None:
        """Add `key` after the rate limiter's delay, counting one more failure."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retries.inc()
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: Hashable) -> None:
        """End `key`'s failure streak (call after a successful pass)."""
        self._limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self._limiter.num_requeues(key)

    async def run_worker(self, handle: Callable[[str], Awaitable[None]], failure: str,
                         **context: Any) -> None:
        """Hand keys to `handle` until shut down (client-go's processNextWorkItem loop): a
        success forgets the key's failures, a failure is logged as `failure` (with `context`)
        and retried after the key's backoff."""
        while (key := await self.get()) is not None:
            try:
                await handle(str(key))
                self.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(failure, extra={**context, "key": key, "error": str(exc)[:300]})
                _log.debug("%s: traceback", failure, exc_info=True)
                self.add_rate_limited(key)
            finally:
                self.done(key)
