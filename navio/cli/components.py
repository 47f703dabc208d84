"""Control-plane components beside the API server: as child processes or in-process tasks.

`navio server` runs the controller manager and the scheduler (and, with the agent work, the
local node's agent) next to the API server. By default each is a child process running its own
`navio <component>` command, so the components use both cores and can each be restarted; with
`--single-process` they run as tasks in the server's own event loop, for the least memory.
Either way they reach the API server only over HTTPS with their own client certificate.
A child that dies is restarted with back-off; shutdown stops them all before the API server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

__all__ = ["Component", "Supervisor"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the server dies, even by kill -9, so no
    component outlives the server it was started for."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

log = logging.getLogger("navio.server")


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    # The same component as a coroutine, for --single-process; None: always a child process.
    in_process: Callable[[], Awaitable[None]] | None


class Supervisor:
    """Keeps components running until `stop()`."""

    def __init__(self, components: list[Component], *, single_process: bool,
                 log_dir: Path) -> None:
        self.components = components
        self.single_process = single_process
        self.log_dir = log_dir
        self._tasks: list[asyncio.Task[None]] = []
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._stopping = False

    def start(self) -> None:
        for c in self.components:
            in_process = self.single_process and c.in_process is not None
            runner = self._run_task if in_process else self._run_child
            self._tasks.append(asyncio.create_task(runner(c), name=f"component {c.name}"))

    async def _run_task(self, c: Component) -> None:
        delay = 1.0
        assert c.in_process is not None
        while not self._stopping:
            try:
                await c.in_process()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("component failed; restarting", extra={"component": c.name})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _run_child(self, c: Component) -> None:
        delay = 1.0
        self.log_dir.mkdir(parents=True, exist_ok=True)
        while not self._stopping:
            with open(self.log_dir / f"{c.name}.log", "ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "navio.cli.main", *c.argv,
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    preexec_fn=_die_with_parent)
            self._procs[c.name] = proc
            log.info("component started", extra={"component": c.name, "pid": proc.pid})
            started = asyncio.get_running_loop().time()
            rc = await proc.wait()
            if self._stopping:
                return
            if asyncio.get_running_loop().time() - started > 60:
                delay = 1.0
            log.warning("component exited; restarting", extra={
                "component": c.name, "code": rc, "delay": delay,
                "log": str(self.log_dir / f"{c.name}.log")})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self._procs.items():
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except TimeoutError:
                    log.warning("component did not stop; killing", extra={"component": name})
                    proc.kill()
                    await proc.wait()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
