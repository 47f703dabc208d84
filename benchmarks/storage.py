"""Create throughput of navio's SQLiteStore against raw durable SQLite, measured in one run.

navio: `SQLiteStore.create` from 64 concurrent tasks (group commit: one fsync per batch).
baseline: plain sqlite3 on the same kine-shaped table and indexes, WAL + synchronous=FULL, one
transaction (one fsync) per insert — what a store that commits each write alone can reach.
Both write the same keys and 1 KiB values into fresh databases in the same directory.

    python3 benchmarks/storage.py [--dir DIR] [--creates N] [--baseline N]

Prints e.g. `creates/s  navio 12,345  sqlite-baseline 3,900  ratio 3.16`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navio.storage import sqlite_schema  # noqa: E402
from navio.storage.sqlite import SQLiteStore  # noqa: E402

CONCURRENCY = 64
VALUE = bytes(random.Random(42).randrange(256) for _ in range(1024))
TIME_CAP = 12.0   # seconds per measured phase, so the whole run stays well under 30 s


def key(i: int) -> str:
    return f"/registry/configmaps/bench-{i % 97}/cm-{i:08d}"


def baseline(path: Path, n: int) -> tuple[float, int]:
    """(inserts/s, inserts done): one durable transaction per insert."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in sqlite_schema.PRAGMAS:
            conn.execute(pragma)
        for stmt in sqlite_schema.SCHEMA:
            conn.execute(stmt)
        insert = sqlite_schema.INSERT_SQL
        for i in range(200):   # warm up
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, (f"/warmup/{i}", 1, 0, 0, 0, VALUE, None))
            conn.execute("COMMIT")
        done = 0
        started = time.perf_counter()
        while done < n and time.perf_counter() - started < TIME_CAP:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, (key(done), 1, 0, 0, 0, VALUE, None))
            conn.execute("COMMIT")
            done += 1
        return done / (time.perf_counter() - started), done
    finally:
        conn.close()


async def navio(path: Path, n: int) -> tuple[float, int, int]:
    """(creates/s, creates done, transactions used) with CONCURRENCY tasks."""
    store = await SQLiteStore.open(path)
    try:
        await asyncio.gather(*(store.create(f"/warmup/{i}", VALUE) for i in range(2000)))
        tx0 = store.transactions
        counter = iter(range(n))
        deadline = time.perf_counter() + TIME_CAP

        async def worker() -> int:
            done = 0
            for i in counter:
                await store.create(key(i), VALUE)
                done += 1
                if time.perf_counter() > deadline:
                    break
            return done

        started = time.perf_counter()
        done = sum(await asyncio.gather(*(worker() for _ in range(CONCURRENCY))))
        rate = done / (time.perf_counter() - started)
        return rate, done, store.transactions - tx0
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to put the databases (default: a fresh temp dir)")
    parser.add_argument("--creates", type=int, default=100_000, help="navio creates")
    parser.add_argument("--baseline", type=int, default=20_000, help="baseline inserts")
    args = parser.parse_args()
    try:
        import uvloop   # what `navio server` runs on
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="navio-bench-") as tmp:
        base_rate, base_n = baseline(Path(tmp) / "baseline.db", args.baseline)
        navio_rate, navio_n, tx = run(navio(Path(tmp) / "navio.db", args.creates))
    print(f"# {navio_n:,} navio creates in {tx:,} transactions "
          f"({navio_n / max(tx, 1):.0f} per fsync), {base_n:,} baseline inserts, "
          f"concurrency {CONCURRENCY}, 1 KiB values, sqlite {sqlite3.sqlite_version}")
    print(f"creates/s  navio {navio_rate:,.0f}  sqlite-baseline {base_rate:,.0f}  "
          f"ratio {navio_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
