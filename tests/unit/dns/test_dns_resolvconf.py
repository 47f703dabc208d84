"""A pod's resolv.conf as the kubelet makes it: each dnsPolicy, dnsConfig merging, limits
(issue 8)."""

from __future__ import annotations

from typing import Any

import pytest

from navio.dns.resolvconf import ResolvConf, parse_resolv_conf, pod_dns, pod_resolv_conf

HOST = parse_resolv_conf("""\
# written by the host
nameserver 10.255.255.53
nameserver 10.255.255.54
search corp.example. lab.example
options timeout:2 attempts:3
""")
CLUSTER_DNS = ("10.43.0.10",)


def make_pod(policy: str | None = None, *, host_network: bool = False,
             dns_config: dict[str, Any] | None = None, ns: str = "team") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if policy is not None:
        spec["dnsPolicy"] = policy
    if host_network:
        spec["hostNetwork"] = True
    if dns_config is not None:
        spec["dnsConfig"] = dns_config
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def dns_of(pod: dict[str, Any], **kw: Any) -> ResolvConf:
    kw.setdefault("cluster_dns", CLUSTER_DNS)
    kw.setdefault("cluster_domain", "cluster.local")
    kw.setdefault("host", HOST)
    return pod_dns(pod, **kw).config


def test_host_file_parses_like_the_kubelet():
    text = "nameserver 1.1.1.1\nsearch a.example\n  # comment\nsearch b.example. c\n" \
           "nameserver 8.8.8.8\noptions ndots:2\noptions edns0\nnameserver\n"
    assert parse_resolv_conf(text) == ResolvConf(("1.1.1.1", "8.8.8.8"), ("b.example", "c"),
                                                 ("edns0",))


def test_cluster_first_uses_the_cluster_dns_and_the_namespace_search_path():
    assert dns_of(make_pod("ClusterFirst")) == ResolvConf(
        ("10.43.0.10",),
        ("team.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
         "lab.example"),
        ("ndots:5",))


def test_cluster_first_is_the_default_policy():
    assert dns_of(make_pod()) == dns_of(make_pod("ClusterFirst"))


def test_cluster_first_renders_the_expected_file():
    assert pod_resolv_conf(make_pod(), cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local",
                           host=parse_resolv_conf("nameserver 10.255.255.53\n")) == (
        "search team.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.43.0.10\n"
        "options ndots:5\n")


def test_cluster_first_drops_host_search_domains_that_repeat_the_cluster_ones():
    host = parse_resolv_conf("nameserver 1.1.1.1\nsearch cluster.local corp.example\n")
    assert dns_of(make_pod(), host=host).searches == (
        "team.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example")


@pytest.mark.parametrize("policy, host_network, expect_cluster", [
    ("ClusterFirst", False, True),
    ("ClusterFirst", True, False),
    ("ClusterFirstWithHostNet", True, True),
    ("ClusterFirstWithHostNet", False, True),
    ("Default", False, False),
    ("Default", True, False),
], ids=lambda v: str(v))
def test_which_policies_get_the_cluster_dns(policy, host_network, expect_cluster):
    got = dns_of(make_pod(policy, host_network=host_network))
    assert (got.nameservers == CLUSTER_DNS) is expect_cluster
    if not expect_cluster:
        assert got == HOST


def test_default_without_a_host_file_uses_the_local_nameserver():
    assert dns_of(make_pod("Default"), host=None) == ResolvConf(("127.0.0.1",), (".",), ())
    assert dns_of(make_pod("Default"), host=None, node_ips=("fd00::1",)).nameservers == (
        "::1",)


def test_cluster_first_without_a_host_file_has_only_the_cluster_search_path():
    assert dns_of(make_pod(), host=None).searches == (
        "team.svc.cluster.local", "svc.cluster.local", "cluster.local")


def test_cluster_first_without_cluster_dns_falls_back_to_default_with_a_warning():
    result = pod_dns(make_pod(), cluster_dns=(), cluster_domain="cluster.local", host=HOST)
    assert result.config == HOST
    assert [reason for reason, _ in result.events] == ["MissingClusterDNS"]


def test_none_policy_uses_only_the_pods_dns_config():
    got = dns_of(make_pod("None", dns_config={
        "nameservers": ["192.0.2.1"], "searches": ["my.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    assert got == ResolvConf(("192.0.2.1",), ("my.example",), ("ndots:2", "edns0"))


def test_none_policy_without_dns_config_is_empty():
    assert dns_of(make_pod("None")) == ResolvConf()


def test_dns_config_is_appended_to_cluster_first_and_its_options_win():
    got = dns_of(make_pod(dns_config={
        "nameservers": ["192.0.2.1", "10.43.0.10"],
        "searches": ["extra.example", "svc.cluster.local"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}))
    assert got.nameservers == ("10.43.0.10", "192.0.2.1")
    assert got.searches[-1] == "extra.example" and got.searches.count("svc.cluster.local") == 1
    assert got.options == ("ndots:1", "single-request-reopen")


def test_dns_config_options_merge_with_the_host_options_under_default():
    got = dns_of(make_pod("Default", dns_config={"options": [{"name": "timeout", "value": "5"},
                                                            {"name": "rotate"}]}))
    assert got.options == ("timeout:5", "attempts:3", "rotate")


def test_more_than_three_nameservers_are_cut_with_a_warning():
    result = pod_dns(make_pod("None", dns_config={
        "nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]}),
        cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local", host=HOST)
    assert result.config.nameservers == ("192.0.2.1", "192.0.2.2", "192.0.2.3")
    assert [reason for reason, _ in result.events] == ["DNSConfigForming"]


def test_more_than_32_search_domains_are_cut_with_a_warning():
    searches = [f"d{i}.example" for i in range(40)]
    result = pod_dns(make_pod("None", dns_config={"searches": searches}),
                     cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local", host=HOST)
    assert result.config.searches == tuple(searches[:32])
    assert [reason for reason, _ in result.events] == ["DNSConfigForming"]


def test_a_search_domain_longer_than_253_characters_is_dropped():
    long = ".".join(["a" * 60] * 5)      # 304 characters
    result = pod_dns(make_pod("None", dns_config={"searches": ["ok.example", long]}),
                     cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local", host=HOST)
    assert result.config.searches == ("ok.example",) and result.events


def test_a_search_line_longer_than_2048_characters_loses_domains_from_the_end():
    searches = [f"{i:02d}" + "x" * 98 + ".example" for i in range(25)]   # 108 chars each
    result = pod_dns(make_pod("None", dns_config={"searches": searches}),
                     cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local", host=HOST)
    kept = result.config.searches
    assert len(" ".join(kept)) <= 2048 and kept == tuple(searches[:len(kept)])
    assert len(kept) == 18 and result.events       # 18 × 108 + 17 = 1961; 19 would be 2071


def test_within_limits_there_are_no_events():
    assert pod_dns(make_pod(), cluster_dns=CLUSTER_DNS, cluster_domain="cluster.local",
                   host=HOST).events == ()
