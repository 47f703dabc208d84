"""nftables rules and deltas: the text itself, and what the kernel makes of it (issue 8)."""

from __future__ import annotations

import random

import pytest
from proxy_netlab import add_netns, delete_netns, nft_canonical, sh, unique
from proxy_objects import endpoint, endpoint_slice, service

from navio.proxy.model import build_service_map
from navio.proxy.nftables import (RuleOptions, cleanup_transaction, delta_transaction,
                                  full_transaction, render_service)
from navio.proxy.nftables_backend import NftablesBackend, NftError, NftRunner, live_table

NODE = "n1"
OPTS = RuleOptions(cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16")
THREE = [endpoint("10.42.0.1", node=NODE), endpoint("10.42.1.1"), endpoint("10.42.2.1")]


def fragment(svc, eps, opts=OPTS, **kw):
    m = build_service_map([svc], [endpoint_slice(svc["metadata"]["name"], eps, **kw)], NODE)
    return render_service(m[f"ns1/{svc['metadata']['name']}"], opts)


def text(frag, opts=OPTS) -> str:
    return full_transaction([frag], opts)


def test_chain_names_are_kube_proxys():
    frag = fragment(service("svc1", ports=[{"name": "p80", "port": 80}]),
                    [endpoint("10.180.0.1")], ports=[{"name": "p80", "port": 80}])
    assert set(frag.chains) == {"service-ULMVA6XW-ns1/svc1/tcp/p80",
                                "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"}


def test_full_load_replaces_the_table_with_numeric_priorities():
    t = text(fragment(service("web"), THREE))
    lines = t.splitlines()
    assert lines[:2] == ["add table ip navio-proxy", "delete table ip navio-proxy"]
    assert ("add chain ip navio-proxy nat-output { type nat hook output priority -100 ; "
            "policy accept ; }") in lines
    assert "dstnat" not in t and "srcnat" not in t
    assert "add rule ip navio-proxy services ip daddr . meta l4proto . th dport vmap " \
           "@service-ips" in lines
    assert "add rule ip navio-proxy masquerading masquerade fully-random" in lines


def test_cluster_ip_picks_an_endpoint_at_random_with_equal_probability():
    frag = fragment(service("web"), THREE)
    svc_chain = next(c for c in frag.chains if c.startswith("service-"))
    assert frag.elements[("service-ips", "10.43.0.10 . tcp . 80")] == (f"goto {svc_chain}", "")
    rules = frag.chains[svc_chain]
    assert rules[0] == ("ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 "
                        "jump mark-for-masquerade")
    assert rules[1].startswith("numgen random mod 3 vmap { 0 : goto endpoint-")
    assert rules[1].count("goto endpoint-") == 3
    ep_chain = next(c for c in frag.chains if c.endswith("__10.42.1.1/8080"))
    assert frag.chains[ep_chain] == ("ip saddr 10.42.1.1 jump mark-for-masquerade",
                                     "meta l4proto tcp dnat to 10.42.1.1:8080")


def test_masquerade_all_marks_every_cluster_ip_connection():
    opts = RuleOptions(masquerade_all=True)
    frag = fragment(service("web"), THREE, opts)
    svc_chain = next(c for c in frag.chains if c.startswith("service-"))
    assert frag.chains[svc_chain][0] == "ip daddr 10.43.0.10 tcp dport 80 jump mark-for-masquerade"


def test_client_ip_affinity_uses_timeout_sets_like_kube_proxy():
    frag = fragment(service("web", sessionAffinity="ClientIP",
                            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}}), THREE)
    assert len(frag.sets) == 3 and set(frag.sets.values()) == {30}
    svc_chain = next(c for c in frag.chains if c.startswith("service-"))
    affinity = [r for r in frag.chains[svc_chain] if r.startswith("ip saddr @affinity-")]
    assert len(affinity) == 3 and all(" goto endpoint-" in r for r in affinity)
    ep_chain = next(c for c in frag.chains if c.startswith("endpoint-"))
    assert frag.chains[ep_chain][1] == f"update @affinity-{ep_chain[9:]} {{ ip saddr }}"
    assert "flags dynamic,timeout ; timeout 30s ;" in text(frag)


def test_a_service_without_endpoints_is_rejected_not_routed():
    frag = fragment(service("web"), [endpoint("10.42.0.1", ready=False)])
    assert not frag.chains
    assert frag.elements[("no-endpoint-services", "10.43.0.10 . tcp . 80")] == \
        ("goto reject-chain", "ns1/web:http")


def test_internal_policy_local_without_local_endpoints_drops():
    frag = fragment(service("web", internalTrafficPolicy="Local"), [endpoint("10.42.1.1")])
    assert frag.elements[("no-endpoint-services", "10.43.0.10 . tcp . 80")][0] == "drop"
    assert ("service-ips", "10.43.0.10 . tcp . 80") not in frag.elements


def test_node_port_goes_through_the_external_chain_and_is_masqueraded():
    svc = service("web", type_="NodePort", ports=[{"name": "http", "port": 80,
                                                   "nodePort": 30080}])
    frag = fragment(svc, THREE)
    ext = next(c for c in frag.chains if c.startswith("external-"))
    assert frag.elements[("service-nodeports", "tcp . 30080")] == (f"goto {ext}", "")
    assert frag.chains[ext][0] == "jump mark-for-masquerade"
    assert frag.chains[ext][1].startswith("goto service-")


def test_external_policy_local_short_circuits_pod_and_node_traffic():
    svc = service("web", type_="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    frag = fragment(svc, THREE)
    ext = next(c for c in frag.chains if c.startswith("external-"))
    rules = frag.chains[ext]
    assert rules[0].startswith("ip saddr 10.42.0.0/16 goto service-")
    assert rules[-1].startswith("goto local-")
    local = next(c for c in frag.chains if c.startswith("local-"))
    assert "mod 1 vmap" in frag.chains[local][-1] and "10.42.0.1/8080" in frag.chains[local][-1]


def test_delta_touches_only_what_changed():
    before = fragment(service("web"), THREE)
    after = fragment(service("web"), THREE[:2])
    delta = delta_transaction([(before, after)])
    svc_chain = next(c for c in before.chains if c.startswith("service-"))
    gone = next(c for c in before.chains if c.endswith("__10.42.2.1/8080"))
    assert delta.splitlines() == [
        f"flush chain ip navio-proxy {svc_chain}",
        f"flush chain ip navio-proxy {gone}",
        f"delete chain ip navio-proxy {gone}",
        *[f"add rule ip navio-proxy {svc_chain} {r}" for r in after.chains[svc_chain]]]
    assert delta_transaction([(after, after)]) == ""
    assert delta_transaction([(after, render_service(*_ports("web", THREE[:2])))]) == ""


def _ports(name, eps):
    m = build_service_map([service(name)], [endpoint_slice(name, eps)], NODE)
    return m[f"ns1/{name}"], OPTS


def test_deleting_a_service_removes_its_elements_and_chains():
    before = fragment(service("web"), THREE)
    delta = delta_transaction([(before, None)])
    assert "delete element ip navio-proxy service-ips { 10.43.0.10 . tcp . 80 }" in delta
    assert "delete element ip navio-proxy cluster-ips { 10.43.0.10 }" in delta
    assert delta.count("delete chain") == 4
    assert "add " not in delta


def test_cleanup_is_safe_when_the_table_is_absent():
    assert cleanup_transaction() == "add table ip navio-proxy\ndelete table ip navio-proxy\n"


# ---- against the kernel, in a throwaway namespace -------------------------------------------

def test_nft_check_accepts_the_full_ruleset_and_changes_nothing(scratch_netns):
    svc = service("web", type_="NodePort", sessionAffinity="ClientIP",
                  externalTrafficPolicy="Local", externalIPs=["192.0.2.1"],
                  ports=[{"name": "http", "port": 80, "nodePort": 30080},
                         {"name": "dns", "port": 53, "protocol": "UDP"}])
    frags = [fragment(svc, THREE, ports=[{"name": "http", "port": 8080},
                                         {"name": "dns", "port": 5353, "protocol": "UDP"}]),
             fragment(service("empty", "10.43.0.11"), [])]
    script = full_transaction(frags, OPTS)
    sh("ip", "netns", "exec", scratch_netns, "nft", "-c", "-f", "-", stdin=script)
    assert sh("ip", "netns", "exec", scratch_netns, "nft", "list", "ruleset").stdout == ""
    sh("ip", "netns", "exec", scratch_netns, "nft", "-f", "-", stdin=script)
    assert "navio-proxy" in sh("ip", "netns", "exec", scratch_netns, "nft", "list",
                               "tables").stdout


def _random_world(rng: random.Random, n: int) -> tuple[list, list]:
    services, slices = [], []
    for i in range(n):
        kind = rng.choice(["ClusterIP", "NodePort"])
        spec = {}
        if rng.random() < 0.4:
            spec["sessionAffinity"] = "ClientIP"
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": rng.choice([10, 60])}}
        if kind == "NodePort" and rng.random() < 0.5:
            spec["externalTrafficPolicy"] = "Local"
        if rng.random() < 0.2:
            spec["internalTrafficPolicy"] = "Local"
        port = {"name": "http", "port": 80}
        if kind == "NodePort":
            port["nodePort"] = 30000 + i
        services.append(service(f"s{i}", f"10.43.0.{i + 1}", type_=kind, ports=[port], **spec))
        eps = [endpoint(f"10.42.{rng.randrange(3)}.{j}", node=rng.choice([NODE, "n2"]),
                        ready=rng.random() < 0.8, terminating=rng.random() < 0.2)
               for j in range(rng.randrange(0, 5))]
        slices.append(endpoint_slice(f"s{i}", eps))
    return services, slices


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_applying_deltas_gives_the_same_table_as_a_full_load(seed, scratch_netns):
    """Every delta, applied in the kernel, leaves exactly what a full load of the new
    state would (rules per chain, elements, sets)."""
    rng = random.Random(seed)
    reference = unique("ref")
    add_netns(reference)
    try:
        incremental = NftablesBackend(OPTS, NftRunner(scratch_netns))
        full = NftablesBackend(OPTS, NftRunner(reference))
        services, slices = _random_world(rng, 8)
        current = build_service_map(services, slices, NODE)
        assert await incremental.sync(current, current.keys(), full=True) == "full"
        for _ in range(6):
            services, slices = _random_world(rng, rng.randrange(4, 10))
            new = build_service_map(services, slices, NODE)
            changed = set(new) | set(current)
            assert await incremental.sync(new, changed, full=False) == "partial"
            await full.sync(new, new.keys(), full=True)
            assert nft_canonical(scratch_netns) == nft_canonical(reference)
            current = new
    finally:
        delete_netns(reference)


async def test_cleanup_removes_the_table(scratch_netns):
    backend = NftablesBackend(OPTS, NftRunner(scratch_netns))
    m = build_service_map([service("web")], [endpoint_slice("web", THREE)], NODE)
    await backend.sync(m, m.keys(), full=True)
    assert await backend.healthy()
    await backend.cleanup()
    await backend.cleanup()
    assert sh("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout == ""
    assert not await backend.healthy()


async def test_a_failed_delta_falls_back_to_a_full_load(scratch_netns):
    backend = NftablesBackend(OPTS, NftRunner(scratch_netns))
    m = build_service_map([service("web")], [endpoint_slice("web", THREE)], NODE)
    await backend.sync(m, m.keys(), full=True)
    sh("ip", "netns", "exec", scratch_netns, "nft", "delete", "table", "ip",
       "navio-proxy")                                    # someone removed the table
    m2 = build_service_map([service("web")], [endpoint_slice("web", THREE[:1])], NODE)
    assert await backend.sync(m2, m2.keys(), full=False) == "full"
    listed = sh("ip", "netns", "exec", scratch_netns, "nft", "list", "map", "ip",
                "navio-proxy", "service-ips").stdout
    assert "10.43.0.10 . tcp . 80" in listed


def test_node_port_addresses_limit_node_ports_to_those_ips():
    opts = RuleOptions(nodeport_addresses=("192.0.2.7", "192.0.2.8"))
    lines = full_transaction([], opts).splitlines()
    assert "add element ip navio-proxy nodeport-ips { 192.0.2.7, 192.0.2.8 }" in lines
    assert ("add rule ip navio-proxy services ip daddr @nodeport-ips meta l4proto . th dport "
            "vmap @service-nodeports") in lines
    assert not any("fib daddr type local" in line for line in lines
                   if "cluster-ips-check" not in line)


async def test_preflight_refuses_a_missing_namespace_and_live_table_lists_rules(scratch_netns):
    with pytest.raises(NftError):
        await NftablesBackend(OPTS, NftRunner("nvp-does-not-exist")).preflight()
    backend = NftablesBackend(OPTS, NftRunner(scratch_netns))
    await backend.preflight()
    m = build_service_map([service("web")], [endpoint_slice("web", THREE)], NODE)
    await backend.sync(m, m.keys(), full=True)
    listed = await live_table(scratch_netns)
    assert listed.startswith("table ip navio-proxy {") and "10.43.0.10 . tcp . 80" in listed
    await backend.cleanup()
    with pytest.raises(NftError):
        await live_table(scratch_netns)
