"""Watch responses: a chunked stream of JSON events, one per line, flushed as they happen.

Starts after the requested resourceVersion (no replay of what the client listed), or with
synthetic ADDED events for the current state when none is given. Sends BOOKMARKs only when the
client allows them, ends after `timeoutSeconds` when given and otherwise only when the client
leaves. A resourceVersion older than the watch cache's window is served from the store's
history (`watchreplay`); one the store has compacted gets 410 Expired.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, Callable

import orjson
from aiohttp import web

from navio.api import errors
from navio.api.registry import Kind
from navio.api.tables import build_table
from navio.apiserver import watchreplay
from navio.apiserver.crdconversion import Unconverted
from navio.apiserver.listing import ListOptions
from navio.apiserver.negotiation import choose_output, partial_metadata

if TYPE_CHECKING:
    from navio.apiserver.handlers import ResourceHandlers

__all__ = ["serve"]

_BOOKMARK_INTERVAL = 60.0
_IDLE_CHECK = 5.0


async def serve(handlers: "ResourceHandlers", request: web.Request, kind: Kind, ns: str,
                opts: ListOptions, predicate: Callable[[dict[str, Any]], bool] | None
                ) -> web.StreamResponse:
    cache = handlers.resources.cache(kind)
    out = choose_output(request.headers.get("Accept"), listing=False)
    initial: list[dict[str, Any]] = []
    rv = opts.resource_version
    send_initial = opts.send_initial_events
    if send_initial is None:
        send_initial = rv in ("", "0")
    if rv and rv != "0":
        await cache.wait_for(int(rv))
    if send_initial:
        if rv == "":
            await cache.consistent()
        watcher, initial = cache.watch_from_now(ns, predicate)
    else:
        start = int(rv) if rv else cache.revision
        if start < cache.window_start:
            # Older than the cache's window: from the store's history, unless compacted.
            watcher = await watchreplay.watch_from_store(cache, start, ns, predicate)
        else:
            watcher = cache.watch(start, ns, predicate)

    try:
        initial = await cache.resolve(initial)
    except errors.ApiError:
        watcher.close()
        raise

    resp = web.StreamResponse(status=200, headers={"Content-Type": out.content_type,
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    first_table = [True]

    def encode(event_type: str, obj: dict[str, Any], cached: Any = None) -> bytes:
        if out.is_table and event_type != "BOOKMARK":
            table = build_table(kind.group, kind.kind, [obj], handlers.now(),
                                include_object=request.query.get("includeObject", "Metadata"),
                                with_columns=first_table[0], version=kind.version)
            first_table[0] = False
            table["metadata"] = {"resourceVersion":
                                 obj.get("metadata", {}).get("resourceVersion", "")}
            return orjson.dumps({"type": event_type, "object": table}) + b"\n"
        if out.form == "metadata" and event_type != "BOOKMARK":
            return orjson.dumps({"type": event_type, "object": partial_metadata(obj)}) + b"\n"
        if cached is not None:
            return cached.encoded(event_type)
        return orjson.dumps({"type": event_type, "object": obj}) + b"\n"

    def bookmark(revision: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return orjson.dumps({"type": "BOOKMARK", "object": {
            "kind": kind.kind, "apiVersion": kind.group_version, "metadata": meta}}) + b"\n"

    async def send(event_type: str, ev: Any) -> bool:
        """Write one event; an object the conversion webhook cannot convert ends the watch
        with an ERROR event carrying the failure (False)."""
        if isinstance(ev.object, Unconverted):
            try:
                obj = (await cache.resolve([ev.object]))[0]
            except errors.ApiError as exc:
                await resp.write(orjson.dumps({"type": "ERROR",
                                               "object": errors.to_status(exc)}) + b"\n")
                return False
            await resp.write(encode(event_type, obj))
            return True
        await resp.write(encode(event_type, ev.object, ev))
        return True

    loop = asyncio.get_running_loop()
    deadline = loop.time() + opts.timeout_seconds if opts.timeout_seconds else None
    # Spread bookmarks like kube-apiserver does, so that watchers do not all wake together.
    next_bookmark = loop.time() + _BOOKMARK_INTERVAL * random.uniform(0.8, 1.0)
    try:
        for obj in initial:
            await resp.write(encode("ADDED", obj))
        if opts.send_initial_events and opts.allow_bookmarks:
            await resp.write(bookmark(cache.revision, initial_end=True))
        while True:
            now = loop.time()
            wait = _IDLE_CHECK
            if deadline is not None:
                wait = min(wait, deadline - now)
            if opts.allow_bookmarks:
                wait = min(wait, next_bookmark - now)
            if wait <= 0:
                if deadline is not None and now >= deadline:
                    break
                if opts.allow_bookmarks and now >= next_bookmark:
                    await resp.write(bookmark(cache.revision))
                    cache.request_progress()   # so that the next bookmark is current
                    next_bookmark = now + _BOOKMARK_INTERVAL
                continue
            try:
                item = await watcher.next(wait)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                continue
            if item is None:
                break
            event_type, ev = item
            if not await send(event_type, ev):
                break
            # Drain whatever else is queued before yielding again: fewer wake-ups under load.
            while not watcher.queue.empty():
                more = watcher.queue.get_nowait()
                if more is None:
                    watcher.closed = True
                    break
                if not await send(more[0], more[1]):
                    watcher.closed = True
                    break
            if watcher.closed and watcher.queue.empty():
                break
    except (ConnectionResetError, asyncio.CancelledError):
        watcher.close()
        raise
    finally:
        watcher.close()
    try:
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp
