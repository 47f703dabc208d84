"""The per-container shim of the `oci` runtime: creates, starts and waits on a runc container.

Why: like the process runtime's supervisor (supervisor.py), something must outlive the agent
to drain the container's output into its CRI log, keep its stdin for attach, and collect its
exit status; containerd has its shim for this. runc is run in pass-through mode: `runc
create` hands this process's pipes (or terminal) to the container's init, then exits, and
the init — reparented to this shim, a child subreaper — is waited on directly, so the exit
status is the real one. `runc start` then lets it exec the user's process.

Guarantees (the supervisor's, so process_records.py reads both alike):
- status.json says "running" with the init's host pid and start time before the agent hears
  the container started; "exited" with exit code (128+signal), reason (OOMKilled when the
  container's memory cgroup saw an OOM kill, Completed, Error) before the shim exits, and
  StartError with runc's message when create or start failed.
- The runc container is deleted (`runc delete --force`) once its exit is recorded, taking
  its cgroups and leftover processes with it; the OOM count is read before that.
- SIGTERM to the shim is forwarded to the container's init.

Run as `python -m navio.runtime.oci.shim <container dir>` (reads <dir>/config.json).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import Any

from navio.runtime import cgroups
from navio.runtime import namespaces as ns
from navio.runtime.launch import Report, detach
from navio.runtime.logs import LogWriter
from navio.runtime.stdinrelay import StdinRelay
from navio.runtime.supervisor import _Supervisor

__all__ = ["main", "runc_error"]


def runc_error(log_path: str, fallback: str) -> str:
    """The last error runc logged (its --log file is JSON lines), else `fallback`."""
    message = ""
    try:
        with open(log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = str(entry.get("msg", ""))
    except OSError:
        pass
    return message or fallback


class _Shim(_Supervisor):
    """The supervisor's pump, reaping and status writing, with runc doing the container."""

    def _runc(self, *args: str) -> list[str]:
        cfg = self.cfg
        return [cfg["runc"], "--root", cfg["runc_root"], "--log", cfg["runc_log"],
                "--log-format", "json", *args]

    def run(self, report: Report) -> None:
        cfg = self.cfg
        os.chdir("/")
        ns.set_child_subreaper()
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        writer = LogWriter(cfg["log_path"], max_bytes=cfg.get("log_max_bytes", 10 << 20),
                           max_files=cfg.get("log_max_files", 5))
        oom_before = cgroups.oom_kills(self.cgroup) if self.cgroup else 0
        tty, keep_stdin = bool(cfg.get("tty")), bool(cfg.get("stdin"))
        streams, stdio, child_ends, stdin_target, master = self._open_stdio()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        pid_file = os.path.join(cfg["bundle"], "init.pid")
        create = subprocess.run(
            self._runc("create", "--bundle", cfg["bundle"], "--pid-file", pid_file, cfg["id"]),
            stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], close_fds=True)
        for fd in child_ends:
            os.close(fd)
        if create.returncode == 0:
            with open(pid_file) as f:
                self.pid = int(f.read().strip())
            start = subprocess.run(self._runc("start", cfg["id"]), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if create.returncode != 0 or start.returncode != 0:
            what = "create" if create.returncode != 0 else "start"
            message = runc_error(cfg["runc_log"], f"runc {what} failed")
            subprocess.run(self._runc("delete", "--force", cfg["id"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._write_status(state="exited", pid=self.pid or None, starttime=None,
                               started_at=None, finished_at=time.time(), exit_code=128,
                               reason="StartError", message=message)
            writer.close()
            report({"ok": False, "error": message})
            return
        starttime = ns.proc_starttime(self.pid)
        started_at = time.time()
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._forward(signal.SIGTERM))
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
        code = os.waitstatus_to_exitcode(status)
        exit_code = 128 - code if code < 0 else code
        oom = bool(self.cgroup) and cgroups.oom_kills(self.cgroup) > oom_before
        reason = "OOMKilled" if oom else ("Completed" if exit_code == 0 else "Error")
        subprocess.run(self._runc("delete", "--force", cfg["id"]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self._write_status(state="exited", pid=self.pid, starttime=starttime,
                           started_at=started_at, finished_at=self.finished_at or time.time(),
                           exit_code=exit_code, reason=reason, message="")

    def _forward(self, sig: int) -> None:
        if self.pid and self.main_status is None:
            try:
                os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _kill_rest(self) -> None:
        # Init is PID 1 of the container's PID namespace: its end took the rest with it.
        if self.cgroup:
            cgroups.signal_all(self.cgroup, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m navio.runtime.oci.shim <container dir>")
    directory = argv[0]
    with open(os.path.join(directory, "config.json")) as f:
        cfg: dict[str, Any] = json.load(f)
    cfg.setdefault("status_path", os.path.join(directory, "status.json"))
    detach(_Shim(cfg).run, log_path=os.path.join(directory, "shim.log"),
           timeout=float(cfg.get("start_timeout", 20.0)))


if __name__ == "__main__":
    main()
