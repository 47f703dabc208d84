"""Serving CRI log files with kubectl's options (issue 7)."""

from __future__ import annotations

import asyncio
import calendar
from pathlib import Path

import pytest

from navio.kubelet.logs import LogOptions, parse_timestamp, stream_log
from navio.kubelet.server import LogTargetError, log_container_id

LINES = [
    b"2026-01-01T00:00:01.000000001Z stdout F one",
    b"2026-01-01T00:00:02.000000000Z stderr F two",
    b"2026-01-01T00:00:03.500000000Z stdout P thr",
    b"2026-01-01T00:00:03.600000000Z stdout F ee",
    b"2026-01-01T00:00:04.000000000Z stdout F four",
]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "0.log"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


async def read(path: Path, **opts) -> bytes:
    out = bytearray()

    async def write(data: bytes) -> None:
        out.extend(data)

    async def running() -> bool:
        return False

    await stream_log(str(path), LogOptions(**opts), write, running)
    return bytes(out)


async def test_the_whole_log_joins_partial_records(log_file):
    assert await read(log_file) == b"one\ntwo\nthree\nfour\n"


async def test_tail_counts_records_from_the_end(log_file):
    assert await read(log_file, tail_lines=1) == b"four\n"
    assert await read(log_file, tail_lines=2) == b"ee\nfour\n"
    assert await read(log_file, tail_lines=0) == b""
    assert await read(log_file, tail_lines=99) == b"one\ntwo\nthree\nfour\n"


async def test_timestamps_prefix_each_line_once(log_file):
    out = await read(log_file, timestamps=True, tail_lines=3)
    assert out == (b"2026-01-01T00:00:03.500000000Z three\n"
                   b"2026-01-01T00:00:04.000000000Z four\n")


async def test_since_and_limit_bytes(log_file):
    since = parse_timestamp("2026-01-01T00:00:03Z")
    assert await read(log_file, since=since) == b"three\nfour\n"
    assert await read(log_file, limit_bytes=6) == b"one\ntw"


async def test_follow_streams_new_records_until_the_container_stops(tmp_path):
    path = tmp_path / "0.log"
    path.write_bytes(LINES[0] + b"\n")
    out = bytearray()
    state = {"running": True}

    async def write(data: bytes) -> None:
        out.extend(data)

    async def running() -> bool:
        return state["running"]

    task = asyncio.create_task(stream_log(str(path), LogOptions(follow=True), write, running))
    await asyncio.sleep(0.3)
    with open(path, "ab") as f:
        f.write(LINES[1] + b"\n" + LINES[2])     # the partial line is not complete yet
    await asyncio.sleep(0.3)
    assert bytes(out) == b"one\ntwo\n"
    with open(path, "ab") as f:
        f.write(b"\n" + LINES[3] + b"\n")
    state["running"] = False
    async with asyncio.timeout(5):
        await task
    assert bytes(out) == b"one\ntwo\nthree\n"


def test_parse_timestamp_keeps_sub_second_precision():
    whole = calendar.timegm((2026, 1, 1, 0, 0, 1))
    assert parse_timestamp("2026-01-01T00:00:01Z") == whole
    assert parse_timestamp("2026-01-01T00:00:01.500000001Z") == pytest.approx(whole + 0.5)
    assert parse_timestamp("garbage") is None


POD = {"metadata": {"name": "web"}}


def entry(**kw) -> dict:
    return {"name": "c", "containerID": "process://cur", **kw}


@pytest.mark.parametrize("status_entry, previous, expected", [
    (entry(state={"running": {}}), False, "cur"),
    (entry(state={"waiting": {"reason": "CrashLoopBackOff"}},
           lastState={"terminated": {"containerID": "process://old"}}), False, "old"),
    (entry(state={"running": {}}, lastState={"terminated": {"containerID": "process://old"}}),
     True, "old"),
    (entry(state={"terminated": {"containerID": "process://done"}}), False, "done"),
], ids=["running", "crash loop reads the last instance", "previous", "terminated"])
def test_log_target_follows_the_kubelets_choice(status_entry, previous, expected):
    assert log_container_id(POD, {"containerStatuses": [status_entry]}, "c",
                            previous) == expected


@pytest.mark.parametrize("status_entry, name, previous, message", [
    (entry(state={"waiting": {"reason": "ContainerCreating"}}), "c", False,
     'container "c" in pod "web" is waiting to start: ContainerCreating'),
    (entry(state={"running": {}}), "c", True,
     'previous terminated container "c" in pod "web" not found'),
    (entry(state={"running": {}}), "x", False, 'container "x" in pod "web" is not available'),
], ids=["waiting", "no previous", "unknown container"])
def test_log_target_errors_use_the_kubelets_words(status_entry, name, previous, message):
    with pytest.raises(LogTargetError) as err:
        log_container_id(POD, {"containerStatuses": [status_entry]}, name, previous)
    assert str(err.value) == message
