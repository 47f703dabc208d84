"""Watches older than the watch cache's window, replayed from the SQLite store's history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from navio.api import errors
from navio.api.registry import default_registry
from navio.apiserver import watchreplay
from navio.apiserver.watchcache import WatchCache
from navio.storage.sqlite import SQLiteStore

KIND = default_registry().resource("", "v1", "configmaps")
assert KIND is not None


def _value(name: str, n: int) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": name, "namespace": "default"},
                         "data": {"n": str(n)}})


async def _drain(w, count: int) -> list[tuple[str, int, str]]:
    out = []
    for _ in range(count):
        item = await w.next(10)
        assert item is not None
        kind, ev = item
        out.append((kind, ev.revision, ev.object["metadata"]["name"]))
    return out


@pytest.fixture
async def store(tmp_path: Path):
    s = await SQLiteStore.open(tmp_path / "db")
    yield s
    await s.close()


async def test_old_watch_replays_history_then_continues_live(store: SQLiteStore) -> None:
    key = KIND.storage_key
    first = await store.create(key("default", "a"), _value("a", 0))
    cache = WatchCache(KIND, store, window=5)
    await cache.start()
    try:
        revs, last_a = [first], first
        for i in range(1, 12):
            if i % 3 == 0:
                last_a = await store.update(key("default", "a"), _value("a", i),
                                            expect_revision=last_a)
                revs.append(last_a)
            else:
                revs.append(await store.create(key("default", f"o{i}"), _value(f"o{i}", i)))
        gone, _ = await store.delete(key("default", "o1"))
        await cache.wait_for(gone)
        assert cache.window_start > first   # the cache cannot replay from `first` itself
        with pytest.raises(errors.Expired):
            cache.watch(first, "", None)

        w = await watchreplay.watch_from_store(cache, first, "", None)
        # Live writes while the history is being replayed: neither lost nor repeated.
        live = [await store.create(key("default", f"live{i}"), _value("x", i)) for i in range(3)]
        events = await _drain(w, len(revs) - 1 + 1 + 3)
        assert [r for _, r, _ in events] == revs[1:] + [gone] + live
        assert events[0] == ("ADDED", revs[1], "o1")
        assert ("MODIFIED", revs[3], "a") in events
        assert events[len(revs) - 1] == ("DELETED", gone, "o1")
        assert [k for k, _, _ in events[-3:]] == ["ADDED"] * 3
        more = await store.create(key("default", "later"), _value("later", 0))
        assert await _drain(w, 1) == [("ADDED", more, "later")]
        w.close()
    finally:
        await cache.stop()


async def test_filtered_old_watch(store: SQLiteStore) -> None:
    key = KIND.storage_key
    start = await store.create(key("default", "x"), _value("x", 0))
    cache = WatchCache(KIND, store, window=2)
    await cache.start()
    try:
        other = await store.create(key("other", "y"), orjson.dumps(
            {"metadata": {"name": "y", "namespace": "other"}}))
        mine = [await store.create(key("default", f"m{i}"), _value(f"m{i}", i))
                for i in range(4)]
        await cache.wait_for(mine[-1])
        assert cache.window_start > start
        w = await watchreplay.watch_from_store(
            cache, start, "default", lambda o: o["metadata"]["name"] != "m1")
        got = await _drain(w, 3)
        assert [r for _, r, _ in got] == [mine[0], mine[2], mine[3]]
        assert other not in [r for _, r, _ in got]
        w.close()
    finally:
        await cache.stop()


async def test_compacted_revision_is_410(store: SQLiteStore) -> None:
    key = KIND.storage_key
    revs = [await store.create(key("default", f"c{i}"), _value("c", i)) for i in range(6)]
    cache = WatchCache(KIND, store, window=2)
    await cache.start()
    try:
        await store.compact(revs[3])
        with pytest.raises(errors.Expired) as info:
            await watchreplay.watch_from_store(cache, revs[1], "", None)
        assert str(info.value) == f"too old resource version: {revs[1]} ({revs[3]})"
        assert not cache._watchers
    finally:
        await cache.stop()


async def test_closing_during_replay_stops_it(store: SQLiteStore) -> None:
    key = KIND.storage_key
    revs = [await store.create(key("default", f"d{i}"), _value("d", i)) for i in range(5)]
    cache = WatchCache(KIND, store, window=1)
    await cache.start()
    try:
        await store.create(key("default", "e"), _value("e", 0))
        await cache.wait_for(revs[-1] + 1)
        w = await watchreplay.watch_from_store(cache, revs[0], "", None)
        w.close()
        await asyncio.wait_for(asyncio.gather(w.task, return_exceptions=True), 10)
        assert w not in cache._watchers
    finally:
        await cache.stop()
