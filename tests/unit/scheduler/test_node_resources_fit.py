"""NodeResourcesFit filter, as noderesources/fit_test.go and the scheduling docs describe."""

from __future__ import annotations

import pytest
from sched_fakes import cache_with, container, info, node, pod, run_filter

from navio.scheduler.framework import Code
from navio.scheduler.plugins.node_resources_fit import NodeResourcesFit

EXISTING = pod("old", cpu="2", memory="4Gi", node_name="n1")

CASES = [
    ("a pod that fits the free resources passes", pod(cpu="1", memory="1Gi"), (), None),
    ("cpu beyond what is left is Insufficient cpu", pod(cpu="3"), ("Insufficient cpu",),
     Code.UNSCHEDULABLE),
    ("memory beyond what is left is Insufficient memory", pod(memory="5Gi"),
     ("Insufficient memory",), Code.UNSCHEDULABLE),
    ("every short resource is reported", pod(cpu="3", memory="5Gi"),
     ("Insufficient cpu", "Insufficient memory"), Code.UNSCHEDULABLE),
    ("more than the node has in total is unresolvable", pod(cpu="5"),
     ("Insufficient cpu",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
    ("ephemeral storage is checked", pod(containers=[container(**{"ephemeral-storage":
                                                                   "20Gi"})]),
     ("Insufficient ephemeral-storage",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
    ("an extended resource the node lacks is insufficient",
     pod(containers=[container(**{"example.com/gpu": "1"})]),
     ("Insufficient example.com/gpu",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
    ("init containers count by their maximum, not their sum",
     pod(containers=[container("1")], initContainers=[container("2"), container("2")]),
     (), None),
    ("an init container larger than what is free does not fit",
     pod(containers=[container("1")], initContainers=[container("3")]),
     ("Insufficient cpu",), Code.UNSCHEDULABLE),
]


@pytest.mark.parametrize("name,p,want,code", CASES, ids=[c[0] for c in CASES])
def test_fit(name, p, want, code):
    c = cache_with([node("n1", cpu="4", memory="8Gi", **{"ephemeral-storage": "10Gi"})],
                   [EXISTING])
    st = run_filter(NodeResourcesFit(), info(p), c.get("n1"))
    if not want:
        assert st is None
    else:
        assert sorted(st.reasons) == sorted(want)
        assert st.code == code


def test_too_many_pods_even_for_a_pod_requesting_nothing():
    c = cache_with([node("n1", pods="1")], [pod("old", node_name="n1")])
    st = run_filter(NodeResourcesFit(), info(pod()), c.get("n1"))
    assert st.reasons == ("Too many pods",)
    assert st.code == Code.UNSCHEDULABLE


def test_assumed_pods_take_room_before_their_binding():
    c = cache_with([node("n1", cpu="2")])
    c.assume(info(pod("first", cpu="1500m")), "n1")
    st = run_filter(NodeResourcesFit(), info(pod("second", cpu="1")), c.get("n1"))
    assert st.reasons == ("Insufficient cpu",)
    c.forget("default/first")
    assert run_filter(NodeResourcesFit(), info(pod("second", cpu="1")), c.get("n1")) is None
