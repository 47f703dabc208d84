"""Every acknowledged write survives kill -9, and the database reopens cleanly afterwards.

A child process opens the store, runs concurrent creates and prints each key as soon as its
create() returned. The test SIGKILLs it while writes are in flight, several rounds in a row on
the same file (each round's child first has to reopen the killed database), then checks that
every key any child printed is present and that SQLite finds the file intact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from navio.storage.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[3]
PREFIX = "/registry/crash/"

CHILD = """
import asyncio, sys
from navio.storage.sqlite import SQLiteStore

async def main(path, tag):
    store = await SQLiteStore.open(path)
    print("ready", flush=True)

    async def worker(w):
        i = 0
        while True:
            key = f"/registry/crash/{tag}/{w}/{i}"
            await store.create(key, b"x" * 512)
            sys.stdout.write(key + "\\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(worker(w) for w in range(32)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def run_and_kill(db: Path, tag: str, acks_before_kill: int) -> list[str]:
    """Keys the child acknowledged, including those it printed just before dying."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db), tag, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    acked: list[str] = []
    try:
        async with asyncio.timeout(60):
            ready = await proc.stdout.readline()
            if ready != b"ready\n":
                raise AssertionError(f"child failed to open the store: "
                                     f"{(await proc.stderr.read()).decode()[-2000:]}")
            while len(acked) < acks_before_kill:
                line = await proc.stdout.readline()
                if not line.endswith(b"\n"):
                    raise AssertionError(f"child exited early: "
                                         f"{(await proc.stderr.read()).decode()[-2000:]}")
                acked.append(line.decode().strip())
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
    async with asyncio.timeout(30):
        rest, _ = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    *complete, partial = rest.decode().split("\n")
    assert partial == "", "a line is written whole or not at all"
    return acked + complete


async def test_acknowledged_creates_survive_sigkill_and_the_db_reopens(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    acked: list[str] = []
    for round_, wanted in enumerate((300, 700, 150)):
        acked += await run_and_kill(db, f"r{round_}", wanted)

    store = await SQLiteStore.open(db)
    try:
        revision, items, more = await store.list(PREFIX)
        present = {kv.key for kv in items}
        missing = [key for key in acked if key not in present]
        assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:5]}"
        assert not more and len(acked) == len(set(acked))
        # Only creates ran and none failed, so the revisions of what survived have no gaps.
        assert (revision, len(present)) == await store.count(PREFIX) and revision >= 1150
        assert sorted(kv.mod_revision for kv in items) == list(range(1, revision + 1))
        assert await store.create(PREFIX + "after", b"x") == revision + 1
    finally:
        await store.close()

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
