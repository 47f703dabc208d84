"""The cluster DNS server: UDP and TCP on each bind address, answering from the record set.

Why: pods resolve Services through this server (their resolv.conf names it, see
resolvconf.py); it answers the cluster zone from memory and forwards everything else.

What is guaranteed:
- Every bind address gets a UDP socket and a TCP listener on the same port. Sockets are bound
  with IP_FREEBIND, so the server may start before the DNS Service IP is routed to the node.
- A query answered from the record set is answered inside the datagram callback: no task, no
  await. Only forwarded queries become tasks, at most `max_concurrent_forwards` at once;
  beyond that the answer is REFUSED at once. A failed forward is SERVFAIL. Names in the
  cluster zone are never forwarded.
- TCP follows RFC 7766 framing: several queries per connection, answered in order; a
  connection idle for `tcp_idle_timeout` is closed; beyond `max_tcp_connections` new
  connections are closed at once.
- `stop` stops intake first (sockets closed), waits for in-flight forwards up to
  `shutdown_grace`, cancels the rest and logs how many, then stops the informers.
- Entry points: `run(config)` serves until cancelled; `serve(config)` is the same as an async
  context manager yielding the started `DnsServer` (tests use it to learn the bound port).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import dns.flags
import dns.rcode

from navio.client import Client
from navio.dns.cache import DnsCache
from navio.dns.config import DnsConfig
from navio.dns.forward import Forwarder, ForwardError
from navio.dns.records import RecordSet
from navio.dns.responder import Deferred, Responder

__all__ = ["DnsServer", "DnsConfig", "SocketFactory", "run", "serve", "record_set_for"]

log = logging.getLogger(__name__)

_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
_BIND_ATTEMPTS = 20


def record_set_for(config: DnsConfig) -> RecordSet:
    """An empty record set configured as `config` says."""
    return RecordSet(config.zone, ttl=config.ttl, pod_mode=config.pod_mode,
                     reverse_cidrs=(*config.service_cidrs, *config.pod_cidrs),
                     dns_ips=config.cluster_dns)


SocketFactory = Callable[[int, int], socket.socket]


def _socket(host: str, port: int, kind: int,
            factory: SocketFactory = socket.socket) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = factory(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
        except OSError:
            pass
        sock.bind((host, port))
        sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: "DnsServer") -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        try:
            out = self.server.responder.respond(data, tcp=False)
        except Exception:
            log.exception("dns query failed", extra={"transport": "udp"})
            return
        if out is None:
            return
        if isinstance(out, bytes):
            transport.sendto(out, addr)
            return

        def reply(wire: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(wire, addr)
        self.server.defer(out, reply)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns udp socket error", extra={"error": type(exc).__name__})


class DnsServer:
    def __init__(self, config: DnsConfig, records: RecordSet, forwarder: Forwarder, *,
                 cache: DnsCache | None = None,
                 socket_factory: SocketFactory = socket.socket) -> None:
        self.config = config
        self.socket_factory = socket_factory
        self.records = records
        self.forwarder = forwarder
        self.cache = cache
        self.responder = Responder(records, cache_size=config.cache_size)
        self.addresses: list[tuple[str, int]] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Start the informers (if any) and bind every address; raises OSError on failure."""
        if self.cache is not None:
            self.cache.start()
        port = self.config.port
        try:
            for host in self.config.bind_addresses:
                port = await self._bind(host, port)
                self.addresses.append((host, port))
                log.info("dns server listening", extra={"address": host, "port": port})
        except BaseException:
            await self.stop()
            raise

    async def _bind(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        for _ in range(_BIND_ATTEMPTS):
            udp = _socket(host, port, socket.SOCK_DGRAM, self.socket_factory)
            chosen = int(udp.getsockname()[1])
            try:
                tcp = _socket(host, chosen, socket.SOCK_STREAM, self.socket_factory)
            except OSError as exc:
                udp.close()
                if port == 0 and exc.errno == errno.EADDRINUSE:
                    continue          # the free UDP port is taken for TCP: pick another
                raise
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), sock=udp)
            except BaseException:
                udp.close()
                tcp.close()
                raise
            self._udp.append(transport)
            try:
                self._tcp.append(await asyncio.start_server(self._serve_tcp, sock=tcp))
            except BaseException:
                tcp.close()
                raise
            return chosen
        raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host}")

    async def wait_synced(self, timeout: float) -> bool:
        """True once the record set holds the first list of every informer."""
        if self.records.synced or self.cache is None:
            return self.records.synced
        return await self.cache.wait_synced(timeout)

    # ---- forwarding --------------------------------------------------------------------

    def defer(self, deferred: Deferred, reply: Callable[[bytes], None]) -> None:
        """Resolve `deferred` upstream in a task and `reply` with the response."""
        if not self.forwarder.try_acquire():
            reply(self.responder.error(deferred, dns.rcode.REFUSED))
            return
        task = asyncio.create_task(self._forward(deferred, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, deferred: Deferred, reply: Callable[[bytes], None]) -> None:
        try:
            reply(await self._resolve(deferred))
        except Exception:
            log.exception("dns forward failed")
        finally:
            self.forwarder.release()

    async def _resolve(self, deferred: Deferred) -> bytes:
        query = deferred.query
        try:
            upstream = await self.forwarder.resolve(
                deferred.qname, deferred.rdtype,
                rd=bool(query.flags & dns.flags.RD) or deferred.partial is not None,
                cd=bool(query.flags & dns.flags.CD),
                dnssec=bool(query.ednsflags & dns.flags.DO))
        except ForwardError:
            upstream = None
        except Exception:
            log.exception("dns upstream resolution failed")
            upstream = None
        return self.responder.finish(deferred, upstream)

    # ---- TCP ---------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= self.config.max_tcp_connections:
            writer.close()
            return
        self._writers.add(writer)
        idle = self.config.tcp_idle_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        size = int.from_bytes(await reader.readexactly(2), "big")
                        wire = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                out = await self._answer_tcp(wire)
                if out is None:
                    return
                writer.write(len(out).to_bytes(2, "big") + out)
                async with asyncio.timeout(idle):
                    await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer_tcp(self, wire: bytes) -> bytes | None:
        try:
            out = self.responder.respond(wire, tcp=True)
        except Exception:
            log.exception("dns query failed", extra={"transport": "tcp"})
            return None
        if not isinstance(out, Deferred):
            return out
        if not self.forwarder.try_acquire():
            return self.responder.error(out, dns.rcode.REFUSED)
        try:
            return await self._resolve(out)
        finally:
            self.forwarder.release()

    # ---- shutdown ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop intake, drain forwards to `shutdown_grace`, stop informers; safe to repeat."""
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
        for writer in list(self._writers):
            writer.close()
        self._udp, self._tcp = [], []
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.config.shutdown_grace)
        for task in pending:
            task.cancel("shutdown deadline")
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        if pending or self.addresses:
            log.info("dns server stopped", extra={"cancelled": len(pending)})
        self.addresses = []
        if self.cache is not None:
            await self.cache.stop()


@asynccontextmanager
async def serve(config: DnsConfig, *, client: Client | None = None,
                socket_factory: SocketFactory = socket.socket) -> AsyncIterator[DnsServer]:
    """A started DNS server fed by informers through `config.kubeconfig` (or `client`);
    stopped on exit. `socket_factory` makes the listening sockets: the node agent passes one
    that creates them inside the node's network namespace."""
    records = record_set_for(config)
    forwarder = Forwarder(config.resolved_upstreams(), timeout=config.forward_timeout,
                          max_concurrent=config.max_concurrent_forwards,
                          exclude=[(a, config.port) for a in config.bind_addresses])
    own = client is None
    if client is None:
        client = Client.from_kubeconfig(config.kubeconfig, component="dns")
    try:
        server = DnsServer(config, records, forwarder, cache=DnsCache(
            client, records, watch_pods=config.pod_mode == "verified"),
            socket_factory=socket_factory)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
    finally:
        if own:
            await client.close()


async def run(config: DnsConfig, *, client: Client | None = None,
              socket_factory: SocketFactory = socket.socket) -> None:
    """Serve DNS until cancelled (the node agent's / `navio dns` entry point)."""
    async with serve(config, client=client, socket_factory=socket_factory):
        await asyncio.Event().wait()
