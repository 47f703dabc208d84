"""host-gw routes (issue 16): which pod CIDRs an agent routes to which node."""

from __future__ import annotations

from typing import Any

from navio.kubelet.routes import desired_routes, reachable


def node(name: str, cidrs: list[str] | None, ip: str | None) -> dict[str, Any]:
    addrs = [{"type": "Hostname", "address": name}]
    if ip:
        addrs.append({"type": "InternalIP", "address": ip})
    spec = {"podCIDR": cidrs[0], "podCIDRs": cidrs} if cidrs else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addrs}}


def test_every_other_node_with_a_range_and_an_address_is_routed() -> None:
    nodes = [node("me", ["10.42.0.0/24"], "10.99.0.1"),
             node("b", ["10.42.1.0/24"], "10.99.0.2"),
             node("c", ["10.42.2.0/24", "fd00::/64"], "10.99.0.3"),
             node("no-cidr", None, "10.99.0.4"),
             node("no-ip", ["10.42.5.0/24"], None)]
    assert desired_routes(nodes, "me") == {"10.42.1.0/24": "10.99.0.2",
                                           "10.42.2.0/24": "10.99.0.3"}


def test_an_ipv6_internal_ip_is_not_a_gateway_and_bad_ranges_are_skipped() -> None:
    nodes = [node("b", ["10.42.1.0/24"], "fd00::2"), node("c", ["junk"], "10.99.0.3")]
    assert desired_routes(nodes, "me") == {}


def test_own_range_loopback_and_own_address_are_never_routed() -> None:
    nodes = [node("sim", ["10.42.7.0/24"], "127.0.0.1"),
             node("twin", ["10.42.0.0/23"], "10.99.0.5"),
             node("same-ip", ["10.42.8.0/24"], "10.99.0.1"),
             node("ok", ["10.42.9.0/24"], "10.99.0.9")]
    assert desired_routes(nodes, "me", local_cidr="10.42.0.0/24", local_ip="10.99.0.1") == {
        "10.42.9.0/24": "10.99.0.9"}


def test_a_node_found_silent_is_not_reachable_until_it_reports_again() -> None:
    def with_ready(status: str | None) -> dict[str, Any]:
        n = node("b", ["10.42.1.0/24"], "192.168.1.2")
        if status is not None:
            n["status"]["conditions"] = [{"type": "Ready", "status": status}]
        return n
    assert reachable(with_ready(None)), "not reported yet: keep its routes"
    assert reachable(with_ready("True")) and reachable(with_ready("False"))
    assert not reachable(with_ready("Unknown")), "lifecycle found it silent: withdraw"
