"""NodeUnschedulable, NodeName and NodePorts."""

from __future__ import annotations

import pytest
from sched_fakes import cache_with, container, info, node, pod, run_filter

from navio.scheduler.framework import Code
from navio.scheduler.plugins.node_name import NodeName
from navio.scheduler.plugins.node_ports import ERR_REASON as PORTS_REASON
from navio.scheduler.plugins.node_ports import NodePorts
from navio.scheduler.plugins.node_unschedulable import ERR_REASON_UNSCHEDULABLE, NodeUnschedulable


def test_a_cordoned_node_rejects_pods():
    c = cache_with([node("n1", unschedulable=True)])
    st = run_filter(NodeUnschedulable(), info(pod()), c.get("n1"))
    assert st.reasons == (ERR_REASON_UNSCHEDULABLE,)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_a_cordoned_node_takes_pods_tolerating_the_unschedulable_taint():
    c = cache_with([node("n1", unschedulable=True)])
    p = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                          "effect": "NoSchedule"}])
    assert run_filter(NodeUnschedulable(), info(p), c.get("n1")) is None


def test_node_name_must_match():
    c = cache_with([node("n1"), node("n2")])
    p = info(pod(node_name="n2"))
    assert run_filter(NodeName(), p, c.get("n1")).reasons == (
        "node(s) didn't match the requested node name",)
    assert run_filter(NodeName(), p, c.get("n2")) is None


def port(host_port, protocol="TCP", ip=None):
    p = {"containerPort": 80, "hostPort": host_port, "protocol": protocol}
    if ip:
        p["hostIP"] = ip
    return p


PORT_CASES = [
    ("the same port and protocol conflicts", [port(8080)], [port(8080)], False),
    ("another port is free", [port(8080)], [port(8081)], True),
    ("another protocol is free", [port(8080)], [port(8080, "UDP")], True),
    ("two specific IPs do not conflict", [port(8080, ip="10.0.0.1")],
     [port(8080, ip="10.0.0.2")], True),
    ("0.0.0.0 conflicts with a specific IP", [port(8080, ip="10.0.0.1")], [port(8080)],
     False),
    ("a specific IP conflicts with 0.0.0.0", [port(8080)], [port(8080, ip="10.0.0.1")],
     False),
]


@pytest.mark.parametrize("name,used,want,fits", PORT_CASES, ids=[c[0] for c in PORT_CASES])
def test_host_ports(name, used, want, fits):
    c = cache_with([node("n1")], [pod("old", node_name="n1",
                                      containers=[container(ports=used)])])
    st = run_filter(NodePorts(), info(pod(containers=[container(ports=want)])), c.get("n1"))
    if fits:
        assert st is None
    else:
        assert st.reasons == (PORTS_REASON,)
        assert st.code == Code.UNSCHEDULABLE


def test_pods_without_host_ports_skip_node_ports():
    assert run_filter(NodePorts(), info(pod()), cache_with([node("n1")]).get("n1")) == "skip"
