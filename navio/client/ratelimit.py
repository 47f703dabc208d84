"""Token buckets and retry rate limiters: how fast a client may send requests or a queue
may retry keys.

Semantics are golang.org/x/time/rate's, which client-go builds on (flowcontrol's
tokenBucketRateLimiter and workqueue's BucketRateLimiter): the bucket holds at most `burst`
tokens and refills at `qps` per second; `reserve()` always takes a token, letting the balance go
negative, and returns how long the caller must wait for it, so callers are served in the order
they reserved and the long-run rate never exceeds `qps`. `qps <= 0` means unlimited.

The work queue's limiters follow client-go's util/workqueue/default_rate_limiters.go:
`ItemExponentialFailureRateLimiter` (base·2^failures, capped; the first retry waits `base`),
`BucketRateLimiter` (one shared bucket for all keys), `MaxOfRateLimiter` (the longest wait of
several) and `default_controller_rate_limiter()` = max(5 ms → 1000 s per key, 10 qps / 100 burst
overall). `forget` ends a key's failure streak; `num_requeues` counts it.
"""

from __future__ import annotations

from typing import Hashable, Protocol

from navio.client.clock import REAL_CLOCK, Clock

__all__ = ["TokenBucket", "RateLimiter", "ItemExponentialFailureRateLimiter",
           "BucketRateLimiter", "MaxOfRateLimiter", "default_controller_rate_limiter"]


class TokenBucket:
    def __init__(self, qps: float, burst: int, *, clock: Clock = REAL_CLOCK) -> None:
        if qps > 0 and burst < 1:
            raise ValueError("burst must be at least 1 when qps is limited")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    @property
    def unlimited(self) -> bool:
        return self.qps <= 0

    def _refill(self) -> float:
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
        self._last = now
        return now

    def reserve(self) -> float:
        """Take one token; the seconds to wait before acting on it (0 when one was free)."""
        if self.unlimited:
            return 0.0
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def try_take(self) -> bool:
        """Take a token only if one is free now (client-go's TryAccept)."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def wait(self) -> None:
        """Wait for a token (client-go's flowcontrol RateLimiter.Wait)."""
        delay = self.reserve()
        if delay > 0:
            await self._clock.sleep(delay)


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds `item` should wait before its next try (records one more failure)."""
        ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:                      # 2**64 · base is past any sane cap
            return self.max_delay
        return min(self.base_delay * (2 ** exp), self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """All keys share one bucket; it counts no failures (client-go: NumRequeues is 0)."""

    def __init__(self, qps: float = 10.0, burst: int = 100, *,
                 clock: Clock = REAL_CLOCK) -> None:
        self.bucket = TokenBucket(qps, burst, clock=clock)

    def when(self, item: Hashable) -> float:
        return self.bucket.reserve()

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        # Every limiter sees the failure, as in client-go (each When has side effects).
        return max([lim.when(item) for lim in self.limiters])

    def forget(self, item: Hashable) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_controller_rate_limiter(clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: per-key 5 ms → 1000 s, overall 10 qps /
    100 burst."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100, clock=clock))
