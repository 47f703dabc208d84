"""The record set against the Kubernetes DNS specification: every record type, NXDOMAIN vs
NODATA, reverse zones, pod records, and incremental updates (issue 8)."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from dns_fixtures import endpoint, endpoint_slice, headless, namespace, pod, service
from navio.dns.records import RecordSet

NOERROR, NXDOMAIN = dns.rcode.NOERROR, dns.rcode.NXDOMAIN
ZONE = "cluster.local"


def rs(**kw: Any) -> RecordSet:
    kw.setdefault("reverse_cidrs", ("10.43.0.0/16", "10.42.0.0/16", "fd00:43::/112"))
    kw.setdefault("dns_ips", ("10.43.0.10",))
    return RecordSet(ZONE, clock=lambda: 1_700_000_000.0, **kw)


def ask(records: RecordSet, name: str, rdtype: str) -> tuple[int, list[str]]:
    """(rcode, sorted answer rdata texts) for a question; fails when the name is not ours."""
    answer = records.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    assert answer is not None, f"{name} should be answered authoritatively"
    return answer.rcode, sorted(r.to_text() for rrset in answer.answer for r in rrset)


def is_nodata(records: RecordSet, name: str, rdtype: str) -> bool:
    answer = records.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    assert answer is not None
    return answer.rcode == NOERROR and not answer.answer and \
        answer.authority[0].rdtype == dns.rdatatype.SOA


@pytest.fixture
def cluster() -> RecordSet:
    r = rs()
    r.upsert_namespace(namespace("default"))
    r.upsert_namespace(namespace("empty"))
    r.upsert_service(service("web", ip="10.43.0.20", ports=[("http", 80, "TCP"),
                                                              ("", 9090, "TCP"),
                                                              ("dns", 53, "UDP")]))
    r.upsert_service(service("dual", ips=["10.43.0.21", "fd00:43::21"]))
    r.upsert_service(headless("db", ports=[("pg", 5432, "TCP")]))
    r.upsert_endpoint_slice(endpoint_slice("db-abc", "db", [
        endpoint("10.42.0.5", "db-0"), endpoint("10.42.0.6", "db-1"),
        endpoint("10.42.0.7", "db-2", ready=False), endpoint("10.42.0.8", ready=None)],
        ports=[("pg", 5432, "TCP")]))
    r.upsert_service(service("ext", type_="ExternalName", external="www.example.org"))
    return r


# ---- services with a cluster IP (spec 2.3) ----------------------------------------------

def test_cluster_ip_service_has_an_a_record_of_its_cluster_ip(cluster):
    assert ask(cluster, "web.default.svc.cluster.local", "A") == (NOERROR, ["10.43.0.20"])
    answer = cluster.lookup(dns.name.from_text("web.default.svc.cluster.local"),
                            dns.rdatatype.A)
    assert answer.answer[0].ttl == 5


def test_ipv4_service_answers_aaaa_with_nodata_and_soa_whose_minimum_is_the_ttl(cluster):
    assert is_nodata(cluster, "web.default.svc.cluster.local", "AAAA")
    soa = cluster.lookup(dns.name.from_text("web.default.svc.cluster.local"),
                         dns.rdatatype.AAAA).authority[0]
    assert soa.name == dns.name.from_text("cluster.local") and soa[0].minimum == 5


def test_dual_stack_service_has_both_a_and_aaaa(cluster):
    assert ask(cluster, "dual.default.svc.cluster.local", "A") == (NOERROR, ["10.43.0.21"])
    assert ask(cluster, "dual.default.svc.cluster.local", "AAAA") == (NOERROR, ["fd00:43::21"])


def test_named_ports_get_srv_records_pointing_at_the_service(cluster):
    assert ask(cluster, "_http._tcp.web.default.svc.cluster.local", "SRV") == (
        NOERROR, ["0 100 80 web.default.svc.cluster.local."])
    assert ask(cluster, "_dns._udp.web.default.svc.cluster.local", "SRV") == (
        NOERROR, ["0 100 53 web.default.svc.cluster.local."])
    answer = cluster.lookup(dns.name.from_text("_http._tcp.web.default.svc.cluster.local"),
                            dns.rdatatype.SRV)
    assert [r.to_text() for rrset in answer.additional for r in rrset] == ["10.43.0.20"]


def test_srv_name_of_an_unknown_port_or_protocol_is_nxdomain(cluster):
    assert ask(cluster, "_https._tcp.web.default.svc.cluster.local", "SRV")[0] == NXDOMAIN
    assert ask(cluster, "_http._udp.web.default.svc.cluster.local", "SRV")[0] == NXDOMAIN


def test_srv_at_the_service_name_lists_every_port_like_coredns(cluster):
    rcode, rdatas = ask(cluster, "web.default.svc.cluster.local", "SRV")
    assert rcode == NOERROR and [r.split()[2] for r in rdatas] == ["53", "80", "9090"]
    assert {r.split()[1] for r in rdatas} == {"33"}        # 100 split evenly


def test_cluster_ip_has_a_ptr_record_to_the_service(cluster):
    assert ask(cluster, "20.0.43.10.in-addr.arpa", "PTR") == (
        NOERROR, ["web.default.svc.cluster.local."])
    v6 = dns.reversename.from_address("fd00:43::21").to_text()
    assert ask(cluster, v6, "PTR") == (NOERROR, ["dual.default.svc.cluster.local."])


# ---- headless services (spec 2.4) ---------------------------------------------------------

def test_headless_service_resolves_to_every_ready_endpoint(cluster):
    assert ask(cluster, "db.default.svc.cluster.local", "A") == (
        NOERROR, ["10.42.0.5", "10.42.0.6", "10.42.0.8"])


def test_headless_endpoint_hostname_gets_its_own_a_record(cluster):
    assert ask(cluster, "db-0.db.default.svc.cluster.local", "A") == (NOERROR, ["10.42.0.5"])
    assert ask(cluster, "db-2.db.default.svc.cluster.local", "A")[0] == NXDOMAIN   # not ready


def test_headless_endpoint_without_hostname_is_named_by_its_dashed_address(cluster):
    assert ask(cluster, "10-42-0-8.db.default.svc.cluster.local", "A") == (
        NOERROR, ["10.42.0.8"])


def test_headless_srv_has_one_record_per_ready_endpoint_at_its_hostname(cluster):
    rcode, rdatas = ask(cluster, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert rcode == NOERROR and rdatas == [
        "0 33 5432 10-42-0-8.db.default.svc.cluster.local.",
        "0 33 5432 db-0.db.default.svc.cluster.local.",
        "0 33 5432 db-1.db.default.svc.cluster.local."]
    answer = cluster.lookup(dns.name.from_text("_pg._tcp.db.default.svc.cluster.local"),
                            dns.rdatatype.SRV)
    assert sorted(r.to_text() for rrset in answer.additional for r in rrset) == [
        "10.42.0.5", "10.42.0.6", "10.42.0.8"]


def test_headless_srv_uses_the_endpoint_port_not_the_service_port():
    r = rs()
    r.upsert_service(headless("h", ports=[("web", 80, "TCP")]))
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.1", "a")],
                                           ports=[("web", 8080, "TCP")]))
    assert ask(r, "_web._tcp.h.default.svc.cluster.local", "SRV") == (
        NOERROR, ["0 100 8080 a.h.default.svc.cluster.local."])


def test_headless_endpoint_ip_has_a_ptr_record_to_its_hostname(cluster):
    assert ask(cluster, "5.0.42.10.in-addr.arpa", "PTR") == (
        NOERROR, ["db-0.db.default.svc.cluster.local."])
    assert ask(cluster, "7.0.42.10.in-addr.arpa", "PTR")[0] == NXDOMAIN       # not ready


def test_headless_service_without_ready_endpoints_is_nxdomain():
    r = rs()
    r.upsert_service(headless("h"))
    assert ask(r, "h.default.svc.cluster.local", "A")[0] == NXDOMAIN
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.1", ready=False)]))
    assert ask(r, "h.default.svc.cluster.local", "A")[0] == NXDOMAIN


@pytest.mark.parametrize("how", ["publishNotReadyAddresses", "tolerate-unready annotation"])
def test_headless_service_publishing_not_ready_addresses_includes_them(how):
    r = rs()
    if how == "publishNotReadyAddresses":
        r.upsert_service(headless("h", publish_not_ready=True))
    else:
        r.upsert_service(headless("h", annotations={
            "service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}))
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.1", "p-0", False)]))
    assert ask(r, "h.default.svc.cluster.local", "A") == (NOERROR, ["10.42.1.1"])
    assert ask(r, "p-0.h.default.svc.cluster.local", "A") == (NOERROR, ["10.42.1.1"])


def test_dual_stack_headless_service_merges_its_ipv4_and_ipv6_slices():
    r = rs()
    r.upsert_service(headless("h"))
    r.upsert_endpoint_slice(endpoint_slice("h-4", "h", [endpoint("10.42.1.1", "p-0")]))
    r.upsert_endpoint_slice(endpoint_slice("h-6", "h", [endpoint("fd00:42::1", "p-0")],
                                           address_type="IPv6"))
    assert ask(r, "p-0.h.default.svc.cluster.local", "A") == (NOERROR, ["10.42.1.1"])
    assert ask(r, "p-0.h.default.svc.cluster.local", "AAAA") == (NOERROR, ["fd00:42::1"])


# ---- ExternalName (spec 2.5) ---------------------------------------------------------------

def test_external_name_service_is_a_cname_left_for_the_server_to_chase(cluster):
    answer = cluster.lookup(dns.name.from_text("ext.default.svc.cluster.local"),
                            dns.rdatatype.A)
    assert answer.rcode == NOERROR
    assert [r.to_text() for rrset in answer.answer for r in rrset] == ["www.example.org."]
    assert answer.chase == dns.name.from_text("www.example.org")
    cname = cluster.lookup(dns.name.from_text("ext.default.svc.cluster.local"),
                           dns.rdatatype.CNAME)
    assert cname.chase is None and cname.answer[0].rdtype == dns.rdatatype.CNAME


def test_external_name_into_the_cluster_zone_is_followed_here(cluster):
    cluster.upsert_service(service("alias", type_="ExternalName",
                                   external="web.default.svc.cluster.local"))
    answer = cluster.lookup(dns.name.from_text("alias.default.svc.cluster.local"),
                            dns.rdatatype.A)
    assert answer.chase is None
    assert [r.to_text() for rrset in answer.answer for r in rrset] == [
        "web.default.svc.cluster.local.", "10.43.0.20"]


def test_external_name_that_is_an_ip_address_has_no_record():
    r = rs()
    r.upsert_service(service("ip", type_="ExternalName", external="192.0.2.1"))
    assert ask(r, "ip.default.svc.cluster.local", "A")[0] == NXDOMAIN


# ---- NXDOMAIN versus NODATA ------------------------------------------------------------------

@pytest.mark.parametrize("name, rdtype, expected", [
    ("cluster.local", "A", "NODATA"),
    ("svc.cluster.local", "A", "NODATA"),
    ("pod.cluster.local", "A", "NODATA"),
    ("default.svc.cluster.local", "A", "NODATA"),
    ("empty.svc.cluster.local", "A", "NODATA"),
    ("missing.svc.cluster.local", "A", "NXDOMAIN"),
    ("web.missing.svc.cluster.local", "A", "NXDOMAIN"),
    ("nope.default.svc.cluster.local", "A", "NXDOMAIN"),
    ("web.default.svc.cluster.local", "TXT", "NODATA"),
    ("web.default.svc.cluster.local", "MX", "NODATA"),
    ("foo.cluster.local", "A", "NXDOMAIN"),
    ("a.b.web.default.svc.cluster.local", "A", "NXDOMAIN"),
    ("x.default.other.cluster.local", "A", "NXDOMAIN"),
    ("dns-version.cluster.local", "A", "NODATA"),
], ids=lambda v: str(v))
def test_names_that_exist_answer_nodata_and_others_nxdomain(cluster, name, rdtype, expected):
    answer = cluster.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    assert answer is not None and not answer.answer
    got = "NXDOMAIN" if answer.rcode == NXDOMAIN else "NODATA"
    assert got == expected and answer.authority[0].rdtype == dns.rdatatype.SOA


def test_schema_version_txt_record(cluster):
    answer = cluster.lookup(dns.name.from_text("dns-version.cluster.local"),
                            dns.rdatatype.TXT)
    assert answer.answer[0][0].to_text() == '"1.1.0"' and answer.answer[0].ttl == 28800


def test_apex_has_soa_and_ns_with_the_dns_service_address(cluster):
    assert ask(cluster, "cluster.local", "SOA")[1][0].startswith(
        "ns.dns.cluster.local. hostmaster.cluster.local.")
    answer = cluster.lookup(dns.name.from_text("cluster.local"), dns.rdatatype.NS)
    assert answer.answer[0][0].to_text() == "ns.dns.cluster.local."
    assert [r.to_text() for rrset in answer.additional for r in rrset] == ["10.43.0.10"]


def test_names_compare_case_insensitively(cluster):
    assert ask(cluster, "WEB.Default.SVC.Cluster.LOCAL", "A") == (NOERROR, ["10.43.0.20"])


def test_names_outside_the_zones_are_not_answered(cluster):
    assert cluster.lookup(dns.name.from_text("example.org"), dns.rdatatype.A) is None
    assert cluster.lookup(dns.name.from_text("cluster.local.example.org"),
                          dns.rdatatype.A) is None


# ---- reverse zones ----------------------------------------------------------------------------

def test_unknown_address_inside_a_cidr_is_nxdomain_with_the_cidr_zone_soa(cluster):
    answer = cluster.lookup(dns.name.from_text("99.0.43.10.in-addr.arpa"), dns.rdatatype.PTR)
    assert answer.rcode == NXDOMAIN
    assert answer.authority[0].name == dns.name.from_text("43.10.in-addr.arpa")


def test_partial_reverse_name_inside_a_cidr_is_nodata_not_nxdomain(cluster):
    assert is_nodata(cluster, "0.43.10.in-addr.arpa", "PTR")
    assert ask(cluster, "43.10.in-addr.arpa", "SOA")[0] == NOERROR


@pytest.mark.parametrize("name", ["8.8.8.8.in-addr.arpa", "10.in-addr.arpa",
                                  "53.255.255.10.in-addr.arpa", "x.43.10.in-addr.arpa"])
def test_reverse_names_outside_the_cidrs_are_forwarded(cluster, name):
    assert cluster.lookup(dns.name.from_text(name), dns.rdatatype.PTR) is None


def test_cidr_not_on_an_octet_boundary_is_served_as_the_longer_zones():
    r = rs(reverse_cidrs=("10.42.0.0/15",))
    assert r.lookup(dns.name.from_text("1.0.43.10.in-addr.arpa"),
                    dns.rdatatype.PTR).rcode == NXDOMAIN
    assert r.lookup(dns.name.from_text("1.0.44.10.in-addr.arpa"), dns.rdatatype.PTR) is None
    assert r.lookup(dns.name.from_text("10.in-addr.arpa"), dns.rdatatype.SOA) is None


# ---- pods (spec 2.6) -------------------------------------------------------------------------

@pytest.mark.parametrize("mode, name, rdtype, expected", [
    ("insecure", "10-42-0-9.default.pod.cluster.local", "A", (NOERROR, ["10.42.0.9"])),
    ("insecure", "fd00-42--9.default.pod.cluster.local", "AAAA", (NOERROR, ["fd00:42::9"])),
    ("insecure", "10-42-0-9.default.pod.cluster.local", "AAAA", (NOERROR, [])),
    ("insecure", "10-42-0-9.missing.pod.cluster.local", "A", (NXDOMAIN, [])),
    ("insecure", "not-an-ip.default.pod.cluster.local", "A", (NXDOMAIN, [])),
    ("verified", "10-42-0-9.default.pod.cluster.local", "A", (NOERROR, ["10.42.0.9"])),
    ("verified", "10-42-0-10.default.pod.cluster.local", "A", (NXDOMAIN, [])),
    ("verified", "10-42-0-9.empty.pod.cluster.local", "A", (NXDOMAIN, [])),
    ("disabled", "10-42-0-9.default.pod.cluster.local", "A", (NXDOMAIN, [])),
], ids=lambda v: str(v))
def test_pod_address_records_follow_the_pods_mode(mode, name, rdtype, expected):
    r = rs(pod_mode=mode)
    r.upsert_namespace(namespace("default"))
    r.upsert_namespace(namespace("empty"))
    r.upsert_pod(pod("p", "default", "10.42.0.9"))
    assert ask(r, name, rdtype) == expected


def test_verified_pod_record_goes_away_with_the_pod():
    r = rs(pod_mode="verified")
    r.upsert_namespace(namespace("default"))
    p = pod("p", "default", "10.42.0.9")
    r.upsert_pod(p)
    r.remove_pod(p)
    assert ask(r, "10-42-0-9.default.pod.cluster.local", "A")[0] == NXDOMAIN


# ---- incremental updates ----------------------------------------------------------------------

def test_a_slice_that_arrives_before_its_service_is_used_when_the_service_appears():
    r = rs()
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.1", "a")]))
    assert ask(r, "h.default.svc.cluster.local", "A")[0] == NXDOMAIN
    r.upsert_service(headless("h"))
    assert ask(r, "a.h.default.svc.cluster.local", "A") == (NOERROR, ["10.42.1.1"])


def test_updating_a_slice_replaces_the_old_records_and_ptrs():
    r = rs()
    r.upsert_service(headless("h"))
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.1", "a")]))
    r.upsert_endpoint_slice(endpoint_slice("h-1", "h", [endpoint("10.42.1.2", "b")]))
    assert ask(r, "h.default.svc.cluster.local", "A") == (NOERROR, ["10.42.1.2"])
    assert ask(r, "a.h.default.svc.cluster.local", "A")[0] == NXDOMAIN
    assert ask(r, "1.1.42.10.in-addr.arpa", "PTR")[0] == NXDOMAIN
    assert ask(r, "2.1.42.10.in-addr.arpa", "PTR")[1] == ["b.h.default.svc.cluster.local."]


def test_deleting_a_service_removes_its_names_and_ptr(cluster):
    cluster.remove_service(service("web"))
    assert ask(cluster, "web.default.svc.cluster.local", "A")[0] == NXDOMAIN
    assert ask(cluster, "_http._tcp.web.default.svc.cluster.local", "SRV")[0] == NXDOMAIN
    assert ask(cluster, "20.0.43.10.in-addr.arpa", "PTR")[0] == NXDOMAIN


def test_deleting_the_last_slice_of_a_headless_service_makes_it_nxdomain(cluster):
    cluster.remove_endpoint_slice(endpoint_slice("db-abc", "db", []))
    assert ask(cluster, "db.default.svc.cluster.local", "A")[0] == NXDOMAIN
    assert ask(cluster, "5.0.42.10.in-addr.arpa", "PTR")[0] == NXDOMAIN


def test_an_event_recomputes_only_the_service_it_concerns(cluster):
    """Incremental: other services keep their very record objects across an event."""
    web = cluster.lookup(dns.name.from_text("web.default.svc.cluster.local"),
                         dns.rdatatype.A).answer[0]
    before = cluster.generation
    cluster.upsert_endpoint_slice(endpoint_slice("db-abc", "db", [endpoint("10.42.0.5",
                                                                           "db-0")]))
    assert cluster.generation > before
    assert cluster.lookup(dns.name.from_text("web.default.svc.cluster.local"),
                          dns.rdatatype.A).answer[0] is web


def test_an_unchanged_service_or_slice_does_not_move_the_generation(cluster):
    before = cluster.generation
    cluster.upsert_service(service("web", ip="10.43.0.20", ports=[("http", 80, "TCP"),
                                                                    ("", 9090, "TCP"),
                                                                    ("dns", 53, "UDP")]))
    cluster.upsert_endpoint_slice(endpoint_slice("db-abc", "db", [
        endpoint("10.42.0.5", "db-0"), endpoint("10.42.0.6", "db-1"),
        endpoint("10.42.0.7", "db-2", ready=False), endpoint("10.42.0.8", ready=None)],
        ports=[("pg", 5432, "TCP")]))
    assert cluster.generation == before


def test_a_namespace_without_services_exists_only_while_its_object_does():
    r = rs()
    r.upsert_namespace(namespace("team"))
    assert is_nodata(r, "team.svc.cluster.local", "A")
    r.remove_namespace(namespace("team"))
    assert ask(r, "team.svc.cluster.local", "A")[0] == NXDOMAIN


def test_custom_zone_and_ttl():
    r = RecordSet("k8s.example", ttl=30)
    r.upsert_service(service("web"))
    answer = r.lookup(dns.name.from_text("web.default.svc.k8s.example"), dns.rdatatype.A)
    assert answer.answer[0].ttl == 30
    assert r.lookup(dns.name.from_text("web.default.svc.cluster.local"),
                    dns.rdatatype.A) is None


def test_unknown_pod_mode_is_refused():
    with pytest.raises(ValueError):
        RecordSet(pod_mode="sometimes")
