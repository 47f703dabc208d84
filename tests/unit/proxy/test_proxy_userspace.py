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


async def test_udp_ports_are_skipped(proxy):
    await sync(proxy, port([], protocol="UDP"))
    assert proxy.listener("ns1/web:http/UDP") is None
    assert proxy.describe() == []


async def test_describe_shows_where_each_port_listens(proxy, backends):
    await sync(proxy, port([await backends.start("a")]))
    (line,) = proxy.describe()
    assert line.startswith(f"ns1/web:http/TCP: listening on {LOOP}:")
    assert "(for 10.43.0.10:80), 1 targets" in line
