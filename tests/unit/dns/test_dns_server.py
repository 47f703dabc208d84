"""The DNS server on 127.0.0.1 (free port) queried with dnspython's client: UDP and TCP
answers, truncation and TCP fallback, forwarding to a fake upstream on 127.0.0.1 (issue 8).

No query leaves the loopback interface: the only upstream is `FakeUpstream`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dns_fixtures import (FakeUpstream, endpoint, endpoint_slice, headless, namespace,
                          service)
from navio.dns.config import DnsConfig
from navio.dns.forward import Forwarder
from navio.dns.server import DnsServer, record_set_for

HOST = "127.0.0.1"
BIG_TXT = ['"' + "x" * 200 + '"'] * 10          # about 2 KB: more than any UDP limit used
UPSTREAM_ZONE = {
    ("www.example.org", "A"): ["192.0.2.80"],
    ("example.net", "A"): ["192.0.2.1"],
    ("big.example.net", "TXT"): [" ".join(BIG_TXT)],
}


async def start_server(upstream: FakeUpstream, *, synced: bool = True, **kw: Any) -> DnsServer:
    config = DnsConfig(kubeconfig=Path("/nonexistent"), bind_addresses=(HOST,), port=0,
                       upstreams=(f"{HOST}:{upstream.port}",), **kw)
    records = record_set_for(config)
    records.upsert_namespace(namespace("default"))
    records.upsert_service(service("web", ip="10.43.0.20", ports=[("http", 80, "TCP")]))
    records.upsert_service(headless("db", ports=[("pg", 5432, "TCP")]))
    records.upsert_endpoint_slice(endpoint_slice("db-1", "db", [
        endpoint("10.42.0.5", "db-0"), endpoint("10.42.0.6", "db-1")],
        ports=[("pg", 5432, "TCP")]))
    records.upsert_service(headless("many"))
    records.upsert_endpoint_slice(endpoint_slice("many-1", "many", [
        endpoint(f"10.42.1.{i}") for i in range(1, 101)]))
    records.upsert_service(headless("sixty"))
    records.upsert_endpoint_slice(endpoint_slice("sixty-1", "sixty", [
        endpoint(f"10.42.2.{i}") for i in range(1, 61)]))
    records.upsert_service(service("ext", type_="ExternalName", external="www.example.org"))
    records.synced = synced
    forwarder = Forwarder(config.resolved_upstreams(), timeout=config.forward_timeout,
                          max_concurrent=config.max_concurrent_forwards)
    server = DnsServer(config, records, forwarder)
    await server.start()
    return server


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    up = await FakeUpstream(UPSTREAM_ZONE).start()
    yield up
    await up.stop()


@pytest.fixture
async def server(upstream: FakeUpstream) -> AsyncIterator[DnsServer]:
    srv = await start_server(upstream)
    yield srv
    await srv.stop()


def port(server: DnsServer) -> int:
    return server.addresses[0][1]


async def udp(server: DnsServer, name: str, rdtype: str, **kw: Any) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await asyncio.to_thread(dns.query.udp, query, HOST, timeout=5, port=port(server))


async def tcp(server: DnsServer, name: str, rdtype: str, **kw: Any) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await asyncio.to_thread(dns.query.tcp, query, HOST, timeout=5, port=port(server))


def texts(response: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


# ---- authoritative answers ----------------------------------------------------------------

@pytest.mark.parametrize("query", [udp, tcp], ids=["udp", "tcp"])
async def test_service_a_record_is_answered_authoritatively(server, query):
    response = await query(server, "web.default.svc.cluster.local", "A")
    assert response.rcode() == dns.rcode.NOERROR and texts(response) == ["10.43.0.20"]
    assert response.flags & dns.flags.AA and response.flags & dns.flags.RA
    assert response.answer[0].ttl == 5


async def test_aaaa_of_an_ipv4_service_is_empty_with_soa(server):
    response = await udp(server, "web.default.svc.cluster.local", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert response.authority[0].rdtype == dns.rdatatype.SOA


async def test_srv_record_with_the_target_address_in_additional(server):
    response = await udp(server, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert texts(response) == ["0 100 80 web.default.svc.cluster.local."]
    assert [r.to_text() for rrset in response.additional for r in rrset] == ["10.43.0.20"]


async def test_ptr_record_of_a_service_ip(server):
    response = await udp(server, "20.0.43.10.in-addr.arpa", "PTR")
    assert texts(response) == ["web.default.svc.cluster.local."]


async def test_headless_service_returns_every_endpoint(server):
    response = await udp(server, "db.default.svc.cluster.local", "A")
    assert texts(response) == ["10.42.0.5", "10.42.0.6"]
    response = await udp(server, "db-1.db.default.svc.cluster.local", "A")
    assert texts(response) == ["10.42.0.6"]


async def test_external_name_is_a_cname_followed_by_the_upstream_answer(server, upstream):
    response = await udp(server, "ext.default.svc.cluster.local", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert [rrset.rdtype for rrset in response.answer] == [dns.rdatatype.CNAME,
                                                           dns.rdatatype.A]
    assert texts(response) == ["192.0.2.80", "www.example.org."]
    assert ("www.example.org.", "A", "udp") in upstream.asked


async def test_unknown_service_is_nxdomain_and_never_forwarded(server, upstream):
    for name in ("nope.default.svc.cluster.local", "x.y.cluster.local", "99.0.43.10.in-addr.arpa"):
        response = await udp(server, name, "A" if "arpa" not in name else "PTR")
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert response.authority[0].rdtype == dns.rdatatype.SOA
    assert not [q for q in upstream.asked if "cluster.local" in q[0] or "43.10" in q[0]]


# ---- truncation ---------------------------------------------------------------------------

async def test_big_answer_is_truncated_over_udp_and_whole_over_tcp(server):
    response = await udp(server, "many.default.svc.cluster.local", "A")
    assert response.flags & dns.flags.TC and not response.answer
    response = await tcp(server, "many.default.svc.cluster.local", "A")
    assert not response.flags & dns.flags.TC and len(texts(response)) == 100


async def test_dnspython_falls_back_to_tcp_on_truncation(server):
    query = dns.message.make_query("many.default.svc.cluster.local", "A", use_edns=0,
                                   payload=1232)
    response, used_tcp = await asyncio.to_thread(
        dns.query.udp_with_fallback, query, HOST, timeout=5, port=port(server))
    assert used_tcp and len(texts(response)) == 100


async def test_edns_payload_bounds_the_udp_answer(server):
    """60 addresses (about 1 KB) fit an EDNS payload of 1232 bytes but not plain 512."""
    plain = await udp(server, "sixty.default.svc.cluster.local", "A")
    assert plain.flags & dns.flags.TC and not plain.answer     # RRsets are never split
    edns = await udp(server, "sixty.default.svc.cluster.local", "A", use_edns=0, payload=1232)
    assert not edns.flags & dns.flags.TC and len(texts(edns)) == 60
    capped = await udp(server, "many.default.svc.cluster.local", "A", use_edns=0,
                       payload=4096)                        # capped at 1232 by the server
    assert capped.flags & dns.flags.TC and len(capped.to_wire()) <= 1232


# ---- forwarding ---------------------------------------------------------------------------

async def test_other_names_are_forwarded_to_the_upstream(server, upstream):
    response = await udp(server, "example.net", "A")
    assert response.rcode() == dns.rcode.NOERROR and texts(response) == ["192.0.2.1"]
    assert not response.flags & dns.flags.AA and response.flags & dns.flags.RA
    assert ("example.net.", "A", "udp") in upstream.asked


async def test_upstream_nxdomain_is_passed_on(server):
    response = await udp(server, "missing.example.net", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN


async def test_truncated_upstream_answer_is_fetched_over_tcp(server, upstream):
    response = await tcp(server, "big.example.net", "TXT")
    assert response.rcode() == dns.rcode.NOERROR and not response.flags & dns.flags.TC
    assert len(response.answer[0][0].strings) == 10
    assert ("big.example.net.", "TXT", "tcp") in upstream.asked
    over_udp = await udp(server, "big.example.net", "TXT")
    assert over_udp.flags & dns.flags.TC


async def test_failed_forward_is_servfail_within_the_timeout():
    silent = await FakeUpstream(silent=True).start()
    srv = await start_server(silent, forward_timeout=0.3)
    try:
        async with asyncio.timeout(5):
            response = await udp(srv, "example.net", "A")
        assert response.rcode() == dns.rcode.SERVFAIL
    finally:
        await srv.stop()
        await silent.stop()


async def test_forwards_beyond_the_concurrency_limit_are_refused():
    silent = await FakeUpstream(silent=True).start()
    srv = await start_server(silent, forward_timeout=1.0, max_concurrent_forwards=1)
    try:
        first = asyncio.create_task(udp(srv, "one.example.net", "A"))
        async with asyncio.timeout(5):
            while not silent.asked:               # the first forward is now in flight
                await asyncio.sleep(0.01)
            second = await udp(srv, "two.example.net", "A")
            assert second.rcode() == dns.rcode.REFUSED
            assert (await first).rcode() == dns.rcode.SERVFAIL
    finally:
        await srv.stop()
        await silent.stop()


# ---- protocol edges -----------------------------------------------------------------------

async def test_cluster_names_are_servfail_until_the_cache_has_synced(upstream):
    srv = await start_server(upstream, synced=False)
    try:
        response = await udp(srv, "web.default.svc.cluster.local", "A")
        assert response.rcode() == dns.rcode.SERVFAIL
        assert (await udp(srv, "example.net", "A")).rcode() == dns.rcode.NOERROR
    finally:
        await srv.stop()


async def test_cached_answers_carry_each_querys_id_and_follow_updates(server):
    for qid in (1, 2, 65535):
        query = dns.message.make_query("web.default.svc.cluster.local", "A")
        query.id = qid
        response = await asyncio.to_thread(dns.query.udp, query, HOST, timeout=5,
                                           port=port(server))
        assert response.id == qid and texts(response) == ["10.43.0.20"]
    server.records.upsert_service(service("web", ip="10.43.0.99"))
    assert texts(await udp(server, "web.default.svc.cluster.local", "A")) == ["10.43.0.99"]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait(data)


async def test_malformed_query_gets_formerr_and_a_response_gets_nothing(server):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Datagrams, remote_addr=(HOST, port(server)))
    try:
        transport.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff")  # cut short
        formerr = dns.message.from_wire(await asyncio.wait_for(proto.replies.get(), 5))
        assert formerr.id == 0x1234 and formerr.rcode() == dns.rcode.FORMERR
        answer = dns.message.make_response(dns.message.make_query("example.net", "A"))
        answer.id = 7
        transport.sendto(answer.to_wire())                    # a response: must be dropped
        probe = dns.message.make_query("web.default.svc.cluster.local", "A")
        probe.id = 8
        transport.sendto(probe.to_wire())
        # Replies leave in the order queries arrive, so the next one is the probe's.
        assert dns.message.from_wire(await asyncio.wait_for(proto.replies.get(), 5)).id == 8
    finally:
        transport.close()


def _query(rdtype: str = "SOA", rdclass: str = "IN", *, edns: int = -1,
           opcode: int = dns.opcode.QUERY) -> dns.message.Message:
    query = dns.message.make_query("cluster.local", rdtype, rdclass, use_edns=edns)
    query.set_opcode(opcode)
    return query


@pytest.mark.parametrize("query, expected", [
    (_query("AXFR"), dns.rcode.REFUSED),
    (_query("TXT", "CH"), dns.rcode.REFUSED),
    (_query(edns=1), dns.rcode.BADVERS),
    (_query(opcode=dns.opcode.STATUS), dns.rcode.NOTIMP),
], ids=["zone transfer is refused", "chaos class is refused", "edns version 1 is badvers",
        "status opcode is notimp"])
async def test_unsupported_queries_get_the_matching_error(server, query, expected):
    wire = query.to_wire()
    reader, writer = await asyncio.open_connection(HOST, port(server))
    try:
        writer.write(len(wire).to_bytes(2, "big") + wire)
        async with asyncio.timeout(5):
            size = int.from_bytes(await reader.readexactly(2), "big")
            response = dns.message.from_wire(await reader.readexactly(size))
        assert response.rcode() == expected and response.id == query.id
    finally:
        writer.close()


async def test_several_queries_on_one_tcp_connection_are_answered_in_order(server):
    reader, writer = await asyncio.open_connection(HOST, port(server))
    try:
        for qid, name in ((11, "web.default.svc.cluster.local"), (12, "example.net")):
            query = dns.message.make_query(name, "A")
            query.id = qid
            wire = query.to_wire()
            writer.write(len(wire).to_bytes(2, "big") + wire)
        got = []
        async with asyncio.timeout(5):
            for _ in range(2):
                size = int.from_bytes(await reader.readexactly(2), "big")
                got.append(dns.message.from_wire(await reader.readexactly(size)))
        assert [(m.id, texts(m)) for m in got] == [(11, ["10.43.0.20"]), (12, ["192.0.2.1"])]
    finally:
        writer.close()


def test_config_rejects_bad_values():
    for bad in ({"port": 70000}, {"bind_addresses": ("not-an-ip",)}, {"pod_mode": "x"},
                {"upstreams": ("1.2.3.4:0",)}, {"service_cidrs": ("10.0.0.0/33",)},
                {"bind_addresses": ()}):
        with pytest.raises(ValueError):
            DnsConfig(kubeconfig=Path("k"), **bad)


def test_config_reads_upstreams_from_the_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver ::1\n"
                    "nameserver not-an-address\n")
    config = DnsConfig(kubeconfig=Path("k"), resolv_conf=conf)
    assert config.resolved_upstreams() == [("127.0.0.53", 53), ("fe80::1%eth0", 53),
                                           ("::1", 53)]
    assert DnsConfig(kubeconfig=Path("k"), resolv_conf=tmp_path / "missing"
                     ).resolved_upstreams() == []


def test_forwarder_drops_an_upstream_that_is_the_server_itself():
    forwarder = Forwarder([("10.43.0.10", 53), ("127.0.0.53", 53)],
                          exclude=[("10.43.0.10", 53)])
    assert forwarder.upstreams == (("127.0.0.53", 53),)

