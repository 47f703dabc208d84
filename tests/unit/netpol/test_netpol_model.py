"""NetworkPolicy semantics (navio/netpol/model.py): Kubernetes' table, case by case."""

from __future__ import annotations

from typing import Any

from navio.netpol.model import ANY, Allow, Peer, PodPolicy, PortRange, compute
from navio.netpol.nftables import render


def pod(ns: str, name: str, ip: str, labels: dict[str, str] | None = None,
        ports: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}]},
            "status": {"podIP": ip, "phase": "Running", **status}}


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name,
                         "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def policy(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


SRV = pod("a", "srv", "10.244.0.2", {"app": "srv"}, [{"name": "http", "containerPort": 8080}])
CLI = pod("a", "cli", "10.244.0.3", {"role": "client"})
OTHER = pod("a", "other", "10.244.0.4", {"role": "other"})
B_CLI = pod("b", "bcli", "10.244.0.5", {"role": "client"})
PODS = [SRV, CLI, OTHER, B_CLI]
NSS = [ns("a"), ns("b", team="blue")]


def only(pols: list[dict[str, Any]], target: dict[str, Any] = SRV) -> PodPolicy:
    (pp,) = compute([target], PODS, NSS, pols)
    return pp


def h(ip: str) -> Peer:
    return Peer(f"{ip}/32")


def test_a_pod_selected_by_no_policy_allows_everything() -> None:
    pp = only([policy("a", "p", podSelector={"matchLabels": {"app": "nope"}})])
    assert pp.ingress is None and pp.egress is None
    # a policy in another namespace never selects this pod
    assert only([policy("b", "deny")]).ingress is None


def test_default_deny_ingress_isolates_ingress_only() -> None:
    pp = only([policy("a", "deny", policyTypes=["Ingress"])])
    assert pp.ingress == () and pp.egress is None


def test_policy_types_default_from_rules() -> None:
    pp = only([policy("a", "p", egress=[{}])])          # no policyTypes: Ingress + Egress
    assert pp.ingress == () and pp.egress == (Allow((ANY,)),)
    pp = only([policy("a", "p", policyTypes=["Egress"])])
    assert pp.ingress is None and pp.egress == ()


def test_pod_selector_peer_is_same_namespace_only() -> None:
    pp = only([policy("a", "p", ingress=[{"from": [
        {"podSelector": {"matchLabels": {"role": "client"}}}]}])])
    assert pp.ingress == (Allow((h("10.244.0.3"),)),)


def test_namespace_selector_and_combined_peer() -> None:
    pp = only([policy("a", "p", ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}])])
    assert pp.ingress == (Allow((h("10.244.0.5"),)),)
    pp = only([policy("a", "p", ingress=[{"from": [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}])])
    assert pp.ingress == (Allow((h("10.244.0.3"), h("10.244.0.5"))),)
    pp = only([policy("a", "p", ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "blue"}},
         "podSelector": {"matchLabels": {"role": "other"}}}]}])])
    assert pp.ingress == ()                              # matches no pod: allows nothing


def test_rules_of_several_policies_add_up() -> None:
    pp = only([policy("a", "deny"),
               policy("a", "cli", ingress=[{"from": [{"podSelector": {"matchLabels": {
                   "role": "client"}}}]}]),
               policy("a", "port", ingress=[{"ports": [{"port": 9000, "protocol": "UDP"}]}])])
    assert pp.ingress == (Allow((h("10.244.0.3"),)),
                          Allow((ANY,), (PortRange("UDP", 9000, 9000),)))


def test_ip_block_with_except() -> None:
    pp = only([policy("a", "p", ingress=[{"from": [
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}])])
    assert pp.ingress == (Allow((Peer("10.0.0.0/8", ("10.1.0.0/16",)),)),)
    script = render([pp])
    assert "ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } accept" in script


def test_numbered_named_ranges_and_protocols() -> None:
    pp = only([policy("a", "p", ingress=[{"ports": [
        {"port": "http"}, {"port": 80, "endPort": 90, "protocol": "UDP"},
        {"protocol": "SCTP"}, {"port": "missing"}]}])])
    assert pp.ingress == (Allow((ANY,), (PortRange("TCP", 8080, 8080), PortRange("UDP", 80, 90),
                                         PortRange("SCTP"))),)
    script = render([pp])
    assert "meta l4proto tcp th dport { 8080 } accept" in script
    assert "meta l4proto udp th dport { 80-90 } accept" in script
    assert "meta l4proto sctp accept" in script


def test_named_port_the_destination_lacks_matches_nothing() -> None:
    pp = only([policy("a", "p", ingress=[{"ports": [{"port": "http", "protocol": "UDP"}]}])])
    assert pp.ingress == ()


def test_egress_named_port_resolves_against_each_destination_pod() -> None:
    pp = only([policy("a", "p", policyTypes=["Egress"], egress=[{"ports": [{"port": "http"}]}])],
              target=CLI)
    assert pp.egress == (Allow((h("10.244.0.2"),), (PortRange("TCP", 8080, 8080),)),)
    pp = only([policy("a", "p", policyTypes=["Egress"], egress=[{
        "to": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": ["10.244.0.2/32"]}}],
        "ports": [{"port": "http"}]}])], target=CLI)
    assert pp.egress == ()


def test_host_network_finished_and_unassigned_pods_are_no_peers() -> None:
    gone = pod("a", "done", "10.244.0.9", {"role": "client"}, phase="Succeeded")
    host = pod("a", "host", "10.0.0.1", {"role": "client"})
    host["spec"]["hostNetwork"] = True
    pending = pod("a", "pend", "", {"role": "client"})
    pp = compute([SRV], PODS + [gone, host, pending], NSS, [policy("a", "p", ingress=[{
        "from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}])])[0]
    assert pp.ingress == (Allow((h("10.244.0.3"),)),)
    assert compute([pending], [pending], NSS, []) == []


def test_render_chains_and_vmaps() -> None:
    pp = only([policy("a", "p", policyTypes=["Ingress", "Egress"], ingress=[{"from": [
        {"podSelector": {}}]}], egress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])])
    script = render([pp])
    assert script.startswith("add table inet navio-netpol\ndelete table inet navio-netpol\n")
    assert "ct state established,related accept" in script
    assert "ip saddr vmap { 10.244.0.2 : jump eg-10-244-0-2 }" in script
    assert "ip daddr vmap { 10.244.0.2 : jump in-10-244-0-2 }" in script
    # pods .2-.4 merge into one set; the egress rule returns to the ingress check
    assert "elements = { 10.244.0.2/31, 10.244.0.4/32 }" in script
    assert "ip saddr @peers-0 accept" in script
    assert "meta l4proto udp th dport { 53 } return" in script
    # a pod cannot block its own traffic (to itself through its Service)
    assert "chain in-10-244-0-2 {\n\t\tip saddr 10.244.0.2 accept\n" in script
    assert "chain eg-10-244-0-2 {\n\t\tip daddr 10.244.0.2 return\n" in script
    assert render([only([])]).count("vmap") == 0


def test_chains_of_many_pods_share_one_named_set_per_peer_group() -> None:
    pols = [policy("a", "p", ingress=[{"from": [{"podSelector": {"matchLabels": {
        "role": "client"}}}]}])]
    script = render(compute([SRV, CLI, OTHER], PODS, NSS, pols))
    assert script.count("set peers-") == 1 and script.count("ip saddr @peers-0 accept") == 3


def test_every_kind_of_pod_selector_selects_in_policy_order() -> None:
    """Policies are matched through an index on one matchLabels pair; those without
    matchLabels, and multi-label ones, must select exactly as a selector check would."""
    def allow_from(ip: str) -> dict[str, Any]:
        return {"from": [{"ipBlock": {"cidr": f"{ip}/32"}}]}
    pols = [
        policy("a", "p1", podSelector={"matchLabels": {"app": "srv", "tier": "x"}},
               ingress=[allow_from("192.0.2.1")]),                    # needs both labels
        policy("a", "p2", podSelector={"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["srv"]}]},
               ingress=[allow_from("192.0.2.2")]),
        policy("a", "p3", podSelector={"matchLabels": {"app": "srv"}},
               ingress=[allow_from("192.0.2.3")]),
        policy("a", "p4", ingress=[allow_from("192.0.2.4")]),        # empty: every pod
        policy("a", "p5", podSelector={"matchLabels": {"app": "srv"}, "matchExpressions": [
            {"key": "missing", "operator": "Exists"}]}, ingress=[allow_from("192.0.2.5")]),
    ]
    got = [a.peers[0].cidr for a in only(pols).ingress or ()]
    assert got == ["192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32"]
    tiered = pod("a", "t", "10.244.0.9", {"app": "srv", "tier": "x"})
    (pp,) = compute([tiered], [*PODS, tiered], NSS, pols)
    assert [a.peers[0].cidr for a in pp.ingress or ()] == [
        "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32"]
