"""The proxy's control loop: watch Services and EndpointSlices, keep the data plane in step.

Why: kube-proxy's shape (pkg/proxy/nftables/proxier.go with its change trackers and
BoundedFrequencyRunner) — event handlers only note which Service changed; a single sync loop
recomputes those services from the informer caches and hands the difference to the backend.

What is guaranteed:
- Nothing is programmed until both informers have listed (no partial rules after a restart);
  the first sync is full.
- Event handlers are O(1): they mark the Service key dirty and wake the loop. Changes arriving
  within `min_sync_period` of the previous sync are coalesced into the next one, so a change is
  applied within `min_sync_period` plus one sync's time (well under 1 s for partial syncs).
- Only services whose computed ports differ are passed to the backend as changed; unchanged
  services cost nothing. A failed sync is retried with exponential backoff (1 s → 30 s) as a
  full sync. Every `sync_period` the backend is asked whether its state is still in place (the
  table may have been deleted by someone else); if not, a full sync follows.
- `summary()` is a printable account of the routing state; with `state_file` set it is also
  written (atomically) after every sync, for `navio proxy rules` in another process.
- On shutdown the informers stop and, with `cleanup_on_exit`, the backend removes its state.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from navio.client import ENDPOINTSLICES, SERVICES, Client, Informer
from navio.proxy.config import ProxyConfig, select_mode
from navio.proxy.conntrack import ConntrackCleaner, stale_flows
from navio.proxy.model import (PROXY_LABEL_SELECTOR, ServiceMap, ServicePort, build_service,
                               build_service_map, service_key, slice_service_key)
from navio.proxy.nftables import RuleOptions
from navio.proxy.iptables_backend import IptablesBackend, IptablesRunner, live_iptables
from navio.proxy.nftables_backend import NftablesBackend, NftRunner, live_table, netns_prefix
from navio.proxy.protocol import Backend
from navio.proxy.userspace import UserspaceBackend

__all__ = ["Proxier", "ProxyConfig", "SyncStats", "run", "make_backend", "format_rules",
           "read_rules", "live_table", "live_rules", "SERVICE_INDEX"]

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    _nftables: type[Backend] = NftablesBackend
    _iptables: type[Backend] = IptablesBackend
    _userspace: type[Backend] = UserspaceBackend

SERVICE_INDEX = "service"
_RETRY_MIN, _RETRY_MAX = 1.0, 30.0


class _Cache(Protocol):
    """What the proxier needs of an informer (navio.client.Informer, or a test double)."""

    def get(self, key: str) -> dict[str, Any] | None: ...
    def by_index(self, name: str, value: str) -> list[dict[str, Any]]: ...
    def add_index(self, name: str, fn: Callable[[dict[str, Any]], Iterable[str]]) -> None: ...
    def add_handler(self, on_add: Any = None, on_update: Any = None,
                    on_delete: Any = None) -> None: ...
    def start(self) -> Any: ...
    async def stop(self) -> None: ...
    async def wait_synced(self, timeout: float) -> bool: ...
    def list(self) -> "builtins.list[dict[str, Any]]": ...   # last: it shadows `list`


@dataclass(frozen=True, slots=True)
class SyncStats:
    kind: str            # "full" or "partial"
    at: float            # wall-clock time the sync finished
    seconds: float       # how long it took
    changed: int         # services passed as changed


def _slice_index(obj: dict[str, Any]) -> list[str]:
    key = slice_service_key(obj)
    return [key] if key else []


class Proxier:
    """Keeps `backend` in step with the Services and EndpointSlices of two informers."""

    retry_min, retry_max = _RETRY_MIN, _RETRY_MAX       # backoff after a failed sync

    def __init__(self, config: ProxyConfig, backend: Backend, services: _Cache,
                 slices: _Cache, *, conntrack: ConntrackCleaner | None = None) -> None:
        self.config = config
        self.conntrack = conntrack       # kernel backends: UDP flows to removed endpoints
        self.backend = backend
        self.services_cache = services
        self.slices_cache = slices
        self.services: ServiceMap = {}
        self.generation = 0              # successful syncs so far
        self.last_sync: SyncStats | None = None
        self._dirty: set[str] = set()
        self._full = True
        self._wake = asyncio.Event()
        self._failures = 0
        slices.add_index(SERVICE_INDEX, _slice_index)
        services.add_handler(self._on_service, lambda old, new: self._on_service(new),
                             self._on_service)
        slices.add_handler(self._on_slice, self._on_slice_update, self._on_slice)

    # ---- event handlers: note the key, wake the loop ---------------------------------

    def mark(self, key: str) -> None:
        self._dirty.add(key)
        self._wake.set()

    def _on_service(self, obj: dict[str, Any]) -> None:
        self.mark(service_key(obj))

    def _on_slice(self, obj: dict[str, Any]) -> None:
        if (key := slice_service_key(obj)) is not None:
            self.mark(key)

    def _on_slice_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._on_slice(old)
        self._on_slice(new)

    # ---- sync ---------------------------------------------------------------------------

    async def sync_once(self) -> bool:
        """One sync pass over what changed (everything when a full sync is due).
        True when the backend accepted it; safe to repeat."""
        full, dirty = self._full, self._dirty
        self._dirty = set()
        started = time.monotonic()
        node = self.config.node_name
        if full:
            new = build_service_map(self.services_cache.list(), self.slices_cache.list(), node)
            changed = set(new) | set(self.services)
        else:
            new, changed = dict(self.services), set()
            for key in dirty:
                svc = self.services_cache.get(key)
                ports: tuple[ServicePort, ...] = ()
                if svc is not None:
                    ports = build_service(svc, self.slices_cache.by_index(SERVICE_INDEX, key),
                                          node)
                if ports and new.get(key) != ports:
                    new[key] = ports
                    changed.add(key)
                elif not ports and key in new:
                    del new[key]
                    changed.add(key)
            if not changed:
                return True
        try:
            kind = await self.backend.sync(new, changed, full=full)
        except Exception as exc:
            self._failures += 1
            delay = min(self.retry_min * 2 ** (self._failures - 1), self.retry_max)
            log.error("proxy sync failed, retrying with a full sync",
                      extra={"backend": self.backend.name, "error": str(exc)[:500],
                             "retry_in": delay})
            self._full = True
            asyncio.get_running_loop().call_later(delay, self._wake.set)
            return False
        self._failures = 0
        self._full = False
        old, self.services = self.services, new
        if self.conntrack is not None and (flows := stale_flows(old, new, changed)):
            await self.conntrack.delete(flows)
        self.generation += 1
        self.last_sync = SyncStats(kind, time.time(), time.monotonic() - started, len(changed))
        log.debug("proxy sync done", extra={"kind": kind, "changed": len(changed),
                                            "seconds": round(self.last_sync.seconds, 4)})
        if self.config.state_file is not None:
            await asyncio.to_thread(_write_atomic, self.config.state_file, self.summary())
        return True

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = -self.config.min_sync_period
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.sync_period)
            except TimeoutError:
                if not self._full and not await self.backend.healthy():
                    log.warning("proxy state missing, doing a full sync",
                                extra={"backend": self.backend.name})
                    self._full = True
                else:
                    continue
            # BoundedFrequencyRunner: at most one sync per min_sync_period; events in
            # between are coalesced into it.
            delay = last + self.config.min_sync_period - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            last = loop.time()
            await self.sync_once()

    async def run(self, *, synced_timeout: float = 60.0) -> None:
        """List and watch, sync until cancelled, then clean up."""
        self.services_cache.start()
        self.slices_cache.start()
        try:
            for cache, what in ((self.services_cache, "services"),
                                (self.slices_cache, "endpointslices")):
                while not await cache.wait_synced(synced_timeout):
                    log.warning("proxy still waiting for the first list",
                                extra={"resource": what})
            self._full = True
            await self.sync_once()
            await self._loop()
        finally:
            await self.services_cache.stop()
            await self.slices_cache.stop()
            if self.config.cleanup_on_exit:
                try:
                    await asyncio.wait_for(self.backend.cleanup(), 30.0)
                    log.info("proxy state removed", extra={"backend": self.backend.name})
                except Exception as exc:
                    log.error("proxy cleanup failed", extra={"error": str(exc)[:500]})

    # ---- state for `navio proxy rules` ----------------------------------------------------

    def summary(self) -> str:
        head = [f"navio proxy: mode {self.backend.name}, node {self.config.node_name}, "
                f"generation {self.generation}"]
        if self.last_sync is not None:
            s = self.last_sync
            head.append(f"last sync: {s.kind} at {time.strftime('%H:%M:%S', time.localtime(s.at))}"
                        f", {s.seconds * 1000:.1f} ms, {s.changed} services changed")
        return format_rules(self.services, head + self.backend.describe())


def _policy(local: bool) -> str:
    return "Local" if local else "Cluster"


def format_rules(services: ServiceMap, header: Iterable[str] = ()) -> str:
    """A table of every service port and its targets (`*` marks an endpoint on this node)."""
    rows = [("SERVICE-PORT", "CLUSTER-IP:PORT/PROTO", "NODEPORT", "AFFINITY", "POLICY INT/EXT",
             "TARGETS")]
    for key in sorted(services):
        for sp in services[key]:
            targets = sp.internal_endpoints
            extra = ""
            if sp.externally_accessible and sp.external_endpoints != targets:
                extra = " | external: " + (", ".join(
                    f"{e}{'*' if e.local else ''}" for e in sp.external_endpoints) or "none")
            rows.append((
                str(sp), f"{sp.cluster_ip}:{sp.port}/{sp.protocol}",
                str(sp.node_port or "-"),
                f"ClientIP {sp.affinity_timeout}s" if sp.affinity_timeout else "None",
                f"{_policy(sp.internal_policy_local)}/{_policy(sp.external_policy_local)}",
                (", ".join(f"{e}{'*' if e.local else ''}" for e in targets) or "none") + extra))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = list(header)
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_rules(state_file: Path) -> str:
    """What a running proxy last wrote to `state_file` (for `navio proxy rules`)."""
    return Path(state_file).read_text()


async def live_rules(netns: str | None = None) -> str:
    """The kernel's listing of the proxy's rules: the nftables table, else navio's iptables
    chains; raises when neither exists."""
    try:
        return await live_table(netns)
    except Exception as nft_error:
        try:
            return await live_iptables(netns)
        except Exception:
            raise nft_error from None


def make_backend(config: ProxyConfig) -> Backend:
    """The backend `config` asks for (after resolving `mode: auto`)."""
    mode = select_mode(config)
    opts = RuleOptions(cluster_cidr=config.cluster_cidr, service_cidr=config.service_cidr,
                       masquerade_all=config.masquerade_all,
                       masquerade_bit=config.masquerade_bit,
                       nodeport_addresses=config.nodeport_addresses)
    if mode == "nftables":
        return NftablesBackend(opts, NftRunner(config.netns))
    if mode == "iptables":
        return IptablesBackend(opts, IptablesRunner(config.netns))
    return UserspaceBackend(config.bind_address)


async def run(config: ProxyConfig, *, client: Client | None = None,
              on_ready: Callable[[Proxier], None] | None = None) -> None:
    """Run the proxy until cancelled; `on_ready` receives the Proxier (for its `summary`)."""
    backend = make_backend(config)
    log.info("proxy starting", extra={"mode": backend.name, "node": config.node_name,
                                      "netns": config.netns})
    if isinstance(backend, (NftablesBackend, IptablesBackend)):
        await backend.preflight()          # fail at start, not on every sync
    own = client is None
    if client is None:
        client = Client.from_kubeconfig(config.kubeconfig, component="proxy")
    try:
        services = Informer(client, SERVICES, label_selector=PROXY_LABEL_SELECTOR)
        slices = Informer(client, ENDPOINTSLICES, label_selector=PROXY_LABEL_SELECTOR)
        conntrack = None
        if isinstance(backend, (NftablesBackend, IptablesBackend)):
            conntrack = ConntrackCleaner(netns_prefix(config.netns))
            if not conntrack.available:
                log.warning("conntrack tool missing: UDP flows to removed endpoints are not "
                            "cleared (install conntrack)")
                conntrack = None
        proxier = Proxier(config, backend, services, slices, conntrack=conntrack)
        if on_ready is not None:
            on_ready(proxier)
        await proxier.run()
    finally:
        if own:
            await client.close()
