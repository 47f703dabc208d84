"""The work queue keeps client-go's contract: dedup, one worker per key, delays, backoff."""

from __future__ import annotations

import asyncio

import pytest

from navio.client.clock import FakeClock
from navio.client.ratelimit import (BucketRateLimiter, ItemExponentialFailureRateLimiter,
                                    MaxOfRateLimiter, TokenBucket,
                                    default_controller_rate_limiter)
from navio.client.workqueue import WorkQueue


async def _get_now(q: WorkQueue) -> object:
    """A key that must be ready at once (bounded, so a broken queue fails instead of hanging)."""
    return await asyncio.wait_for(q.get(), 1.0)


async def _parked(clock: FakeClock) -> None:
    """Wait (bounded) until a getter sleeps on the fake clock."""
    async with asyncio.timeout(1.0):
        while not clock.has_sleepers():
            await asyncio.sleep(0)


async def test_a_key_added_twice_while_waiting_is_handed_out_once():
    q = WorkQueue(clock=FakeClock())
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await _get_now(q) == "a"
    assert await _get_now(q) == "b"
    assert len(q) == 0


async def test_a_key_in_process_is_not_handed_to_a_second_worker():
    q = WorkQueue(clock=FakeClock())
    q.add("a")
    assert await _get_now(q) == "a"
    q.add("a")                       # re-added while in process: not ready yet
    assert len(q) == 0
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not second.done()
    q.done("a")                      # ...one more pass after done
    assert await asyncio.wait_for(second, 1.0) == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_a_re_add_does_not_requeue():
    q = WorkQueue(clock=FakeClock())
    q.add("a")
    key = await _get_now(q)
    q.done(key)
    q.done(key)                      # repeated done is harmless
    assert len(q) == 0


async def test_several_re_adds_during_processing_collapse_into_one_pass():
    q = WorkQueue(clock=FakeClock())
    q.add("a")
    await _get_now(q)
    for _ in range(5):
        q.add("a")
    q.done("a")
    assert len(q) == 1
    assert await _get_now(q) == "a"
    q.done("a")
    assert len(q) == 0


async def test_keys_come_out_in_the_order_they_became_ready():
    q = WorkQueue(clock=FakeClock())
    for k in "cab":
        q.add(k)
    assert [await _get_now(q) for _ in range(3)] == ["c", "a", "b"]


async def test_add_after_makes_the_key_ready_only_when_the_clock_passes_the_delay():
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 2.0)
    assert len(q) == 0
    clock.step(1.9)
    assert len(q) == 0
    clock.step(0.1)
    assert len(q) == 1


async def test_a_waiting_getter_wakes_when_a_delayed_key_becomes_ready():
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 5.0)
    getter = asyncio.ensure_future(q.get())
    await _parked(clock)
    clock.step(5.0)
    assert await asyncio.wait_for(getter, 1.0) == "a"


async def test_add_after_keeps_the_earlier_of_two_ready_times():
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 10.0)
    q.add_after("a", 1.0)
    q.add_after("a", 5.0)            # later than the current 1 s: ignored
    clock.step(1.0)
    assert len(q) == 1
    assert await _get_now(q) == "a"
    q.done("a")
    clock.step(10.0)
    assert len(q) == 0               # the superseded 10 s entry does not fire again


async def test_add_after_with_no_delay_adds_at_once():
    q = WorkQueue(clock=FakeClock())
    q.add_after("a", 0)
    assert len(q) == 1


@pytest.mark.parametrize("failures, expected", [
    (1, 0.005), (2, 0.010), (3, 0.020), (10, 0.005 * 2 ** 9), (40, 1000.0), (200, 1000.0),
], ids=lambda v: str(v))
def test_per_key_backoff_doubles_from_5ms_and_caps_at_1000s(failures, expected):
    lim = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [lim.when("k") for _ in range(failures)]
    assert delays[-1] == pytest.approx(expected)
    assert lim.num_requeues("k") == failures


def test_forget_restarts_the_backoff_of_that_key_only():
    lim = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(3):
        lim.when("a")
    lim.when("b")
    lim.forget("a")
    assert lim.num_requeues("a") == 0
    assert lim.when("a") == pytest.approx(0.005)
    assert lim.num_requeues("b") == 1


def test_the_overall_bucket_allows_a_burst_of_100_then_10_per_second():
    clock = FakeClock()
    lim = BucketRateLimiter(10.0, 100, clock=clock)
    assert all(lim.when(i) == 0 for i in range(100))
    assert lim.when("x") == pytest.approx(0.1)
    assert lim.when("y") == pytest.approx(0.2)
    clock.step(1.0)                  # ten tokens back, two already promised
    assert lim.when("z") == pytest.approx(0.0)


def test_the_default_controller_limiter_takes_the_longer_of_both_waits():
    clock = FakeClock()
    lim = default_controller_rate_limiter(clock)
    assert lim.when("a") == pytest.approx(0.005)
    for i in range(99):
        lim.when(f"other-{i}")       # drain the overall bucket
    assert lim.when("b") == pytest.approx(0.1)   # bucket wait beats b's 5 ms
    assert lim.num_requeues("a") == 1
    lim.forget("a")
    assert lim.num_requeues("a") == 0


async def test_add_rate_limited_backs_off_and_counts_requeues():
    clock = FakeClock()
    q = WorkQueue(clock=clock, rate_limiter=ItemExponentialFailureRateLimiter(1.0, 100.0))
    waits = []
    for _ in range(4):
        q.add_rate_limited("a")
        start = clock.now()
        while len(q) == 0:
            clock.step(0.25)
        waits.append(clock.now() - start)
        assert await _get_now(q) == "a"
        q.done("a")
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shut_down_releases_waiting_workers_and_ignores_later_adds():
    q = WorkQueue(clock=FakeClock())
    workers = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shut_down()
    assert await asyncio.wait_for(asyncio.gather(*workers), 1.0) == [None, None, None]
    q.add("a")
    q.add_after("b", 1.0)
    q.add_rate_limited("c")
    assert len(q) == 0
    assert await _get_now(q) is None
    assert q.shutting_down


async def test_shut_down_with_drain_waits_for_keys_in_process():
    q = WorkQueue(clock=FakeClock())
    q.add("a")
    key = await _get_now(q)
    drain = asyncio.ensure_future(q.shut_down_with_drain(timeout=5.0))
    await asyncio.sleep(0)
    assert not drain.done()
    q.done(key)
    assert await asyncio.wait_for(drain, 1.0) is True


async def test_shut_down_with_drain_gives_up_at_its_deadline():
    q = WorkQueue()
    q.add("a")
    await _get_now(q)
    assert await q.shut_down_with_drain(timeout=0.01) is False


async def test_concurrent_workers_never_share_a_key():
    q = WorkQueue()
    active: set[str] = set()
    seen: list[str] = []

    async def worker() -> None:
        while (key := await q.get()) is not None:
            assert key not in active
            active.add(key)
            seen.append(key)
            await asyncio.sleep(0)
            if len(seen) < 50:
                q.add(key)           # re-add during processing
            active.discard(key)
            q.done(key)

    tasks = [asyncio.ensure_future(worker()) for _ in range(4)]
    for k in ("a", "b", "c"):
        q.add(k)
    async with asyncio.timeout(5.0):
        while len(seen) < 50:
            await asyncio.sleep(0.001)
    q.shut_down()
    await asyncio.wait_for(asyncio.gather(*tasks), 1.0)
    assert set(seen) == {"a", "b", "c"}


async def test_token_bucket_wait_sleeps_on_the_injected_clock():
    clock = FakeClock()
    bucket = TokenBucket(2.0, 1, clock=clock)
    await asyncio.wait_for(bucket.wait(), 1.0)          # the burst token
    waiter = asyncio.ensure_future(bucket.wait())
    await _parked(clock)
    clock.step(0.5)
    await asyncio.wait_for(waiter, 1.0)


def test_max_of_needs_a_limiter():
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


async def test_run_worker_retries_a_failing_key_with_backoff_and_forgets_it_on_success():
    q = WorkQueue(rate_limiter=ItemExponentialFailureRateLimiter(0.001, 1.0))
    seen: list[str] = []

    async def handle(key: str) -> None:
        seen.append(key)
        if len(seen) < 3:
            raise RuntimeError("not yet")
        q.shut_down()

    q.add("ns/a")
    await asyncio.wait_for(q.run_worker(handle, "sync failed", component="test"), 5)
    assert seen == ["ns/a", "ns/a", "ns/a"]
    assert q.num_requeues("ns/a") == 0   # the success forgot the failures
