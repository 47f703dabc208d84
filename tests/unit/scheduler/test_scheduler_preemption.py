"""DefaultPreemption: who is evicted, where, and what a pod that cannot preempt is told."""

from __future__ import annotations

import random

from sched_fakes import algorithm, cache_with, info, node, pod

from navio.scheduler.framework import FitError
from navio.scheduler.preemption import Preemptor, pdb_violations


def attempt(cache, p, pdbs=()):
    alg = algorithm(cache)
    try:
        alg.schedule(p)
    except FitError as e:
        pre = Preemptor(alg, lambda: list(pdbs), rng=random.Random(0))
        return pre.preempt(p, e), e
    raise AssertionError("expected the pod not to fit")


NODES = [node("n1", cpu="2"), node("n2", cpu="2")]
LOW = pod("low", cpu="2", priority=0, node_name="n1", labels={"app": "low"})
MID = pod("mid", cpu="2", priority=50, node_name="n2", labels={"app": "mid"})


def test_the_node_whose_victims_matter_least_is_chosen():
    result, _ = attempt(cache_with(NODES, [LOW, MID]), info(pod("high", cpu="2",
                                                                priority=100)))
    assert result.node == "n1"
    assert [v.name for v in result.victims] == ["low"]


def test_only_lower_priority_pods_are_victims():
    result, _ = attempt(cache_with(NODES, [LOW, MID]), info(pod("mid2", cpu="2",
                                                                priority=50)))
    assert result.node == "n1"
    assert [v.name for v in result.victims] == ["low"]


def test_as_few_victims_as_needed_are_taken():
    c = cache_with([node("n1", cpu="3")],
                   [pod("a", cpu="1", priority=1, node_name="n1"),
                    pod("b", cpu="1", priority=2, node_name="n1"),
                    pod("c", cpu="1", priority=3, node_name="n1")])
    result, _ = attempt(c, info(pod("high", cpu="1500m", priority=100)))
    assert sorted(v.name for v in result.victims) == ["a", "b"]


def test_pod_disruption_budgets_steer_preemption_elsewhere():
    budget = {"metadata": {"namespace": "default", "name": "keep-low"},
              "spec": {"selector": {"matchLabels": {"app": "low"}}},
              "status": {"disruptionsAllowed": 0}}
    result, _ = attempt(cache_with(NODES, [LOW, MID]),
                        info(pod("high", cpu="2", priority=100)), pdbs=[budget])
    assert result.node == "n2"


def test_a_pdb_is_violated_when_there_is_no_other_way():
    budget = {"metadata": {"namespace": "default", "name": "keep-low"},
              "spec": {"selector": {"matchLabels": {"app": "low"}}},
              "status": {"disruptionsAllowed": 0}}
    result, _ = attempt(cache_with(NODES[:1], [LOW]), info(pod("high", cpu="2",
                                                               priority=100)),
                        pdbs=[budget])
    assert result.node == "n1"


def test_equal_priority_pods_are_never_victims_and_the_message_says_so():
    result, e = attempt(cache_with(NODES, [LOW, pod("low2", cpu="2", node_name="n2")]),
                        info(pod("same", cpu="2", priority=0)))
    assert result.node == ""
    assert result.message == ("0/2 nodes are available: 2 No preemption victims found for "
                              "incoming pod.")


def test_unresolvable_nodes_are_not_helped_by_preemption():
    c = cache_with([node("n1", cpu="1")], [pod("low", cpu="1", priority=0, node_name="n1")])
    result, _ = attempt(c, info(pod("huge", cpu="2", priority=100)))
    assert result.message == ("0/1 nodes are available: 1 Preemption is not helpful for "
                              "scheduling.")


def test_preemption_policy_never_is_not_eligible():
    result, _ = attempt(cache_with(NODES, [LOW, MID]),
                        info(pod("polite", cpu="2", priority=100,
                                 preemptionPolicy="Never")))
    assert result.node == ""
    assert result.message == "not eligible due to preemptionPolicy=Never."


def test_pdb_violations_are_counted_against_the_budget():
    pods = [info(pod(f"p{i}", labels={"app": "x"})) for i in range(3)]
    budget = {"metadata": {"namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "x"}}},
              "status": {"disruptionsAllowed": 1}}
    violating, ok = pdb_violations(pods, [budget])
    assert [p.name for p in ok] == ["p0"]
    assert [p.name for p in violating] == ["p1", "p2"]


def test_fit_error_message_form():
    c = cache_with([node("a", cpu="1"),
                    node("b", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                    node("c", cpu="1")])
    try:
        algorithm(c).schedule(info(pod("big", cpu="2")))
    except FitError as e:
        assert str(e) == ("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, "
                          "2 Insufficient cpu.")
    else:
        raise AssertionError("expected FitError")
