"""The SQLite store's watch fan-out: prefix matching and progress on request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from navio.storage.protocol import WatchBatch
from navio.storage.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(tmp_path / "db")
    yield s
    await s.close()


async def _next(it: AsyncIterator[WatchBatch], timeout: float = 5.0) -> WatchBatch:
    return await asyncio.wait_for(it.__anext__(), timeout)


async def _subscribed(store: SQLiteStore, count: int) -> None:
    for _ in range(500):
        if len(store._hub) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("watch did not subscribe")


async def test_progress_on_request_comes_only_when_asked(store: SQLiteStore) -> None:
    start = await store.create("/registry/core/pods/a/x", b"1")
    lazy = store.watch("/registry/core/pods/", from_revision=start, progress=True,
                       progress_on_request=True)
    eager = store.watch("/registry/core/nodes/", from_revision=start, progress=True)
    lazy_next = asyncio.ensure_future(_next(lazy, 30))
    eager_next = asyncio.ensure_future(_next(eager, 30))
    await _subscribed(store, 2)
    other = await store.create("/registry/core/configmaps/a/c", b"2")
    batch = await eager_next
    assert list(batch) == [] and batch.revision == other       # eager: every commit
    await asyncio.sleep(0.1)
    assert not lazy_next.done()                                  # lazy: nothing unasked
    store.request_progress("/registry/core/pods/")
    batch = await asyncio.wait_for(lazy_next, 5)
    assert list(batch) == [] and batch.revision == other
    # Events under the prefix come without asking, and a request with nothing new is quiet.
    mine = await store.create("/registry/core/pods/a/y", b"3")
    batch = await _next(lazy)
    assert [e.kv.mod_revision for e in batch] == [mine]
    store.request_progress("/registry/core/pods/")
    quiet = asyncio.ensure_future(_next(lazy, 30))
    await asyncio.sleep(0.1)
    assert not quiet.done()
    quiet.cancel()
    await asyncio.gather(quiet, return_exceptions=True)
    for it in (lazy, eager):
        await it.aclose()  # type: ignore[attr-defined]


async def test_prefixes_of_any_shape_match(store: SQLiteStore) -> None:
    start = await store.create("/registry/core/pods/a/x", b"0")
    streams = {p: store.watch(p, from_revision=start) for p in
               ("", "/registry/core/", "/registry/core/pods/a/", "/registry/core/pods/a/y",
                "/registry/core/pod")}
    pending = {p: asyncio.ensure_future(_next(it, 30)) for p, it in streams.items()}
    await _subscribed(store, len(streams))
    rev_cm = await store.create("/registry/core/configmaps/a/c", b"1")
    rev_y = await store.create("/registry/core/pods/a/y", b"2")
    rev_yz = await store.create("/registry/core/pods/a/yz", b"3")
    expected = {"": [rev_cm, rev_y, rev_yz], "/registry/core/": [rev_cm, rev_y, rev_yz],
                "/registry/core/pods/a/": [rev_y, rev_yz],
                "/registry/core/pods/a/y": [rev_y, rev_yz],
                "/registry/core/pod": [rev_y, rev_yz]}
    for p, want in expected.items():
        got: list[int] = []
        batch = await asyncio.wait_for(pending[p], 5)
        got += [e.kv.mod_revision for e in batch]
        while len(got) < len(want):
            got += [e.kv.mod_revision for e in await _next(streams[p])]
        assert got == want, p
    for it in streams.values():
        await it.aclose()  # type: ignore[attr-defined]
    assert len(store._hub) == 0
