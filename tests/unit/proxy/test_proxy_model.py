"""Services + EndpointSlices → service ports and targets, as kube-proxy derives them (issue 8)."""

from __future__ import annotations

import pytest
from proxy_objects import endpoint, endpoint_slice, service

from navio.proxy.model import (DEFAULT_AFFINITY_TIMEOUT, Endpoint, build_service, build_service_map,
                               categorize, slice_endpoints)

NODE = "n1"


def ips(eps: tuple[Endpoint, ...]) -> list[str]:
    return [e.ip for e in eps]


def one_port(svc, slices):
    ports = build_service(svc, slices, NODE)
    assert len(ports) == 1
    return ports[0]


@pytest.mark.parametrize("svc", [
    service("headless", "None"),
    service("unallocated", ""),
    service("external-name", "", type_="ExternalName", externalName="example.com"),
    service("ipv6-only", "fd00::10"),
], ids=["headless services get no rules", "services without a cluster IP get no rules",
        "ExternalName services get no rules", "IPv6-only services get no rules"])
def test_services_without_an_ipv4_cluster_ip_are_skipped(svc):
    assert build_service(svc, [], NODE) == ()


@pytest.mark.parametrize("conditions, expected", [
    ({"ready": True}, ["10.42.0.1"]),
    ({"ready": None}, ["10.42.0.1"]),
    ({"ready": False}, []),
    ({"ready": True, "serving": False, "terminating": True}, []),
    ({"ready": False, "serving": True, "terminating": True}, ["10.42.0.1"]),
    ({"ready": False, "serving": False, "terminating": True}, []),
], ids=["a ready endpoint is a target", "unset ready means ready",
        "a not-ready endpoint is not a target",
        "a terminating endpoint stops being a target even if it claims ready",
        "with nothing ready a serving terminating endpoint is the fallback",
        "a terminating endpoint that no longer serves is never a target"])
def test_readiness_decides_targets(conditions, expected):
    sp = one_port(service("web"), [endpoint_slice("web", [endpoint("10.42.0.1", **conditions)])])
    assert ips(sp.cluster_endpoints) == expected
    assert sp.has_endpoints == bool(expected)


@pytest.mark.parametrize("ready", [False, True], ids=["not ready", "claiming ready"])
def test_terminating_endpoints_are_ignored_while_any_endpoint_is_ready(ready):
    sp = one_port(service("web"), [endpoint_slice("web", [
        endpoint("10.42.0.1", ready=ready, serving=True, terminating=True),
        endpoint("10.42.0.2")])])
    assert ips(sp.cluster_endpoints) == ["10.42.0.2"]


def test_endpoints_are_matched_by_port_name_and_protocol():
    svc = service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    sl = endpoint_slice("dns", [endpoint("10.42.0.1")],
                        ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}])
    udp, tcp = build_service(svc, [sl], NODE)
    assert (udp.protocol, udp.port, [str(e) for e in udp.cluster_endpoints]) == \
        ("UDP", 53, ["10.42.0.1:5353"])
    assert (tcp.protocol, tcp.port, [str(e) for e in tcp.cluster_endpoints]) == \
        ("TCP", 53, ["10.42.0.1:5354"])


def test_endpoints_are_deduplicated_across_slices_and_sorted_like_kube_proxy():
    slices = [endpoint_slice("web", [endpoint("10.42.0.10"), endpoint("10.42.0.2")], name="a"),
              endpoint_slice("web", [endpoint("10.42.0.2", node=NODE)], name="b")]
    eps = slice_endpoints(slices, "http", "TCP", NODE)
    assert [str(e) for e in eps] == ["10.42.0.10:8080", "10.42.0.2:8080"]
    assert [e.local for e in eps] == [False, True]     # the local copy wins


def test_slices_of_other_address_types_and_ports_without_numbers_are_ignored():
    slices = [endpoint_slice("web", [endpoint("fd00::1")], address_type="IPv6"),
              endpoint_slice("web", [endpoint("10.42.0.1")], name="b",
                             ports=[{"name": "http", "protocol": "TCP"}])]
    assert slice_endpoints(slices, "http", "TCP", NODE) == []


def test_client_ip_affinity_defaults_to_three_hours():
    sp = one_port(service("web", sessionAffinity="ClientIP"), [])
    assert sp.affinity_timeout == DEFAULT_AFFINITY_TIMEOUT == 10800
    sp = one_port(service("web", sessionAffinity="ClientIP",
                          sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}), [])
    assert sp.affinity_timeout == 60
    assert one_port(service("web", sessionAffinity="None"), []).affinity_timeout == 0


def test_node_port_external_ips_and_load_balancer_ips_are_carried():
    svc = service("web", type_="LoadBalancer", externalIPs=["192.0.2.1", "2001:db8::1"],
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"},
                                                  {"ip": "192.0.2.10", "ipMode": "Proxy"}]}}
    sp = one_port(svc, [])
    assert (sp.node_port, sp.external_ips, sp.load_balancer_ips) == \
        (30080, ("192.0.2.1",), ("192.0.2.9",))
    assert sp.externally_accessible


LOCAL_AND_REMOTE = [endpoint("10.42.0.1", node=NODE), endpoint("10.42.1.1", node="n2")]


@pytest.mark.parametrize("spec, internal, external", [
    ({}, ["10.42.0.1", "10.42.1.1"], ["10.42.0.1", "10.42.1.1"]),
    ({"internalTrafficPolicy": "Local"}, ["10.42.0.1"], ["10.42.0.1", "10.42.1.1"]),
    ({"externalTrafficPolicy": "Local"}, ["10.42.0.1", "10.42.1.1"], ["10.42.0.1"]),
], ids=["Cluster policies use every endpoint",
        "internalTrafficPolicy Local keeps cluster-IP traffic on this node",
        "externalTrafficPolicy Local keeps NodePort traffic on this node"])
def test_traffic_policies_choose_targets(spec, internal, external):
    svc = service("web", type_="NodePort",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}], **spec)
    sp = one_port(svc, [endpoint_slice("web", LOCAL_AND_REMOTE)])
    assert ips(sp.internal_endpoints) == internal
    assert ips(sp.external_endpoints) == external
    assert ips(sp.reachable_endpoints) == ["10.42.0.1", "10.42.1.1"]


def test_external_policy_local_only_applies_to_externally_reachable_services():
    sp = one_port(service("web", externalTrafficPolicy="Local"),
                  [endpoint_slice("web", LOCAL_AND_REMOTE)])
    assert not sp.external_policy_local


def test_local_policy_without_local_endpoints_has_no_targets_but_the_service_has_endpoints():
    sp = one_port(service("web", internalTrafficPolicy="Local"),
                  [endpoint_slice("web", [endpoint("10.42.1.1", node="n2")])])
    assert sp.internal_endpoints == () and sp.has_endpoints


def test_local_policy_falls_back_to_local_serving_terminating_endpoints():
    eps = [Endpoint("10.42.0.1", 80, NODE, ready=False, serving=True, terminating=True,
                    local=True), Endpoint("10.42.1.1", 80, "n2", local=False)]
    cluster, local, has_any = categorize(eps, uses_cluster=True, uses_local=True)
    assert ips(cluster) == ["10.42.1.1"] and ips(local) == ["10.42.0.1"] and has_any


def test_service_map_groups_slices_by_service_label_and_drops_empty_services():
    services = [service("a", "10.43.0.1"), service("b", "10.43.0.2"), service("h", "None")]
    slices = [endpoint_slice("a", [endpoint("10.42.0.1")]),
              endpoint_slice("b", [endpoint("10.42.0.2")]),
              endpoint_slice("b", [endpoint("10.42.0.3")], ns="other")]
    m = build_service_map(services, slices, NODE)
    assert sorted(m) == ["ns1/a", "ns1/b"]
    assert ips(m["ns1/b"][0].cluster_endpoints) == ["10.42.0.2"]


def test_equal_inputs_give_equal_values():
    args = ([service("a")], [endpoint_slice("a", [endpoint("10.42.0.1")])], NODE)
    assert build_service_map(*args) == build_service_map(*args)
    assert str(build_service_map(*args)["ns1/a"][0]) == "ns1/a:http"
