"""The single writer thread of the SQLite store: group commit of the revision log.

Why a thread: SQLite allows one writer at a time and a durable COMMIT waits for fsync; doing
that on the event loop would stall every request. Why group commit: one fsync per write caps
throughput at the disk's fsync rate; instead the writer takes everything queued while the
previous commit was syncing and applies it in ONE transaction with ONE fsync.

Guarantees:
- Writes are applied in the order they were submitted; each gets the next revision.
- Each write is checked on its own, against the state left by the writes before it in the
  same transaction: KeyExists / KeyNotFound / RevisionConflict fail that write only. (Each
  write is a single INSERT, which SQLite rolls back alone if it violates a constraint.)
- No caller learns its result before COMMIT (synchronous=FULL: the WAL is fsynced) returned.
  If the transaction fails as a whole, every write in it fails with StorageError.
- Results and the batch's events reach the event loop in one callback per transaction, in
  commit order; watchers are fed from there, so they never miss or reorder a commit.
- A write whose caller was cancelled before the writer took it is skipped; one cancelled later
  may still be applied (like a request whose client hung up).
- Compaction runs in chunks of `compact_chunk` revisions, each its own transaction, re-queued
  behind the writes that arrived meanwhile, so a large compaction never stalls writes for long.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from navio.storage import sqlite_schema as q
from navio.storage.protocol import (KeyExists, KeyNotFound, KeyValue, RevisionConflict,
                                    StorageError, StoreEvent)

__all__ = ["WriteOp", "CompactOp", "Outcome", "CommitCallback", "Writer"]

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(slots=True)
class WriteOp:
    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes | None
    expect: int
    future: asyncio.Future[Any]


@dataclass(slots=True)
class CompactOp:
    target: int
    future: asyncio.Future[Any]


# (future, result, exception): exactly one of result/exception is meaningful.
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
# (outcomes, events, new revision or None, new compact revision or None), run on the loop.
CommitCallback = Callable[[list[Outcome], list[StoreEvent], "int | None", "int | None"], None]


class Writer:
    """Owns the write connection; `submit` may be called from the loop, all else is internal."""

    def __init__(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop,
                 on_commit: CommitCallback, *, max_batch: int, compact_chunk: int) -> None:
        self._conn = conn
        self._loop = loop
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._compact_chunk = compact_chunk
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="navio-sqlite-writer", daemon=True)
        self._stopped: asyncio.Future[None] = loop.create_future()
        # Held between taking the first op and draining the rest: tests hold it to force a
        # known set of ops into one transaction.
        self.gate = threading.Lock()
        self.transactions = 0   # committed write transactions
        self.writes = 0         # writes applied in them

    def start(self) -> None:
        self._thread.start()

    def submit(self, op: WriteOp | CompactOp) -> None:
        self._queue.put(op)

    def queued(self) -> int:
        return self._queue.qsize()

    async def stop(self) -> None:
        """Apply everything submitted so far, deliver its results, close the connection."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            await self._stopped
        else:
            self._conn.close()

    # --- writer thread ---

    def _run(self) -> None:
        try:
            stop = False
            while not stop:
                item = self._queue.get()
                if item is _STOP:
                    break
                with self.gate:
                    batch = [item]
                    while len(batch) < self._max_batch:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is _STOP:
                            stop = True
                            break
                        batch.append(item)
                    self._guarded(batch, final=False)
            self._drain()
        except BaseException:
            log.exception("sqlite writer crashed")
            raise
        finally:
            self._conn.close()
            self._call_loop(self._set_stopped)

    def _drain(self) -> None:
        """After stop: finish whatever is left, compactions included, to completion."""
        leftovers: list[WriteOp | CompactOp] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                leftovers.append(item)  # type: ignore[arg-type]
        if leftovers:
            self._guarded(leftovers, final=True)

    def _guarded(self, batch: list[Any], *, final: bool) -> None:
        """_process, but a bug fails the batch's callers instead of killing the thread and
        leaving them waiting forever."""
        try:
            self._process(batch, final=final)
        except Exception as exc:
            log.exception("writer batch failed", extra={"ops": len(batch)})
            self._rollback()
            failed: list[Outcome] = []
            for op in batch:
                err = StorageError("writer failed")
                err.__cause__ = exc
                failed.append((op.future, None, err))
            self._call_loop(self._on_commit, failed, [], None, None)

    def _process(self, batch: list[Any], *, final: bool) -> None:
        writes = [op for op in batch if isinstance(op, WriteOp)]
        if writes:
            self._write_batch(writes)
        for op in batch:
            if not isinstance(op, CompactOp):
                continue
            if final:
                while not self._compact_step(op):
                    pass
            elif not self._compact_step(op):
                self._queue.put(op)  # behind the writes that arrived meanwhile

    def _write_batch(self, ops: list[WriteOp]) -> None:
        started = time.perf_counter()
        outcomes: list[Outcome] = []
        events: list[StoreEvent] = []
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                if op.future.cancelled():
                    continue
                try:
                    result, event = self._apply(op)
                except StorageError as exc:
                    outcomes.append((op.future, None, exc))
                    continue
                outcomes.append((op.future, result, None))
                events.append(event)
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            log.error("write transaction failed", exc_info=True, extra={"ops": len(ops)})
            failed: list[Outcome] = []
            for op in ops:
                err = StorageError("write transaction failed")
                err.__cause__ = exc
                failed.append((op.future, None, err))
            self._call_loop(self._on_commit, failed, [], None, None)
            return
        self.transactions += 1
        self.writes += len(events)
        revision = events[-1].kv.mod_revision if events else None
        log.debug("write batch committed", extra={
            "ops": len(ops), "writes": len(events), "revision": revision,
            "seconds": round(time.perf_counter() - started, 6)})
        self._call_loop(self._on_commit, outcomes, events, revision, None)

    def _apply(self, op: WriteOp) -> tuple[Any, StoreEvent]:
        """Pre-check and append one write; raises the StorageError that fails it alone."""
        conn, key = self._conn, op.key
        latest = q.latest_row(conn, key)
        if op.kind == "create":
            if latest is not None and not latest[1]:
                raise KeyExists(key)
            rev = self._insert(op, (key, 1, 0, 0, latest[0] if latest else 0, op.value, None))
            return rev, StoreEvent("CREATE", KeyValue(key, op.value or b"", rev, rev), None)
        if latest is None or latest[1]:
            raise KeyNotFound(key)
        prev_rev, _, create_rev, old = latest
        prev = KeyValue(key, old, create_rev, prev_rev)
        if op.expect and op.expect != prev_rev:
            raise RevisionConflict(key, prev)
        if op.kind == "update":
            rev = self._insert(op, (key, 0, 0, create_rev, prev_rev, op.value, old), prev)
            return rev, StoreEvent("UPDATE", KeyValue(key, op.value or b"", create_rev, rev), prev)
        rev = self._insert(op, (key, 0, 1, create_rev, prev_rev, old, None), prev)
        return (rev, prev), StoreEvent("DELETE", KeyValue(key, old, create_rev, rev), prev)

    def _insert(self, op: WriteOp, row: tuple[Any, ...], prev: KeyValue | None = None) -> int:
        try:
            cur = self._conn.execute(q.INSERT_SQL, row)
        except sqlite3.IntegrityError:
            # The UNIQUE (name, prev_revision) index caught a write building on a row that
            # another write already built on: the same collision kine relies on.
            if op.kind == "create":
                raise KeyExists(op.key) from None
            raise RevisionConflict(op.key, prev) from None
        return int(cur.lastrowid or 0)

    def _compact_step(self, op: CompactOp) -> bool:
        """Compact one chunk towards op.target; True once the op is finished (or failed)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            current = q.compact_revision(conn)
            upto = min(op.target, current + self._compact_chunk)
            deleted = 0
            if upto > current:
                deleted = conn.execute(q.COMPACT_SQL, (current, upto, current, upto)).rowcount
                conn.execute(q.SET_COMPACT_SQL, (upto,))
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            log.error("compaction failed", exc_info=True, extra={"target": op.target})
            err = StorageError("compaction failed")
            err.__cause__ = exc
            self._call_loop(self._on_commit, [(op.future, None, err)], [], None, None)
            return True
        log.info("compacted", extra={"from": current, "to": upto, "rows": deleted})
        done = upto >= op.target
        outcomes: list[Outcome] = [(op.future, max(upto, current), None)] if done else []
        self._call_loop(self._on_commit, outcomes, [], None, max(upto, current))
        return done

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback failed")

    def _call_loop(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            log.warning("event loop closed; writer results dropped")

    def _set_stopped(self) -> None:
        if not self._stopped.done():
            self._stopped.set_result(None)
