"""NodeAffinity: nodeSelector, required and preferred node affinity (assign-pod-node docs)."""

from __future__ import annotations

import pytest
from sched_fakes import cache_with, info, node, pod, run_filter

from navio.scheduler.framework import Code, CycleState
from navio.scheduler.plugins.node_affinity import ERR_REASON_CONFLICT, ERR_REASON_POD, NodeAffinity


def required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


NODE = node("n1", labels={"disktype": "ssd", "zone": "a", "cores": "8"})

CASES = [
    ("nodeSelector matching every label passes", {"nodeSelector": {"disktype": "ssd"}}, True),
    ("nodeSelector with a different value fails", {"nodeSelector": {"disktype": "hdd"}}, False),
    ("nodeSelector needs all of its labels",
     {"nodeSelector": {"disktype": "ssd", "gpu": "yes"}}, False),
    ("In matches one of the values",
     {"affinity": required({"matchExpressions": [expr("zone", "In", "a", "b")]})}, True),
    ("NotIn passes when the label is absent",
     {"affinity": required({"matchExpressions": [expr("gpu", "NotIn", "yes")]})}, True),
    ("Exists needs the key", {"affinity": required({"matchExpressions": [
        expr("gpu", "Exists")]})}, False),
    ("DoesNotExist passes without the key", {"affinity": required({"matchExpressions": [
        expr("gpu", "DoesNotExist")]})}, True),
    ("Gt compares as integers", {"affinity": required({"matchExpressions": [
        expr("cores", "Gt", "4")]})}, True),
    ("Lt compares as integers", {"affinity": required({"matchExpressions": [
        expr("cores", "Lt", "4")]})}, False),
    ("terms are ORed", {"affinity": required(
        {"matchExpressions": [expr("zone", "In", "z")]},
        {"matchExpressions": [expr("disktype", "In", "ssd")]})}, True),
    ("expressions within a term are ANDed", {"affinity": required({"matchExpressions": [
        expr("zone", "In", "a"), expr("disktype", "In", "hdd")]})}, False),
    ("an empty term matches nothing", {"affinity": required({})}, False),
    ("an invalid operator makes its term match nothing", {"affinity": required(
        {"matchExpressions": [expr("zone", "Near", "a")]})}, False),
    ("matchFields on metadata.name", {"affinity": required(
        {"matchFields": [expr("metadata.name", "In", "n1")]})}, True),
    ("nodeSelector and affinity must both match",
     {"nodeSelector": {"disktype": "ssd"},
      "affinity": required({"matchExpressions": [expr("zone", "In", "b")]})}, False),
]


@pytest.mark.parametrize("name,spec,fits", CASES, ids=[c[0] for c in CASES])
def test_filter(name, spec, fits):
    c = cache_with([NODE])
    st = run_filter(NodeAffinity(), info(pod(**spec)), c.get("n1"))
    if fits:
        assert st is None
    else:
        assert st.reasons == (ERR_REASON_POD,)
        assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_pod_without_selector_or_affinity_skips_the_plugin():
    assert run_filter(NodeAffinity(), info(pod()), cache_with([NODE]).get("n1")) == "skip"


def test_terms_pinning_node_names_narrow_the_cycle_to_those_nodes():
    state = CycleState()
    p = info(pod(affinity=required({"matchFields": [expr("metadata.name", "In", "n1",
                                                         "n2")]})))
    assert NodeAffinity().pre_filter(state, p) is None
    assert state.node_names == {"n1", "n2"}


def test_terms_pinning_conflicting_names_fail_the_pod():
    p = info(pod(affinity=required({"matchFields": [expr("metadata.name", "In", "n1"),
                                                    expr("metadata.name", "In", "n2")]})))
    st = NodeAffinity().pre_filter(CycleState(), p)
    assert st.reasons == (ERR_REASON_CONFLICT,)


def test_preferred_terms_add_their_weights_and_normalise_to_100():
    c = cache_with([node("a", labels={"zone": "a", "ssd": "1"}), node("b", labels={"zone":
                                                                                  "a"}),
                    node("c")])
    p = info(pod(affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 20, "preference": {"matchExpressions": [expr("zone", "In", "a")]}},
            {"weight": 80, "preference": {"matchExpressions": [expr("ssd", "Exists")]}}]}}))
    plugin = NodeAffinity()
    raw = [plugin.score(CycleState(), p, c.get(n)) for n in ("a", "b", "c")]
    assert raw == [100, 20, 0]
    assert plugin.normalize(CycleState(), p, [40, 10, 0], None) == [100, 25, 0]
