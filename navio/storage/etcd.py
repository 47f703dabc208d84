"""The etcd storage backend: navio's `Store` on etcd v3, as kube-apiserver uses etcd.

Why: one SQLite file serves one machine; several API servers (an HA control plane) need a
shared, replicated store, and etcd is the one Kubernetes itself runs on.

Guarantees (the same contract as `SQLiteStore`, see protocol.py):
- Keys are laid out in etcd as kube-apiserver lays them out (etcd_keys.py); values are the
  stored bytes as given (the encryption layer above seals secrets before they get here).
- resourceVersion = the key's etcd mod_revision; the store revision is etcd's revision.
- create / update / delete are single etcd transactions guarded on the key's absence
  (`create_revision == 0`), its `mod_revision` (conditional writes), or its existence: a lost
  update is impossible whichever API server writes. A failed guard answers from the same
  transaction (KeyExists, KeyNotFound, RevisionConflict with the current value).
- An acknowledged write is committed by etcd's quorum (fsynced on a majority of members): it
  survives kill -9 of the API server and the loss of a minority of members.
- Lists read at one revision (0: a linearizable read of now), in key order, paged by
  `start`/`limit`; a revision etcd compacted raises Compacted, a future one FutureRevision.
- Watches are fed by one etcd watch of the keyspace (etcd_watch.py); history before the live
  point is replayed from etcd. `current_revision()` is a linearizable read, so a reader that
  waits for the watch to reach it sees every write acknowledged before — by any API server.
- Compaction: `compact(R)` records R under kube's `compact_rev_key`, then compacts etcd;
  `start_compactor` does it on kube's schedule, taking turns with other API servers through
  that key's version, as kube-apiserver's compactor does.
- etcd failures (no quorum, unreachable, timeouts) raise `StoreUnavailable` with etcd's text.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator

import grpc.aio

from navio.storage.etcd_client import (EtcdConfig, EtcdConnection, StoreUnavailable, rpc,
                                       unavailable)
from navio.storage.etcd_keys import KeyLayout, kube_layout
from navio.storage.etcd_watch import COMPACT_REV_KEY, KeyspaceWatch, history
from navio.storage.protocol import (Compacted, KeyExists, KeyNotFound, KeyValue,
                                    RevisionConflict, StorageError, Store, WatchBatch)
from navio.storage.sqlite import FutureRevision, StoreClosed
from navio.storage.sqlite_watch import WatchHub

__all__ = ["EtcdStore", "StoreUnavailable"]

log = logging.getLogger(__name__)

_ROOT = "/registry/"
_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_PROGRESS_WANTED_FOR = 5.0


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for every key starting with `prefix` (clientv3.GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\0"


def _kv(key: str, raw: Any) -> KeyValue:
    return KeyValue(key, raw.value, raw.create_revision, raw.mod_revision)


class EtcdStore:
    """`Store` on etcd. Create with `await EtcdStore.open(config)`; end with `close()`."""

    def __init__(self, config: EtcdConfig, layout: KeyLayout, *,
                 watch_queue_limit: int) -> None:
        self.config = config
        self.layout = layout
        self.conn = EtcdConnection(config)
        self._hub = WatchHub(watch_queue_limit)
        self._watch: KeyspaceWatch | None = None
        self._compact_revision = 0
        self._compactor: asyncio.Task[None] | None = None
        self._closed = False
        # Prefixes whose on-request watchers asked for progress lately, with when to stop.
        self._wanted: dict[str, float] = {}

    @classmethod
    async def open(cls, config: EtcdConfig, *, layout: KeyLayout | None = None,
                   watch_queue_limit: int = 10_000) -> EtcdStore:
        """Connect (waiting up to the request timeout for a member) and start watching."""
        store = cls(config, layout or kube_layout(), watch_queue_limit=watch_queue_limit)
        try:
            resp = await store._call(store.conn.kv.Range(
                rpc.RangeRequest(key=COMPACT_REV_KEY), **store.conn.deadline()))
            if resp.kvs:
                store._note_compacted(int(resp.kvs[0].value or b"0"))
            store._watch = KeyspaceWatch(store.conn, store.layout, store._hub,
                                         resp.header.revision, store.current_revision,
                                         store._note_compacted, store._progress_due)
            store._watch.start()
        except BaseException:
            await store.conn.close()
            raise
        log.info("etcd store opened", extra={
            "endpoints": ",".join(f"{h}:{p}" for h, p in config.endpoints),
            "revision": resp.header.revision, "tls": config.tls})
        return store

    def _note_compacted(self, revision: int) -> None:
        self._compact_revision = max(self._compact_revision, revision)

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    async def _call(self, call: Any) -> Any:
        if self._closed:
            raise StoreClosed("store closed")
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if _COMPACTED in details:
                raise Compacted(0, self._compact_revision) from None
            if _FUTURE in details:
                raise FutureRevision(0, 0) from None
            raise unavailable(exc) from None

    def _etcd(self, key: str) -> bytes:
        return self.layout.to_etcd(key).encode()

    # --- reads ---

    async def get(self, key: str) -> tuple[int, KeyValue | None]:
        resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(key=self._etcd(key)),
                                                   **self.conn.deadline()))
        return resp.header.revision, _kv(key, resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str, *, revision: int = 0, start: str = "",
                   limit: int = 0) -> tuple[int, builtins.list[KeyValue], bool]:
        if not self.layout.maps_range(prefix):
            return await self._list_scan(prefix, revision, start, limit)
        begin = self._etcd(max(prefix, start))
        end = _prefix_end(self._etcd(prefix))
        if begin >= end:
            return revision or await self.current_revision(), [], False
        try:
            resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(
                key=begin, range_end=end, revision=revision, limit=max(limit, 0)),
                **self.conn.deadline()))
        except Compacted:
            raise Compacted(revision, max(self._compact_revision, revision + 1)) from None
        except FutureRevision:
            raise FutureRevision(revision, await self.current_revision()) from None
        items = [_kv(self.layout.to_navio(kv.key.decode()), kv) for kv in resp.kvs]
        return revision or resp.header.revision, items, bool(resp.more)

    async def _list_scan(self, prefix: str, revision: int, start: str,
                         limit: int) -> tuple[int, builtins.list[KeyValue], bool]:
        """A list under a prefix that spans resources (`/registry/`, ""): every registry key
        at one revision, filtered and ordered in navio's layout. (Tools only: migration.)"""
        begin = _ROOT.encode() if prefix.startswith(_ROOT) or _ROOT.startswith(prefix) \
            else self._etcd(prefix)
        try:
            resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(
                key=begin, range_end=_prefix_end(begin), revision=revision),
                **self.conn.deadline()))
        except Compacted:
            raise Compacted(revision, max(self._compact_revision, revision + 1)) from None
        items = sorted((_kv(k, kv) for kv in resp.kvs
                        if (k := self.layout.to_navio(kv.key.decode())).startswith(prefix)
                        and k >= start), key=lambda kv: kv.key)
        more = 0 < limit < len(items)
        return revision or resp.header.revision, items[:limit] if more else items, more

    async def count(self, prefix: str) -> tuple[int, int]:
        if not self.layout.maps_range(prefix):
            rev, items, _ = await self._list_scan(prefix, 0, "", 0)
            return rev, len(items)
        key = self._etcd(prefix)
        resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(
            key=key, range_end=_prefix_end(key), count_only=True), **self.conn.deadline()))
        return resp.header.revision, int(resp.count)

    async def current_revision(self) -> int:
        """etcd's revision now (a linearizable read, as kube's GetCurrentResourceVersion)."""
        resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(
            key=COMPACT_REV_KEY, keys_only=True), **self.conn.deadline()))
        return int(resp.header.revision)

    # --- writes ---

    async def _txn(self, compare: "rpc.Compare", success: "rpc.RequestOp",
                   key: bytes) -> Any:
        return await self._call(self.conn.kv.Txn(rpc.TxnRequest(
            compare=[compare], success=[success],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))]),
            **self.conn.deadline()))

    @staticmethod
    def _current(key: str, resp: Any) -> KeyValue | None:
        kvs = resp.responses[0].response_range.kvs if resp.responses else ()
        return _kv(key, kvs[0]) if kvs else None

    def _guard(self, ekey: bytes, expect_revision: int) -> "rpc.Compare":
        if expect_revision:
            return rpc.Compare(key=ekey, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL,
                               mod_revision=expect_revision)
        return rpc.Compare(key=ekey, target=rpc.Compare.VERSION, result=rpc.Compare.GREATER,
                           version=0)

    async def create(self, key: str, value: bytes) -> int:
        ekey = self._etcd(key)
        resp = await self._txn(
            rpc.Compare(key=ekey, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL,
                        create_revision=0),
            rpc.RequestOp(request_put=rpc.PutRequest(key=ekey, value=bytes(value))), ekey)
        if not resp.succeeded:
            raise KeyExists(key)
        return int(resp.header.revision)

    async def update(self, key: str, value: bytes, *, expect_revision: int) -> int:
        ekey = self._etcd(key)
        resp = await self._txn(
            self._guard(ekey, expect_revision),
            rpc.RequestOp(request_put=rpc.PutRequest(key=ekey, value=bytes(value))), ekey)
        if not resp.succeeded:
            current = self._current(key, resp)
            if current is None:
                raise KeyNotFound(key)
            raise RevisionConflict(key, current)
        return int(resp.header.revision)

    async def delete(self, key: str, *, expect_revision: int = 0) -> tuple[int, KeyValue]:
        ekey = self._etcd(key)
        resp = await self._txn(
            self._guard(ekey, expect_revision),
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=ekey, prev_kv=True)),
            ekey)
        if not resp.succeeded:
            current = self._current(key, resp)
            if current is None:
                raise KeyNotFound(key)
            raise RevisionConflict(key, current)
        prev = resp.responses[0].response_delete_range.prev_kvs
        if not prev:   # guarded on existence, so etcd always returns it
            raise StorageError(f"etcd deleted {key} without its previous value")
        return int(resp.header.revision), _kv(key, prev[0])

    # --- watch ---

    async def watch(self, prefix: str, *, from_revision: int, progress: bool = False,
                    progress_on_request: bool = False) -> AsyncIterator[WatchBatch]:
        """See `Store.watch` and `SQLiteStore.watch` (the same hub, fed from etcd)."""
        if self._closed:
            return
        if from_revision < self._compact_revision:
            raise Compacted(from_revision, self._compact_revision)
        sub = self._hub.subscribe(prefix, progress, progress_on_request)
        upto = self._hub.revision
        try:
            if from_revision < upto:
                async for events in history(self.conn, self.layout, prefix, from_revision,
                                            upto):
                    yield WatchBatch(events, events[-1].kv.mod_revision)
            async for batch in sub.live(from_revision, upto, progress):
                yield batch
        finally:
            self._hub.unsubscribe(sub)

    def request_progress(self, prefix: str) -> None:
        """Progress to the on-request watches of `prefix`: the hub's revision is exact (every
        revision reaches it as an event), so no etcd round trip is needed. The revision the
        asker waits for may still be on its way from etcd (written through another prefix or
        another API server), so the request stands for a few seconds: each revision that
        arrives meanwhile is reported too."""
        self._wanted[prefix] = time.monotonic() + _PROGRESS_WANTED_FOR
        self._hub.request_progress(prefix)

    def _progress_due(self) -> None:
        if not self._wanted:
            return
        now = time.monotonic()
        for prefix, until in builtins.list(self._wanted.items()):
            if until < now:
                del self._wanted[prefix]
            else:
                self._hub.request_progress(prefix)

    # --- compaction and shutdown ---

    async def compact(self, revision: int) -> None:
        """Forget history below `revision` (reads at `revision` still work)."""
        current = await self.current_revision()
        if revision > current:
            raise FutureRevision(revision, current)
        if revision <= self._compact_revision:
            return
        await self._call(self.conn.kv.Put(rpc.PutRequest(
            key=COMPACT_REV_KEY, value=str(revision).encode()), **self.conn.deadline()))
        await self._compact_etcd(revision)

    async def _compact_etcd(self, revision: int) -> None:
        try:
            await self._call(self.conn.kv.Compact(rpc.CompactionRequest(revision=revision),
                                                  **self.conn.deadline()))
        except Compacted:
            pass   # someone compacted further already
        self._note_compacted(revision)
        log.info("compacted", extra={"to": revision})

    def start_compactor(self, interval: float = 300.0, *, keep: int = 1000) -> None:
        """Compact every `interval` seconds to the revision seen one interval earlier (and
        never within the newest `keep`), taking turns with the other API servers."""
        if self._compactor is not None:
            raise RuntimeError("compactor already started")
        self._compactor = asyncio.get_running_loop().create_task(
            self._compact_every(interval, keep), name="navio-etcd-compactor")

    async def _compact_every(self, interval: float, keep: int) -> None:
        version = -1      # compact_rev_key's version when we last looked (kube's "time")
        previous = 0
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                if version < 0:
                    resp = await self._call(self.conn.kv.Range(rpc.RangeRequest(
                        key=COMPACT_REV_KEY), **self.conn.deadline()))
                    version = resp.kvs[0].version if resp.kvs else 0
                current = await self.current_revision()
                target = min(previous, current - keep)
                previous = current
                # kube's compact(): only the server that saw the key's current version writes
                # it; the others learn the new version and skip this round.
                resp = await self._call(self.conn.kv.Txn(rpc.TxnRequest(
                    compare=[rpc.Compare(key=COMPACT_REV_KEY, target=rpc.Compare.VERSION,
                                         result=rpc.Compare.EQUAL, version=version)],
                    success=[rpc.RequestOp(request_put=rpc.PutRequest(
                        key=COMPACT_REV_KEY, value=str(max(target, 0)).encode()))],
                    failure=[rpc.RequestOp(request_range=rpc.RangeRequest(
                        key=COMPACT_REV_KEY))]), **self.conn.deadline()))
                if not resp.succeeded:
                    kvs = resp.responses[0].response_range.kvs
                    version = kvs[0].version if kvs else 0
                    continue
                version += 1
                if target > self._compact_revision:
                    await self._compact_etcd(target)
            except (StoreClosed, asyncio.CancelledError):
                return
            except StorageError as exc:
                log.warning("periodic compaction failed", extra={"error": str(exc)})
                version = -1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            await asyncio.wait({self._compactor})
        if self._watch is not None:
            await self._watch.stop()
        self._hub.close()
        await self.conn.close()
        log.info("etcd store closed")


if TYPE_CHECKING:
    _store: type[Store] = EtcdStore
