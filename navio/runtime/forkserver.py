"""The runtime's fork server: one long-lived helper that forks the pause and supervisor
launchers, so a pod costs forks, not Python interpreter starts.

Why: issue 7's pod startup benchmark — each helper used to be a fresh `python -S -m ...`
(about 0.04 CPU-s of interpreter start and imports each, two per one-container pod), which
made a burst of 100 pods miss the 5 s startup SLO. The fork server imports the helpers'
modules once; each request is served by a fork of it (the *launcher*), which runs the helper's
`main(args)` exactly as the fresh interpreter did: launch.detach() forks the real helper into
its own session and the launcher exits once the helper reported ready. The agent itself never
forks (it is multi-threaded and runs uvloop): the fork server is exec'd.

Protocol: the agent holds one end of a SOCK_SEQPACKET socket pair, the fork server the other
(as its stdin). A request is one message — JSON {"module": ..., "args": [...]} — carrying
one descriptor, the write end of a fresh stream socket pair: the launcher's stdout and
stderr. The launcher first writes {"launcher": pid, "starttime": ...} (so an agent that gives
up can kill it), then whatever the helper's main prints: its last line is the JSON report
(launch.py). The agent reads to EOF.

Guarantees:
- `ForkServer.spawn` has launch.py's contract: it returns only the report of a helper that
  is ready, raises RuntimeFailure otherwise (and a launcher that did not answer in time is
  killed, pid and start time checked), and the helper is not the agent's descendant: it
  survives the agent (and the fork server).
- The fork server dies with the agent: it exits when its socket reaches EOF, which a killed
  agent causes too. A new agent starts its own (with the code it runs), and a fork server
  found dead is restarted on the next request.
- Nothing of the agent leaks into a helper: the fork server starts with launch.helper_env(),
  no inherited descriptors but its socket (which launchers close), and cwd /.

Run as `python -S -m navio.runtime.forkserver` with the socket as stdin (ForkServer does).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from navio.runtime.launch import close_inherited_fds, helper_env
from navio.runtime.namespaces import process_alive, proc_starttime
from navio.runtime.protocol import RuntimeFailure
from navio.runtime.state import write_json

if TYPE_CHECKING:
    import asyncio

__all__ = ["ForkServer", "main"]

_MODULES = ("navio.runtime.pause", "navio.runtime.supervisor", "navio.runtime.oci.shim")
_MAX_REQUEST = 1 << 16


# ---- the fork server (its own process) -------------------------------------------------

def _reap(signum: int, frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _launch(control: socket.socket, reply: int, main: Callable[[list[str]], None],
            module: str, args: list[str]) -> NoReturn:
    """In the forked launcher: become what `python -S -m module args` was, then exit."""
    code = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        control.close()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(reply, 1)
        os.dup2(reply, 2)
        os.close(null)
        os.close(reply)
        me = os.getpid()
        os.write(1, (json.dumps({"launcher": me, "starttime": proc_starttime(me)}) + "\n")
                 .encode())
        sys.argv = [module, *args]
        main(args)   # (detach() exits the process itself once the helper is ready)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if not isinstance(exc.code, (int, type(None))):
            sys.stderr.write(f"{exc.code}\n")
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(control: socket.socket) -> None:
    """Serve launch requests from `control` until it reaches EOF."""
    import importlib
    mains = {m: importlib.import_module(m).main for m in _MODULES}
    signal.signal(signal.SIGCHLD, _reap)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        msg, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST, 1)
        if not msg and not fds:
            return   # the agent is gone
        try:
            request = json.loads(msg)
            main = mains[request["module"]]
            args = [str(a) for a in request["args"]]
            if len(fds) != 1:
                raise ValueError("a request carries exactly one descriptor")
        except (ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(f"forkserver: bad request: {exc!r}\n")
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            _launch(control, fds[0], main, request["module"], args)
        os.close(fds[0])


def main() -> None:
    os.chdir("/")
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    close_inherited_fds(keep=(control.fileno(),))
    serve(control)


# ---- the agent's side -------------------------------------------------------------------

class ForkServer:
    """The agent's handle on its fork server, started on first use (one per runtime)."""

    def __init__(self, state_dir: Path, *, python: str = sys.executable) -> None:
        self._state_dir = state_dir
        self._python = python
        self._sock: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> socket.socket:
        import asyncio
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._sock is not None and self._proc is not None \
                    and self._proc.returncode is None:
                return self._sock
            await self._stop()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            log = os.open(self._state_dir / "forkserver.log",
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    self._python, "-S", "-m", "navio.runtime.forkserver", stdin=theirs.fileno(),
                    stdout=asyncio.subprocess.DEVNULL, stderr=log, env=helper_env(), cwd="/",
                    start_new_session=True)
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
                os.close(log)
            ours.setblocking(False)
            self._sock = ours
            pid = self._proc.pid
            write_json(self._state_dir / "forkserver.json",
                       {"pid": pid, "starttime": proc_starttime(pid)})
            return ours

    async def _send(self, sock: socket.socket, msg: bytes, fd: int, deadline: float) -> None:
        import asyncio
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(sock, [msg], [fd])
                return
            except BlockingIOError:   # (a full queue: the fork server is busy)
                if loop.time() > deadline:
                    raise RuntimeFailure("the runtime's fork server does not take requests")
                await asyncio.sleep(0.01)

    async def spawn(self, module: str, args: list[str], *, timeout: float) -> dict[str, Any]:
        """Launch helper `module` with `args` and return its ready report (launch.py)."""
        import asyncio
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + 1.0   # the launcher gives up after `timeout`
        msg = json.dumps({"module": module, "args": args}).encode()
        ours, theirs = socket.socketpair()
        try:
            for retry in (True, False):
                sock = await self._ensure()
                try:
                    await self._send(sock, msg, theirs.fileno(), deadline)
                    break
                except (BrokenPipeError, ConnectionError):   # it died: start another
                    await self._stop()
                    if not retry:
                        raise RuntimeFailure("the runtime's fork server is not running") from None
            theirs.close()
            ours.setblocking(False)
            data = b""
            try:
                async with asyncio.timeout_at(deadline):
                    while chunk := await loop.sock_recv(ours, 65536):
                        data += chunk
            except TimeoutError:
                self._kill_launcher(data)
                raise RuntimeFailure(f"{module} did not report within {timeout}s") from None
        finally:
            ours.close()
            theirs.close()
        return _report(module, data)

    @staticmethod
    def _kill_launcher(data: bytes) -> None:
        try:
            header = json.loads(data.split(b"\n", 1)[0])
            pid, start = int(header["launcher"]), header.get("starttime")
        except (ValueError, KeyError, TypeError):
            return
        if process_alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def _stop(self) -> None:
        import asyncio
        sock, proc, self._sock, self._proc = self._sock, self._proc, None, None
        if sock is not None:
            sock.close()   # EOF: the fork server exits
        if proc is not None and proc.returncode is None:
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def close(self) -> None:
        """Stop the fork server; helpers it launched keep running."""
        await self._stop()


def _report(module: str, data: bytes) -> dict[str, Any]:
    lines = [ln for ln in data.decode(errors="replace").splitlines()
             if ln.strip() and not ln.startswith('{"launcher": ')]
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        tail = lines[-1] if lines else "no output"
        raise RuntimeFailure(f"{module} failed: {tail}")
    if not report.get("ok"):
        raise RuntimeFailure(str(report.get("error") or f"{module} failed"))
    return report


if __name__ == "__main__":
    main()
