"""UDP conntrack cleanup (issue 8): flows pinned to a removed endpoint are deleted, so a UDP
client that keeps its source port moves to a live endpoint. Kernel tests run in the lab's
namespaces only."""

from __future__ import annotations

import asyncio
import sys

from proxy_netlab import PODS, SERVER_PORT, NetLab, sh
from proxy_objects import endpoint, endpoint_slice, service
from test_proxier import NODE, FakeCache, config, wait_until

from navio.proxy.conntrack import ConntrackCleaner, Flow, stale_flows
from navio.proxy.model import build_service_map
from navio.proxy.nftables import RuleOptions
from navio.proxy.nftables_backend import NftablesBackend, NftRunner, netns_prefix
from navio.proxy.proxier import Proxier

UDP_PORTS = [{"name": "dns", "port": 53, "protocol": "UDP"}]
SLICE_PORTS = [{"name": "dns", "port": SERVER_PORT, "protocol": "UDP"}]
VIP = "10.43.0.30"

# One UDP socket with a fixed source port: every datagram belongs to the same conntrack flow.
STICKY_CLIENT = r"""
import socket, sys
ip, port, sport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport)); s.settimeout(2)
for _ in range(count):
    s.sendto(b"hi", (ip, port))
    try:
        print(s.recv(1024).decode(), flush=True)
    except OSError as exc:
        print("ERR", type(exc).__name__, flush=True)
"""


def sticky(lab: NetLab, sport: int, count: int = 5) -> list[str]:
    out = sh("ip", "netns", "exec", lab.pods["client"], sys.executable, "-c", STICKY_CLIENT,
             VIP, "53", str(sport), str(count), timeout=30).stdout
    return out.split()


def udp_service(**kw):
    kw.setdefault("ports", UDP_PORTS)
    return service("dns", VIP, **kw)


def slice_of(*ips: str, gone: str = "", rv: str = "1") -> dict:
    return endpoint_slice("dns", [endpoint(ip, node=NODE, ready=ip != gone,
                                           terminating=ip == gone) for ip in ips],
                          ports=SLICE_PORTS, rv=rv)


def test_stale_flows_name_removed_udp_endpoints_and_newly_served_ports():
    ips = list(PODS.values())
    np = udp_service(type_="NodePort", ports=[dict(UDP_PORTS[0], nodePort=30053)])
    old = build_service_map([np], [slice_of(*ips)], NODE)
    new = build_service_map([np], [slice_of(*ips, gone=ips[2])], NODE)
    key = "ns1/dns"
    assert stale_flows(old, new, [key]) == [Flow(orig_dst=VIP, dst_nat=ips[2]),
                                            Flow(orig_port_dst=30053, dst_nat=ips[2])]
    assert stale_flows(new, new, [key]) == []
    empty = build_service_map([np], [], NODE)
    assert stale_flows(empty, new, [key]) == [Flow(orig_dst=VIP), Flow(orig_port_dst=30053)]
    # a deleted service: every endpoint it had
    assert {f.dst_nat for f in stale_flows(old, {}, [key])} == set(ips)
    # TCP ports never need it
    tcp = service("web", "10.43.0.31")
    t_old = build_service_map([tcp], [endpoint_slice("web", [endpoint(ips[0])])], NODE)
    assert stale_flows(t_old, {}, ["ns1/web"]) == []
    assert Flow(orig_dst=VIP, dst_nat=ips[2]).argv() == [
        "-D", "-p", "udp", "--orig-dst", VIP, "--dst-nat", ips[2]]


async def _pinned_then_removed(lab: NetLab, running, cleaner: ConntrackCleaner | None,
                               sport: int) -> tuple[set[str], set[str], str]:
    ips = list(PODS.values())
    svcs, slices = FakeCache([udp_service()]), FakeCache([slice_of(*ips)])
    backend = NftablesBackend(RuleOptions(cluster_cidr="10.244.0.0/16"), NftRunner(lab.node))
    p = Proxier(config(netns=lab.node), backend, svcs, slices, conntrack=cleaner)
    task = running(p)
    try:
        await wait_until(lambda: p.generation == 1, timeout=5, what="the first sync")
        first = set(await asyncio.to_thread(sticky, lab, sport))
        assert len(first) == 1, first                  # one flow, one endpoint
        pinned = next(iter(first))
        slices.put(slice_of(*ips, gone=PODS[pinned], rv="2"))
        await wait_until(lambda: p.generation == 2, timeout=2, what="the endpoint to go")
        after = set(await asyncio.to_thread(sticky, lab, sport))
        return first, after, pinned
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await backend.cleanup()


async def test_a_udp_flow_moves_off_a_removed_endpoint(lab, running):
    cleaner = ConntrackCleaner(netns_prefix(lab.node))
    assert cleaner.available, "the conntrack tool is required (apt package conntrack)"
    _, after, pinned = await _pinned_then_removed(lab, running, cleaner, 40031)
    assert cleaner.deleted >= 1
    assert len(after) == 1 and pinned not in after, (pinned, after)


async def test_without_cleanup_the_flow_stays_on_the_removed_endpoint(lab, running):
    # The control: what the kernel does on its own, and why the cleanup exists.
    _, after, pinned = await _pinned_then_removed(lab, running, None, 40032)
    assert after == {pinned}
