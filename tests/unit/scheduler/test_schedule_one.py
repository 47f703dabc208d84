"""ScheduleOne with fake binder and reporter: binding outcomes, failures, preemption, gangs."""

from __future__ import annotations

import random
from typing import Any

from sched_fakes import cache_with, info, node, pod

from navio.api import errors
from navio.client import FakeClock
from navio.scheduler.algorithm import Algorithm
from navio.scheduler.framework import ALL_EVENTS, EVENT_NODE_ADD
from navio.scheduler.gang import GANG_LABEL, GANG_PLUGIN, PHASE_UNSCHEDULABLE, PodGroups
from navio.scheduler.nominator import Nominator
from navio.scheduler.plugins import default_profile
from navio.scheduler.preemption import Preemptor
from navio.scheduler.queue import BACKOFF, UNSCHEDULABLE, SchedulingQueue
from navio.scheduler.schedule_one import ScheduleOne


class FakeBinder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, Any]] = []

    def bind(self, pi, node_name, done):
        self.calls.append((pi, node_name, done))

    def complete(self, error=None):
        calls, self.calls = self.calls, []
        for pi, node_name, done in calls:
            done(pi, node_name, error)
        return [(pi.name, n) for pi, n, _ in calls]


class FakeReporter:
    def __init__(self) -> None:
        self.failures: dict[str, tuple[str, str, Any]] = {}
        self.scheduled_on: dict[str, str] = {}
        self.preempted: list[str] = []
        self.cleared: list[str] = []

    def failed(self, pi, message, reason="Unschedulable", nominated=None):
        self.failures[pi.name] = (message, reason, nominated)

    def scheduled(self, pi, node_name):
        self.scheduled_on[pi.name] = node_name

    def preempt(self, victim, preemptor, node_name):
        self.preempted.append(victim.name)

    def nominate(self, pi, node_name):
        self.cleared.append(pi.name)


class FakeGroups:
    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups

    def get(self, key):
        ns, name = key.split("/")
        if name not in self.groups:
            return None
        return {"metadata": {"name": name, "namespace": ns},
                "spec": {"minMember": self.groups[name]}}


def world(nodes, pods=(), groups=None):
    cache = cache_with(nodes, pods)
    clock = FakeClock()
    nominator = Nominator()
    profile = default_profile(cache)
    events = profile.plugin_events()
    events[GANG_PLUGIN] = ALL_EVENTS
    queue = SchedulingQueue(clock, plugin_events=events)
    alg = Algorithm(cache, profile, nominator, rng=random.Random(0))
    binder, reporter = FakeBinder(), FakeReporter()
    pg = PodGroups(client=None, informer=FakeGroups(groups or {}))  # type: ignore[arg-type]
    one = ScheduleOne(cache, queue, alg, Preemptor(alg, lambda: [], rng=random.Random(0)),
                      nominator, binder, reporter, pg)
    return one, clock


def drain(one):
    while (q := one.queue.pop_nowait()) is not None:
        one(q)


def test_a_pod_is_assumed_bound_and_reported():
    one, _ = world([node("n1")])
    one.queue.add(info(pod("p", cpu="1")))
    drain(one)
    assert one.cache.is_assumed("default/p")
    assert one.binder.complete() == [("p", "n1")]
    assert one.reporter.scheduled_on == {"p": "n1"}
    assert len(one.queue) == 0


def test_a_failed_binding_forgets_the_assumption_and_retries_after_backoff():
    one, _ = world([node("n1", cpu="1")])
    one.queue.add(info(pod("p", cpu="1")))
    drain(one)
    one.binder.complete(errors.InternalError("etcd is sad"))
    assert not one.cache.is_assumed("default/p")
    assert one.cache.get("n1").requested.milli_cpu == 0
    assert one.queue.where("default/p") == BACKOFF
    message, reason, _ = one.reporter.failures["p"]
    assert reason == "SchedulerError" and message.startswith('running Bind plugin')


def test_an_unschedulable_pod_is_reported_and_parked():
    one, _ = world([node("n1", cpu="1")])
    one.queue.add(info(pod("p", cpu="2")))
    drain(one)
    message, reason, _ = one.reporter.failures["p"]
    assert reason == "Unschedulable"
    assert message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert one.queue.where("default/p") == UNSCHEDULABLE


def test_a_higher_priority_pod_preempts_and_is_nominated():
    one, _ = world([node("n1", cpu="2")], [pod("low", cpu="2", priority=0, node_name="n1")])
    one.queue.add(info(pod("high", cpu="2", priority=100)))
    drain(one)
    assert one.reporter.preempted == ["low"]
    assert one.reporter.failures["high"][2] == "n1"
    assert one.nominator.node_of("default/high") == "n1"


def gang_pod(name, group="g", cpu="1"):
    return pod(name, cpu=cpu, labels={GANG_LABEL: group})


def test_a_gang_that_does_not_fit_binds_nothing_then_binds_when_a_node_arrives():
    one, clock = world([node(f"n{i}", cpu="1") for i in range(3)], groups={"g": 4})
    for i in range(4):
        one.queue.add(info(gang_pod(f"m{i}")))
    drain(one)
    assert one.binder.calls == []
    assert not one.cache.assumed
    assert all(one.queue.where(f"default/m{i}") == UNSCHEDULABLE for i in range(4))
    message = one.reporter.failures["m0"][0]
    assert message == ("0/3 nodes are available: 3 Insufficient cpu. pod group default/g: "
                       "3 of 4 pods fit at once (minMember 4).")
    assert one.pod_groups.outcomes[("default", "g")].phase == PHASE_UNSCHEDULABLE
    one.cache.set_node(node("n3", cpu="1"))
    clock.step(2)
    one.queue.move_all(EVENT_NODE_ADD)
    drain(one)
    assert sorted(n for _, n in one.binder.complete()) == ["n0", "n1", "n2", "n3"]


def test_a_gang_waits_while_fewer_members_exist_than_min_member():
    one, _ = world([node("n1", cpu="8")], groups={"g": 3})
    one.queue.add(info(gang_pod("m0")))
    drain(one)
    assert one.binder.calls == []
    assert one.reporter.failures["m0"][0] == ("pod group default/g: 1 pods exist, fewer "
                                              "than minMember 3.")


def test_a_gang_without_its_pod_group_waits_for_it():
    one, _ = world([node("n1", cpu="8")])
    one.queue.add(info(gang_pod("m0", group="nope")))
    drain(one)
    assert one.reporter.failures["m0"][0] == ('pod group default/nope: PodGroup "nope" not '
                                              'found.')
    assert one.queue.where("default/m0") == UNSCHEDULABLE


def test_a_gang_that_fits_binds_all_its_members():
    one, _ = world([node("n1", cpu="4")], groups={"g": 3})
    for i in range(3):
        one.queue.add(info(gang_pod(f"m{i}")))
    drain(one)
    assert len(one.binder.complete()) == 3
