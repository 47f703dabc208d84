"""PodTopologySpread, on the examples of the pod-topology-spread-constraints docs."""

from __future__ import annotations

from sched_fakes import HOSTNAME, ZONE, cache_with, info, node, pod

from navio.api.selectors import selector_from_set
from navio.scheduler.framework import Code, CycleState
from navio.scheduler.plugins.pod_topology_spread import (
    ERR_REASON_CONSTRAINTS_NOT_MATCH,
    ERR_REASON_NODE_LABEL_NOT_MATCH,
    PodTopologySpread,
)


class _Feasible:
    def __init__(self, nodes):
        self.nodes = nodes
        self.rows = None


def constraint(key, skew=1, when="DoNotSchedule", **extra):
    return {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"foo": "bar"}}, **extra}


# Docs: zoneA = node1, node2; zoneB = node3, node4; pods foo=bar on node1, node2, node3.
DOC_NODES = [node("node1", labels={ZONE: "zoneA"}), node("node2", labels={ZONE: "zoneA"}),
             node("node3", labels={ZONE: "zoneB"}), node("node4", labels={ZONE: "zoneB"})]
DOC_PODS = [pod(f"p{i}", labels={"foo": "bar"}, node_name=n)
            for i, n in enumerate(("node1", "node2", "node3"))]


def fits(cache, p):
    pl = PodTopologySpread(cache)
    state = CycleState()
    st = pl.pre_filter(state, info(p))
    if st is not None:
        return st
    out = {}
    for ni in cache.node_infos():
        s = pl.filter(state, info(p), ni)
        out[ni.name] = None if s is None else (s.reasons[0], s.code)
    return out


def test_one_zone_constraint_sends_the_pod_to_the_emptier_zone():
    got = fits(cache_with(DOC_NODES, DOC_PODS),
               pod("new", labels={"foo": "bar"}, topologySpreadConstraints=[constraint(ZONE)]))
    skew = (ERR_REASON_CONSTRAINTS_NOT_MATCH, Code.UNSCHEDULABLE)
    assert got == {"node1": skew, "node2": skew, "node3": None, "node4": None}


def test_zone_and_node_constraints_together_leave_only_node4():
    got = fits(cache_with(DOC_NODES, DOC_PODS),
               pod("new", labels={"foo": "bar"},
                   topologySpreadConstraints=[constraint(ZONE), constraint(HOSTNAME)]))
    assert [n for n, v in got.items() if v is None] == ["node4"]


def test_a_node_without_the_topology_key_is_unresolvable():
    c = cache_with(DOC_NODES + [node("bare")], DOC_PODS)
    got = fits(c, pod("new", labels={"foo": "bar"},
                      topologySpreadConstraints=[constraint(ZONE)]))
    assert got["bare"] == (ERR_REASON_NODE_LABEL_NOT_MATCH,
                           Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


def test_nodes_excluded_by_node_affinity_do_not_count_as_domains():
    # Honor (default): zoneB is not eligible, so zoneA's count is the minimum.
    got = fits(cache_with(DOC_NODES, DOC_PODS),
               pod("new", labels={"foo": "bar"}, nodeSelector={ZONE: "zoneA"},
                   topologySpreadConstraints=[constraint(ZONE)]))
    assert got["node1"] is None and got["node2"] is None


def test_min_domains_treats_the_global_minimum_as_zero():
    got = fits(cache_with(DOC_NODES, DOC_PODS),
               pod("new", labels={"foo": "bar"},
                   topologySpreadConstraints=[constraint(ZONE, minDomains=3)]))
    assert all(v == (ERR_REASON_CONSTRAINTS_NOT_MATCH, Code.UNSCHEDULABLE)
               for v in got.values())


def test_schedule_anyway_constraints_do_not_filter():
    st = fits(cache_with(DOC_NODES, DOC_PODS),
              pod("new", labels={"foo": "bar"},
                  topologySpreadConstraints=[constraint(ZONE, when="ScheduleAnyway")]))
    assert st.code == Code.SKIP


def test_schedule_anyway_scores_the_emptier_zone_higher():
    c = cache_with(DOC_NODES, DOC_PODS)
    p = info(pod("new", labels={"foo": "bar"},
                 topologySpreadConstraints=[constraint(ZONE, when="ScheduleAnyway")]))
    pl = PodTopologySpread(c)
    state = CycleState()
    feasible = _Feasible(c.node_infos())
    assert pl.pre_score(state, p, feasible) is None
    raw = [pl.score(state, p, ni) for ni in feasible.nodes]
    # weight log(2 zones + 2): zoneA 2 pods -> round(2*1.386) = 3, zoneB 1 pod -> 1
    assert raw == [3, 3, 1, 1]
    assert pl.normalize(state, p, raw, feasible) == [33, 33, 100, 100]


def test_system_default_spreading_uses_the_default_selector():
    c = cache_with(DOC_NODES, DOC_PODS)
    pl = PodTopologySpread(c, default_selector=lambda p: selector_from_set({"foo": "bar"}))
    p = info(pod("new", labels={"foo": "bar"}))
    state = CycleState()
    feasible = _Feasible(c.node_infos())
    assert pl.pre_score(state, p, feasible) is None
    raw = [pl.score(state, p, ni) for ni in feasible.nodes]
    assert raw[3] < raw[0]          # node4 (no matching pod, emptier zone) is preferred
