"""The agent's local API load balancer (issue 16): several --server addresses, failover."""

from __future__ import annotations

import asyncio

import pytest

from navio.kubelet.apilb import ApiLoadBalancer, parse_servers


def test_server_lists_are_parsed_and_checked() -> None:
    assert parse_servers("https://10.0.0.1:6443, https://cp.example") == [
        ("10.0.0.1", 6443), ("cp.example", 6443)]
    for bad in ("http://a:1", "https://a:1/path", " , "):
        with pytest.raises(ValueError):
            parse_servers(bad)


async def _backend(name: bytes) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read(100)
        w.write(name + b":" + data)
        await w.drain()
        w.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _ask(url_port: int) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", url_port)
    w.write(b"hi")
    await w.drain()
    data = await r.read()
    w.close()
    return data


async def test_connections_go_to_the_first_address_that_answers() -> None:
    one, two = await _backend(b"one"), await _backend(b"two")
    ports = [s.sockets[0].getsockname()[1] for s in (one, two)]
    lb = ApiLoadBalancer([("127.0.0.1", p) for p in ports], port=0, connect_timeout=1)
    await lb.start()
    try:
        assert await _ask(lb.port) == b"one:hi"
        one.close()
        await one.wait_closed()
        assert await _ask(lb.port) == b"two:hi"       # failed over
        assert lb.preferred == 1
        assert await _ask(lb.port) == b"two:hi"       # and stays there
        two.close()
        await two.wait_closed()
        assert await _ask(lb.port) == b""             # nobody answers: closed at once
    finally:
        await lb.stop()
        two.close()
