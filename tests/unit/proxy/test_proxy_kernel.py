"""Service traffic through real kernel rules, inside namespaces the tests create (issue 8).

Every scenario runs with both kernel backends: nftables and the iptables fallback
(`iptables-restore`, iptables-nft on this platform). Every packet stays in the lab: pods on
a bridge in a node netns that has no route out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from proxy_netlab import SERVER_PORT, NetLab, sh
from proxy_objects import endpoint, endpoint_slice, service

from navio.proxy.model import ServiceMap, build_service_map
from navio.proxy.nftables import RuleOptions
from navio.proxy.iptables_backend import IptablesBackend, IptablesRunner
from navio.proxy.nftables_backend import NftablesBackend, NftRunner

NODE = "n1"                       # pod1 runs on this node, pod2 and pod3 "elsewhere"
OPTS = RuleOptions(cluster_cidr="10.244.0.0/16", service_cidr="10.43.0.0/16")
CLUSTER_IP, PORT, NODE_PORT, GATEWAY = "10.43.0.10", 80, 30080, "10.244.0.1"
ALL = {"pod1", "pod2", "pod3"}
SLICE_PORTS = [{"name": "http", "port": SERVER_PORT, "protocol": "TCP"}]


def pods(*names: str, terminating: str = "") -> list[dict[str, Any]]:
    ips = {"pod1": "10.244.0.11", "pod2": "10.244.0.12", "pod3": "10.244.0.13"}
    return [endpoint(ips[n], node=NODE if n == "pod1" else "n2", ready=n != terminating,
                     terminating=n == terminating) for n in names]


def web(**kw: Any) -> dict[str, Any]:
    kw.setdefault("ports", [{"name": "http", "port": PORT, "protocol": "TCP"}])
    return service("web", CLUSTER_IP, **kw)


def names(answers: list[str]) -> Counter[str]:
    return Counter(a.split()[0] if not a.startswith("ERR") else a for a in answers)


def make(kind: str, node: str, opts: RuleOptions = OPTS) -> Any:
    if kind == "iptables":
        return IptablesBackend(opts, IptablesRunner(node))
    return NftablesBackend(opts, NftRunner(node))


@pytest.fixture(params=["nftables", "iptables"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def backend(lab: NetLab, kind: str) -> AsyncIterator[Any]:
    b = make(kind, lab.node)
    yield b
    await b.cleanup()


async def program(b: Any, svc: dict[str, Any], eps: list[dict[str, Any]],
                  ports: list[dict[str, Any]] = SLICE_PORTS) -> ServiceMap:
    m = build_service_map([svc], [endpoint_slice("web", eps, ports=ports)], NODE)
    await b.sync(m, m.keys(), full=True)
    return m


async def test_cluster_ip_reaches_every_ready_endpoint(lab, backend):
    await program(backend, web(), pods("pod1", "pod2", "pod3"))
    answers = lab.connect("client", CLUSTER_IP, PORT, 40)
    assert set(names(answers)) == ALL, answers
    assert all(a.endswith(" 10.244.0.100") for a in answers)   # pod sources are kept


async def test_udp_cluster_ip_reaches_every_ready_endpoint(lab, backend):
    svc = web(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    await program(backend, svc, pods("pod1", "pod2", "pod3"),
                  [{"name": "dns", "port": SERVER_PORT, "protocol": "UDP"}])
    assert set(names(lab.connect("client", CLUSTER_IP, 53, 40, "udp"))) == ALL


async def test_a_removed_endpoint_stops_receiving_within_a_second(lab, backend):
    m = await program(backend, web(), pods("pod1", "pod2", "pod3"))
    assert "pod3" in names(lab.connect("client", CLUSTER_IP, PORT, 30))
    after = build_service_map([web()], [endpoint_slice("web", pods("pod1", "pod2", "pod3",
                                                                   terminating="pod3"))], NODE)
    started = time.monotonic()
    assert await backend.sync(after, m.keys(), full=False) == "partial"
    assert time.monotonic() - started < 1.0
    assert set(names(lab.connect("client", CLUSTER_IP, PORT, 30))) == {"pod1", "pod2"}


async def test_client_ip_affinity_pins_a_client_to_one_endpoint(lab, backend):
    await program(backend, web(sessionAffinity="ClientIP"), pods("pod1", "pod2", "pod3"))
    assert len(names(lab.connect("client", CLUSTER_IP, PORT, 20))) == 1


async def test_a_pod_reaches_itself_through_its_service(lab, backend):
    await program(backend, web(), pods("pod1"))
    answers = lab.connect("pod1", CLUSTER_IP, PORT, 5)
    # Hairpin: the reply can only come back because the source was masqueraded.
    assert answers == [f"pod1 {GATEWAY}"] * 5


async def test_node_port_on_the_bridge_address_reaches_every_endpoint(lab, backend):
    svc = web(type_="NodePort", ports=[{"name": "http", "port": PORT, "nodePort": NODE_PORT}])
    await program(backend, svc, pods("pod1", "pod2", "pod3"))
    answers = lab.connect("client", GATEWAY, NODE_PORT, 40)
    assert set(names(answers)) == ALL, answers
    assert all(a.endswith(f" {GATEWAY}") for a in answers)       # external: masqueraded


async def test_external_traffic_policy_local_keeps_node_port_traffic_on_this_node(lab, kind):
    # `outside` (10.244.0.200) is not in this cluster CIDR: it stands for an external client.
    b = make(kind, lab.node, RuleOptions(cluster_cidr="10.244.0.0/25"))
    try:
        svc = web(type_="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": PORT, "nodePort": NODE_PORT}])
        await program(b, svc, pods("pod1", "pod2", "pod3"))
        answers = lab.connect("outside", GATEWAY, NODE_PORT, 15)
        assert answers == ["pod1 10.244.0.200"] * 15              # local, source kept
        # A pod's traffic to the external address is short-circuited to every endpoint.
        assert set(names(lab.connect("client", GATEWAY, NODE_PORT, 40))) == ALL
    finally:
        await b.cleanup()


async def test_internal_traffic_policy_local_keeps_cluster_ip_traffic_on_this_node(lab, backend):
    await program(backend, web(internalTrafficPolicy="Local"), pods("pod1", "pod2", "pod3"))
    assert set(names(lab.connect("client", CLUSTER_IP, PORT, 15))) == {"pod1"}


async def test_a_service_without_endpoints_refuses_connections(lab, backend):
    await program(backend, web(), pods("pod1", terminating="pod1")[:0])
    assert lab.connect("client", CLUSTER_IP, PORT, 2) == ["ERR ConnectionRefusedError"] * 2


async def test_an_unserved_port_of_a_cluster_ip_is_refused(lab, backend):
    await program(backend, web(), pods("pod1"))
    assert lab.connect("client", CLUSTER_IP, PORT + 1, 2) == ["ERR ConnectionRefusedError"] * 2


async def test_the_node_itself_reaches_a_cluster_ip(lab, backend):
    await program(backend, web(), pods("pod1", "pod2", "pod3"))
    assert set(names(lab.connect("node", CLUSTER_IP, PORT, 40))) == ALL


async def test_shutdown_removes_the_table(lab):
    b = NftablesBackend(OPTS, NftRunner(lab.node))
    await program(b, web(), pods("pod1"))
    assert "navio-proxy" in lab.nft("list", "tables").stdout
    await b.cleanup()
    # (iptables-nft's own, empty `nat`/`filter` tables may remain from the iptables tests)
    assert "navio-proxy" not in lab.nft("list", "tables").stdout


async def test_iptables_shutdown_removes_every_navio_chain_and_jump(lab):
    b = make("iptables", lab.node)
    await program(b, web(), pods("pod1"))
    saved = lambda: sh("ip", "netns", "exec", lab.node, "iptables-save").stdout  # noqa: E731
    assert "NAVIO-SEP-" in saved() and "-A PREROUTING -j NAVIO-SERVICES" in saved()
    assert await b.healthy()
    await b.cleanup()
    assert "NAVIO" not in saved()
    assert not await b.healthy()


async def test_iptables_partial_sync_touches_only_the_changed_service(lab):
    b = make("iptables", lab.node)
    try:
        other = service("other", "10.43.0.11", ports=[{"name": "http", "port": PORT,
                                                        "protocol": "TCP"}])
        slices = [endpoint_slice("web", pods("pod1", "pod2", "pod3"), ports=SLICE_PORTS),
                  endpoint_slice("other", pods("pod2"), ports=SLICE_PORTS)]
        m = build_service_map([web(), other], slices, NODE)
        await b.sync(m, m.keys(), full=True)
        m2 = build_service_map([web(), other], [
            endpoint_slice("web", pods("pod1", "pod2", "pod3", terminating="pod3"),
                           ports=SLICE_PORTS), slices[1]], NODE)
        assert await b.sync(m2, ["ns1/web"], full=False) == "partial"
        text = b.last_transaction_lines
        assert 0 < text < 40
        assert set(names(lab.connect("client", CLUSTER_IP, PORT, 30))) == {"pod1", "pod2"}
        assert set(names(lab.connect("client", "10.43.0.11", PORT, 5))) == {"pod2"}
        chains = sh("ip", "netns", "exec", lab.node, "iptables-save", "-t", "nat").stdout
        assert chains.count(":NAVIO-SEP-") == 3        # pod3's chain is gone
    finally:
        await b.cleanup()
