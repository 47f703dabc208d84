"""Container log files in the CRI format, rotated by size.

Why: the kubelet serves `kubectl logs` (with `--timestamps`, `--since`, `--tail`, `-f`) from
these files exactly as it does for containerd, so the format is the CRI one
(kubernetes/pkg/kubelet/kuberuntime/logs): one record per line,

    <RFC3339Nano timestamp> <stream> <tag> <content>

with stream `stdout`/`stderr` and tag `F` for a full line or `P` for a partial one (a line
longer than `MAX_LINE` bytes is split into P records ending with an F record, like containerd's
16 KiB buffer). Timestamps are UTC with nine fractional digits.

Rotation: when the current file would exceed `max_bytes` it is renamed to
`<path>.<UTC %Y%m%d-%H%M%S.%f>` and a new file started; at most `max_files` files (the current
one included) are kept, the oldest deleted first. Readers find older files with
`rotated_files(path)`. Guarantees: a record is never split across two files, and the current
file always exists once the writer is opened.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

__all__ = ["LogRecord", "LogWriter", "MAX_LINE", "format_timestamp", "parse_record",
           "read_records", "rotated_files"]

MAX_LINE = 16 * 1024
Stream = Literal["stdout", "stderr"]


def format_timestamp(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


@dataclass(frozen=True, slots=True)
class LogRecord:
    timestamp: str
    stream: str
    partial: bool
    content: bytes


def parse_record(line: bytes) -> LogRecord | None:
    """One CRI log line (with or without its newline), or None if it is malformed."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return LogRecord(parts[0].decode("ascii", "replace"), parts[1].decode(),
                     parts[2] == b"P", parts[3] if len(parts) == 4 else b"")


def rotated_files(path: str | Path) -> list[Path]:
    """Rotated files of the log at `path`, oldest first (the current file not included)."""
    path = Path(path)
    try:
        names = [p for p in path.parent.iterdir()
                 if p.name.startswith(path.name + ".") and not p.name.endswith(".tmp")]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda p: p.name)


def read_records(path: str | Path) -> Iterator[LogRecord]:
    """Every record of the rotated files and then of the current one, in order."""
    for file in [*rotated_files(path), Path(path)]:
        try:
            with open(file, "rb") as f:
                for line in f:
                    if (record := parse_record(line)) is not None:
                        yield record
        except FileNotFoundError:
            continue


class LogWriter:
    """Appends records for one container; one writer per file (the supervisor)."""

    def __init__(self, path: str | Path, *, max_bytes: int = 10 * 1024 * 1024,
                 max_files: int = 5) -> None:
        if max_bytes < 1024 or max_files < 1:
            raise ValueError("log rotation needs max_bytes >= 1024 and max_files >= 1")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: Stream, data: bytes) -> None:
        """Record `data` read from `stream`: complete lines now, the rest when it completes
        (or when it reaches MAX_LINE, as a partial record)."""
        buf = self._pending[stream] + data
        out: list[bytes] = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl > MAX_LINE:
                if len(buf) >= MAX_LINE:
                    out.append(self._record(stream, b"P", buf[:MAX_LINE]))
                    buf = buf[MAX_LINE:]
                    continue
                break
            out.append(self._record(stream, b"F", buf[:nl]))
            buf = buf[nl + 1:]
        self._pending[stream] = buf
        for record in out:
            self._append(record)

    def flush(self) -> None:
        """Write any unterminated line as a full record (the stream ended)."""
        for stream, buf in self._pending.items():
            if buf:
                self._append(self._record(stream, b"F", buf))
                self._pending[stream] = b""

    def close(self) -> None:
        self.flush()
        os.close(self._fd)

    @staticmethod
    def _record(stream: str, tag: bytes, content: bytes) -> bytes:
        ts = format_timestamp(time.time_ns()).encode()
        return b"%s %s %s %s\n" % (ts, stream.encode(), tag, content)

    def _append(self, record: bytes) -> None:
        if self._size and self._size + len(record) > self.max_bytes:
            self._rotate()
        os.write(self._fd, record)
        self._size += len(record)

    def _rotate(self) -> None:
        now = time.time()
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"
        target = self.path.with_name(f"{self.path.name}.{suffix}")
        n = 0
        while target.exists():   # two rotations within a microsecond
            n += 1
            target = self.path.with_name(f"{self.path.name}.{suffix}{n:03d}")
        os.rename(self.path, target)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0
        old = rotated_files(self.path)
        for stale in old[:max(0, len(old) - (self.max_files - 1))]:
            try:
                stale.unlink()
            except FileNotFoundError:
                pass
