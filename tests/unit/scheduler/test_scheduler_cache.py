"""The cache: assumed pods, confirmations, node removal, indexes; and the layering rule."""

from __future__ import annotations

import ast
from pathlib import Path

from sched_fakes import cache_with, info, node, pod

from navio.api.selectors import selector_from_set


def test_a_confirmed_assumption_is_counted_once():
    c = cache_with([node("n1")])
    p = info(pod("p", cpu="1"))
    c.assume(p, "n1")
    c.add_pod(info(pod("p", cpu="1", node_name="n1")))
    assert not c.is_assumed("default/p")
    assert c.get("n1").requested.milli_cpu == 1000
    c.forget("default/p")                       # too late: a no-op
    assert c.get("n1").requested.milli_cpu == 1000


def test_a_pod_bound_elsewhere_moves_from_its_assumed_node():
    c = cache_with([node("n1"), node("n2")])
    c.assume(info(pod("p", cpu="1")), "n1")
    c.add_pod(info(pod("p", cpu="1", node_name="n2")))
    assert c.get("n1").requested.milli_cpu == 0
    assert c.get("n2").requested.milli_cpu == 1000


def test_pods_seen_before_their_node_are_kept_until_it_arrives():
    c = cache_with([], [pod("p", cpu="1", node_name="late")])
    assert c.num_nodes == 0 and c.get("late") is None
    c.set_node(node("late"))
    assert c.get("late").requested.milli_cpu == 1000
    if c.arrays is not None:
        assert c.arrays.req_cpu[c.get("late").idx] == 1000


def test_a_removed_node_frees_its_row_once_its_pods_are_gone():
    c = cache_with([node("n1"), node("n2")], [pod("p", node_name="n1")])
    row = c.get("n1").idx
    c.remove_node("n1")
    assert c.get("n1") is None and c.num_nodes == 1
    c.remove_pod("default/p")
    c.set_node(node("n3"))
    assert c.get("n3").idx == row               # the row is reused


def test_matching_pods_uses_the_label_index_and_checks_the_whole_selector():
    c = cache_with([node("n1")], [pod("a", labels={"app": "x", "tier": "1"}, node_name="n1"),
                                  pod("b", labels={"app": "x"}, node_name="n1"),
                                  pod("c", ns="other", labels={"app": "x"}, node_name="n1")])
    got = c.matching_pods(["default"], selector_from_set({"app": "x", "tier": "1"}))
    assert [p.name for p in got] == ["a"]
    assert c.count_matching(["default", "other"], selector_from_set({"app": "x"})) == {
        c.get("n1").idx: 3}


SERVER_SIDE = ("navio.apiserver", "navio.storage")


def _imports(path: Path):
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Import):
            yield from (a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module:
            yield n.module


def test_the_scheduler_reaches_state_only_through_the_api():
    root = Path(__file__).resolve().parents[3] / "navio" / "scheduler"
    bad = [(f.name, m) for f in root.rglob("*.py") for m in _imports(f)
           if m.startswith(SERVER_SIDE) or m == "navio.cli" or m.startswith("navio.cli.")]
    assert bad == []


def test_nodes_are_sampled_one_zone_at_a_time_like_the_node_tree():
    zone = "topology.kubernetes.io/zone"
    c = cache_with([node("a1", labels={zone: "a"}), node("a2", labels={zone: "a"}),
                    node("b1", labels={zone: "b"}), node("a3", labels={zone: "a"}),
                    node("none")])
    names = [c.slots[row].name for row in c.node_order()]
    assert names == ["a1", "b1", "none", "a2", "a3"]
