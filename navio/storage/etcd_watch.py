"""Watching etcd: one keyspace watch feeds every watcher of an API server; history on demand.

Why one watch over the whole keyspace: every etcd revision is a transaction that changed at
least one key, so a watcher of the whole keyspace sees every revision there is, in order. The
store's revision as this process knows it is then exact — the newest event received — and a
reader that waits for revision R (the API server's consistent reads) waits only for events
already committed, never for a progress notification. (etcd 3.4's progress notifications can
overtake events still queued for the same stream, etcd issue 15220; navio does not rely on
them.) The events are fanned out in-process by the same `WatchHub` the SQLite store uses, so
every resource's watch cache is fed by etcd — by the writes of every API server on that etcd,
this one's included, and never by this process's own writes directly.

Guarantees:
- Events reach the hub in revision order with no gap: the watch resumes from the last revision
  received after any break (a member stopped, a leader change), with backoff.
- If etcd compacted past that revision meanwhile, every subscription ends with WatchOverflow
  (its consumer re-lists, as after a 410) and the watch restarts from the current revision.
- `history` replays (after, upto] for one prefix from a temporary watch of the keyspace,
  raising Compacted when etcd no longer has `after + 1`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Awaitable, Callable

import grpc
import grpc.aio

from navio.storage.etcd_client import EtcdConnection, rpc
from navio.storage.etcd_keys import KeyLayout
from navio.storage.protocol import Compacted, KeyValue, StoreEvent, WatchOverflow
from navio.storage.sqlite_watch import WatchHub

__all__ = ["COMPACT_REV_KEY", "KeyspaceWatch", "history", "to_event"]

log = logging.getLogger(__name__)

# kube-apiserver's compactor records the revision it compacted to under this key
# (k8s.io/apiserver/pkg/storage/etcd3/compact.go), which also makes API servers take turns.
COMPACT_REV_KEY = b"compact_rev_key"
_ROOT = "/registry/"
_ALL = b"\0"   # key and range_end "\0": every key


def to_event(ev: "rpc.Event", layout: KeyLayout) -> StoreEvent | None:
    """An etcd event as a navio StoreEvent, or None for keys outside the registry."""
    raw = ev.kv.key.decode("utf-8", "replace")
    if not raw.startswith(_ROOT):
        return None
    key = layout.to_navio(raw)
    has_prev = ev.HasField("prev_kv") and bool(ev.prev_kv.key)
    prev = (KeyValue(key, ev.prev_kv.value, ev.prev_kv.create_revision,
                     ev.prev_kv.mod_revision) if has_prev else None)
    if ev.type == rpc.Event.DELETE:
        kv = KeyValue(key, prev.value if prev else b"", prev.create_revision if prev else 0,
                      ev.kv.mod_revision)
        return StoreEvent("DELETE", kv, prev)
    kv = KeyValue(key, ev.kv.value, ev.kv.create_revision, ev.kv.mod_revision)
    if ev.kv.version == 1:
        return StoreEvent("CREATE", kv, None)
    return StoreEvent("UPDATE", kv, prev)


def _create(start_revision: int, progress: bool = False) -> "rpc.WatchRequest":
    return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
        key=_ALL, range_end=_ALL, start_revision=start_revision, prev_kv=True,
        progress_notify=progress))


class KeyspaceWatch:
    """The process's one etcd watch, publishing into `hub` (see module doc)."""

    def __init__(self, conn: EtcdConnection, layout: KeyLayout, hub: WatchHub,
                 revision: int, current: Callable[[], Awaitable[int]],
                 on_compact_key: Callable[[int], None],
                 after_publish: Callable[[], None] = lambda: None) -> None:
        self.conn = conn
        self.layout = layout
        self.hub = hub
        self.revision = revision          # every event <= this has been published
        hub.revision = max(hub.revision, revision)
        self._current = current
        self._on_compact_key = on_compact_key
        self._after_publish = after_publish
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="navio-etcd-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            call = self.conn.watch.Watch(wait_for_ready=True)
            try:
                await call.write(_create(self.revision + 1))
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        break
                    if resp.compact_revision:
                        await self._compacted(resp.compact_revision)
                        break
                    if resp.created:
                        self.connected.set()
                        backoff = 0.05
                    if resp.canceled:
                        log.warning("etcd watch canceled", extra={"reason": resp.cancel_reason})
                        break
                    if resp.events:
                        self._publish(resp.events)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.aio.AioRpcError as exc:
                log.info("etcd watch broke; resuming", extra={
                    "revision": self.revision, "code": exc.code().name,
                    "error": exc.details()})
            except Exception:
                log.exception("etcd watch failed; resuming", extra={"revision": self.revision})
            call.cancel()
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _publish(self, raw: "list[rpc.Event]") -> None:
        events: list[StoreEvent] = []
        for ev in raw:
            if ev.kv.key == COMPACT_REV_KEY and ev.type == rpc.Event.PUT:
                try:
                    self._on_compact_key(int(ev.kv.value))
                except ValueError:
                    pass
                continue
            se = to_event(ev, self.layout)
            if se is not None:
                events.append(se)
        revision = max(self.revision, raw[-1].kv.mod_revision)
        self.revision = revision
        self.hub.publish(events, revision)
        self._after_publish()

    async def _compacted(self, compact_revision: int) -> None:
        """We were away while etcd compacted past our revision: events are lost."""
        log.warning("etcd watch fell behind compaction; watchers re-list", extra={
            "revision": self.revision, "compacted": compact_revision})
        self._on_compact_key(compact_revision)
        self.hub.fail(WatchOverflow(_ROOT, 0))
        self.revision = await self._current()
        self.hub.revision = max(self.hub.revision, self.revision)


async def history(conn: EtcdConnection, layout: KeyLayout, prefix: str, after: int,
                  upto: int) -> AsyncIterator[list[StoreEvent]]:
    """Batches of the events under navio `prefix` with after < revision <= upto."""
    if upto <= after:
        return
    call = conn.watch.Watch(wait_for_ready=True, timeout=None)
    try:
        await call.write(_create(after + 1))
        while True:
            try:
                async with asyncio.timeout(conn.config.timeout * 3):
                    resp = await call.read()
            except TimeoutError:
                raise Compacted(after, after + 1) from None   # could not replay: re-list
            if resp is grpc.aio.EOF:
                raise Compacted(after, after + 1)
            if resp.compact_revision:
                raise Compacted(after, resp.compact_revision)
            if resp.canceled:
                raise Compacted(after, after + 1)
            if not resp.events:
                continue
            batch: list[StoreEvent] = []
            done = False
            for ev in resp.events:
                if ev.kv.mod_revision > upto:
                    done = True
                    break
                se = to_event(ev, layout)
                if se is not None and se.kv.key.startswith(prefix):
                    batch.append(se)
                if ev.kv.mod_revision >= upto:
                    done = True
            if batch:
                yield batch
            if done:
                return
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED:
            return
        raise Compacted(after, after + 1) from None
    finally:
        call.cancel()
