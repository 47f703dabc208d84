"""LeastAllocated (NodeResourcesFit's score) and NodeResourcesBalancedAllocation, with the
figures of least_allocated_test.go and balanced_allocation_test.go."""

from __future__ import annotations

import pytest
from sched_fakes import cache_with, info, node, pod

from navio.scheduler.framework import CycleState
from navio.scheduler.plugins.node_resources_balanced_allocation import (
    NodeResourcesBalancedAllocation,
)
from navio.scheduler.plugins.node_resources_fit import NodeResourcesFit


def scores(plugin, p, nodes, existing=()):
    c = cache_with(nodes, existing)
    return [plugin.score(CycleState(), info(p), c.get(n["metadata"]["name"])) for n in nodes]


SIZED = [node("n1", cpu="4", memory="10000"), node("n2", cpu="6", memory="10000")]

CASES = [
    ("least allocated: nothing scheduled, differently sized nodes",
     NodeResourcesFit(), pod(cpu="3", memory="5000"), SIZED, (), [37, 50]),
    ("least allocated: an idle node scores 100 for a tiny pod",
     NodeResourcesFit(), pod(cpu="1m", memory="1"), [node("n1", cpu="1000", memory="1Ti")],
     (), [99]),
    ("least allocated: a pod without requests counts 100m / 200Mi",
     NodeResourcesFit(), pod(), [node("n1", cpu="1", memory="400Mi")], (), [70]),
    ("least allocated: existing pods count",
     NodeResourcesFit(), pod(cpu="1", memory="1000"), [node("n1", cpu="4", memory="10000")],
     [pod("old", cpu="2", memory="4000", node_name="n1")], [37]),
    ("balanced: differently sized nodes", NodeResourcesBalancedAllocation(),
     pod(cpu="3", memory="5000"), SIZED, (), [87, 100]),
    ("balanced: equal fractions score 100", NodeResourcesBalancedAllocation(),
     pod(cpu="2", memory="5000"), [node("n1", cpu="4", memory="10000")], (), [100]),
    ("balanced: existing requests count", NodeResourcesBalancedAllocation(),
     pod(cpu="1", memory="1000"), [node("n1", cpu="4", memory="10000")],
     [pod("old", cpu="2", memory="4000", node_name="n1")], [87]),
]


@pytest.mark.parametrize("name,plugin,p,nodes,existing,want", CASES,
                         ids=[c[0] for c in CASES])
def test_scores(name, plugin, p, nodes, existing, want):
    assert scores(plugin, p, nodes, existing) == want
