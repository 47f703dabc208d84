"""The unprivileged proxy: asyncio listeners on the node that forward TCP and UDP to service
endpoints.

Why: without root there are no kernel rules, and a cluster IP is not routable from the node, so
(like kube-proxy's old userspace mode, which listened on a local "proxy port" per service port)
each service port gets a listener of its own on the node address:
- a service port with a NodePort listens on `bind_address:nodePort` and stands for external
  traffic (externalTrafficPolicy applies);
- any other listens on `bind_address:<ephemeral port>` — the port stays the same as long as the
  service port exists — and stands for the cluster IP (internalTrafficPolicy applies). The
  mapping `clusterIP:port → node:localPort` is shown by `navio proxy rules`.
If the NodePort cannot be bound (in use, or below the unprivileged port range), the listener
falls back to an ephemeral port and says so in its state.

What is guaranteed:
- Endpoint choice as the kernel rules make it: uniformly random among the policy's targets;
  with ClientIP affinity a client address keeps its endpoint while it stays a target and was
  used within the timeout (kube-proxy userspace's affinity table).
- A failed connect to an endpoint is retried on another one (at most 4 tries, each bounded by
  `connect_timeout`); with none left the client connection is closed.
- Endpoint changes apply to new connections at once; existing connections are left alone. A
  removed service port closes its listener and its connections.
- UDP: one listening socket per port; each client address gets a session — a socket connected
  to the endpoint chosen for its first datagram — that relays replies back from the listener's
  address. A session idle for `udp_idle_timeout` is closed, and so is one whose endpoint
  stops being a target (the userspace equivalent of the kernel backends' conntrack cleanup),
  so the client's next datagram picks a live endpoint. SCTP ports are skipped (logged once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping

from navio.proxy.model import Endpoint, ServicePort

__all__ = ["UserspaceBackend"]

log = logging.getLogger(__name__)

_MAX_TRIES = 4
_AFFINITY_PRUNE_AT = 4096
_BUFFER = 65536


def _port_id(sp: ServicePort) -> str:
    return f"{sp}/{sp.protocol}"


def _service_key(sp: ServicePort) -> str:
    return f"{sp.namespace}/{sp.name}"


class _PortProxy:
    """One listener and the forwarding state of one service port."""

    def __init__(self, sp: ServicePort, owner: "UserspaceBackend") -> None:
        self.sp = sp
        self.owner = owner
        self.server: asyncio.Server | None = None
        self.port = 0
        self.is_node_port = False
        self.affinity: dict[str, tuple[str, float]] = {}
        self.conns: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    async def start(self) -> None:
        bind = self.owner.bind_address
        if self.sp.node_port:
            try:
                self.server = await asyncio.start_server(self._handle, bind, self.sp.node_port)
                self.is_node_port = True
            except OSError as exc:
                log.warning("cannot listen on node port, using an ephemeral port",
                            extra={"service": str(self.sp), "node_port": self.sp.node_port,
                                   "error": exc.strerror})
        if self.server is None:
            self.server = await asyncio.start_server(self._handle, bind, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def update(self, sp: ServicePort) -> None:
        self.sp = sp
        live = {str(e) for e in self.targets()}
        self.affinity = {c: v for c, v in self.affinity.items() if v[0] in live}

    def targets(self) -> tuple[Endpoint, ...]:
        return self.sp.external_endpoints if self.is_node_port else self.sp.internal_endpoints

    def choose(self, client: str, exclude: Collection[str] = ()) -> Endpoint | None:
        """The endpoint for a new connection from `client`, or None when there is none."""
        eps = [e for e in self.targets() if str(e) not in exclude]
        if not eps:
            return None
        now = self.owner.clock()
        timeout = self.sp.affinity_timeout
        if timeout:
            pinned = self.affinity.get(client)
            if pinned is not None and now - pinned[1] < timeout:
                for e in eps:
                    if str(e) == pinned[0]:
                        self.affinity[client] = (pinned[0], now)
                        return e
        ep = self.owner.rng.choice(eps)
        if timeout:
            if len(self.affinity) >= _AFFINITY_PRUNE_AT:      # bound memory: drop expired pins
                self.affinity = {c: v for c, v in self.affinity.items()
                                 if now - v[1] < timeout}
            self.affinity[client] = (str(ep), now)
        return ep

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.conns.add(writer)
        peer = writer.get_extra_info("peername") or ("", 0)
        tried: set[str] = set()
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while upstream is None and len(tried) < _MAX_TRIES:
                ep = self.choose(peer[0], tried)
                if ep is None:
                    break
                tried.add(str(ep))
                try:
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(ep.ip, ep.port), self.owner.connect_timeout)
                except (OSError, TimeoutError):
                    self.affinity.pop(peer[0], None)
                    log.info("endpoint connect failed",
                             extra={"service": str(self.sp), "endpoint": str(ep)})
            if upstream is None:
                return
            self.conns.add(upstream[1])
            try:
                await asyncio.gather(_pipe(reader, upstream[1]), _pipe(upstream[0], writer))
            finally:
                self.conns.discard(upstream[1])
                upstream[1].close()
        finally:
            self.conns.discard(writer)
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.conns):
            w.close()
        if self.server is not None:
            await self.server.wait_closed()

    def serving(self) -> bool:
        return self.server is not None and self.server.is_serving()


class _UdpSession(asyncio.DatagramProtocol):
    """One client address's flow: a socket connected to its endpoint; replies go back."""

    def __init__(self, port: "_UdpPortProxy", client: tuple[str, int], endpoint: Endpoint
                 ) -> None:
        self.port = port
        self.client = client
        self.endpoint = str(endpoint)
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last = port.owner.clock()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> None:
        self.last = self.port.owner.clock()
        if self.transport is None:
            if len(self.pending) < 64:
                self.pending.append(data)
        else:
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = self.port.owner.clock()
        listener = self.port.transport
        if listener is not None and not listener.is_closing():
            listener.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        pass                  # ICMP errors from the endpoint: the client's timeout handles it

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, port: "_UdpPortProxy") -> None:
        self.port = port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.port.received(data, addr)


class _UdpPortProxy(_PortProxy):
    """One UDP listener and its client sessions."""

    def __init__(self, sp: ServicePort, owner: "UserspaceBackend") -> None:
        super().__init__(sp, owner)
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], _UdpSession] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        bind = self.owner.bind_address
        if self.sp.node_port:
            try:
                self.transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpListener(self), local_addr=(bind, self.sp.node_port))
                self.is_node_port = True
            except OSError as exc:
                log.warning("cannot listen on node port, using an ephemeral port",
                            extra={"service": str(self.sp), "node_port": self.sp.node_port,
                                   "error": exc.strerror})
        if self.transport is None:
            self.transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpListener(self), local_addr=(bind, 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        self._sweeper = asyncio.create_task(self._sweep(), name=f"udp sessions {self.sp}")

    def received(self, data: bytes, client: tuple[str, int]) -> None:
        session = self.sessions.get(client)
        if session is None or session.closed:
            ep = self.choose(client[0])
            if ep is None:
                return                   # no endpoint: dropped, as the kernel rules reject
            self.accepted += 1
            session = self.sessions[client] = _UdpSession(self, client, ep)
            task = asyncio.create_task(self._connect(session, ep))
            self.owner.tasks.add(task)
            task.add_done_callback(self.owner.tasks.discard)
        session.send(data)

    async def _connect(self, session: _UdpSession, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: session, remote_addr=(ep.ip, ep.port))
        except OSError as exc:
            log.info("endpoint connect failed", extra={"service": str(self.sp),
                                                       "endpoint": str(ep),
                                                       "error": exc.strerror})
            session.closed = True
            self.sessions.pop(session.client, None)
            return
        if session.closed:
            transport.close()
            return
        for data in session.pending:
            transport.sendto(data)
        session.pending = []

    def update(self, sp: ServicePort) -> None:
        super().update(sp)
        live = {str(e) for e in self.targets()}
        for client, session in list(self.sessions.items()):
            if session.endpoint not in live:
                session.close()
                del self.sessions[client]

    async def _sweep(self) -> None:
        idle = self.owner.udp_idle_timeout
        while True:
            await asyncio.sleep(min(idle / 2, 5.0))
            now = self.owner.clock()
            for client, session in list(self.sessions.items()):
                if now - session.last > idle:
                    session.close()
                    del self.sessions[client]

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for session in self.sessions.values():
            session.close()
        self.sessions = {}
        if self.transport is not None:
            self.transport.close()

    def serving(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_BUFFER):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        pass


class UserspaceBackend:
    """Backend: one forwarding listener per TCP or UDP service port."""

    name = "userspace"

    def __init__(self, bind_address: str = "0.0.0.0", *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 connect_timeout: float = 5.0, udp_idle_timeout: float = 30.0) -> None:
        self.bind_address = bind_address
        self.udp_idle_timeout = udp_idle_timeout
        self.tasks: set[asyncio.Task[None]] = set()
        self.rng = rng or random.Random()
        self.clock = clock
        self.connect_timeout = connect_timeout
        self._ports: dict[str, _PortProxy] = {}
        self._skipped: set[str] = set()

    def listener(self, service_port: str) -> tuple[str, int] | None:
        """(address, port) serving `ns/name:port/PROTO`, or None."""
        p = self._ports.get(service_port)
        return (self.bind_address, p.port) if p is not None else None

    async def sync(self, services: Mapping[str, tuple[ServicePort, ...]],
                   changed: Collection[str], *, full: bool) -> str:
        keys = set(changed)
        if full:
            keys |= set(services) | {_service_key(p.sp) for p in self._ports.values()}
        for key in keys:
            wanted = {}
            for sp in services.get(key, ()):
                if sp.protocol not in ("TCP", "UDP"):
                    if _port_id(sp) not in self._skipped:
                        self._skipped.add(_port_id(sp))
                        log.warning("userspace proxy forwards TCP and UDP only, port skipped",
                                    extra={"service": str(sp), "protocol": sp.protocol})
                    continue
                wanted[_port_id(sp)] = sp
            for pid in [p for p, px in self._ports.items()
                        if _service_key(px.sp) == key and p not in wanted]:
                await self._ports.pop(pid).close()
            for pid, sp in wanted.items():
                px = self._ports.get(pid)
                if px is not None and px.sp.node_port != sp.node_port:
                    await self._ports.pop(pid).close()
                    px = None
                if px is None:
                    px = (_UdpPortProxy if sp.protocol == "UDP" else _PortProxy)(sp, self)
                    await px.start()
                    self._ports[pid] = px
                px.update(sp)
        return "full" if full else "partial"

    async def healthy(self) -> bool:
        return all(p.serving() for p in self._ports.values())

    async def cleanup(self) -> None:
        ports, self._ports = self._ports, {}
        for p in ports.values():
            await p.close()

    def describe(self) -> list[str]:
        out = []
        for pid in sorted(self._ports):
            p = self._ports[pid]
            role = "nodePort" if p.is_node_port else f"for {p.sp.cluster_ip}:{p.sp.port}"
            out.append(f"{pid}: listening on {self.bind_address}:{p.port} ({role}), "
                       f"{len(p.targets())} targets, {p.accepted} connections")
        return out

