"""The per-container supervisor: runs one container process and outlives the agent.

Why: the container's exit status can only be collected by its parent, its stdout/stderr must
be drained into the log file even while the agent is down, and the agent must be free to die
(`kill -9`) and come back. So each container gets this small process (containerd's shim, in
spirit), detached from the agent (launch.py).

What it does, in order: joins the pod's net/UTS/IPC namespaces and (for its child) PID
namespace via /proc/<pause>/ns/*, after checking the pause is still the process it was; forks
the container process, which starts a session (so the container is one process group), joins
the container's cgroups (limits already written), makes a private mount namespace with the
volumes (mounts.py), installs the container's seccomp filter (seccomp/), drops to
run_as_user/group, and execs the argv with exactly the given env;
captures stdout/stderr into the CRI log (logs.py); keeps the container's stdin for attach
sessions when the spec asks (stdinrelay.py); reaps it, kills whatever is left of the
container (its process group and cgroup), and records the exit in status.json.

Guarantees:
- status.json (state.py's single-writer rule) says "running" with the host pid and start time
  before the agent hears the container started, and "exited" with exit code (128+signal when
  killed), reason (OOMKilled when the cgroup saw an OOM kill; Completed for 0; Error;
  StartError when exec failed) and finish time before the supervisor exits.
- No process of the container survives its main process: the rest is SIGKILLed, the
  container cgroup removed.
- SIGTERM to the supervisor is forwarded to the container's process group; SIGINT and SIGHUP
  are ignored.

Run as `python -m navio.runtime.supervisor <container dir>` (reads <dir>/config.json).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import selectors
import signal
import sys
import termios
import time
from typing import Any

from navio.runtime import cgroups, mounts
from navio.runtime import namespaces as ns
from navio.runtime.launch import Report, detach
from navio.runtime.logs import LogWriter
from navio.runtime.seccomp.compiler import Program
from navio.runtime.seccomp.install import install as install_seccomp
from navio.runtime.seccomp.install import program_of, set_no_new_privs
from navio.runtime.state import write_json
from navio.runtime.stdinrelay import StdinRelay

__all__ = ["main"]

_NS_ORDER = (("net", ns.CLONE_NEWNET), ("uts", ns.CLONE_NEWUTS), ("ipc", ns.CLONE_NEWIPC),
             ("pid", ns.CLONE_NEWPID))
_DRAIN_SECONDS = 2.0


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _join_pod(cfg: dict[str, Any]) -> None:
    pause = cfg.get("pause") or {}
    wanted = cfg.get("namespaces") or []
    if not wanted:
        return
    if not ns.process_alive(pause.get("pid"), pause.get("starttime")):
        raise RuntimeError("the pod sandbox is not running")
    fds = [(os.open(f"/proc/{pause['pid']}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag)
           for name, flag in _NS_ORDER if name in wanted]
    try:
        if not ns.process_alive(pause.get("pid"), pause.get("starttime")):
            raise RuntimeError("the pod sandbox is not running")
        for fd, flag in fds:
            ns.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)


def _container_child(cfg: dict[str, Any], errw: int, stdio: tuple[int, int, int],
                     tty: bool, seccomp: Program | None) -> None:
    """In the forked child: never returns (execs or _exits 127 with the error on `errw`).

    The seccomp filter goes on as runc puts it: without no_new_privs while still root (so
    installing needs no PR_SET_NO_NEW_PRIVS and setuid programs keep working), i.e. before
    dropping to run_as_user; with no_new_privs as late as possible, right before exec."""
    nnp = bool(cfg.get("no_new_privs"))
    try:
        os.setsid()
        if cfg.get("cgroup"):
            cgroups.join(cfg["cgroup"])
        if cfg.get("mount_namespace"):
            pid_ns = "pid" in (cfg.get("namespaces") or [])
            mounts.apply_in_child(cfg.get("mounts") or [], proc=pid_ns, shm=cfg.get("shm"))
        for target, fd in zip((0, 1, 2), stdio):
            os.dup2(fd, target)
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.chdir(cfg.get("cwd") or "/")
        os.umask(0o022)
        if seccomp is not None and not nnp:
            install_seccomp(seccomp)
        if cfg.get("gid") is not None:
            os.setgroups([])
            os.setgid(int(cfg["gid"]))
        if cfg.get("uid") is not None:
            os.setuid(int(cfg["uid"]))
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                    signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if nnp and seccomp is not None:
            install_seccomp(seccomp, no_new_privs=True)
        elif nnp:
            set_no_new_privs()
        argv = cfg["argv"]
        os.execvpe(argv[0], argv, cfg.get("env") or {})
    except BaseException as exc:
        try:
            os.write(errw, f"{type(exc).__name__}: {exc}".encode()[:4000])
        finally:
            os._exit(127)


class _Supervisor:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.cgroup: dict[str, str] = cfg.get("cgroup") or {}
        self.status_path = cfg["status_path"]
        self.pid = 0
        self.main_status: int | None = None
        self.finished_at: float | None = None

    def _write_status(self, **fields: Any) -> None:
        write_json(self.status_path, {"supervisor_pid": os.getpid(),
                                      "supervisor_starttime": ns.proc_starttime(os.getpid()),
                                      **fields})

    def _open_stdio(self) -> tuple[dict[int, str], tuple[int, int, int], list[int],
                                   int | None, int | None]:
        """The container's stdio: a pty (tty) or pipes for stdout/stderr, and stdin kept
        open for attach when asked. Returns (our read ends by stream name, the child's
        (stdin, stdout, stderr), the child's ends to close once it started, the fd attach
        writes stdin to, the pty master)."""
        cfg = self.cfg
        tty, keep_stdin = bool(cfg.get("tty")), bool(cfg.get("stdin"))
        stdin_target: int | None = None
        master: int | None = None
        if tty:
            master, slave = pty.openpty()
            if keep_stdin:
                stdin_target = os.dup(master)
            return {master: "stdout"}, (slave, slave, slave), [slave], stdin_target, master
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if keep_stdin:
            stdin_r, stdin_target = os.pipe()
        else:
            stdin_r = os.open(os.devnull, os.O_RDONLY)
        return ({out_r: "stdout", err_r: "stderr"}, (stdin_r, out_w, err_w),
                [out_w, err_w, stdin_r], stdin_target, master)

    def run(self, report: Report) -> None:
        cfg = self.cfg
        os.chdir("/")
        ns.set_child_subreaper()
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        _join_pod(cfg)
        writer = LogWriter(cfg["log_path"], max_bytes=cfg.get("log_max_bytes", 10 << 20),
                           max_files=cfg.get("log_max_files", 5))
        oom_before = cgroups.oom_kills(self.cgroup) if self.cgroup else 0
        tty, keep_stdin = bool(cfg.get("tty")), bool(cfg.get("stdin"))
        streams, stdio, child_ends, stdin_target, master = self._open_stdio()
        seccomp = program_of(cfg)
        errr, errw = os.pipe()   # (Python's pipes are close-on-exec)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._forward(signal.SIGTERM))

        self.pid = os.fork()
        if self.pid == 0:
            _container_child(cfg, errw, stdio, tty, seccomp)
        os.close(errw)
        for fd in child_ends:
            os.close(fd)
        error = b""
        while chunk := os.read(errr, 4096):
            error += chunk
        os.close(errr)
        starttime = ns.proc_starttime(self.pid)
        if error:
            _, status = os.waitpid(self.pid, 0)
            message = error.decode(errors="replace")
            self._write_status(state="exited", pid=self.pid, starttime=starttime,
                               started_at=None, finished_at=time.time(), exit_code=128,
                               reason="StartError", message=message)
            writer.close()
            if self.cgroup:
                cgroups.remove(self.cgroup)
            report({"ok": False, "error": message})
            return
        started_at = time.time()
        sel = selectors.DefaultSelector()
        relay = None
        if tty or keep_stdin:
            relay = StdinRelay(os.path.dirname(self.status_path), sel, target=stdin_target,
                               master=master, once=bool(cfg.get("stdin_once")))
        self._write_status(state="running", pid=self.pid, starttime=starttime,
                           started_at=started_at)
        report({"ok": True, "container_pid": self.pid, "container_starttime": starttime})
        self._pump(sel, streams, wake_r, writer)
        if relay is not None:
            relay.close()
        writer.close()
        status = self.main_status if self.main_status is not None else 0
        exit_code = _exit_code(status)
        oom = bool(self.cgroup) and cgroups.oom_kills(self.cgroup) > oom_before
        reason = "OOMKilled" if oom else ("Completed" if exit_code == 0 else "Error")
        self._write_status(state="exited", pid=self.pid, starttime=starttime,
                           started_at=started_at, finished_at=self.finished_at or time.time(),
                           exit_code=exit_code, reason=reason, message="")
        if self.cgroup:
            cgroups.remove(self.cgroup)

    def _forward(self, sig: int) -> None:
        if self.pid and self.main_status is None:
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.main_status = status
                self.finished_at = time.time()
                self._kill_rest()

    def _kill_rest(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup:
            cgroups.signal_all(self.cgroup, signal.SIGKILL)

    def _pump(self, sel: selectors.BaseSelector, streams: dict[int, str], wake_r: int,
              writer: LogWriter) -> None:
        for fd, name in streams.items():
            sel.register(fd, selectors.EVENT_READ, name)
        sel.register(wake_r, selectors.EVENT_READ, None)
        open_streams = set(streams)
        self._reap()
        while True:
            if self.main_status is not None:
                left = (self.finished_at or 0) + _DRAIN_SECONDS - time.time()
                if not open_streams or left <= 0:
                    break
                timeout: float | None = left
            else:
                timeout = None
            for key, mask in sel.select(timeout):
                if callable(key.data):   # the stdin relay's
                    key.data(mask)
                    continue
                if key.data is None:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()
                    continue
                try:
                    data = os.read(key.fd, 65536)
                except (BlockingIOError, InterruptedError):   # (the relay's dup of a pty
                    continue                                  # master is non-blocking)
                except OSError:   # EIO: the pty's last slave closed
                    data = b""
                if data:
                    writer.write(key.data, data)
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
                    open_streams.discard(key.fd)
            if self.main_status is None and not open_streams:
                # Output closed but the process lives on: just wait for it.
                self._reap()
        # Reap any late orphans handed to us as subreaper.
        self._reap()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m navio.runtime.supervisor <container dir>")
    directory = argv[0]
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("status_path", os.path.join(directory, "status.json"))
    detach(_Supervisor(cfg).run, log_path=os.path.join(directory, "supervisor.log"),
           timeout=float(cfg.get("start_timeout", 20.0)))


if __name__ == "__main__":
    main()
