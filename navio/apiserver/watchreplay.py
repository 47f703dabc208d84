"""Watches from before the watch cache's window, served from the store's history.

The watch cache keeps a window of recent events per resource; a watch from an older
resourceVersion is one the cache cannot replay, but the store may still have those revisions
(they go only when compacted). kube-apiserver then serves the watch from etcd; navio does the
same: the store's history from the requested revision up to the cache's revision, then the
cache's live events, with nothing lost or repeated in between. Only a revision the store has
compacted answers 410 Expired (`too old resource version: <rv> (<oldest>)`).

How the hand-over works: the watcher joins the cache first, holding (not yet delivering) the
live events that arrive from then on (all newer than the cache's revision at that moment,
`upto`); a task reads the store's history up to `upto`, delivers it, then releases the held
events. A held backlog past the watcher queue's bound closes the watch, as any slow watcher is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from navio.api import errors
from navio.apiserver.watchcache import (CacheEvent, Predicate, Watcher, decode_object,
                                        namespace_of_key)
from navio.storage.protocol import Compacted, StoreEvent, WatchBatch

if TYPE_CHECKING:
    from navio.apiserver.watchcache import WatchCache

__all__ = ["watch_from_store"]

log = logging.getLogger(__name__)

_HOLD_LIMIT = 10_000


class _ReplayWatcher(Watcher):
    """A watcher whose live events wait until the store's history has been delivered."""

    def __init__(self, cache: "WatchCache", namespace: str, predicate: Predicate | None,
                 after: int) -> None:
        super().__init__(cache, namespace, predicate, after)
        self._held: list[CacheEvent] | None = []
        self.task: asyncio.Task[None] | None = None

    def offer(self, ev: CacheEvent) -> None:
        if self._held is None:
            super().offer(ev)
            return
        if self.closed:
            return
        if len(self._held) >= _HOLD_LIMIT:
            self.overflowed = True
            self.close()
            return
        self._held.append(ev)

    def deliver(self, ev: CacheEvent) -> None:
        """A replayed (store) event: straight to the queue."""
        super().offer(ev)

    def release(self) -> None:
        held, self._held = self._held or [], None
        for ev in held:
            super().offer(ev)

    def close(self) -> None:
        super().close()
        if self.task is not None and not self.task.done() \
                and self.task is not asyncio.current_task():
            self.task.cancel()


def _cache_event(cache: "WatchCache", se: StoreEvent) -> CacheEvent:
    key = se.kv.key
    ns = namespace_of_key(cache.kind, key)
    rev = se.kv.mod_revision
    prev = (decode_object(se.prev.value, se.prev.mod_revision, cache.kind)
            if se.prev is not None else None)
    if se.type == "DELETE":
        base = prev if prev is not None else decode_object(se.kv.value, rev, cache.kind)
        obj: dict[str, Any] = {**base, "metadata": {**base.get("metadata", {}),
                                                    "resourceVersion": str(rev)}}
        return CacheEvent("DELETED", rev, key, ns, obj, base)
    return CacheEvent("ADDED" if se.type == "CREATE" else "MODIFIED", rev, key, ns,
                      decode_object(se.kv.value, rev, cache.kind), prev)


async def watch_from_store(cache: "WatchCache", from_revision: int, namespace: str,
                           predicate: Predicate | None) -> Watcher:
    """A watcher for every event after `from_revision`, which is older than the cache's
    window; raises Expired (410) if the store has compacted it."""
    upto = cache.revision
    w = _ReplayWatcher(cache, namespace, predicate, from_revision)
    cache._watchers.add(w)   # from here on, live events (all > upto) are held
    stream = cache.store.watch(cache.prefix, from_revision=from_revision, progress=True)
    try:
        first: WatchBatch | None = await stream.__anext__()
    except StopAsyncIteration:
        first = None
    except Compacted as exc:
        w.close()
        raise errors.Expired(f"too old resource version: {from_revision} ({exc.oldest})") \
            from None
    except BaseException:
        w.close()
        await stream.aclose()   # type: ignore[attr-defined]
        raise
    w.task = asyncio.get_running_loop().create_task(
        _replay(cache, w, stream, first, upto), name=f"watch replay {cache.prefix}")
    return w


async def _replay(cache: "WatchCache", w: _ReplayWatcher, stream: AsyncIterator[WatchBatch],
                  first: WatchBatch | None, upto: int) -> None:
    try:
        batch = first
        while batch is not None and not w.closed:
            for se in batch:
                if se.kv.mod_revision > upto:
                    break
                w.deliver(_cache_event(cache, se))
            if batch.revision >= upto or (batch and batch[-1].kv.mod_revision >= upto):
                break
            try:
                batch = await stream.__anext__()
            except StopAsyncIteration:
                batch = None
        if batch is None and not w.closed:
            w.close()   # the store closed under us: the client re-watches
            return
        w.release()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("watch replay from storage failed", extra={"prefix": cache.prefix})
        w.close()
    finally:
        await stream.aclose()   # type: ignore[attr-defined]
