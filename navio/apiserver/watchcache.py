"""The watch cache: one resource's objects in memory, kept current by one storage watch.

Every list, get and watch of a resource is served from here, so the store sees one watch per
resource however many clients watch. The cache holds the current objects and a window of recent
events; a watch from a resourceVersion inside the window replays from it, an older one gets 410
Expired. Consistent reads wait until the cache has caught up with the store's revision, which the
store's watch reports with every commit (progress), so a client always reads its own writes.

Guarantees: events reach each watcher in revision order, without gaps or duplicates; a watcher
that cannot keep up is closed (the client re-watches) instead of buffering without bound.
Cached objects are shared: callers must copy before mutating.

For a custom kind converted by a webhook, the cache of a version other than the stored one
converts each batch of events before taking it in (one ConversionReview per batch). An
object the webhook could not convert is held as `crdconversion.Unconverted`; reads pass what
they serve through `resolve`, which converts it then or fails with the webhook's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from navio.api import conversion, errors
from navio.api.registry import Kind
from navio.apiserver import crdconversion
from navio.apiserver.crdconversion import ConversionWebhooks, Unconverted
from navio.storage.protocol import Compacted, Store, StoreEvent, WatchOverflow

__all__ = ["CacheEvent", "Watcher", "WatchCache"]

log = logging.getLogger(__name__)

Predicate = Callable[[dict[str, Any]], bool]

_WATCHER_QUEUE = 10_000


@dataclass(slots=True)
class CacheEvent:
    type: str                      # ADDED, MODIFIED, DELETED
    revision: int
    key: str
    namespace: str
    object: dict[str, Any]
    prev: dict[str, Any] | None
    _json: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, event_type: str) -> bytes:
        """The event as one line of a JSON watch stream, encoded once per type."""
        line = self._json.get(event_type)
        if line is None:
            line = orjson.dumps({"type": event_type, "object": self.object}) + b"\n"
            self._json[event_type] = line
        return line


class Watcher:
    """One client's watch: a bounded queue of (type, CacheEvent) to send."""

    def __init__(self, cache: "WatchCache", namespace: str, predicate: Predicate | None,
                 after: int = 0) -> None:
        self.cache = cache
        self.after = after
        self.namespace = namespace
        self.predicate = predicate
        self.queue: asyncio.Queue[tuple[str, CacheEvent] | None] = asyncio.Queue(_WATCHER_QUEUE)
        self.closed = False
        self.overflowed = False

    def offer(self, ev: CacheEvent) -> None:
        if self.closed or ev.revision <= self.after or (
                self.namespace and ev.namespace != self.namespace):
            return
        kind = _event_type_for(ev, self.predicate)
        if kind is None:
            return
        try:
            self.queue.put_nowait((kind, ev))
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.cache._watchers.discard(self)
            try:
                self.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass

    async def next(self, timeout: float | None) -> tuple[str, CacheEvent] | None:
        """The next event, None when closed; raises TimeoutError after `timeout` seconds."""
        if self.closed and self.queue.empty():
            return None
        async with asyncio.timeout(timeout):
            return await self.queue.get()


def _event_type_for(ev: CacheEvent, predicate: Predicate | None) -> str | None:
    """The event a filtered watcher sees: an update moving an object into or out of the
    selection becomes ADDED or DELETED, as kube-apiserver's cacher does."""
    if predicate is None:
        return ev.type
    if ev.type == "ADDED":
        return "ADDED" if predicate(ev.object) else None
    if ev.type == "DELETED":
        return "DELETED" if predicate(ev.object) else None
    now = predicate(ev.object)
    before = ev.prev is not None and predicate(ev.prev)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


def decode_object(value: bytes, revision: int, kind: Kind | None = None) -> dict[str, Any]:
    """A stored value as `kind` serves it, with its resourceVersion."""
    obj = orjson.loads(value)
    if kind is not None and kind.storage_group is not None:
        obj = conversion.from_storage(kind.group, kind.kind, obj)
    elif kind is not None and kind.custom is not None:
        if kind.custom.needs_webhook(obj, kind.group_version):
            obj = Unconverted(obj)       # converted asynchronously (WatchCache.resolve)
        else:
            obj = kind.custom.from_storage(obj, kind.version)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def namespace_of_key(kind: Kind, key: str) -> str:
    if not kind.namespaced:
        return ""
    rest = key[len(kind.storage_prefix()):]
    return rest.split("/", 1)[0]


class WatchCache:
    def __init__(self, kind: Kind, store: Store, *, window: int = 20_000,
                 conversions: ConversionWebhooks | None = None) -> None:
        self.kind = kind
        self.store = store
        self.conversions = conversions
        self.prefix = kind.storage_prefix()
        self.objects: dict[str, dict[str, Any]] = {}
        # Per-namespace keys, sorted lazily (None = needs sorting): lists stay O(namespace).
        self._by_ns: dict[str, dict[str, None]] = {}
        self._sorted: dict[str, list[str] | None] = {}
        self.revision = 0
        self.events: deque[CacheEvent] = deque(maxlen=window)
        # Every event after this revision is in `events`: watches may start from here on.
        self.window_start = 0
        self._watchers: set[Watcher] = set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._failed: BaseException | None = None
        # With a store that reports progress on request, the cache asks for it only when a
        # reader waits for a revision it has not seen (see `wait_for`).
        self._on_request = callable(getattr(store, "request_progress", None))

    async def start(self) -> None:
        rev, items, _ = await self.store.list(self.prefix)
        self._load(items)
        await self._convert_loaded()
        self.revision = rev
        self.window_start = rev
        self._task = asyncio.create_task(self._run(rev), name=f"watchcache {self.prefix}")
        self._ready.set()

    def _load(self, items: list[Any]) -> None:
        self.objects = {}
        self._by_ns = {}
        self._sorted = {"": None}
        for kv in items:
            self._put(kv.key, decode_object(kv.value, kv.mod_revision, self.kind))

    def _converting(self) -> bool:
        custom = self.kind.custom
        return custom is not None and custom.webhook is not None

    async def _convert_loaded(self) -> None:
        """Convert what `_load` left unconverted, in one review; on failure it stays so."""
        if not self._converting():
            return
        keys = [k for k, o in self.objects.items() if isinstance(o, Unconverted)]
        if keys:
            try:
                await self.resolve([self.objects[k] for k in keys])
            except errors.ApiError as exc:
                log.warning("conversion failed", extra={"prefix": self.prefix,
                                                        "error": exc.message})

    async def _decode_batch(self, events: list[StoreEvent]) -> dict[int, dict[str, Any]]:
        """The batch's new objects, converted by the webhook where it answers."""
        kvs = [se.kv for se in events if se.type != "DELETE"]
        objs = [decode_object(kv.value, kv.mod_revision, self.kind) for kv in kvs]
        if any(isinstance(o, Unconverted) for o in objs):
            try:
                objs = await crdconversion.resolve(self.conversions, self.kind.custom,
                                                   self.kind.version, objs)
            except errors.ApiError as exc:
                log.warning("conversion failed", extra={"prefix": self.prefix,
                                                        "error": exc.message})
        return {id(kv): o for kv, o in zip(kvs, objs)}

    async def resolve(self, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`objs` (from this cache) ready to serve: unconverted ones converted now (and
        replaced in the cache); raises the conversion's error (500)."""
        if not any(isinstance(o, Unconverted) for o in objs):
            return objs
        out = await crdconversion.resolve(self.conversions, self.kind.custom,
                                          self.kind.version, objs)
        for old, new in zip(objs, out):
            if old is not new:
                meta = new.get("metadata") or {}
                key = self.kind.storage_key(meta.get("namespace"), meta.get("name", ""))
                if self.objects.get(key) is old:
                    self.objects[key] = new
        return out

    def _put(self, key: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        prev = self.objects.get(key)
        self.objects[key] = obj
        if prev is None:
            ns = namespace_of_key(self.kind, key)
            self._by_ns.setdefault(ns, {})[key] = None
            self._sorted[ns] = None
            self._sorted[""] = None
        return prev

    def _drop(self, key: str) -> dict[str, Any] | None:
        prev = self.objects.pop(key, None)
        if prev is not None:
            ns = namespace_of_key(self.kind, key)
            keys = self._by_ns.get(ns)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._by_ns[ns]
            self._sorted[ns] = None
            self._sorted[""] = None
        return prev

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for w in list(self._watchers):
            w.close()

    async def _run(self, from_revision: int) -> None:
        while True:
            try:
                if self._on_request:
                    stream = self.store.watch(  # type: ignore[call-arg]
                        self.prefix, from_revision=from_revision, progress=True,
                        progress_on_request=True)
                else:
                    stream = self.store.watch(self.prefix, from_revision=from_revision,
                                              progress=True)
                async for batch in stream:
                    decoded = await self._decode_batch(batch) if self._converting() else None
                    self._apply(batch, batch.revision, decoded)
                    from_revision = self.revision
                    if self._waiters:
                        # Readers still wait for a newer revision (a request may have come
                        # while the stream was being re-established): ask again.
                        self.request_progress()
                return
            except asyncio.CancelledError:
                raise
            except (Compacted, WatchOverflow):
                # We fell behind compaction: start over from a fresh list. Watchers must
                # re-list too, since events were lost.
                log.warning("watch cache relist", extra={"prefix": self.prefix})
                for w in list(self._watchers):
                    w.close()
                rev, items, _ = await self.store.list(self.prefix)
                self._load(items)
                await self._convert_loaded()
                self.events.clear()
                self.window_start = rev
                from_revision = rev
                self._advance(rev)
            except Exception:
                log.exception("watch cache storage watch failed", extra={"prefix": self.prefix})
                await asyncio.sleep(0.5)

    def _apply(self, events: list[StoreEvent], revision: int,
               decoded: dict[int, dict[str, Any]] | None = None) -> None:
        for se in events:
            key = se.kv.key
            ns = namespace_of_key(self.kind, key)
            if se.type == "DELETE":
                prev = self._drop(key)
                if prev is None and se.prev is not None:
                    prev = decode_object(se.prev.value, se.prev.mod_revision, self.kind)
                if prev is None:
                    prev = decode_object(se.kv.value, se.kv.mod_revision, self.kind)
                obj = {**prev, "metadata": {**prev.get("metadata", {}),
                                            "resourceVersion": str(se.kv.mod_revision)}}
                ev = CacheEvent("DELETED", se.kv.mod_revision, key, ns, obj, prev)
            else:
                got = decoded.get(id(se.kv)) if decoded else None
                obj = got if got is not None else decode_object(se.kv.value,
                                                                 se.kv.mod_revision, self.kind)
                prev = self._put(key, obj)
                ev = CacheEvent("ADDED" if prev is None else "MODIFIED", se.kv.mod_revision,
                                key, ns, obj, prev)
            if len(self.events) == self.events.maxlen:
                self.window_start = self.events[0].revision
            self.events.append(ev)
            for w in tuple(self._watchers):
                w.offer(ev)
        self._advance(revision)

    def _advance(self, revision: int) -> None:
        if revision <= self.revision:
            return
        self.revision = revision
        if self._waiters:
            still = []
            for rv, fut in self._waiters:
                if rv <= revision:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((rv, fut))
            self._waiters = still

    async def wait_for(self, revision: int, timeout: float = 3.0) -> None:
        """Return once the cache reflects every write up to `revision`."""
        await self._ready.wait()
        if self.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        self.request_progress()
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise errors.Timeout(
                f"Too large resource version: {revision}, current: {self.revision}",
                details={"causes": [{"reason": "ResourceVersionTooLarge",
                                     "message": "Too large resource version"}],
                         "retryAfterSeconds": 1}) from None

    def request_progress(self) -> None:
        """Have the store report its revision to this cache soon (no-op when it reports
        every commit anyway)."""
        if self._on_request:
            self.store.request_progress(self.prefix)  # type: ignore[attr-defined]

    async def consistent(self) -> None:
        """Wait until the cache has every write acknowledged before this call."""
        await self.wait_for(await self.store.current_revision())

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)

    def list(self, namespace: str = "") -> list[tuple[str, dict[str, Any]]]:
        """(key, object) pairs in key order, within `namespace` when given."""
        scope = namespace if self.kind.namespaced else ""
        keys = self._sorted.get(scope)
        if keys is None:
            source = self._by_ns.get(scope, {}) if scope else self.objects
            keys = sorted(source)
            self._sorted[scope] = keys
        objects = self.objects
        return [(k, objects[k]) for k in keys]

    def watch(self, from_revision: int, namespace: str, predicate: Predicate | None) -> Watcher:
        """A watcher receiving every event after `from_revision`; raises Expired if the window
        no longer reaches back that far."""
        w = Watcher(self, namespace, predicate, from_revision)
        if from_revision < self.window_start:
            raise errors.Expired(f"too old resource version: {from_revision} "
                                 f"({self.window_start})")
        if from_revision < self.revision:
            for ev in self.events:
                if ev.revision > from_revision:
                    w.offer(ev)
        self._watchers.add(w)
        return w

    def watch_from_now(self, namespace: str, predicate: Predicate | None
                       ) -> tuple[Watcher, list[dict[str, Any]]]:
        """The current objects (for synthetic ADDED events) and a watcher for what follows,
        taken at one instant so that nothing falls between them."""
        w = Watcher(self, namespace, predicate)
        objs = [o for _, o in self.list(namespace) if predicate is None or predicate(o)]
        self._watchers.add(w)
        return w, objs
