"""SQLiteStore: the Store contract, group commit, watch ordering, compaction, reopen."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from navio.storage.protocol import (Compacted, KeyExists, KeyNotFound, KeyValue,
                                    RevisionConflict, StorageError, StoreEvent)
from navio.storage.sqlite import FutureRevision, SQLiteStore, StoreClosed, WatchOverflow
from navio.storage.sqlite_schema import key_range

P = "/registry/pods/"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(db_path)
    yield s
    await s.close()


async def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


async def next_batch(watch: AsyncIterator[list[StoreEvent]], timeout: float = 5.0
                     ) -> list[StoreEvent]:
    return await asyncio.wait_for(anext(watch), timeout)


async def collect_until(watch: AsyncIterator[list[StoreEvent]], revision: int,
                        timeout: float = 10.0) -> list[StoreEvent]:
    """Events from `watch` until one at `revision` or later arrived."""
    out: list[StoreEvent] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1].kv.mod_revision < revision:
            out.extend(await anext(watch))
    return out


def raw_rows(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM kine").fetchone()[0])
    finally:
        conn.close()


# --- single-key operations ---

async def test_create_then_get_returns_value_and_revisions(store: SQLiteStore) -> None:
    rev = await store.create(P + "ns/a", b"one")
    assert rev == 1
    assert await store.get(P + "ns/a") == (1, KeyValue(P + "ns/a", b"one", 1, 1))
    assert await store.get(P + "ns/missing") == (1, None)
    assert await store.current_revision() == 1


async def test_create_of_present_key_raises_key_exists(store: SQLiteStore) -> None:
    await store.create(P + "a", b"1")
    with pytest.raises(KeyExists):
        await store.create(P + "a", b"2")
    assert (await store.get(P + "a"))[1] == KeyValue(P + "a", b"1", 1, 1)


async def test_update_with_stale_revision_raises_conflict_carrying_current(
        store: SQLiteStore) -> None:
    r1 = await store.create(P + "a", b"1")
    r2 = await store.update(P + "a", b"2", expect_revision=r1)
    assert r2 > r1
    with pytest.raises(RevisionConflict) as err:
        await store.update(P + "a", b"3", expect_revision=r1)
    assert err.value.current == KeyValue(P + "a", b"2", r1, r2)
    r3 = await store.update(P + "a", b"4", expect_revision=0)
    assert (await store.get(P + "a"))[1] == KeyValue(P + "a", b"4", r1, r3)


async def test_update_and_delete_of_absent_key_raise_key_not_found(store: SQLiteStore) -> None:
    with pytest.raises(KeyNotFound):
        await store.update(P + "nope", b"x", expect_revision=0)
    with pytest.raises(KeyNotFound):
        await store.delete(P + "nope")


async def test_delete_returns_prior_value_and_recreate_starts_a_new_life(
        store: SQLiteStore) -> None:
    r1 = await store.create(P + "a", b"1")
    with pytest.raises(RevisionConflict):
        await store.delete(P + "a", expect_revision=r1 + 100)
    rev, old = await store.delete(P + "a", expect_revision=r1)
    assert old == KeyValue(P + "a", b"1", r1, r1) and rev > r1
    assert (await store.get(P + "a"))[1] is None
    with pytest.raises(KeyNotFound):
        await store.delete(P + "a")
    r3 = await store.create(P + "a", b"again")
    assert (await store.get(P + "a"))[1] == KeyValue(P + "a", b"again", r3, r3)


async def test_concurrent_conditional_updates_on_one_key_let_exactly_one_win(
        store: SQLiteStore) -> None:
    r1 = await store.create(P + "a", b"0")
    results = await asyncio.gather(
        *(store.update(P + "a", b"%d" % i, expect_revision=r1) for i in range(20)),
        return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, RevisionConflict) for r in results) == 19


# --- list and count ---

async def test_list_pages_in_key_order_with_start_and_limit(store: SQLiteStore) -> None:
    names = [f"{P}ns/p{i:03d}" for i in range(25)]
    for name in random.Random(7).sample(names, len(names)):
        await store.create(name, name.encode())
    await store.create("/registry/podsx/other", b"x")   # shares the text prefix, not the path
    await store.create("/registry/pods", b"x")          # the prefix without its slash
    seen: list[str] = []
    start = ""
    pages = 0
    while True:
        rev, items, more = await store.list(P, start=start, limit=10)
        assert rev == 27
        seen += [kv.key for kv in items]
        pages += 1
        if not more:
            break
        start = items[-1].key + "\x00"
    assert seen == names and pages == 3
    rev, items, more = await store.list(P)
    assert [kv.key for kv in items] == names and not more


async def test_list_at_past_revision_sees_the_state_then(store: SQLiteStore) -> None:
    ra = await store.create(P + "a", b"a1")
    rb = await store.create(P + "b", b"b1")
    await store.update(P + "a", b"a2", expect_revision=ra)
    await store.delete(P + "b")
    rc = await store.create(P + "c", b"c1")
    rev, items, more = await store.list(P, revision=rb)
    assert rev == rb and not more
    assert items == [KeyValue(P + "a", b"a1", ra, ra), KeyValue(P + "b", b"b1", rb, rb)]
    _, now, _ = await store.list(P)
    assert [(kv.key, kv.value) for kv in now] == [(P + "a", b"a2"), (P + "c", b"c1")]
    assert (await store.list(P, revision=rc, limit=1))[1:] == ([now[0]], True)
    with pytest.raises(FutureRevision):
        await store.list(P, revision=rc + 1)


async def test_count_counts_live_keys_under_prefix(store: SQLiteStore) -> None:
    for i in range(5):
        await store.create(f"{P}ns/p{i}", b"x")
    await store.delete(f"{P}ns/p0")
    await store.create("/registry/services/ns/s", b"x")
    assert await store.count(P) == (7, 4)
    assert await store.count("") == (7, 5)


@pytest.mark.parametrize(("prefix", "start", "expected"), [
    ("/registry/pods/", "", ("/registry/pods/", "/registry/pods0")),
    ("/registry/pods/", "/registry/pods/ns/b", ("/registry/pods/ns/b", "/registry/pods0")),
    ("", "", ("", None)),
    ("a\U0010ffff", "", ("a\U0010ffff", "b")),
    ("\U0010ffff", "", ("\U0010ffff", None)),
    ("x\ud7ff", "", ("x\ud7ff", "x\ue000")),
], ids=["a prefix ends before its successor", "start moves the low bound",
        "the empty prefix is unbounded", "a maximal last character carries over",
        "an all-maximal prefix is unbounded", "the successor skips surrogates"])
def test_key_range(prefix: str, start: str, expected: tuple[str, str | None]) -> None:
    assert key_range(prefix, start) == expected


# --- compaction ---

async def test_compaction_makes_older_revisions_raise_compacted(
        store: SQLiteStore, db_path: Path) -> None:
    ra = await store.create(P + "a", b"a1")
    for i in range(10):
        await store.update(P + "a", b"a%d" % (i + 2), expect_revision=0)
    rb = await store.create(P + "b", b"b1")
    await store.delete(P + "b")
    r = await store.update(P + "a", b"last", expect_revision=0)
    before = await store.list(P, revision=r - 1)
    rows_before = raw_rows(db_path)

    await store.compact(r - 1)

    assert store.compact_revision == r - 1
    assert await store.list(P, revision=r - 1) == before
    with pytest.raises(Compacted) as err:
        await store.list(P, revision=r - 2)
    assert (err.value.requested, err.value.oldest) == (r - 2, r - 1)
    assert (await store.get(P + "a"))[1] == KeyValue(P + "a", b"last", ra, r)
    assert (await store.get(P + "b"))[1] is None and rb
    # a's newest row <= r-1 is kept beside its row at r; b and its tombstone are gone.
    assert rows_before == 14 and raw_rows(db_path) == 2


async def test_compact_is_idempotent_and_refuses_future_revisions(store: SQLiteStore) -> None:
    for i in range(5):
        await store.create(f"{P}{i}", b"x")
    await store.compact(3)
    await store.compact(3)
    await store.compact(2)
    assert store.compact_revision == 3
    with pytest.raises(FutureRevision):
        await store.compact(99)


async def test_compaction_in_chunks_interleaves_and_completes(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path, compact_chunk=7)
    try:
        for i in range(30):
            await s.create(f"{P}{i}", b"x")
            await s.update(f"{P}{i}", b"y", expect_revision=0)
        compacting = asyncio.create_task(s.compact(55))
        writes = await asyncio.gather(*(s.create(f"/other/{i}", b"z") for i in range(20)))
        await asyncio.wait_for(compacting, 10)
        assert s.compact_revision == 55 and len(set(writes)) == 20
        _, items, _ = await s.list(P)
        assert len(items) == 30 and all(kv.value == b"y" for kv in items)
    finally:
        await s.close()


async def test_compactor_compacts_periodically_keeping_recent_revisions(
        store: SQLiteStore) -> None:
    store.start_compactor(0.02, keep=5)
    for i in range(20):
        await store.create(f"{P}{i}", b"x")
    await wait_until(lambda: store.compact_revision > 0, timeout=5, what="a periodic compaction")
    assert store.compact_revision <= 20 - 5
    with pytest.raises(RuntimeError):
        store.start_compactor(1)


# --- watch ---

async def test_watch_replays_history_then_follows_live_writes_without_gaps(
        db_path: Path) -> None:
    s = await SQLiteStore.open(db_path, replay_page=7)
    try:
        for i in range(40):
            await s.create(f"{P}h{i}", b"x")
        from_rev = 15
        watch = s.watch(P, from_revision=from_rev)

        async def writer() -> int:
            last = 0
            for i in range(60):   # some while the replay is still paging, some after
                last = await s.update(f"{P}h{i % 40}", b"y%d" % i, expect_revision=0)
            return last

        writing = asyncio.create_task(writer())
        first = await next_batch(watch)
        last = await asyncio.wait_for(writing, 10)
        events = first + await collect_until(watch, last)
        revs = [e.kv.mod_revision for e in events]
        assert revs == list(range(from_rev + 1, last + 1))
        assert [e.type for e in events[:25]] == ["CREATE"] * 25
        update = events[-1]
        assert update.type == "UPDATE" and update.prev is not None
        assert update.prev.mod_revision < update.kv.mod_revision
        await watch.aclose()
    finally:
        await s.close()


async def test_watch_sees_only_its_prefix_and_reports_deletes(store: SQLiteStore) -> None:
    watch = store.watch(P, from_revision=0)
    ra = await store.create(P + "a", b"1")
    await store.create("/registry/services/s", b"x")
    rd, _ = await store.delete(P + "a")
    events = await collect_until(watch, rd)
    assert [(e.type, e.kv.key) for e in events] == [("CREATE", P + "a"), ("DELETE", P + "a")]
    assert events[1].kv == KeyValue(P + "a", b"1", ra, rd)
    assert events[1].prev == KeyValue(P + "a", b"1", ra, ra)
    await watch.aclose()


async def test_watch_from_a_future_revision_skips_events_up_to_it(store: SQLiteStore) -> None:
    await store.create(P + "a", b"x")
    watch = store.watch(P, from_revision=3)
    pending = asyncio.ensure_future(anext(watch))
    await wait_until(lambda: len(store._hub) == 1, timeout=5, what="the watch to subscribe")
    for i in range(4):
        await store.create(f"{P}{i}", b"x")
    events = await asyncio.wait_for(pending, 5)
    if events[-1].kv.mod_revision < 5:
        events += await collect_until(watch, 5)
    assert [e.kv.mod_revision for e in events] == [4, 5]
    await watch.aclose()


async def test_watch_from_compacted_revision_raises_compacted(store: SQLiteStore) -> None:
    for i in range(10):
        await store.create(f"{P}{i}", b"x")
    await store.compact(6)
    with pytest.raises(Compacted) as err:
        await next_batch(store.watch(P, from_revision=5))
    assert (err.value.requested, err.value.oldest) == (5, 6)
    ok = store.watch(P, from_revision=6)   # events > 6 are all kept
    assert [e.kv.mod_revision for e in await next_batch(ok)] == [7, 8, 9, 10]
    await ok.aclose()


async def test_compaction_during_replay_ends_the_watch_with_compacted(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path, replay_page=2)
    try:
        for i in range(10):
            await s.create(f"{P}{i}", b"x")
            await s.update(f"{P}{i}", b"y", expect_revision=0)
        watch = s.watch(P, from_revision=0)
        assert [e.kv.mod_revision for e in await next_batch(watch)] == [1, 2]
        await s.compact(8)
        with pytest.raises(Compacted):
            await next_batch(watch)
    finally:
        await s.close()


async def test_slow_watcher_is_terminated_with_overflow(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path, watch_queue_limit=10)
    try:
        slow = s.watch(P, from_revision=0)
        fast = s.watch(P, from_revision=0)
        pending = asyncio.ensure_future(anext(slow))
        await s.create(P + "first", b"x")
        assert len(await asyncio.wait_for(pending, 5)) == 1
        last = 0
        for i in range(30):
            last = await s.create(f"{P}{i}", b"x")
            if i % 5 == 0:
                await next_batch(fast)   # keeps up
        with pytest.raises(WatchOverflow):
            await next_batch(slow)
        rest = await collect_until(fast, last)
        assert rest[-1].kv.mod_revision == last
        await fast.aclose()
    finally:
        await s.close()


async def test_watch_ends_when_the_store_closes(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path)
    watch = s.watch(P, from_revision=0)
    pending = asyncio.ensure_future(anext(watch))
    await wait_until(lambda: len(s._hub) == 1, timeout=5, what="the watch to subscribe")
    await s.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


# --- group commit ---

async def test_concurrent_creates_are_group_committed(store: SQLiteStore) -> None:
    tx0 = store.transactions
    revs = await asyncio.gather(*(store.create(f"{P}g{i}", b"x") for i in range(200)))
    assert sorted(revs) == list(range(1, 201))
    assert store.writes == 200
    assert store.transactions - tx0 <= 20, store.transactions - tx0


async def hold_writer(store: SQLiteStore, calls: list[Callable[[], Awaitable[object]]]
                      ) -> list[object]:
    """Run `calls` so that all of them land in one write transaction."""
    writer = store._writer
    assert writer is not None
    with writer.gate:
        tasks = [asyncio.ensure_future(c()) for c in calls]
        await wait_until(lambda: writer.queued() == len(calls) - 1, timeout=5,
                         what="the writer to take the first op and wait at the gate")
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)


async def test_a_failing_write_fails_alone_within_its_batch(store: SQLiteStore) -> None:
    rb = await store.create(P + "b", b"b")
    tx0 = store.transactions
    results = await hold_writer(store, [
        lambda: store.create(P + "a", b"1"),
        lambda: store.create(P + "a", b"dup"),
        lambda: store.update(P + "b", b"x", expect_revision=rb + 50),
        lambda: store.update(P + "zz", b"x", expect_revision=0),
        lambda: store.update(P + "b", b"b2", expect_revision=rb),
        lambda: store.delete(P + "a"),
        lambda: store.create(P + "a", b"reborn"),
    ])
    assert store.transactions - tx0 == 1
    assert isinstance(results[0], int)
    assert isinstance(results[1], KeyExists)
    assert isinstance(results[2], RevisionConflict)
    assert isinstance(results[3], KeyNotFound)
    assert results[4] == results[0] + 1        # failures consume no revision
    assert results[5] == (results[4] + 1, KeyValue(P + "a", b"1", results[0], results[0]))
    assert results[6] == results[4] + 2
    _, items, _ = await store.list(P)
    assert [(kv.key, kv.value) for kv in items] == [(P + "a", b"reborn"), (P + "b", b"b2")]


# --- lifecycle ---

async def test_reopen_keeps_data_revision_and_compaction(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path)
    for i in range(10):
        await s.create(f"{P}{i}", b"v%d" % i)
    await s.delete(f"{P}9")
    await s.compact(5)
    await s.close()
    s = await SQLiteStore.open(db_path)
    try:
        assert await s.current_revision() == 11
        assert s.compact_revision == 5
        assert await s.count(P) == (11, 9)
        assert await s.create(f"{P}9", b"again") == 12
        with pytest.raises(Compacted):
            await s.list(P, revision=4)
    finally:
        await s.close()


async def test_second_open_of_an_open_database_is_refused(store: SQLiteStore,
                                                          db_path: Path) -> None:
    with pytest.raises(StorageError, match="in use"):
        await SQLiteStore.open(db_path)


async def test_close_applies_and_acknowledges_queued_writes(db_path: Path) -> None:
    s = await SQLiteStore.open(db_path)
    writer = s._writer
    assert writer is not None
    with writer.gate:
        tasks = [asyncio.ensure_future(s.create(f"{P}{i}", b"x")) for i in range(50)]
        await wait_until(lambda: writer.queued() == 49, timeout=5, what="queued writes")
        closing = asyncio.ensure_future(s.close())
        await wait_until(lambda: s._closed, timeout=5, what="close() to begin")
    await asyncio.wait_for(closing, 10)
    assert sorted(await asyncio.gather(*tasks)) == list(range(1, 51))
    with pytest.raises(StoreClosed):
        await s.create(P + "late", b"x")
    s = await SQLiteStore.open(db_path)
    try:
        assert await s.count(P) == (50, 50)
    finally:
        await s.close()


async def test_watch_with_progress_reports_revisions_of_other_prefixes(tmp_path):
    """A watch cache learns it is current from progress batches, even with no writes of its
    own (what consistent reads from the cache wait on)."""
    from navio.storage.sqlite import SQLiteStore
    store = await SQLiteStore.open(tmp_path / "p.db")
    try:
        await store.create("/a/1", b"x")
        watch = store.watch("/b/", from_revision=0, progress=True)
        first = await asyncio.wait_for(watch.__anext__(), 5)
        assert list(first) == [] and first.revision == 1
        rev = await store.create("/a/2", b"y")
        batch = await asyncio.wait_for(watch.__anext__(), 5)
        assert list(batch) == [] and batch.revision == rev
        rev = await store.create("/b/1", b"z")
        batch = await asyncio.wait_for(watch.__anext__(), 5)
        assert [e.kv.key for e in batch] == ["/b/1"] and batch.revision == rev
        await watch.aclose()
    finally:
        await store.close()
