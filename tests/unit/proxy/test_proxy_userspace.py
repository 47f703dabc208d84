"""The unprivileged forwarder on loopback: endpoint choice, affinity, updates (issue 8)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest

from navio.proxy.model import Endpoint, ServicePort
from navio.proxy.userspace import UserspaceBackend

LOOP = "127.0.0.1"


class Backends:
    """Loopback servers that answer their name and close."""

    def __init__(self) -> None:
        self.servers: dict[str, asyncio.Server] = {}
        self.ports: dict[str, int] = {}

    async def start(self, name: str) -> Endpoint:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(name.encode())
            await writer.drain()
            writer.close()

        srv = await asyncio.start_server(answer, LOOP, 0)
        self.servers[name] = srv
        self.ports[name] = srv.sockets[0].getsockname()[1]
        return Endpoint(LOOP, self.ports[name])

    async def close(self) -> None:
        for srv in self.servers.values():
            srv.close()
            await srv.wait_closed()


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    yield b
    await b.close()


@pytest.fixture
async def proxy() -> AsyncIterator[UserspaceBackend]:
    p = UserspaceBackend(LOOP, rng=random.Random(7), connect_timeout=1.0)
    yield p
    await p.cleanup()


def port(eps, *, node_port: int = 0, affinity: int = 0, protocol: str = "TCP",
         name: str = "web") -> ServicePort:
    return ServicePort("ns1", name, "http", protocol, "10.43.0.10", 80, node_port=node_port,
                       affinity_timeout=affinity, cluster_endpoints=tuple(eps),
                       has_endpoints=bool(eps))


async def ask(addr: tuple[str, int], times: int = 1) -> list[str]:
    out = []
    for _ in range(times):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), 2.0)
        out.append((await asyncio.wait_for(reader.read(), 2.0)).decode())
        writer.close()
    return out


async def sync(proxy: UserspaceBackend, *ports: ServicePort) -> None:
    services = {}
    for sp in ports:
        services.setdefault(f"{sp.namespace}/{sp.name}", ())
        services[f"{sp.namespace}/{sp.name}"] += (sp,)
    await proxy.sync(services, services.keys(), full=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOP, 0))
        return s.getsockname()[1]


async def test_connections_spread_over_every_endpoint(proxy, backends):
    eps = [await backends.start(n) for n in ("a", "b", "c")]
    await sync(proxy, port(eps))
    answers = await ask(proxy.listener("ns1/web:http/TCP"), 40)
    assert set(answers) == {"a", "b", "c"}


class Pick:
    """A stand-in for random.Random that always picks the `index`-th candidate."""

    def __init__(self, index: int) -> None:
        self.index = index

    def choice(self, seq):
        return seq[self.index]


async def test_client_ip_affinity_pins_until_the_timeout(proxy, backends):
    now = [0.0]
    proxy.clock = lambda: now[0]
    proxy.rng = Pick(0)
    eps = [await backends.start(n) for n in ("a", "b", "c")]
    await sync(proxy, port(eps, affinity=60))
    addr = proxy.listener("ns1/web:http/TCP")
    assert await ask(addr) == ["a"]
    proxy.rng = Pick(2)
    now[0] += 59
    assert await ask(addr, 5) == ["a"] * 5          # each use refreshes the pin
    now[0] += 59
    assert await ask(addr) == ["a"]
    now[0] += 61
    assert await ask(addr, 3) == ["c"] * 3          # expired: a fresh random choice


async def test_affinity_moves_when_the_pinned_endpoint_goes(proxy, backends):
    proxy.rng = Pick(0)
    eps = [await backends.start(n) for n in ("a", "b")]
    await sync(proxy, port(eps, affinity=60))
    addr = proxy.listener("ns1/web:http/TCP")
    assert await ask(addr) == ["a"]
    await sync(proxy, port(eps[1:], affinity=60))
    assert await ask(addr, 3) == ["b"] * 3


async def test_endpoint_changes_apply_to_the_next_connection(proxy, backends):
    eps = [await backends.start(n) for n in ("a", "b")]
    await sync(proxy, port(eps))
    addr = proxy.listener("ns1/web:http/TCP")
    await sync(proxy, port(eps[:1]))
    assert proxy.listener("ns1/web:http/TCP") == addr        # the port stays
    assert set(await ask(addr, 15)) == {"a"}


async def test_a_dead_endpoint_is_skipped(proxy, backends):
    alive = await backends.start("a")
    dead = Endpoint(LOOP, free_port())
    await sync(proxy, port([alive, dead]))
    assert set(await ask(proxy.listener("ns1/web:http/TCP"), 10)) == {"a"}


async def test_a_service_port_without_targets_closes_connections(proxy):
    await sync(proxy, port([]))
    assert await ask(proxy.listener("ns1/web:http/TCP")) == [""]


async def test_node_ports_are_listened_on_and_fall_back_when_taken(proxy, backends):
    eps = [await backends.start("a")]
    wanted = free_port()
    await sync(proxy, port(eps, node_port=wanted))
    assert proxy.listener("ns1/web:http/TCP") == (LOOP, wanted)
    assert await ask((LOOP, wanted)) == ["a"]
    await sync(proxy, port(eps, node_port=wanted, name="other"))   # same node port, taken
    fallback = proxy.listener("ns1/other:http/TCP")
    assert fallback is not None and fallback[1] != wanted
    assert await ask(fallback) == ["a"]


async def test_removing_a_service_closes_its_listener(proxy, backends):
    await sync(proxy, port([await backends.start("a")]))
    addr = proxy.listener("ns1/web:http/TCP")
    await proxy.sync({}, ["ns1/web"], full=False)
    assert proxy.listener("ns1/web:http/TCP") is None
    with pytest.raises(OSError):
        await ask(addr)


class UdpEcho(asyncio.DatagramProtocol):
    """A loopback UDP server answering `<name> <payload>`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(f"{self.name} {data.decode()}".encode(), addr)


async def udp_endpoint(name: str, opened: list) -> Endpoint:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: UdpEcho(name), local_addr=(LOOP, 0))
    opened.append(transport)
    return Endpoint(LOOP, transport.get_extra_info("sockname")[1])


def udp_ask(addr: tuple[str, int], sock: socket.socket, payload: str) -> str:
    sock.sendto(payload.encode(), addr)
    return sock.recv(1024).decode()


async def test_udp_is_forwarded_and_a_client_keeps_its_endpoint_until_it_goes(proxy):
    opened: list = []
    try:
        eps = [await udp_endpoint(n, opened) for n in ("a", "b", "c")]
        await sync(proxy, port(eps, protocol="UDP"))
        addr = proxy.listener("ns1/web:http/UDP")
        assert addr is not None
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(30)]
        try:
            for s in socks:
                s.settimeout(2)
            seen = set()
            for i, s in enumerate(socks):     # a new client address each: spread over all
                reply = await asyncio.to_thread(udp_ask, addr, s, f"q{i}")
                name, payload = reply.split()
                assert payload == f"q{i}"
                seen.add(name)
            assert seen == {"a", "b", "c"}
            # one client address, many datagrams: one session, one endpoint
            first = (await asyncio.to_thread(udp_ask, addr, socks[0], "x")).split()[0]
            for _ in range(5):
                assert (await asyncio.to_thread(udp_ask, addr, socks[0], "x")).split()[0] \
                    == first
            # its endpoint goes: the session closes and the next datagram picks a live one
            left = [e for e, n in zip(eps, "abc") if n != first]
            await sync(proxy, port(left, protocol="UDP"))
            after = {(await asyncio.to_thread(udp_ask, addr, socks[0], "y")).split()[0]
                     for _ in range(5)}
            assert len(after) == 1 and first not in after, (first, after)
        finally:
            for s in socks:
                s.close()
        assert "ns1/web:http/UDP: listening on" in proxy.describe()[0]
    finally:
        for t in opened:
            t.close()


async def test_idle_udp_sessions_are_closed(backends):
    opened: list = []
    proxy = UserspaceBackend(LOOP, udp_idle_timeout=0.2)
    try:
        ep = await udp_endpoint("a", opened)
        await sync(proxy, port([ep], protocol="UDP"))
        addr = proxy.listener("ns1/web:http/UDP")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            assert (await asyncio.to_thread(udp_ask, addr, s, "x")) == "a x"
        px = proxy._ports["ns1/web:http/UDP"]
        assert len(px.sessions) == 1
        async with asyncio.timeout(5):
            while px.sessions:
                await asyncio.sleep(0.05)
    finally:
        await proxy.cleanup()
        for t in opened:
            t.close()


async def test_sctp_ports_are_skipped(proxy):
    await sync(proxy, port([], protocol="SCTP"))
    assert proxy.listener("ns1/web:http/SCTP") is None
    assert proxy.describe() == []


async def test_describe_shows_where_each_port_listens(proxy, backends):
    await sync(proxy, port([await backends.start("a")]))
    (line,) = proxy.describe()
    assert line.startswith(f"ns1/web:http/TCP: listening on {LOOP}:")
    assert "(for 10.43.0.10:80), 1 targets" in line
