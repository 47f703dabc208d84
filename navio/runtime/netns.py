"""Pod networking: a named network namespace per pod, a veth into the node's bridge, an IP.

Why: issue 7 asks that each pod have its own network stack (two replicas can both listen on
:8080) reachable at a pod IP from the node's pod CIDR, like CNI's bridge + host-local plugins.
pyroute2 speaks netlink directly, so no `ip` binary is needed. Nothing here forks the agent:
namespaces are made by namespaces.create_netns, and the netlink socket for a namespace is
opened inside it by a short-lived thread (pyroute2's own `netns=` forks a child per socket).

Layout for a sandbox whose id starts with <p> (12 hex characters):
- netns `navio-<p>`, `ip netns`-compatible (/run/netns/navio-<p>), with `lo` up, `eth0` holding
  the pod IP (prefix of the pod CIDR) and a default route via the bridge's address;
- its veth peer `nv<p>` lives in the *node* namespace (the host's by default; tests pass a
  node netns with no route out, PLATFORM.md's safe pattern), is a port of the bridge, up, with
  hairpin on (so a pod can reach itself through a service VIP);
- the bridge (created when missing) holds the CIDR's first address.

Guarantees: `setup` is idempotent (a half-made pod network from a crash is completed or
rebuilt); `teardown` is idempotent and removes the veth and the namespace; nothing is ever
created in the host namespace when a node netns is configured. Sysctls (ip_forward,
bridge-nf-call-iptables), NAT and blackhole routes belong to the agent's network setup, not
to the runtime.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Coroutine, TypeVar

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from navio.runtime.namespaces import NETNS_DIR, create_netns, delete_netns, socket_in_netns

__all__ = ["NETNS_DIR", "PodNetwork", "netns_name", "veth_name"]

log = logging.getLogger(__name__)

_PREFIX = 12
_T = TypeVar("_T")


class _Worker:
    """One thread running a stdlib selector loop for pyroute2 (uvloop, the agent's loop,
    cannot carry netlink sockets: "invalid family 16"), started on first use. Work submitted
    from any loop runs there one piece at a time, so the node connection it keeps is never
    shared by two requests."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._serial: asyncio.Lock | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.SelectorEventLoop()
                thread = threading.Thread(target=loop.run_forever, name="navio-podnet",
                                          daemon=True)
                thread.start()
                self._loop, self._thread, self._serial = loop, thread, None
            return self._loop

    async def run(self, work: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        loop = self._ensure()

        async def serial() -> _T:
            if self._serial is None:
                self._serial = asyncio.Lock()
            async with self._serial:
                return await work()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(serial(), loop))

    def close(self, last: Callable[[], None] | None = None) -> None:
        """Stop the thread, calling `last` on it first."""
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            async def finish() -> None:
                if last is not None:
                    last()
                for _ in range(3):   # closed transports finish closing on the next turns
                    await asyncio.sleep(0)

            if thread.is_alive():
                try:
                    asyncio.run_coroutine_threadsafe(finish(), loop).result(5)
                except Exception:   # (closing is best effort: the thread stops anyway)
                    log.warning("closing the pod network worker failed", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()


def _is_netns(path: str) -> bool:
    """A bound namespace lives on nsfs, not on the file system of the directory holding it."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


def netns_name(sandbox_id: str) -> str:
    return f"navio-{sandbox_id[:_PREFIX]}"


def veth_name(sandbox_id: str) -> str:
    return f"nv{sandbox_id[:_PREFIX]}"   # 14 characters: under IFNAMSIZ (15)


class PodNetwork:
    """Plumbing for pods on one bridge in one node namespace. Its netlink work runs on one
    worker thread (`close` stops it), which keeps its connection to the node namespace and
    the bridge's index between pods; any failure drops both, so the next call starts over."""

    def __init__(self, *, bridge: str, gateway: str, prefixlen: int,
                 node_netns: str | None = None, mtu: int = 0) -> None:
        self.bridge = bridge
        self.mtu = mtu
        self.gateway = gateway
        self.prefixlen = prefixlen
        self.node_netns = node_netns
        self._worker = _Worker()
        self._node: AsyncIPRoute | None = None     # (used on the worker's loop only)
        self._bridge_index: int | None = None

    def _open(self, name: str | None) -> AsyncIPRoute:
        if name:   # (a namespace that should exist is never created here)
            sock = socket_in_netns(os.path.join(NETNS_DIR, name), socket.AF_NETLINK,
                                   socket.SOCK_DGRAM, 0)   # NETLINK_ROUTE
            return AsyncIPRoute(fileno=sock.detach(), groups=0)
        return AsyncIPRoute(groups=0)

    @asynccontextmanager
    async def _ipr(self, name: str | None) -> AsyncIterator[AsyncIPRoute]:
        async with self._open(name) as ipr:
            yield ipr

    async def _node_ipr(self) -> AsyncIPRoute:
        if self._node is None:
            self._node = self._open(self.node_netns)
        return self._node

    def _forget(self) -> None:
        if self._node is not None:
            self._node.close()
        self._node = self._bridge_index = None

    async def _run(self, work: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        async def guarded() -> _T:
            try:
                return await work()
            except BaseException:
                self._forget()
                raise
        return await self._worker.run(guarded)

    async def _lookup(self, ipr: AsyncIPRoute, ifname: str) -> int | None:
        found = await ipr.link_lookup(ifname=ifname)
        return found[0] if found else None

    async def ensure_bridge(self) -> None:
        """Create the bridge with the gateway address if it is missing; bring it up."""
        await self._run(self._ensure_bridge)

    async def setup(self, sandbox_id: str, ip: str) -> str:
        """Create (or complete) the pod's namespace and link; returns the netns path."""
        path: str = await self._run(lambda: self._setup(sandbox_id, ip))
        log.info("pod network ready", extra={"sandbox": sandbox_id, "netns": path, "ip": ip})
        return path

    async def teardown(self, sandbox_id: str) -> None:
        """Remove the pod's veth and namespace; safe to repeat."""
        if await self._run(lambda: self._teardown(sandbox_id)):
            log.info("pod network removed", extra={"sandbox": sandbox_id})

    def close(self) -> None:
        """Stop the worker thread (its connection goes with it); pods keep their network."""
        self._worker.close(last=self._forget)

    async def _ensure_bridge(self) -> int:
        ipr = await self._node_ipr()
        index = await self._lookup(ipr, self.bridge)
        if index is None:
            try:
                await ipr.link("add", ifname=self.bridge, kind="bridge")
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            index = await self._lookup(ipr, self.bridge)
            log.info("bridge created", extra={"bridge": self.bridge,
                                              "netns": self.node_netns or "host"})
        assert index is not None
        have = {a.get("address") async for a in await ipr.addr("dump", index=index)}
        if self.gateway not in have:
            try:
                await ipr.addr("add", index=index, address=self.gateway,
                               prefixlen=self.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
        await ipr.link("set", index=index, state="up")
        self._bridge_index = index
        return index

    async def _setup(self, sandbox_id: str, ip: str) -> str:
        name = netns_name(sandbox_id)
        path = os.path.join(NETNS_DIR, name)
        if os.path.lexists(path) and not _is_netns(path):   # a crash mid-creation
            delete_netns(name)
        if not os.path.lexists(path):
            create_netns(name)
        bridge = self._bridge_index
        if bridge is None:
            bridge = await self._ensure_bridge()
        veth = veth_name(sandbox_id)
        node = await self._node_ipr()
        stale = await self._lookup(node, veth)
        if stale is not None:   # a crash mid-setup: rebuild the pair from scratch
            await node.link("del", index=stale)
        async with self._ipr(name) as pod:
            leftover = await self._lookup(pod, "eth0")
            if leftover is not None:
                await pod.link("del", index=leftover)
            await node.link("add", ifname=veth, kind="veth",
                            peer={"ifname": "eth0", "net_ns_fd": name})
            index = await self._lookup(node, veth)
            try:
                await node.link("set", index=index, master=bridge)
            except NetlinkError:   # the bridge we knew is gone: make it again
                bridge = await self._ensure_bridge()
                await node.link("set", index=index, master=bridge)
            await node.brport("set", index=index, mode=1)   # IFLA_BRPORT_MODE: hairpin
            if self.mtu:   # (an overlay's encapsulation takes some of the link's MTU)
                await node.link("set", index=index, mtu=self.mtu)
            await node.link("set", index=index, state="up")
            await pod.link("set", index=1, state="up")
            eth0 = await self._lookup(pod, "eth0")
            if self.mtu:
                await pod.link("set", index=eth0, mtu=self.mtu)
            await pod.addr("add", index=eth0, address=ip, prefixlen=self.prefixlen)
            await pod.link("set", index=eth0, state="up")
            await pod.route("add", dst="default", gateway=self.gateway)
        return path

    async def _teardown(self, sandbox_id: str) -> bool:
        name = netns_name(sandbox_id)
        node_gone = bool(self.node_netns) and not os.path.exists(
            os.path.join(NETNS_DIR, str(self.node_netns)))
        if node_gone:   # (a deleted node namespace took its veths and bridge with it)
            self._forget()
        else:
            node = await self._node_ipr()
            index = await self._lookup(node, veth_name(sandbox_id))
            if index is not None:
                try:
                    await node.link("del", index=index)
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
        return delete_netns(name)
