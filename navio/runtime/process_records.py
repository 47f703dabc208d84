"""Reading the process runtime's records as protocol values, and waiting for processes.

Why: status comes from two files with different writers (the agent's record, the supervisor's
status) plus the kernel's word on whether a pid is still the process we started. Keeping that
derivation in one place makes `container_status`, `list_containers` and recovery agree.

Guarantees: a container is "running" only while its process (pid + start time) or its
supervisor (still recording the exit) is alive; a "running" record whose processes are both
gone is reported — and, by `finalize_lost`, recorded — as exited with reason Unknown, because
its real exit status died with its supervisor. `wait_gone` never waits longer than asked and
never mistakes a recycled pid for the process it waits on.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

from navio.runtime import namespaces as ns
from navio.runtime.protocol import (REASON_UNKNOWN, ContainerStatus, SandboxInfo)
from navio.runtime.state import StateDir, write_json

__all__ = ["container_status_of", "finalize_lost", "killpg_checked", "pod_meta", "proc_usage",
           "sandbox_info_of", "wait_gone"]

_LOST_EXIT_CODE = 255
_LOST_MESSAGE = "the container's supervisor is gone; its exit status is unknown"


def pod_meta(pod: dict[str, Any]) -> dict[str, Any]:
    """What a sandbox record keeps of the pod: identity, hostname, host namespaces."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", "default"))
    if not name:
        raise ValueError("pod has no metadata.name")
    host = {"network": bool(spec.get("hostNetwork")), "pid": bool(spec.get("hostPID")),
            "ipc": bool(spec.get("hostIPC"))}
    hostname = socket.gethostname() if host["network"] else str(spec.get("hostname") or name)[:63]
    uid = str(meta.get("uid") or f"{namespace}/{name}")
    return {"name": name, "namespace": namespace, "uid": uid, "hostname": hostname, "host": host}


def sandbox_info_of(rec: dict[str, Any]) -> SandboxInfo:
    pause = rec.get("pause") or {}
    alive = not pause or ns.process_alive(pause.get("pid"), pause.get("starttime"))
    return SandboxInfo(
        id=rec["id"], name=rec["name"], namespace=rec["namespace"], uid=rec["uid"],
        state="ready" if rec.get("phase") == "ready" and alive else "notready", ip=rec["ip"],
        created_at=rec["created_at"], hostname=rec["hostname"],
        host_network=bool(rec["host"]["network"]), netns=rec.get("netns"),
        pid=pause.get("pid") if alive else None)


def _lost(status: dict[str, Any]) -> bool:
    return (status.get("state") == "running"
            and not ns.process_alive(status.get("pid"), status.get("starttime"))
            and not ns.process_alive(status.get("supervisor_pid"),
                                     status.get("supervisor_starttime")))


def container_status_of(rec: dict[str, Any], status: dict[str, Any] | None) -> ContainerStatus:
    base = dict(id=rec["id"], sandbox_id=rec["sandbox_id"], name=rec["name"],
                attempt=rec["attempt"], created_at=rec["created_at"], log_path=rec["log_path"],
                labels=tuple((str(k), str(v)) for k, v in rec.get("labels", [])))
    if status is None:
        return ContainerStatus(state="created", **base)
    if _lost(status):
        return ContainerStatus(state="exited", pid=status.get("pid"),
                               started_at=status.get("started_at"),
                               finished_at=status.get("finished_at"), exit_code=_LOST_EXIT_CODE,
                               reason=REASON_UNKNOWN, message=_LOST_MESSAGE, **base)
    running = status.get("state") == "running"
    return ContainerStatus(state="running" if running else "exited", pid=status.get("pid"),
                           started_at=status.get("started_at"),
                           finished_at=status.get("finished_at"),
                           exit_code=status.get("exit_code"), reason=status.get("reason", ""),
                           message=status.get("message", ""), **base)


def finalize_lost(state: StateDir, container_id: str, *, reason: str | None = None,
                  message: str = "", exit_code: int = _LOST_EXIT_CODE) -> None:
    """Record an exit the supervisor cannot record any more (it is gone), or — with `reason`
    — a start that failed before the supervisor existed."""
    status = state.load_status(container_id)
    if status is None and reason is not None:
        write_json(state.status_path(container_id), {
            "state": "exited", "pid": None, "started_at": None, "finished_at": None,
            "exit_code": exit_code, "reason": reason, "message": message})
    elif status is not None and _lost(status):
        write_json(state.status_path(container_id), {
            **status, "state": "exited", "finished_at": time.time(),
            "exit_code": _LOST_EXIT_CODE, "reason": REASON_UNKNOWN, "message": _LOST_MESSAGE})


async def wait_gone(pid: int | None, starttime: int | None, timeout: float) -> bool:
    """Wait (at most `timeout` s) for the process to end; True when it has."""
    if not ns.process_alive(pid, starttime):
        return True
    assert pid is not None
    if not hasattr(os, "pidfd_open"):   # not Linux: poll
        deadline = time.monotonic() + max(0.0, timeout)
        while ns.process_alive(pid, starttime) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not ns.process_alive(pid, starttime)
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    try:
        if not ns.process_alive(pid, starttime):   # the pid was recycled before we opened it
            return True
        done = loop.create_future()
        loop.add_reader(fd, lambda: None if done.done() else done.set_result(None))
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await done
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
    return not ns.process_alive(pid, starttime)


def killpg_checked(pid: int, starttime: int | None, sig: int) -> None:
    """Signal the process group led by `pid`, if `pid` is still the process we started."""
    if ns.process_alive(pid, starttime):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass


def proc_usage(pid: int) -> tuple[int, int, int]:
    """(cpu ns, rss bytes, 1) of one process, for containers without cgroups."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return 0, 0, 0
    ticks = int(fields[11]) + int(fields[12])
    cpu_ns = ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return cpu_ns, rss_pages * os.sysconf("SC_PAGE_SIZE"), 1
