"""The scheduling queue (scheduling_queue.go semantics), driven by a FakeClock."""

from __future__ import annotations

import asyncio

import pytest
from sched_fakes import info, pod

from navio.client import FakeClock
from navio.scheduler.framework import EVENT_NODE_ADD, EVENT_POD_DELETE
from navio.scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, SchedulingQueue

EVENTS = {"NodeResourcesFit": frozenset({EVENT_NODE_ADD, EVENT_POD_DELETE}),
          "TaintToleration": frozenset({EVENT_NODE_ADD})}


def make(clock=None, **kw):
    return SchedulingQueue(clock or FakeClock(), plugin_events=EVENTS, **kw)


def fail(q, key, plugins=("NodeResourcesFit",)):
    """Pop `key` (must be next) and report it unschedulable."""
    qp = q.pop_nowait()
    assert qp.key == key
    qp.unschedulable_plugins = set(plugins)
    q.add_unschedulable(qp, q.scheduling_cycle)
    return qp


def test_higher_priority_pops_first_then_first_in_first_out():
    clock = FakeClock()
    q = make(clock)
    for name, prio in (("low", 0), ("high", 100), ("low2", 0)):
        q.add(info(pod(name, priority=prio)))
        clock.step(1)
    assert [q.pop_nowait().pod.name for _ in range(3)] == ["high", "low", "low2"]
    assert q.pop_nowait() is None


@pytest.mark.parametrize("attempts,seconds", [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10),
                                              (9, 10)])
def test_backoff_doubles_from_one_second_up_to_ten(attempts, seconds):
    q = make()
    q.add(info(pod("p")))
    qp = q.get("default/p")
    qp.attempts = attempts
    assert q.backoff_duration(qp) == seconds


def test_unschedulable_pod_waits_for_an_event_its_plugins_care_about():
    clock = FakeClock()
    q = make(clock)
    q.add(info(pod("p")))
    fail(q, "default/p", plugins=("TaintToleration",))
    assert q.where("default/p") == UNSCHEDULABLE
    assert q.move_all(EVENT_POD_DELETE) == 0          # TaintToleration ignores pod deletes
    assert q.where("default/p") == UNSCHEDULABLE
    clock.step(2)                                      # past its 1 s backoff
    assert q.move_all(EVENT_NODE_ADD) == 1
    assert q.where("default/p") == ACTIVE


def test_a_moved_pod_still_serves_its_backoff():
    clock = FakeClock()
    q = make(clock)
    q.add(info(pod("p")))
    fail(q, "default/p")
    q.move_all(EVENT_NODE_ADD)
    assert q.where("default/p") == BACKOFF
    assert q.flush_backoff() == 0
    clock.step(1.01)
    assert q.flush_backoff() == 1
    assert q.where("default/p") == ACTIVE


def test_an_event_during_the_attempt_sends_the_failure_to_backoff():
    q = make()
    q.add(info(pod("p")))
    qp = q.pop_nowait()
    cycle = q.scheduling_cycle
    q.move_all(EVENT_NODE_ADD)                         # arrives while "p" is in flight
    qp.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable(qp, cycle)
    assert q.where("default/p") == BACKOFF


def test_a_failure_without_rejecting_plugins_goes_to_backoff():
    q = make()
    q.add(info(pod("p")))
    fail(q, "default/p", plugins=())
    assert q.where("default/p") == BACKOFF


def test_pods_unschedulable_for_five_minutes_are_retried():
    clock = FakeClock()
    q = make(clock)
    q.add(info(pod("p")))
    fail(q, "default/p")
    clock.step(299)
    assert q.flush_unschedulable() == 0
    clock.step(2)
    assert q.flush_unschedulable() == 1
    assert q.where("default/p") == ACTIVE


def test_scheduling_gates_hold_a_pod_until_removed():
    q = make()
    q.add(info(pod("p", schedulingGates=[{"name": "wait"}])))
    assert q.where("default/p") == GATED
    assert q.pop_nowait() is None
    q.update(info(pod("p")))
    assert q.pop_nowait().key == "default/p"


def test_an_update_to_an_unschedulable_pod_moves_it():
    clock = FakeClock()
    q = make(clock)
    q.add(info(pod("p", cpu="8")))
    fail(q, "default/p")
    q.update(info(pod("p", cpu="8")))                  # same spec: stays
    assert q.where("default/p") == UNSCHEDULABLE
    clock.step(5)
    q.update(info(pod("p", cpu="1")))
    assert q.where("default/p") == ACTIVE


def test_deleted_pods_are_never_popped_or_requeued():
    q = make()
    q.add(info(pod("a")))
    q.add(info(pod("b")))
    q.delete("default/a")
    qp = q.pop_nowait()
    assert qp.key == "default/b"
    q.delete("default/b")
    q.add_unschedulable(qp, q.scheduling_cycle)
    assert q.where("default/b") is None and len(q) == 0


def test_take_pulls_siblings_out_of_any_sub_queue():
    clock = FakeClock()
    q = make(clock)
    for n in ("a", "b", "c"):
        q.add(info(pod(n)))
    fail(q, "default/a")
    taken = q.take(["default/a", "default/b", "default/zzz"])
    assert sorted(t.key for t in taken) == ["default/a", "default/b"]
    assert q.pop_nowait().key == "default/c"


async def test_pop_waits_for_a_pod():
    q = make()
    waiter = asyncio.ensure_future(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(info(pod("p")))
    got = await asyncio.wait_for(waiter, 1)
    assert got.key == "default/p"


async def test_flushers_run_on_the_clock():
    clock = FakeClock()
    q = make(clock)
    q.add(info(pod("p")))
    fail(q, "default/p")
    q.move_all(EVENT_NODE_ADD)
    task = asyncio.ensure_future(q.run_flushers())
    try:
        for _ in range(3):
            while not clock.has_sleepers():
                await asyncio.sleep(0)
            clock.step(1)
            await asyncio.sleep(0)
        assert q.where("default/p") == ACTIVE
    finally:
        q.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
