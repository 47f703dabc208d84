"""Reading a container's CRI log file for `kubectl logs` (pkg/kubelet/kuberuntime/logs).

Why: the kubelet serves /containerLogs from the runtime's CRI-format files with the options
kubectl passes: follow, tailLines, timestamps, sinceSeconds/sinceTime, limitBytes.

Guarantees (as the kubelet's ReadLogs):
- Only the current file is read (rotated files are not), from the start or from the last
  `tail_lines` records; records older than `since` are skipped.
- Each record's content is written as is; a full record ends with a newline, a partial one
  does not; with `timestamps` every line starts with the record's RFC 3339 timestamp.
- At most `limit_bytes` bytes are written.
- With `follow`, new records are written as they arrive (the file is polled every 100 ms),
  a rotated file is reopened, and the stream ends once the container has stopped running
  and everything it wrote was sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from typing import Awaitable, Callable

from navio.kubelet.iopool import run_io
from navio.runtime.logs import parse_record

__all__ = ["LogOptions", "follow_new", "stream_log", "parse_timestamp"]

_POLL = 0.1
_RUNNING_CHECK = 1.0


@dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    timestamps: bool = False
    since: float | None = None          # UNIX seconds
    limit_bytes: int | None = None


def parse_timestamp(text: str) -> float | None:
    """RFC 3339 (nanoseconds allowed) to UNIX seconds."""
    try:
        text = text.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        main, _, rest = text.partition(".")
        if rest:
            digits = "".join(ch for ch in rest if ch.isdigit())
            zone = rest[len(digits):]
            text = f"{main}.{digits[:6].ljust(6, '0')}{zone}"
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class _Writer:
    def __init__(self, write: Callable[[bytes], Awaitable[None]], opts: LogOptions) -> None:
        self._write = write
        self._opts = opts
        self._left = opts.limit_bytes
        self._line_start = True

    @property
    def full(self) -> bool:
        return self._left is not None and self._left <= 0

    async def record(self, line: bytes) -> None:
        rec = parse_record(line)
        if rec is None or self.full:
            return
        if self._opts.since is not None:
            ts = parse_timestamp(rec.timestamp)
            if ts is not None and ts < self._opts.since:
                return
        out = rec.content if rec.partial else rec.content + b"\n"
        if self._opts.timestamps and self._line_start:
            out = rec.timestamp.encode() + b" " + out
        self._line_start = not rec.partial
        if self._left is not None:
            out = out[:self._left]
            self._left -= len(out)
        if out:
            await self._write(out)


def _tail_offset(data: bytes, n: int) -> int:
    """Offset of the start of the last `n` records in `data`."""
    if n <= 0:
        return len(data)
    end = len(data)
    if data.endswith(b"\n"):
        end -= 1
    count = 0
    pos = end
    while pos > 0:
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return 0
        count += 1
        if count == n:
            return pos + 1
    return 0


async def stream_log(path: str, opts: LogOptions, write: Callable[[bytes], Awaitable[None]],
                     running: Callable[[], Awaitable[bool]]) -> None:
    writer = _Writer(write, opts)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    try:
        data = await run_io(f.read)
        start = _tail_offset(data, opts.tail_lines) if opts.tail_lines is not None else 0
        lines = data[start:].split(b"\n")
        pending = lines.pop()        # an incomplete last line (still being written)
        for line in lines:
            await writer.record(line)
        if not opts.follow:
            return
        loop = asyncio.get_running_loop()
        last_check = loop.time()
        while not writer.full:
            chunk = f.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    await writer.record(line)
                continue
            try:
                rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")
                continue
            if loop.time() - last_check >= _RUNNING_CHECK:
                last_check = loop.time()
                if not await running():
                    pending += f.read()
                    for line in pending.split(b"\n"):
                        if line:
                            await writer.record(line)
                    return
            await asyncio.sleep(_POLL)
    finally:
        f.close()


async def follow_new(path: str, emit: Callable[[str, bytes], Awaitable[None]],
                     running: Callable[[], Awaitable[bool]]) -> None:
    """What the container writes from now on, record by record, as (stream, bytes), until it
    stops running (attach without a runtime attach call)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    try:
        f.seek(0, os.SEEK_END)
        pending = b""
        loop = asyncio.get_running_loop()
        last_check = loop.time()
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    rec = parse_record(line)
                    if rec is not None:
                        await emit(rec.stream, rec.content if rec.partial
                                   else rec.content + b"\n")
                continue
            if loop.time() - last_check >= _RUNNING_CHECK:
                last_check = loop.time()
                if not await running():
                    return
            await asyncio.sleep(_POLL)
    finally:
        f.close()
