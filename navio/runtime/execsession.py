"""Exec sessions of the process runtime: a command in a container, as async streams.

Why: `kubectl exec` (interactive, with or without a tty) and exec probes both need a command
running inside a container (nsexec.py does the entering); this module gives the kubelet
asyncio streams for it, a tty that can be resized, and a bounded way to end it.

Guarantees: the container's environment reaches the helper through a memfd (never argv, never
the helper's own environment); `kill()` ends the command (SIGTERM, then SIGKILL to the
helper's process group after a second) and is safe to repeat; `wait()` returns the command's
exit status (128+signal when killed); with a tty, end of output is reported as EOF (the
kernel's EIO on the pty master is not an error here).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import signal
import struct
import sys
import tempfile
import termios
from typing import Any

from navio.runtime.launch import helper_env
from navio.runtime.protocol import ByteSink

__all__ = ["ProcessExecSession", "run_to_completion", "start_exec"]

_KILL_GRACE = 1.0
_OUTPUT_CAP = 16 << 20   # CRI's ExecSync output limit, per stream


class ProcessExecSession:
    """One running exec (implements protocol.ExecSession)."""

    def __init__(self, proc: asyncio.subprocess.Process, *, stdin: ByteSink | None,
                 stdout: asyncio.StreamReader, stderr: asyncio.StreamReader | None,
                 master: int | None = None, slave: int | None = None) -> None:
        self._proc = proc
        self._master = master
        self._slave = slave
        self.stdin: ByteSink | None = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._release: asyncio.Task[None] | None = None
        if slave is not None:
            # Our copy of the pty's slave side keeps the master from reporting EIO (and
            # dropping output still in flight) until the command has really exited.
            self._release = asyncio.get_running_loop().create_task(self._release_slave())

    async def _release_slave(self) -> None:
        try:
            await self._proc.wait()
        finally:
            self._close_slave()

    def _close_slave(self) -> None:
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def resize(self, cols: int, rows: int) -> None:
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        code = await self._proc.wait()
        self._close_master()
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        if self._proc.returncode is not None:
            self._close_master()
            return
        try:
            self._proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            async with asyncio.timeout(_KILL_GRACE):
                await self._proc.wait()
        except TimeoutError:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self._proc.wait()
        self._close_master()

    def _close_master(self) -> None:
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.close()
        self._close_slave()
        if self._master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None


def _env_fd(env: dict[str, str]) -> int:
    if hasattr(os, "memfd_create"):   # never touches a disk
        fd = os.memfd_create("navio-exec-env", 0)
    else:
        fd, path = tempfile.mkstemp(prefix="navio-exec-env-")
        os.unlink(path)
    os.write(fd, json.dumps(env).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _pty_reader(master: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)

    def ready() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:   # EIO: the last slave closed, i.e. the command ended
            data = b""
        if data:
            reader.feed_data(data)
        else:
            loop.remove_reader(master)
            reader.feed_eof()

    os.set_blocking(master, False)
    loop.add_reader(master, ready)
    return reader


class _PtyWriter:
    """Writes to the pty master for the command's stdin. Not asyncio's pipe transport: uvloop's
    write transport reads from its descriptor to notice closing, and on a pty master that
    would swallow the command's output."""

    def __init__(self, master: int) -> None:
        self._fd = master
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._closed = False
        self._waiting = False
        self._drained: list[asyncio.Future[None]] = []

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("the exec's stdin is closed")
        self._buffer += data
        self._flush()

    def _flush(self) -> None:
        try:
            while self._buffer:
                del self._buffer[:os.write(self._fd, self._buffer)]
        except BlockingIOError:
            pass
        except OSError:   # the command is gone
            self._buffer.clear()
            self._closed = True
        if self._buffer and not self._waiting:
            self._loop.add_writer(self._fd, self._flush)
            self._waiting = True
        elif not self._buffer:
            self._stop_waiting()

    def _stop_waiting(self) -> None:
        if self._waiting:
            self._loop.remove_writer(self._fd)
            self._waiting = False
        for fut in self._drained:
            if not fut.done():
                fut.set_result(None)
        self._drained.clear()

    async def drain(self) -> None:
        if self._buffer and not self._closed:
            fut = self._loop.create_future()
            self._drained.append(fut)
            await fut

    def close(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._stop_waiting()

    def is_closing(self) -> bool:
        return self._closed


async def start_exec(args: list[str], cmd: list[str], env: dict[str, str], *, stdin: bool,
                     tty: bool, python: str = sys.executable) -> ProcessExecSession:
    """Start `python -m navio.runtime.nsexec <args> --env-fd N -- cmd`."""
    env_fd = _env_fd(env)
    argv = [python, "-S", "-m", "navio.runtime.nsexec", *args, "--env-fd", str(env_fd),
            *(["--tty"] if tty else []), "--", *cmd]
    kwargs: dict[str, Any] = dict(env=helper_env(), pass_fds=(env_fd,), start_new_session=True)
    try:
        if tty:
            master, slave = pty.openpty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, **kwargs)
            except BaseException:
                os.close(master)
                os.close(slave)
                raise
            writer = _PtyWriter(master) if stdin else None
            return ProcessExecSession(proc, stdin=writer, stdout=_pty_reader(master),
                                      stderr=None, master=master, slave=slave)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **kwargs)
        assert proc.stdout is not None and proc.stderr is not None
        return ProcessExecSession(proc, stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr)
    finally:
        os.close(env_fd)


async def _read_capped(reader: asyncio.StreamReader) -> bytes:
    chunks, size = [], 0
    while chunk := await reader.read(65536):
        if size < _OUTPUT_CAP:
            chunks.append(chunk[:_OUTPUT_CAP - size])
        size += len(chunk)
    return b"".join(chunks)


async def run_to_completion(session: ProcessExecSession,
                            timeout: float) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of a non-tty session; on timeout (TimeoutError) or
    cancellation the command is killed first."""
    try:
        async with asyncio.timeout(timeout):
            assert session.stderr is not None
            out, err = await asyncio.gather(_read_capped(session.stdout),
                                            _read_capped(session.stderr))
            code = await session.wait()
    except BaseException:
        await asyncio.shield(session.kill())
        raise
    return code, out, err
