"""CRI log files: record format, partial lines, rotation by size (logs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from navio.runtime.logs import (MAX_LINE, LogWriter, format_timestamp, parse_record,
                                read_records, rotated_files)

RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")


def test_timestamps_are_rfc3339_utc_with_nanoseconds() -> None:
    assert format_timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert format_timestamp(5) == "1970-01-01T00:00:00.000000005Z"


@pytest.mark.parametrize(("line", "expected"), [
    (b"2024-01-01T00:00:00.000000001Z stdout F hello world\n", ("stdout", False, b"hello world")),
    (b"2024-01-01T00:00:00.000000001Z stderr P part", ("stderr", True, b"part")),
    (b"2024-01-01T00:00:00.000000001Z stdout F \n", ("stdout", False, b"")),
    (b"2024-01-01T00:00:00.000000001Z stdout F", ("stdout", False, b"")),
], ids=["a full stdout line", "a partial stderr line", "an empty line", "no content at all"])
def test_records_parse(line: bytes, expected: tuple[str, bool, bytes]) -> None:
    record = parse_record(line)
    assert record is not None
    assert (record.stream, record.partial, record.content) == expected
    assert record.timestamp == "2024-01-01T00:00:00.000000001Z"


@pytest.mark.parametrize("line", [b"", b"garbage", b"ts stdin F x", b"ts stdout X x"],
                         ids=["empty", "no fields", "unknown stream", "unknown tag"])
def test_malformed_records_are_rejected(line: bytes) -> None:
    assert parse_record(line) is None


def test_lines_are_recorded_whole_across_writes_and_streams(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "0.log")
    w.write("stdout", b"hel")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"lo\nwor")
    w.close()   # the unterminated "wor" is flushed as a full record
    records = [(r.stream, r.partial, r.content) for r in read_records(tmp_path / "0.log")]
    assert records == [("stderr", False, b"oops"), ("stdout", False, b"hello"),
                       ("stdout", False, b"wor")]
    assert all(RECORD.match(line) for line in (tmp_path / "0.log").read_bytes().splitlines())


def test_long_lines_are_split_into_partial_records(tmp_path: Path) -> None:
    w = LogWriter(tmp_path / "0.log")
    w.write("stdout", b"a" * (2 * MAX_LINE + 10) + b"\n")
    w.close()
    records = list(read_records(tmp_path / "0.log"))
    assert [(r.partial, len(r.content)) for r in records] == [(True, MAX_LINE), (True, MAX_LINE),
                                                              (False, 10)]


def test_rotation_keeps_at_most_max_files_and_never_splits_a_record(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    w = LogWriter(path, max_bytes=1024, max_files=3)
    for i in range(200):
        w.write("stdout", f"line {i:04d}\n".encode())
    w.close()
    rotated = rotated_files(path)
    assert len(rotated) == 2
    for file in [*rotated, path]:
        assert file.stat().st_size <= 1024
        assert all(RECORD.match(line) for line in file.read_bytes().splitlines())
    numbers = [int(r.content.split()[1]) for r in read_records(path)]
    assert numbers == list(range(numbers[0], 200))   # oldest dropped, the rest in order


def test_a_reopened_writer_appends_and_counts_the_existing_size(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    w = LogWriter(path, max_bytes=1024, max_files=2)
    w.write("stdout", b"x" * 900 + b"\n")
    w.close()
    w = LogWriter(path, max_bytes=1024, max_files=2)
    w.write("stdout", b"y" * 200 + b"\n")
    w.close()
    assert len(rotated_files(path)) == 1
    assert [r.content[:1] for r in read_records(path)] == [b"x", b"y"]
