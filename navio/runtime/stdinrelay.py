"""A container's own stdin, kept by its supervisor, for `kubectl attach -i` (the supervisor's
half; attachsession.py is the agent's).

Why: a container with `stdin: true` keeps its standard input open for attach sessions, and
only its supervisor holds it (the write end of the container's stdin pipe, or the master side
of its terminal). Attachments come and go while the container runs, also across agent
restarts, so the supervisor listens on a unix socket in the container's state directory.

Wire format: SOCK_SEQPACKET messages, the first byte saying what: DATA + bytes for stdin,
RESIZE + struct "HH" (cols, rows) for the terminal, END: this attachment's input ended.

Guarantees:
- Input reaches the container in the order it was sent; a container that does not read its
  stdin never blocks the supervisor (writes are non-blocking; while more than 1 MiB waits,
  attachments are not read, which pushes back on the agent).
- With stdinOnce, the end of the first attachment (END, or its connection closing) closes
  the container's stdin: EOF for a pipe, ^D for a terminal. Without it stdin stays open for
  the next attachment.
- Only the supervisor's user (root) can connect: the socket is 0600 in a 0700 directory.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import socket
import struct
import termios
from typing import Callable

__all__ = ["DATA", "END", "RESIZE", "SOCKET_NAME", "StdinRelay"]

SOCKET_NAME = "attach.sock"
DATA, RESIZE, END = b"d", b"r", b"e"
_MAX_MESSAGE = 1 << 16
_MAX_PENDING = 1 << 20


class StdinRelay:
    """Accepts attachments and writes their input to `target` (closed by the relay)."""

    def __init__(self, directory: str, sel: selectors.BaseSelector, *, target: int | None,
                 master: int | None, once: bool) -> None:
        self._sel = sel
        self._target = target
        self._master = master
        self._once = once
        self._ended = False
        self._closing = False
        self._pending = bytearray()
        self._writing = False
        self._paused = False
        self._conns: set[socket.socket] = set()
        if target is not None:
            os.set_blocking(target, False)
        self._path = os.path.join(directory, SOCKET_NAME)
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        here = os.getcwd()
        os.chdir(directory)   # (a relative name: the full path may exceed sun_path)
        try:
            old = os.umask(0o177)
            try:
                self._listener.bind(SOCKET_NAME)
            finally:
                os.umask(old)
        finally:
            os.chdir(here)
        self._listener.listen(8)
        self._listener.setblocking(False)
        sel.register(self._listener, selectors.EVENT_READ, self._accept)

    def _accept(self, mask: int) -> None:
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        self._conns.add(conn)
        if not self._paused:
            self._sel.register(conn, selectors.EVENT_READ, self._reader(conn))

    def _reader(self, conn: socket.socket) -> Callable[[int], None]:
        return lambda mask: self._read(conn)

    def _read(self, conn: socket.socket) -> None:
        try:
            msg = conn.recv(_MAX_MESSAGE + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            msg = b""
        if not msg:
            self._drop(conn)
            self._input_ended()
            return
        kind, body = msg[:1], msg[1:]
        if kind == DATA and self._target is not None and not self._closing:
            self._pending += body
            self._flush()
        elif kind == RESIZE and self._master is not None and len(body) == 4:
            cols, rows = struct.unpack("HH", body)
            try:
                fcntl.ioctl(self._master, termios.TIOCSWINSZ,
                            struct.pack("HHHH", rows, cols, 0, 0))
            except OSError:
                pass
        elif kind == END:
            self._input_ended()

    def _drop(self, conn: socket.socket) -> None:
        if conn in self._conns:
            self._conns.discard(conn)
            try:
                self._sel.unregister(conn)
            except (KeyError, ValueError):
                pass
            conn.close()

    def _input_ended(self) -> None:
        if not self._once or self._ended or self._target is None:
            return
        self._ended = True
        if self._master is not None:   # a terminal's end of input
            self._pending += b"\x04"
        else:
            self._closing = True
        self._flush()

    def _flush(self, mask: int = 0) -> None:
        target = self._target
        if target is None:
            return
        try:
            while self._pending:
                del self._pending[:os.write(target, self._pending)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:   # the container closed its stdin (or ended)
            self._pending.clear()
            self._close_target()
            return
        if self._pending and not self._writing:
            self._sel.register(target, selectors.EVENT_WRITE, self._flush)
            self._writing = True
        elif not self._pending and self._writing:
            self._sel.unregister(target)
            self._writing = False
        self._pause(len(self._pending) > _MAX_PENDING)
        if self._closing and not self._pending:
            self._close_target()

    def _pause(self, pause: bool) -> None:
        if pause == self._paused:
            return
        self._paused = pause
        for conn in self._conns:
            if pause:
                self._sel.unregister(conn)
            else:
                self._sel.register(conn, selectors.EVENT_READ, self._reader(conn))

    def _close_target(self) -> None:
        if self._target is not None:
            if self._writing:
                self._sel.unregister(self._target)
                self._writing = False
            os.close(self._target)
            self._target = None
        self._pause(False)

    def close(self) -> None:
        """Stop listening, detach everyone, close the container's stdin."""
        for conn in list(self._conns):
            self._drop(conn)
        try:
            self._sel.unregister(self._listener)
        except (KeyError, ValueError):
            pass
        self._listener.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass
        self._pending.clear()
        self._close_target()

