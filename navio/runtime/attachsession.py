"""Attach sessions of the process runtime: the agent's half of a container's stdin relay.

Why: `kubectl attach -i` writes to the container's own stdin, which only its supervisor
holds (stdinrelay.py has the supervisor's half and the wire format). This side connects to
the relay's socket and gives the kubelet the protocol's AttachSession.

Guarantees: input is sent in order, in messages of at most 64 KiB; `stdin.close()` sends END
once everything written before it was sent; `close()` detaches (the relay then treats this
attachment's input as ended); a container without stdin or tty has no relay, and its session
simply has no stdin.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path

from navio.runtime.stdinrelay import DATA, END, RESIZE, SOCKET_NAME

__all__ = ["ProcessAttachSession", "connect_relay"]

_CHUNK = (1 << 16) - 1


def _connect(directory: Path) -> socket.socket | None:
    if not (directory / SOCKET_NAME).exists():
        return None
    dirfd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:   # (through the directory's descriptor: the full path may exceed sun_path)
        sock.settimeout(5)
        sock.connect(f"/proc/self/fd/{dirfd}/{SOCKET_NAME}")
    except (FileNotFoundError, ConnectionRefusedError):   # the container just ended
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    sock.setblocking(False)
    return sock


async def connect_relay(directory: Path) -> socket.socket | None:
    """A connection to the relay of the container whose state dir is `directory`."""
    return await asyncio.to_thread(_connect, directory)


class _RelayWriter:
    """The session's stdin (protocol.ByteSink): messages to the relay, sent in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._queue: list[bytes] = []
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            msg = self._queue.pop(0)
            try:
                await loop.sock_sendall(self._sock, msg)
            except OSError:   # the relay is gone: the container ended
                self._queue.clear()
                self._closed = True

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("the container's stdin is closed")
        for i in range(0, len(data), _CHUNK):
            self._queue.append(DATA + data[i:i + _CHUNK])
        self._kick()

    async def drain(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.append(END)
            self._kick()

    def is_closing(self) -> bool:
        return self._closed


class ProcessAttachSession:
    """One attachment (implements protocol.AttachSession)."""

    def __init__(self, sock: socket.socket | None, *, stdin: bool) -> None:
        self._sock = sock
        self._writer = _RelayWriter(sock) if sock is not None and stdin else None
        self.stdin = self._writer

    async def resize(self, cols: int, rows: int) -> None:
        if self._sock is not None:
            try:
                await asyncio.get_running_loop().sock_sendall(
                    self._sock, RESIZE + struct.pack("HH", cols & 0xFFFF, rows & 0xFFFF))
            except OSError:
                pass

    async def close(self) -> None:
        if self._writer is not None:
            try:
                async with asyncio.timeout(5):
                    await self._writer.drain()
            except (TimeoutError, OSError):
                pass
        if self._sock is not None:
            self._sock.close()
            self._sock = None
