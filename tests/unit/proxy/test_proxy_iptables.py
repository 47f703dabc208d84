"""The iptables fallback's rules, without a kernel (the kernel tests run every scenario of
test_proxy_kernel.py with it too)."""

from __future__ import annotations

import os
from pathlib import Path

from proxy_objects import endpoint, endpoint_slice, service

from navio.proxy.config import ProxyConfig, select_mode
from navio.proxy.iptables import render_service, restore_input
from navio.proxy.model import build_service_map
from navio.proxy.nftables import RuleOptions

OPTS = RuleOptions(cluster_cidr="10.42.0.0/16")


def ports(n: int, **kw):
    svc = service("web", "10.43.0.10", **kw)
    eps = [endpoint(f"10.42.0.{i + 1}") for i in range(n)]
    return build_service_map([svc], [endpoint_slice("web", eps)], "n1")["ns1/web"]


def test_endpoints_are_chosen_with_equal_probability():
    frag = render_service(ports(4), OPTS)
    (svc_chain,) = [c for c in frag.chains if c.startswith("NAVIO-SVC-")]
    rules = frag.chains[svc_chain]
    assert "! -s 10.42.0.0/16 -d 10.43.0.10/32" in rules[0] and "NAVIO-MARK-MASQ" in rules[0]
    probs = [r.split("--probability ")[1].split()[0] for r in rules[1:] if "statistic" in r]
    assert probs == ["0.2500000000", "0.3333333333", "0.5000000000"]
    assert "statistic" not in rules[-1]          # the last endpoint takes the rest
    seps = [c for c in frag.chains if c.startswith("NAVIO-SEP-")]
    assert len(seps) == 4 and all(len(c) <= 28 for c in frag.chains)
    assert any("-j DNAT --to-destination 10.42.0.1:8080" in r
               for c in seps for r in frag.chains[c])


def test_client_ip_affinity_uses_recent_lists():
    frag = render_service(ports(2, sessionAffinity="ClientIP"), OPTS)
    text = "\n".join(r for rules in frag.chains.values() for r in rules)
    assert text.count("--rcheck --seconds 10800 --reap") == 2
    assert text.count("-m recent --name NAVIO-SEP-") == 4      # 2 checks + 2 sets


def test_a_service_without_endpoints_is_rejected_in_the_filter_table():
    frag = render_service(ports(0), OPTS)
    assert frag.chains == {} and frag.services == ()
    assert any("-d 10.43.0.10/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset"
               in r for r in frag.rejects)


def test_partial_input_rewrites_changed_chains_and_deletes_stale_ones():
    old = render_service(ports(3), OPTS)
    new = render_service(ports(2), OPTS)
    gone = set(old.chains) - set(new.chains)
    assert len(gone) == 1
    text = restore_input({"ns1/web": new}, ["ns1/web"], set(old.chains), OPTS)
    (stale,) = gone
    assert f":{stale} - [0:0]" in text and f"-X {stale}" in text
    assert text.index(f":{stale}") < text.index(f"-X {stale}")
    # an unchanged service's chains are not declared (so not flushed) in a partial input
    untouched = restore_input({"ns1/web": new}, [], set(new.chains), OPTS)
    assert not any(f":{c} " in untouched for c in new.chains)
    assert "-A NAVIO-SERVICES" in untouched          # the shared chain is always rewritten


def test_auto_mode_falls_back_to_iptables_where_nft_is_missing(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cfg = ProxyConfig(kubeconfig=Path("/x"), node_name="n1")
    assert select_mode(cfg, which=lambda b: None if b == "nft" else f"/usr/sbin/{b}") \
        == "iptables"
    assert select_mode(cfg, which=lambda b: None) == "userspace"
