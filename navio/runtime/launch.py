"""Starting helper processes that must outlive the agent (pause, supervisor).

Why: a container keeps running while the agent is down or restarting, so its helpers cannot be
the agent's children (they would be reaped by it, or killed with its session). A short-lived
*launcher* (a fork of the runtime's fork server, forkserver.py) runs the helper's `main`,
which calls `detach`: it forks the real helper, which calls setsid and points its stdio at a
file (never at the agent's pipes), and the launcher exits as soon as the helper reports that
it is ready (the classic double fork). The helper is then re-parented to init, and the agent
holds nothing of it but its pid and start time.

Guarantees: the launcher prints one JSON report (ok, plus the helper's host `pid` and
`starttime`) only once the helper is ready; on failure or timeout the report says ok: false
and no helper is left running (the launcher kills an unready helper). Helpers import only the
standard library and navio.runtime (they run under `python -S`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, NoReturn

from navio.runtime.namespaces import proc_starttime
from navio.runtime.state import write_json

__all__ = ["Report", "close_inherited_fds", "detach", "helper_env"]

Report = Callable[[dict[str, Any]], None]
_NAVIO_ROOT = str(Path(__file__).resolve().parents[2])
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def helper_env() -> dict[str, str]:
    """A minimal environment for helpers: nothing of the agent's (no credentials) leaks in.
    Helpers run with `python -S` (stdlib and navio only), navio found through PYTHONPATH."""
    return {"PATH": os.environ.get("PATH", _DEFAULT_PATH), "PYTHONPATH": _NAVIO_ROOT,
            "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


def close_inherited_fds(keep: tuple[int, ...] = ()) -> None:
    """Close every descriptor but stdio and `keep`. A helper must start clean: uvloop (libuv)
    does not close the agent's descriptors when it spawns, and whatever a helper holds, the
    long-lived helper it forks (and the container it runs) would hold for good — including
    the agent's end of the launcher's stdout, which would then never see EOF."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    for name in os.listdir(fd_dir):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:   # the directory listing's own descriptor, already closed
                pass


def detach(work: Callable[[Report], None], *, log_path: str, timeout: float,
           pidfile: str | None = None) -> NoReturn:
    """Helper side: fork; the child (new session, stdio on `log_path`) runs `work(report)`;
    this process waits for the report, prints it as one JSON line with the child's host pid
    and start time added, and exits. `work` returning or raising ends the child. With
    `pidfile`, the helper writes its host pid and start time there first, so an agent killed
    before it read the report can still find the helper. A helper whose launcher died
    carries on: what it started is on record, the report just has no reader."""
    close_inherited_fds()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(work, w, log_path, pidfile)
    os.close(w)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            _emit({"ok": False, "error": f"helper not ready within {timeout}s"})
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    try:
        report = json.loads(data) if data else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        _emit({"ok": False, "error": "helper exited before reporting ready"})
    report.setdefault("pid", pid)
    report.setdefault("starttime", proc_starttime(pid))
    _emit(report)


def _emit(report: dict[str, Any]) -> NoReturn:
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)


def _child(work: Callable[[Report], None], w: int, log_path: str,
           pidfile: str | None) -> NoReturn:
    code = 0
    reported = False

    def report(obj: dict[str, Any]) -> None:
        nonlocal reported
        if not reported:
            reported = True
            try:
                os.write(w, json.dumps(obj).encode())
            except BrokenPipeError:   # the launcher is gone (its agent was killed)
                pass
            os.close(w)

    try:
        os.setsid()
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if pidfile:   # /proc/self is the host's view, even from inside a new PID namespace
            me = int(os.readlink("/proc/self"))
            write_json(pidfile, {"pid": me, "starttime": proc_starttime(me)})
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        work(report)
    except BaseException as exc:   # anything: report it, never return into the launcher
        code = 1
        try:
            traceback.print_exc()
            sys.stderr.flush()
            report({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        except BaseException:
            pass
    os._exit(code)
