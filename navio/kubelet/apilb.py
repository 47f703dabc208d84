"""A client-side load balancer in front of several API server addresses (k3s's agent load
balancer), so that an agent survives the control plane moving to another address.

Why: an agent joined to `https://A:6443` loses the cluster when A's address goes away,
though the control plane answers elsewhere. Given several `--server` URLs, the agent listens
on 127.0.0.1:`port` (6444, as k3s) and every component of the node (kubelet, proxy, DNS,
NetworkPolicy) talks to `https://127.0.0.1:6444`; each new TCP connection is passed through
to the first address that accepts it, starting with the last one that did. TLS is end to end
(the API server's certificate is valid for 127.0.0.1), so nothing here sees or needs
credentials.

Guarantees: a dead address costs a new connection at most `connect_timeout` before the next
is tried; an established connection is never moved (when its server goes, it closes and the
client reconnects through here); `stop()` closes the listener and every piped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

__all__ = ["ApiLoadBalancer", "DEFAULT_PORT", "parse_servers"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 6444
_CHUNK = 1 << 16


def parse_servers(text: str) -> list[tuple[str, int]]:
    """`https://a:6443,https://b:6443` -> [(a, 6443), (b, 6443)]; ValueError if malformed."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        url = urlsplit(part)
        if url.scheme != "https" or not url.hostname or url.path not in ("", "/"):
            raise ValueError(f"--server {part!r}: want https://HOST[:PORT]")
        out.append((url.hostname, url.port or 6443))
    if not out:
        raise ValueError("--server: no address")
    return out


class ApiLoadBalancer:
    def __init__(self, servers: list[tuple[str, int]], *, bind: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, connect_timeout: float = 3.0) -> None:
        self.servers = list(servers)
        self.bind, self.port = bind, port
        self.connect_timeout = connect_timeout
        self.preferred = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"https://{self.bind}:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, self.bind, self.port,
                                                  reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("API server load balancer listening", extra={
            "url": self.url, "servers": ",".join(f"{h}:{p}" for h, p in self.servers)})
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        n = len(self.servers)
        for i in range(n):
            index = (self.preferred + i) % n
            host, port = self.servers[index]
            try:
                conn = await asyncio.wait_for(asyncio.open_connection(host, port),
                                              self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                log.debug("API server address not answering", extra={
                    "server": f"{host}:{port}", "error": str(exc) or type(exc).__name__})
                continue
            if index != self.preferred:
                log.info("API server load balancer switched address",
                         extra={"server": f"{host}:{port}"})
                self.preferred = index
            return conn
        log.warning("no API server address answers",
                    extra={"servers": ",".join(f"{h}:{p}" for h, p in self.servers)})
        return None

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            upstream = await self._dial()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._pipes.discard(task)


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()
