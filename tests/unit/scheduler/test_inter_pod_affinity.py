"""InterPodAffinity, on the inter-pod affinity examples of the assign-pod-node docs."""

from __future__ import annotations

from sched_fakes import HOSTNAME, ZONE, cache_with, info, node, pod

from navio.api.selectors import LabelSelector
from navio.scheduler.framework import Code, CycleState
from navio.scheduler.plugins.inter_pod_affinity import (
    ERR_REASON_AFFINITY,
    ERR_REASON_ANTI_AFFINITY,
    ERR_REASON_EXISTING_ANTI_AFFINITY,
    InterPodAffinity,
)

NAMESPACES = {"default": {"team": "a"}, "other": {"team": "b"}}


def plugin(cache):
    return InterPodAffinity(cache, lambda ns: NAMESPACES.get(ns, {}),
                            lambda sel: [n for n, labels in NAMESPACES.items()
                                         if sel.matches(labels)])


def term(labels, key=HOSTNAME, **extra):
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def affinity(req=(), anti=(), pref=(), pref_anti=()):
    out = {}
    if req or pref:
        out["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": list(req),
                              "preferredDuringSchedulingIgnoredDuringExecution": list(pref)}
    if anti or pref_anti:
        out["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(anti),
            "preferredDuringSchedulingIgnoredDuringExecution": list(pref_anti)}
    return out


NODES = [node("n1", labels={ZONE: "a"}), node("n2", labels={ZONE: "a"}),
         node("n3", labels={ZONE: "b"})]


def verdicts(cache, p):
    pl = plugin(cache)
    state = CycleState()
    st = pl.pre_filter(state, info(p))
    if st is not None:
        return st
    out = {}
    for name in ("n1", "n2", "n3"):
        s = pl.filter(state, info(p), cache.get(name))
        out[name] = None if s is None else (s.reasons[0], s.code)
    return out


def test_required_affinity_needs_a_matching_pod_in_the_same_zone():
    c = cache_with(NODES, [pod("cache", labels={"app": "store"}, node_name="n1")])
    got = verdicts(c, pod("web", affinity=affinity(req=[term({"app": "store"}, ZONE)])))
    fail = (ERR_REASON_AFFINITY, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    assert got == {"n1": None, "n2": None, "n3": fail}


def test_the_first_pod_of_a_self_affine_group_may_go_anywhere():
    c = cache_with(NODES)
    got = verdicts(c, pod("web", labels={"app": "web"},
                          affinity=affinity(req=[term({"app": "web"}, ZONE)])))
    assert got == {"n1": None, "n2": None, "n3": None}


def test_required_anti_affinity_keeps_pods_apart_per_host():
    c = cache_with(NODES, [pod("w1", labels={"app": "web"}, node_name="n1")])
    got = verdicts(c, pod("w2", labels={"app": "web"},
                          affinity=affinity(anti=[term({"app": "web"})])))
    assert got == {"n1": (ERR_REASON_ANTI_AFFINITY, Code.UNSCHEDULABLE), "n2": None,
                   "n3": None}


def test_existing_pods_anti_affinity_is_symmetric():
    c = cache_with(NODES, [pod("loner", node_name="n3",
                               affinity=affinity(anti=[term({"app": "web"}, ZONE)]))])
    got = verdicts(c, pod("w", labels={"app": "web"}))
    assert got == {"n1": None, "n2": None,
                   "n3": (ERR_REASON_EXISTING_ANTI_AFFINITY, Code.UNSCHEDULABLE)}


def test_terms_apply_to_the_pods_namespace_unless_told_otherwise():
    c = cache_with(NODES, [pod("w1", ns="other", labels={"app": "web"}, node_name="n1")])
    same_ns = verdicts(c, pod("w2", labels={"app": "web"},
                              affinity=affinity(anti=[term({"app": "web"})])))
    assert same_ns["n1"] is None
    by_selector = verdicts(c, pod("w3", labels={"app": "web"}, affinity=affinity(
        anti=[term({"app": "web"}, namespaceSelector={"matchLabels": {"team": "b"}})])))
    assert by_selector["n1"] == (ERR_REASON_ANTI_AFFINITY, Code.UNSCHEDULABLE)


def test_a_pod_without_terms_and_no_anti_affine_pods_skips_the_plugin():
    c = cache_with(NODES, [pod("w1", labels={"app": "web"}, node_name="n1")])
    st = plugin(c).pre_filter(CycleState(), info(pod("x")))
    assert st is not None and st.code == Code.SKIP


def test_preferred_terms_score_domains_and_normalise_min_max():
    c = cache_with(NODES, [pod("s", labels={"app": "store"}, node_name="n1"),
                           pod("w", labels={"app": "web"}, node_name="n3")])
    p = info(pod("new", affinity=affinity(
        pref=[{"weight": 10, "podAffinityTerm": term({"app": "store"}, ZONE)}],
        pref_anti=[{"weight": 5, "podAffinityTerm": term({"app": "web"})}])))
    pl = plugin(c)
    state = CycleState()
    assert pl.pre_score(state, p, None) is None
    raw = [pl.score(state, p, c.get(n)) for n in ("n1", "n2", "n3")]
    assert raw == [10, 10, -5]
    assert pl.normalize(state, p, raw, None) == [100, 100, 0]


def test_existing_pods_required_affinity_attracts_matching_pods():
    c = cache_with(NODES, [pod("fan", node_name="n3",
                               affinity=affinity(req=[term({"app": "web"}, ZONE)]))])
    p = info(pod("w", labels={"app": "web"}))
    pl = plugin(c)
    state = CycleState()
    assert pl.pre_score(state, p, None) is None
    assert [pl.score(state, p, c.get(n)) for n in ("n1", "n2", "n3")] == [0, 0, 1]


def test_label_selector_type_is_shared():
    assert isinstance(plugin(cache_with(NODES)).namespaces_matching(LabelSelector()), list)
