"""The SQLite revision log's schema, its SQL, and the mapping from rows to navio values.

The shape is kine's (`pkg/drivers/sqlite/sqlite.go`): one append-only table `kine` whose
AUTOINCREMENT `id` is the store revision. Every write appends one row:

| write  | created | deleted | create_revision    | prev_revision    | value     | old_value |
|--------|---------|---------|--------------------|------------------|-----------|-----------|
| create | 1       | 0       | 0 (means: `id`)    | previous row or 0| new value | NULL      |
| update | 0       | 0       | the key's          | replaced row id  | new value | old value |
| delete | 0       | 1       | the key's          | deleted row id   | old value | NULL      |

A key's state at revision R is its newest row with `id <= R` (absent if that row is a delete).
The UNIQUE index on (name, prev_revision) makes two writes that build on the same row collide,
so a lost update cannot slip through even if a pre-check were wrong. `old_value` lets a watch
replay carry each event's previous value after the previous row has been compacted away.

AUTOINCREMENT (not plain rowid) guarantees a revision is never reused, even when compaction
deletes the newest row; `sqlite_sequence` therefore holds the store's current revision.
The compacted revision lives in `navio_meta` rather than kine's `compact_rev_key` row, which
would consume revisions and show up in the log.

Everything here is pure (no connections are opened); the store and its writer use it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from navio.storage.protocol import KeyValue, StoreEvent

__all__ = ["SCHEMA", "PRAGMAS", "key_range", "row_to_kv", "row_to_event", "current_revision",
           "compact_revision", "latest_row", "list_sql", "count_sql", "history_sql",
           "INSERT_SQL", "SET_COMPACT_SQL", "COMPACT_SQL", "KV_COLUMNS", "EVENT_COLUMNS"]

# Durability: WAL with synchronous=FULL fsyncs the WAL on every commit, so a transaction is on
# disk before COMMIT returns and before any caller is told it succeeded. That survives kill -9
# and power loss. (NORMAL would survive kill -9 only: WAL frames would sit in the page cache
# until a checkpoint.) Group commit pays the fsync once per batch, not once per write.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=OFF",
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        lease INTEGER NOT NULL DEFAULT 0,
        value BLOB,
        old_value BLOB)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex "
    "ON kine (name, prev_revision)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id)",
    "CREATE TABLE IF NOT EXISTS navio_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO navio_meta (key, value) VALUES ('compact_revision', 0)",
)

KV_COLUMNS = "kv.name, CASE WHEN kv.created THEN kv.id ELSE kv.create_revision END, kv.id, kv.value"
EVENT_COLUMNS = ("kv.id, kv.name, kv.created, kv.deleted, kv.create_revision, kv.prev_revision, "
                 "kv.value, kv.old_value")

INSERT_SQL = ("INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, "
              "value, old_value) VALUES (?, ?, ?, ?, ?, 0, ?, ?)")
SET_COMPACT_SQL = "UPDATE navio_meta SET value = ? WHERE key = 'compact_revision'"

# Rows made obsolete by writes in (lo, hi]: the rows those writes replaced, and the tombstones
# themselves. Applied range by range, this leaves for every key exactly its newest row <= hi,
# unless that row is a delete. Both halves scan a rowid range, so no extra index is needed.
COMPACT_SQL = """DELETE FROM kine WHERE id IN (
    SELECT prev_revision FROM kine WHERE id > ? AND id <= ? AND prev_revision != 0
    UNION ALL
    SELECT id FROM kine WHERE id > ? AND id <= ? AND deleted != 0)"""

_LATEST_SQL = ("SELECT kv.id, kv.created, kv.deleted, kv.create_revision, kv.value "
               "FROM kine AS kv WHERE kv.name = ? ORDER BY kv.id DESC LIMIT 1")


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix` (None: no bound).

    SQLite's BINARY collation compares UTF-8 bytes, which orders like code points, so bumping
    the last code point gives an exact upper bound; surrogates cannot be stored and are skipped."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def key_range(prefix: str, start: str = "") -> tuple[str, str | None]:
    """(inclusive low, exclusive high or None) of the keys under `prefix` from `start` on."""
    return max(prefix, start), _successor(prefix)


def _name_clause(hi: str | None) -> str:
    return "kv.name >= ? AND kv.name < ?" if hi is not None else "kv.name >= ?"


def _name_args(lo: str, hi: str | None) -> list[Any]:
    return [lo, hi] if hi is not None else [lo]


def list_sql(lo: str, hi: str | None, revision: int, limit: int) -> tuple[str, list[Any]]:
    """Live keys in [lo, hi) as of `revision` (0: newest), in key order, at most `limit` (<0: all).

    The correlated MAX walks the (name, id) index in key order, so a page of `limit` keys costs
    about the rows of those keys, not of the whole prefix."""
    bound = " AND k2.id <= ?" if revision else ""
    sql = (f"SELECT {KV_COLUMNS} FROM kine AS kv WHERE {_name_clause(hi)} AND kv.id = "
           f"(SELECT MAX(k2.id) FROM kine AS k2 WHERE k2.name = kv.name{bound}) "
           "AND kv.deleted = 0 ORDER BY kv.name LIMIT ?")
    args = _name_args(lo, hi) + ([revision] if revision else []) + [limit]
    return sql, args


def count_sql(lo: str, hi: str | None) -> tuple[str, list[Any]]:
    sql = (f"SELECT COUNT(*) FROM kine AS kv WHERE {_name_clause(hi)} AND kv.id = "
           "(SELECT MAX(k2.id) FROM kine AS k2 WHERE k2.name = kv.name) AND kv.deleted = 0")
    return sql, _name_args(lo, hi)


def history_sql(lo: str, hi: str | None, after: int, upto: int,
                limit: int) -> tuple[str, list[Any]]:
    """Rows with `after` < id <= `upto` under [lo, hi), in revision order."""
    sql = (f"SELECT {EVENT_COLUMNS} FROM kine AS kv WHERE kv.id > ? AND kv.id <= ? AND "
           f"{_name_clause(hi)} ORDER BY kv.id LIMIT ?")
    return sql, [after, upto, *_name_args(lo, hi), limit]


def current_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
    return int(row[0]) if row else 0


def compact_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM navio_meta WHERE key = 'compact_revision'").fetchone()
    return int(row[0]) if row else 0


def latest_row(conn: sqlite3.Connection, key: str) -> tuple[int, bool, int, bytes] | None:
    """The key's newest row as (id, deleted, create_revision, value), or None if it has none."""
    row = conn.execute(_LATEST_SQL, (key,)).fetchone()
    if row is None:
        return None
    rev, created, deleted, create_rev, value = row
    return rev, bool(deleted), rev if created else create_rev, value


def row_to_kv(row: Sequence[Any]) -> KeyValue:
    """A row selected with KV_COLUMNS."""
    return KeyValue(row[0], row[3], row[1], row[2])


def row_to_event(row: Sequence[Any]) -> StoreEvent:
    """A row selected with EVENT_COLUMNS, as the watch event its write produced."""
    rev, name, created, deleted, create_rev, prev_rev, value, old_value = row
    if created:
        return StoreEvent("CREATE", KeyValue(name, value, rev, rev), None)
    prev = KeyValue(name, value if deleted else old_value, create_rev, prev_rev)
    if deleted:
        return StoreEvent("DELETE", KeyValue(name, value, create_rev, rev), prev)
    return StoreEvent("UPDATE", KeyValue(name, value, create_rev, rev), prev)
