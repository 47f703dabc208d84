"""Time as the client's time-dependent parts see it, so that tests can drive it.

`Clock` is the seam (client-go's k8s.io/utils/clock): the work queue, rate limiters, leader
election and event correlation read `now()` and wait with `sleep()`. `RealClock` is monotonic
time and asyncio sleep; `FakeClock` only moves when a test calls `step`, which wakes every
sleeper whose deadline has passed, in deadline order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "FakeClock", "REAL_CLOCK"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL_CLOCK = RealClock()


class FakeClock:
    """A clock that stands still until `step`; `sleep` returns once the clock passes its
    deadline (a zero or negative sleep returns at once)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def step(self, seconds: float) -> None:
        """Advance time and wake the sleepers that are due."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def has_sleepers(self) -> bool:
        """True while some task waits on this clock (tests use it to know a waiter is parked)."""
        return any(not f.done() for _, _, f in self._sleepers)
