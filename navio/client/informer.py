"""Informer: a local, indexed cache of one resource, kept current by list + watch.

Why: controllers read state from memory and react to changes without polling, as with
client-go's tools/cache (reflector.go, shared_informer.go, delta_fifo.go, thread_safe_store.go).

What is guaranteed:
- Start-up lists the collection in pages (limit 500 + continue; a full list if the continue
  token expires, as client-go's pager does), then watches from the list's resourceVersion with
  bookmarks; every event and bookmark advances the last-seen resourceVersion.
- A watch that ends normally is restarted from the last resourceVersion without a re-list. A 410
  Expired, at the start or mid-stream, and any other API error re-lists. Connection errors and
  429s retry the watch from the last resourceVersion. Every retry waits an exponential, jittered
  and bounded backoff (client-go's reflector: 0.8 s doubling to 30 s, jitter up to +100%, capped
  at 60 s; reset after 2 min without trouble).
- A re-list delivers only the differences from the cache, as DeltaFIFO.Replace does: new objects
  as adds, objects whose resourceVersion changed as updates, and objects that vanished as
  deletes (with their last known state, client-go's DeletedFinalStateUnknown).
- The cache is updated before handlers run; handlers run in registration order, each event in
  the order the server sent it. Handlers are synchronous and must be quick (enqueue a key); an
  exception in one is logged and affects neither the other handlers nor the informer. A
  handler added after the first list first receives an add for every cached object.
- `has_synced()` becomes true once the first list is in the cache and handlers have seen it.
- Cached objects are shared with every reader: copy before mutating.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from navio.api import errors
from navio.client.resources import ResourceRef, object_key
from navio.client.rest import Client, TransportError
from navio.client.watch import WatchEvent, WatchStreamError

__all__ = ["Informer", "NAMESPACE_INDEX", "namespace_index"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
NAMESPACE_INDEX = "namespace"
_PAGE = 500
_MIN_WATCH_TIMEOUT = 300          # client-go's minWatchTimeout: watches last 5-10 minutes
_SHORT_WATCH = 1.0                # a watch closing sooner with no events is a failure


def namespace_index(obj: Obj) -> list[str]:
    """client-go's MetaNamespaceIndexFunc: objects indexed by their namespace."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


@dataclass(frozen=True, slots=True)
class _Handler:
    on_add: Callable[[Obj], Any] | None
    on_update: Callable[[Obj, Obj], Any] | None
    on_delete: Callable[[Obj], Any] | None


class _Backoff:
    """Exponential, jittered, bounded delays (client-go's exponentialBackoffManager)."""

    def __init__(self, initial: float = 0.8, cap: float = 30.0, factor: float = 2.0,
                 jitter: float = 1.0, reset_after: float = 120.0) -> None:
        self.initial, self.cap, self.factor = initial, cap, factor
        self.jitter, self.reset_after = jitter, reset_after
        self._next = initial
        self._last = 0.0

    def next(self) -> float:
        now = asyncio.get_running_loop().time()
        if now - self._last > self.reset_after:
            self._next = self.initial
        self._last = now
        delay = self._next
        self._next = min(self._next * self.factor, self.cap)
        return min(delay * (1.0 + random.random() * self.jitter), self.cap * 2)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    def __init__(self, client: Client, resource: ResourceRef, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync: float = 0.0, page_size: int = _PAGE) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.page_size = page_size
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._handlers: list[_Handler] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._backoff = _Backoff()
        self.last_resource_version = ""

    # ---- cache -------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Index cached objects by `fn(obj)` (a list of values); safe before or after start."""
        if name in self._index_funcs:
            raise ValueError(f"index {name!r} already exists")
        self._index_funcs[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, None, obj)

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Cached objects whose index `name` contains `value`."""
        return [self._items[k] for k in self.index_keys(name, value) if k in self._items]

    def index_keys(self, name: str, value: str) -> list[str]:
        if name not in self._indices:
            raise KeyError(f"no index {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def _values(self, name: str, obj: Obj | None) -> set[str]:
        if obj is None:
            return set()
        try:
            return set(self._index_funcs[name](obj))
        except Exception:
            log.exception("informer index function failed",
                          extra={"resource": self.resource.resource_name, "index": name})
            return set()

    def _index_one(self, name: str, key: str, old: Obj | None, new: Obj | None) -> None:
        index = self._indices[name]
        before, after = self._values(name, old), self._values(name, new)
        for value in before - after:
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
        for value in after - before:
            index.setdefault(value, set()).add(key)

    def _store(self, key: str, obj: Obj | None) -> Obj | None:
        old = self._items.get(key)
        if obj is None:
            self._items.pop(key, None)
        else:
            self._items[key] = obj
        for name in self._indices:
            self._index_one(name, key, old, obj)
        return old

    # ---- handlers ----------------------------------------------------------------------

    def add_handler(self, on_add: Callable[[Obj], Any] | None = None,
                    on_update: Callable[[Obj, Obj], Any] | None = None,
                    on_delete: Callable[[Obj], Any] | None = None) -> None:
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set():
            for obj in list(self._items.values()):
                self._call(handler.on_add, obj)

    def _call(self, fn: Callable[..., Any] | None, *args: Obj) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            log.exception("informer handler failed",
                          extra={"resource": self.resource.resource_name,
                                 "key": object_key(args[-1])})

    def _notify_add(self, obj: Obj) -> None:
        for h in tuple(self._handlers):
            self._call(h.on_add, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for h in tuple(self._handlers):
            self._call(h.on_update, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for h in tuple(self._handlers):
            self._call(h.on_delete, obj)

    # ---- lifecycle ---------------------------------------------------------------------

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float) -> bool:
        """True once the first list is delivered; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def start(self) -> asyncio.Task[None]:
        """Start listing and watching in a task; safe to repeat while running."""
        if self._tasks and not self._tasks[0].done():
            return self._tasks[0]
        name = f"informer {self.resource.resource_name}"
        self._tasks = [asyncio.create_task(self._run(), name=name)]
        if self.resync > 0:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=name + " resync"))
        return self._tasks[0]

    async def stop(self) -> None:
        """Stop the watch; the cache keeps its contents. Safe to repeat."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("informer task failed",
                              extra={"resource": self.resource.resource_name})

    async def _resync_loop(self) -> None:
        # client-go's resync re-delivers every cached object as an update (old == new), so
        # that controllers re-check state they could otherwise only learn from an event.
        while True:
            await asyncio.sleep(self.resync)
            if self._synced.is_set():
                for obj in list(self._items.values()):
                    self._notify_update(obj, obj)

    async def _run(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except errors.Expired:
                log.info("informer re-list after expired watch",
                         extra={"resource": self.resource.resource_name})
            except (errors.ApiError, TransportError, WatchStreamError) as exc:
                log.warning("informer list and watch failed",
                            extra={"resource": self.resource.resource_name,
                                   "error": type(exc).__name__, "code": getattr(exc, "code", 0)})
            except Exception:
                log.exception("informer list and watch failed",
                              extra={"resource": self.resource.resource_name})
            await asyncio.sleep(self._backoff.next())

    # ---- list ---------------------------------------------------------------------------

    async def _list(self) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        token: str | None = None
        limit: int | None = self.page_size
        while True:
            try:
                page = await self.client.list(
                    self.resource, self.namespace, label_selector=self.label_selector,
                    field_selector=self.field_selector, limit=limit, continue_=token)
            except errors.Expired:
                if token is None:
                    raise
                items, token, limit = [], None, None    # continue token too old: full list
                continue
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                return items, str(meta.get("resourceVersion") or "")

    def _replace(self, items: list[Obj], rv: str) -> None:
        kind, api_version = self.resource.kind, self.resource.api_version
        fresh: dict[str, Obj] = {}
        for obj in items:
            # Items of a list carry no kind/apiVersion on the wire; watch objects do.
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", api_version)
            fresh[object_key(obj)] = obj
        for key, obj in fresh.items():
            old = self._store(key, obj)
            if old is None:
                self._notify_add(obj)
            elif _rv(old) != _rv(obj):
                self._notify_update(old, obj)
        for key in [k for k in self._items if k not in fresh]:
            old = self._store(key, None)
            if old is not None:
                self._notify_delete(old)
        self.last_resource_version = rv
        self._synced.set()

    # ---- watch --------------------------------------------------------------------------

    def _apply(self, ev: WatchEvent) -> None:
        obj = ev.object
        rv = _rv(obj)
        if ev.type != "BOOKMARK":
            key = object_key(obj)
            if ev.type == "DELETED":
                self._store(key, None)
                self._notify_delete(obj)
            else:
                old = self._store(key, obj)
                if old is None:
                    self._notify_add(obj)
                else:
                    self._notify_update(old, obj)
        if rv:
            self.last_resource_version = rv

    async def _list_and_watch(self) -> None:
        items, rv = await self._list()
        self._replace(items, rv)
        loop = asyncio.get_running_loop()
        while True:
            timeout = random.randint(_MIN_WATCH_TIMEOUT, 2 * _MIN_WATCH_TIMEOUT)
            started, events = loop.time(), 0
            try:
                async with self.client.watch(
                        self.resource, self.namespace,
                        resource_version=self.last_resource_version or None,
                        label_selector=self.label_selector,
                        field_selector=self.field_selector, timeout_seconds=timeout,
                        allow_bookmarks=True) as stream:
                    async for ev in stream:
                        events += 1
                        self._apply(ev)
            except (TransportError, WatchStreamError, errors.TooManyRequests) as exc:
                # Unreachable, cut off or throttled: retry the watch from where it stopped
                # (reflector.go isWatchErrorRetriable); a 410 then says whether to re-list.
                log.info("informer watch interrupted",
                         extra={"resource": self.resource.resource_name,
                                "error": type(exc).__name__})
                await asyncio.sleep(self._backoff.next())
                continue
            if events == 0 and loop.time() - started < _SHORT_WATCH:
                # A watch that closes at once is a server problem; do not hot-loop on it.
                await asyncio.sleep(self._backoff.next())
