"""The embedded storage backend: a kine-style revision log in one SQLite file.

Why: `navio server` must run with no external database, yet serve Kubernetes semantics — one
global revision, conditional writes, lists at a past revision, and watch from a revision.

Guarantees:
- Durability: a write is acknowledged only after its transaction committed with the WAL
  fsynced (`journal_mode=WAL`, `synchronous=FULL`), so it survives kill -9 and power loss.
  Opening after a crash runs SQLite's WAL recovery; uncommitted tails are discarded.
- Ordering: one writer thread applies writes in submission order and group-commits them
  (see `sqlite_writer`); revisions are strictly increasing and never reused.
- Reads run on a small pool of reader connections, each in its own read transaction, so a
  read sees one committed snapshot and never blocks the event loop or the writer.
- Watch: history (> from_revision) is replayed from the log, then live events follow from the
  writer's in-process notification (no polling), with no gap and no duplicate: the watcher is
  registered and the replay's upper bound taken in the same event loop step. Batches arrive
  in revision order. Each live watcher buffers at most `watch_queue_limit` events, otherwise
  it is ended with `WatchOverflow`. A watch ends (StopAsyncIteration) when the store closes.
- Compaction: after `compact(R)`, reads at revisions >= R and watches from revisions >= R work;
  older ones raise `Compacted(requested, oldest=R)`. (A watch from R yields events > R, all of
  which are kept; the oldest event kept is therefore R + 1.) Live values are never dropped.
- Exclusive: one process opens the database at a time (an flock on `<path>.lock`), since the
  in-process revision and watch fan-out assume a single writer.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar

from navio.storage import sqlite_schema as q
from navio.storage.protocol import (Compacted, KeyValue, StorageError, Store, StoreEvent,
                                    WatchBatch, WatchOverflow)
from navio.storage.sqlite_watch import WatchHub
from navio.storage.sqlite_writer import CompactOp, Outcome, Writer, WriteOp

__all__ = ["SQLiteStore", "FutureRevision", "StoreClosed", "WatchOverflow"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class FutureRevision(StorageError):
    """A read or compaction at a revision newer than the store's (etcd: ErrFutureRev)."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current {current})")
        self.requested = requested
        self.current = current


class StoreClosed(StorageError):
    """The store was closed."""


class SQLiteStore:
    """`Store` on SQLite. Create with `await SQLiteStore.open(path)`; end with `close()`."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop, *, readers: int,
                 max_batch: int, max_pending_writes: int, watch_queue_limit: int,
                 replay_page: int, compact_chunk: int) -> None:
        if min(readers, max_batch, max_pending_writes, replay_page, compact_chunk) < 1:
            raise ValueError("store sizes and limits must be >= 1")
        self.path = path
        self._loop = loop
        self._n_readers = readers
        self._replay_page = replay_page
        self._slots = asyncio.Semaphore(max_pending_writes)
        self._hub = WatchHub(watch_queue_limit)
        self._conns: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_conns: list[sqlite3.Connection] = []
        self._pool = ThreadPoolExecutor(readers, thread_name_prefix="navio-sqlite-reader")
        self._lock_fd: int | None = None
        self._wconn: sqlite3.Connection | None = None
        self._writer: Writer | None = None
        self._revision = 0           # newest revision whose events were published
        self._compact_revision = 0   # reads and watches below this raise Compacted
        self._compactor: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, *, readers: int = 2, max_batch: int = 1000,
                   max_pending_writes: int = 10_000, watch_queue_limit: int = 10_000,
                   replay_page: int = 1000, compact_chunk: int = 10_000) -> SQLiteStore:
        """Open (creating if needed, 0600) the database at `path` and start its writer.

        `max_batch`: writes per transaction; `max_pending_writes`: writes waiting at once before
        callers queue on the loop; `watch_queue_limit`: events a live watcher may lag behind."""
        store = cls(Path(path), asyncio.get_running_loop(), readers=readers, max_batch=max_batch,
                    max_pending_writes=max_pending_writes, watch_queue_limit=watch_queue_limit,
                    replay_page=replay_page, compact_chunk=compact_chunk)
        opening = asyncio.ensure_future(asyncio.to_thread(store._open_files))
        try:
            await asyncio.shield(opening)
        except BaseException:
            await asyncio.wait({opening})   # cancelled or not, undo only once the thread is done
            await asyncio.to_thread(store._close_files)
            raise
        assert store._wconn is not None
        store._writer = Writer(store._wconn, store._loop, store._on_commit,
                               max_batch=max_batch, compact_chunk=compact_chunk)
        store._wconn = None  # the writer owns and closes it from here on
        store._writer.start()
        log.info("sqlite store opened", extra={"path": str(store.path),
                                               "revision": store._revision,
                                               "compact_revision": store._compact_revision})
        return store

    def _open_files(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise StorageError(f"{self.path} is in use by another process") from None
        self._lock_fd = lock_fd
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._wconn = wconn = self._connect()
        mode = wconn.execute(q.PRAGMAS[0]).fetchone()[0]
        if mode.lower() != "wal":
            raise StorageError(f"cannot enable WAL on {self.path} (journal_mode={mode})")
        for pragma in q.PRAGMAS[1:]:
            wconn.execute(pragma)
        wconn.execute("BEGIN IMMEDIATE")
        for stmt in q.SCHEMA:
            wconn.execute(stmt)
        wconn.execute("COMMIT")
        self._revision = q.current_revision(wconn)
        self._compact_revision = q.compact_revision(wconn)
        for _ in range(self._n_readers):
            rconn = self._connect()
            self._all_conns.append(rconn)
            rconn.execute("PRAGMA query_only=1")
            self._conns.put(rconn)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: a
        # connection is used by one thread at a time, but not always the one that opened it.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _close_files(self) -> None:
        self._pool.shutdown(wait=True)
        for conn in self._all_conns:
            conn.close()
        self._all_conns.clear()
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- introspection ---

    @property
    def transactions(self) -> int:
        """Write transactions committed since open: fewer than writes when group commit works."""
        return self._writer.transactions if self._writer else 0

    @property
    def writes(self) -> int:
        return self._writer.writes if self._writer else 0

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    # --- reads ---

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosed("store closed")
        return await self._loop.run_in_executor(self._pool, self._in_snapshot, fn, args)

    def _in_snapshot(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conns.get()
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("ROLLBACK")
        finally:
            self._conns.put(conn)

    async def get(self, key: str) -> tuple[int, KeyValue | None]:
        return await self._read(_get, key)

    async def list(self, prefix: str, *, revision: int = 0, start: str = "",
                   limit: int = 0) -> tuple[int, list[KeyValue], bool]:
        return await self._read(_list, prefix, revision, start, limit)

    async def count(self, prefix: str) -> tuple[int, int]:
        return await self._read(_count, prefix)

    async def current_revision(self) -> int:
        return self._revision

    # --- writes ---

    async def _submit(self, op: WriteOp | CompactOp) -> Any:
        if self._closed or self._writer is None:
            raise StoreClosed("store closed")
        async with self._slots:
            if self._closed:  # close() began while we waited for a slot
                raise StoreClosed("store closed")
            self._writer.submit(op)
            return await op.future

    async def create(self, key: str, value: bytes) -> int:
        rev: int = await self._submit(
            WriteOp("create", key, bytes(value), 0, self._loop.create_future()))
        return rev

    async def update(self, key: str, value: bytes, *, expect_revision: int) -> int:
        rev: int = await self._submit(
            WriteOp("update", key, bytes(value), expect_revision, self._loop.create_future()))
        return rev

    async def delete(self, key: str, *, expect_revision: int = 0) -> tuple[int, KeyValue]:
        """Returns (delete revision, the value as it was before, with its own mod_revision)."""
        result: tuple[int, KeyValue] = await self._submit(
            WriteOp("delete", key, None, expect_revision, self._loop.create_future()))
        return result

    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision`. Compacting to a revision at or below the
        current compact revision is a no-op; above the store's revision, FutureRevision."""
        if revision > self._revision:
            raise FutureRevision(revision, self._revision)
        if revision <= self._compact_revision:
            return
        await self._submit(CompactOp(revision, self._loop.create_future()))

    def _on_commit(self, outcomes: list[Outcome], events: list[StoreEvent],
                   revision: int | None, compacted: int | None) -> None:
        """Runs on the loop, once per writer transaction, in commit order."""
        if revision is not None and revision > self._revision:
            self._revision = revision
        if compacted is not None and compacted > self._compact_revision:
            self._compact_revision = compacted
        if events or revision is not None:
            self._hub.publish(events, self._revision)
        for future, result, exc in outcomes:
            if future.done():
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

    # --- watch ---

    async def watch(self, prefix: str, *, from_revision: int, progress: bool = False,
                    progress_on_request: bool = False) -> AsyncIterator[WatchBatch]:
        """See `Store.watch`; with `progress_on_request`, progress batches come only after
        `request_progress(prefix)` (ProgressRequester), not on every commit."""
        if self._closed:
            return
        if from_revision < self._compact_revision:
            raise Compacted(from_revision, self._compact_revision)
        # Same loop step: every commit <= upto was published before we subscribed (so the
        # replay covers it); every later one will be published to us.
        sub = self._hub.subscribe(prefix, progress, progress_on_request)
        upto = self._revision
        try:
            cursor = from_revision
            lo, hi = q.key_range(prefix)
            while cursor < upto and not sub.failed:   # if it failed, next() raises below
                try:
                    events, scanned = await self._read(_history, lo, hi, cursor, upto,
                                                       self._replay_page)
                except StoreClosed:
                    return
                cursor = events[-1].kv.mod_revision if scanned == self._replay_page else upto
                if events:
                    yield WatchBatch(events, cursor)
            async for batch in sub.live(from_revision, upto, progress):
                yield batch
        finally:
            self._hub.unsubscribe(sub)

    def request_progress(self, prefix: str) -> None:
        """Make the progress_on_request watches on `prefix` report the current revision."""
        self._hub.request_progress(prefix)

    # --- compaction and shutdown ---

    def start_compactor(self, interval: float = 300.0, *, keep: int = 1000) -> None:
        """Compact every `interval` seconds, as kube-apiserver does every 5 minutes: to the
        revision seen one interval earlier, so at least one interval of history stays, and
        never within the newest `keep` revisions (kine's default retention). Stops on close."""
        if self._compactor is not None:
            raise RuntimeError("compactor already started")
        if self._closed:
            raise StoreClosed("store closed")
        self._compactor = self._loop.create_task(self._compact_every(interval, keep),
                                                 name="navio-sqlite-compactor")

    async def _compact_every(self, interval: float, keep: int) -> None:
        previous = self._revision
        while not self._closed:
            await asyncio.sleep(interval)
            target = min(previous, self._revision - keep)
            previous = self._revision
            if target <= self._compact_revision:
                continue
            try:
                await self.compact(target)
            except StoreClosed:
                return
            except StorageError:
                log.exception("periodic compaction failed", extra={"target": target})

    async def close(self) -> None:
        """Stop intake, apply and acknowledge every write already submitted, end watches,
        close connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            await asyncio.wait({self._compactor})
        if self._writer is not None:
            await self._writer.stop()
        self._hub.close()
        await asyncio.to_thread(self._close_files)
        log.info("sqlite store closed", extra={"path": str(self.path),
                                               "revision": self._revision})


# --- read transactions, run on reader threads inside one snapshot each ---

def _get(conn: sqlite3.Connection, key: str) -> tuple[int, KeyValue | None]:
    revision = q.current_revision(conn)
    latest = q.latest_row(conn, key)
    if latest is None or latest[1]:
        return revision, None
    rev, _, create_rev, value = latest
    return revision, KeyValue(key, value, create_rev, rev)


def _list(conn: sqlite3.Connection, prefix: str, revision: int, start: str,
          limit: int) -> tuple[int, list[KeyValue], bool]:
    current = q.current_revision(conn)
    if revision:
        compacted = q.compact_revision(conn)
        if revision < compacted:
            raise Compacted(revision, compacted)
        if revision > current:
            raise FutureRevision(revision, current)
    lo, hi = q.key_range(prefix, start)
    read_at = revision or current
    if hi is not None and lo >= hi:
        return read_at, [], False
    sql, args = q.list_sql(lo, hi, revision, limit + 1 if limit > 0 else -1)
    rows = conn.execute(sql, args).fetchall()
    more = 0 < limit < len(rows)
    return read_at, [q.row_to_kv(r) for r in (rows[:limit] if more else rows)], more


def _count(conn: sqlite3.Connection, prefix: str) -> tuple[int, int]:
    lo, hi = q.key_range(prefix)
    sql, args = q.count_sql(lo, hi)
    return q.current_revision(conn), int(conn.execute(sql, args).fetchone()[0])


def _history(conn: sqlite3.Connection, lo: str, hi: str | None, after: int, upto: int,
             limit: int) -> tuple[list[StoreEvent], int]:
    """Events after `after` up to `upto`, and how many rows the page held."""
    compacted = q.compact_revision(conn)
    if after < compacted:
        raise Compacted(after, compacted)
    sql, args = q.history_sql(lo, hi, after, upto, limit)
    rows = conn.execute(sql, args).fetchall()
    return [q.row_to_event(r) for r in rows], len(rows)


if TYPE_CHECKING:
    _store: type[Store] = SQLiteStore
