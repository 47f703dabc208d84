"""In-process fan-out of committed writes to watchers, with a bound per watcher.

The writer thread hands each committed batch to `WatchHub.publish` on the event loop, in commit
order, so every subscription sees its events in revision order with no gaps. A subscription
buffers at most `limit` events (a single batch is always accepted into an empty buffer); one
that falls further behind is terminated with `WatchOverflow` and its buffer freed, so a stuck
client costs bounded memory and must re-list, as a 410 Gone makes a Kubernetes client do.

Everything here runs on the event loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import AsyncIterator

from navio.storage.protocol import StoreEvent, WatchBatch, WatchOverflow

__all__ = ["WatchOverflow", "Subscription", "WatchHub"]

log = logging.getLogger(__name__)


class Subscription:
    """One watcher's live buffer. `next()` returns everything buffered as one batch, None once
    the hub is closed and the buffer is empty, and raises WatchOverflow after an overflow."""

    __slots__ = ("prefix", "progress", "on_request", "_hub", "_wanted", "_limit", "_batches",
                 "_pending", "_wake", "_error", "_closed", "_revision", "_told")

    def __init__(self, prefix: str, limit: int, progress: bool = False,
                 on_request: bool = False, hub: "WatchHub | None" = None) -> None:
        self.prefix = prefix
        self.progress = progress
        # Progress only when asked (`want_progress`), as etcd's WatchProgressRequest: a
        # store with dozens of resource watchers would otherwise wake every one of them on
        # every commit, which cost more than the commit's own requests.
        self.on_request = on_request
        self._hub = hub
        self._wanted = False
        self._revision = 0   # the newest commit offered to us (see `revision`)
        self._told = 0       # the newest revision handed out by next()
        self._limit = limit
        self._batches: deque[list[StoreEvent]] = deque()
        self._pending = 0
        self._wake = asyncio.Event()
        self._error: WatchOverflow | None = None
        self._closed = False

    @property
    def revision(self) -> int:
        """The newest commit this subscription has been offered: every commit the hub
        published counts, those without events for us too (the hub does not visit us then)."""
        hub = self._hub
        return max(self._revision, hub.revision) if hub is not None else self._revision

    def note(self, revision: int) -> None:
        """A commit with nothing under our prefix: only progress."""
        self._revision = max(self._revision, revision)
        if self.progress and (self._wanted or not self.on_request):
            self._wake.set()

    def want_progress(self) -> None:
        """Report the newest revision offered at the next opportunity (on_request mode)."""
        self._wanted = True
        if self.progress and self.revision > self._told:
            self._wake.set()

    def offer(self, events: list[StoreEvent], revision: int = 0) -> bool:
        """Buffer `events`; False (and the subscription is dead) if that would exceed the bound."""
        self._revision = max(self._revision, revision or events[-1].kv.mod_revision)
        if self._pending and self._pending + len(events) > self._limit:
            self._batches.clear()
            self._pending = 0
            self._error = WatchOverflow(self.prefix, self._limit)
            self._wake.set()
            return False
        self._batches.append(events)
        self._pending += len(events)
        self._wake.set()
        return True

    @property
    def failed(self) -> bool:
        return self._error is not None

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def live(self, from_revision: int, upto: int, progress: bool
                   ) -> AsyncIterator[WatchBatch]:
        """The live batches after a replay that ended at `upto`: live events are all > upto,
        and a `from_revision` beyond it (a revision not yet published, as etcd allows) still
        must not see the events up to it. With `progress`, a bookmark at `upto` first when the
        replay moved past `from_revision`."""
        floor = from_revision if from_revision > upto else 0
        if progress and upto > from_revision:
            yield WatchBatch((), upto)
        while (batch := await self.next()) is not None:
            if floor:
                if batch.revision <= floor:
                    continue
                batch = WatchBatch([e for e in batch if e.kv.mod_revision > floor],
                                   batch.revision)
                floor = 0
                if not batch and not progress:
                    continue
            yield batch

    async def next(self) -> WatchBatch | None:
        while True:
            if self._error is not None:
                raise self._error
            if self._batches:
                if len(self._batches) == 1:
                    out = self._batches.popleft()
                else:
                    out = [event for batch in self._batches for event in batch]
                    self._batches.clear()
                self._pending = 0
                # Only what was offered: a later commit without events for us may already be
                # published, but its revision is reported as progress, not with these events.
                self._told = self._revision
                self._wanted = False
                return WatchBatch(out, self._revision)
            revision = self.revision
            if self.progress and revision > self._told and (
                    self._wanted or not self.on_request):
                self._told = revision
                self._wanted = False
                return WatchBatch((), revision)
            if self._closed:
                return None
            self._wake.clear()
            await self._wake.wait()


class WatchHub:
    """The set of live subscriptions; `publish` is called once per committed batch.

    Subscriptions on a key-path prefix (ending in "/", as `/registry/core/pods/`) are indexed
    by it, so a commit visits only those its keys fall under and the ones that report every
    commit's progress; the others learn the revision through `revision` when they ask."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("watch queue limit must be positive")
        self._limit = limit
        self._subs: set[Subscription] = set()
        self._by_prefix: dict[str, set[Subscription]] = {}   # prefixes ending in "/" or ""
        self._other: set[Subscription] = set()               # any other prefix
        self._eager: set[Subscription] = set()               # progress on every commit
        self.revision = 0                                    # the newest published commit

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, prefix: str, progress: bool = False,
                  on_request: bool = False) -> Subscription:
        sub = Subscription(prefix, self._limit, progress, on_request, self)
        # Current as of now: the caller replays what came before (SQLiteStore.watch).
        sub._revision = sub._told = self.revision
        self._subs.add(sub)
        if prefix == "" or prefix.endswith("/"):
            self._by_prefix.setdefault(prefix, set()).add(sub)
        else:
            self._other.add(sub)
        if progress and not on_request:
            self._eager.add(sub)
        return sub

    def request_progress(self, prefix: str) -> None:
        """Ask the progress subscriptions on exactly `prefix` for a progress report."""
        for sub in tuple(self._by_prefix.get(prefix, ())) + tuple(
                s for s in self._other if s.prefix == prefix):
            sub.want_progress()

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self._other.discard(sub)
        self._eager.discard(sub)
        group = self._by_prefix.get(sub.prefix)
        if group is not None:
            group.discard(sub)
            if not group:
                del self._by_prefix[sub.prefix]

    def publish(self, events: list[StoreEvent], revision: int) -> None:
        self.revision = max(self.revision, revision)
        mine: dict[Subscription, list[StoreEvent]] = {}
        by_prefix = self._by_prefix
        for e in events:
            key = e.kv.key
            # Every "/"-ended prefix of the key, and "" (a watch on everything).
            cut = 0
            while True:
                group = by_prefix.get(key[:cut])
                if group:
                    for sub in group:
                        mine.setdefault(sub, []).append(e)
                cut = key.find("/", cut) + 1
                if cut == 0:
                    break
            for sub in self._other:
                if key.startswith(sub.prefix):
                    mine.setdefault(sub, []).append(e)
        for sub, got in mine.items():
            if not sub.offer(got, revision):
                self.unsubscribe(sub)
                log.warning("watcher overflowed and was terminated",
                            extra={"prefix": sub.prefix, "limit": self._limit})
        for sub in tuple(self._eager):
            if sub not in mine:
                sub.note(revision)
        # On-request subscriptions are not visited: `want_progress` reads `revision`.

    def fail(self, error: WatchOverflow) -> None:
        """End every subscription with `error`: the source lost events (an etcd watch that
        fell behind compaction), so each watcher must re-list, as after an overflow."""
        for sub in self._subs:
            sub._batches.clear()
            sub._pending = 0
            sub._error = error
            sub._wake.set()
        self._subs.clear()
        self._by_prefix.clear()
        self._other.clear()
        self._eager.clear()

    def close(self) -> None:
        for sub in self._subs:
            sub.close()
        self._subs.clear()
        self._by_prefix.clear()
        self._other.clear()
        self._eager.clear()
