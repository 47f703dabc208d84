"""navio's DNS server in process against a real `navio server`: objects created with the real
kubectl become resolvable, and deleted ones NXDOMAIN, within bounded times (issue 8).

The DNS server listens on 127.0.0.1 (free port); its only upstream is a closed loopback port,
and the test asks only cluster names, which are never forwarded."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import AsyncIterator, Callable

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from cluster import Kubectl, NavioServer
from navio.dns.config import DnsConfig
from navio.dns.server import DnsServer, serve

SYNC_TIMEOUT = 30.0
CHANGE_TIMEOUT = 15.0

MANIFEST = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: {ns}}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: pg, port: 5432, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{{name: pg, port: 5432, protocol: TCP}}]
endpoints:
- addresses: [10.42.7.1]
  hostname: db-0
  conditions: {{ready: true}}
- addresses: [10.42.7.2]
  hostname: db-1
  conditions: {{ready: true}}
"""


def connections_to(port: int) -> int:
    """How many of this process's TCP sockets are connected to `port` (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    count += 1
    return count


@pytest.fixture
async def dns_server(server: NavioServer) -> AsyncIterator[DnsServer]:
    config = DnsConfig(kubeconfig=Path(server.kubeconfig), bind_addresses=("127.0.0.1",),
                       port=0, upstreams=("127.0.0.1:9",), forward_timeout=0.5)
    async with serve(config) as srv:
        assert await srv.wait_synced(SYNC_TIMEOUT), "dns cache did not sync"
        yield srv
    # Closed watch connections finish their TLS shutdown in the background; let them end
    # before this test's event loop does, or their sockets are reported unclosed.
    try:
        async with asyncio.timeout(CHANGE_TIMEOUT):
            while connections_to(server.port):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError("gave up waiting for the API connections to close") from None


async def ask(srv: DnsServer, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, "127.0.0.1", timeout=2, port=srv.addresses[0][1])


async def answer_becomes(srv: DnsServer, name: str, rdtype: str,
                         check: Callable[[dns.message.Message], bool], what: str) -> None:
    try:
        async with asyncio.timeout(CHANGE_TIMEOUT):
            while not check(await ask(srv, name, rdtype)):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up after {CHANGE_TIMEOUT}s waiting for {what}") from None


def rdatas(response: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


async def test_services_resolve_and_disappear(dns_server: DnsServer, kubectl: Kubectl,
                                              ns: str) -> None:
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=MANIFEST.format(ns=ns))
    cluster_ip = (await asyncio.to_thread(
        kubectl.json, "get", "service", "web", "-n", ns))["spec"]["clusterIP"]
    web = f"web.{ns}.svc.cluster.local"

    await answer_becomes(dns_server, web, "A", lambda r: rdatas(r) == [cluster_ip],
                         f"{web} A {cluster_ip}")
    srv = await ask(dns_server, f"_http._tcp.{web}", "SRV")
    assert rdatas(srv) == [f"0 100 80 {web}."]
    await answer_becomes(dns_server, f"db.{ns}.svc.cluster.local", "A",
                         lambda r: rdatas(r) == ["10.42.7.1", "10.42.7.2"], "headless db A")
    pet = await ask(dns_server, f"db-1.db.{ns}.svc.cluster.local", "A")
    assert rdatas(pet) == ["10.42.7.2"]
    ptr = await ask(dns_server, ".".join(reversed(cluster_ip.split("."))) + ".in-addr.arpa",
                    "PTR")
    assert rdatas(ptr) == [f"{web}."]

    await asyncio.to_thread(kubectl, "delete", "service", "web", "-n", ns)
    await answer_becomes(dns_server, web, "A", lambda r: r.rcode() == dns.rcode.NXDOMAIN,
                         f"{web} NXDOMAIN after delete")
    await asyncio.to_thread(kubectl, "delete", "endpointslice", "db-1", "-n", ns)
    await answer_becomes(dns_server, f"db.{ns}.svc.cluster.local", "A",
                         lambda r: r.rcode() == dns.rcode.NXDOMAIN,
                         "headless db NXDOMAIN without endpoints")
