"""The `process` runtime: pods as namespaces around host processes, containers as supervised
process groups.

Why: issue 7 — run pods on a node without images or a container engine. Each container is a
host process group (its argv runs from the host filesystem); when root on Linux each pod gets
its own network namespace with an IP on the node's bridge (netns.py), PID/UTS/IPC namespaces
held by a pause process (pause.py), cgroup v1 limits (cgroups.py) and volume bind mounts in a
private mount namespace (mounts.py). Without root (or with `isolation=False`) it falls back to
host processes on the host network, says so in `capabilities`, and applies only argv, env and
working dir.

Guarantees, beyond protocol.py's:
- Helpers (pauses, supervisors) are forked by the runtime's fork server (forkserver.py), so
  a pod costs no Python interpreter start, and the agent itself never forks.
- Containers survive the agent: each runs under a detached supervisor (supervisor.py). All
  state is on disk (state.py) and written before the resource it describes exists, so a new
  `ProcessRuntime` over the same state dir (after `kill -9`) reports the same containers with
  the same pids, can stop them, and cleans up whatever a crash left half-made (`recover`).
  Nothing is ever started twice: sandboxes are found by pod uid, containers by
  (sandbox, name, attempt).
- A pid is trusted only with its start time, so a recycled pid is never signalled.
- `stop_container` sends SIGTERM to the container's process group, waits up to `grace`, then
  SIGKILLs the group and everything left in its cgroup. (Without cgroups — the unprivileged
  fallback — a process that left the group with setsid can outlive its container.)
- Each container runs under the seccomp filter of its config (installed by the supervisor
  just before exec, after the mounts), and so does every exec in it (nsexec.py).
- `stop_sandbox` kills the containers and the pause (which takes the pod's PID namespace with
  it), deletes the pod network and releases the IP; `remove_sandbox` also deletes the records.
- One runtime per state dir at a time (an flock; `StateLocked` otherwise).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Concatenate, Coroutine, ParamSpec, TypeVar

from navio.runtime import cgroups, mounts
from navio.runtime import namespaces as ns
from navio.runtime.attachsession import ProcessAttachSession, connect_relay
from navio.runtime.execsession import ProcessExecSession, run_to_completion, start_exec
from navio.runtime.ipam import IPAllocator
from navio.runtime.forkserver import ForkServer
from navio.runtime.process_config import ProcessRuntimeConfig, detect_capabilities
from navio.runtime.process_records import (container_status_of, finalize_lost, killpg_checked,
                                           pod_meta, proc_usage, sandbox_info_of, wait_gone)
from navio.runtime.protocol import (Capabilities, ContainerConfig, ContainerStats,
                                    ContainerStatus, InvalidState, NotFound, RuntimeFailure,
                                    SandboxInfo)
from navio.runtime.sandbox import SandboxResources
from navio.runtime.seccomp.compiler import SeccompProfileError, compile_cached
from navio.runtime.state import StateDir

__all__ = ["ProcessRuntime", "ProcessRuntimeConfig"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


_Method = Callable[Concatenate["ProcessRuntime", _P], Coroutine[Any, Any, _R]]


def _bounded(extra: Callable[..., float] | None = None
             ) -> Callable[[_Method[_P, _R]], _Method[_P, _R]]:
    """Bound a public call by the call timeout (plus `extra(*args)`), after recovery."""
    def decorate(fn: _Method[_P, _R]) -> _Method[_P, _R]:
        @functools.wraps(fn)
        async def wrapper(self: ProcessRuntime, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            limit = self._config.call_timeout + (extra(*args, **kwargs) if extra else 0.0)
            async with asyncio.timeout(limit):
                await self._ensure_recovered()
                return await fn(self, *args, **kwargs)
        return wrapper
    return decorate


class ProcessRuntime:
    name = "process"

    def __init__(self, config: ProcessRuntimeConfig) -> None:
        self._config = config
        self._state = StateDir(config.state_dir)
        self._state.open()
        try:
            self._caps = detect_capabilities(config)
        except BaseException:
            self._state.close()
            raise
        self._ipam = IPAllocator(config.state_dir / "ipam.json", config.pod_cidr)
        self._forks = ForkServer(config.state_dir, python=config.python)
        self._sandboxes = SandboxResources(config, self._caps, self._state, self._ipam,
                                           self._forks)
        self._locks: dict[str, asyncio.Lock] = {}
        self._recovered = False
        self._recover_lock = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def close(self) -> None:
        """Stop the fork server and release the state dir; containers keep running."""
        try:
            await self._sandboxes.close()
            await self._forks.close()
        finally:
            self._state.close()

    # ---- recovery ----------------------------------------------------------------------

    async def _ensure_recovered(self) -> None:
        if not self._recovered:
            async with self._recover_lock:
                if not self._recovered:
                    await self.recover()
                    self._recovered = True

    async def recover(self) -> None:
        """Reconcile the state dir with reality after a restart: finish tearing down what a
        crash left half-made, mark containers whose processes vanished, free leaked IPs."""
        live_sandboxes = set()
        for sid in self._state.sandbox_ids():
            rec = self._state.load_sandbox(sid)
            if rec is None or rec.get("phase") == "creating":
                log.info("removing half-created sandbox", extra={"sandbox": sid})
                if rec is not None:
                    await self._sandboxes.teardown(rec)
                self._state.delete_sandbox(sid)
                continue
            if rec.get("phase") == "ready":
                live_sandboxes.add(sid)
        self._ipam.retain(live_sandboxes)
        for cid in self._state.container_ids():
            rec = self._state.load_container(cid)
            if rec is None or self._state.load_sandbox(rec["sandbox_id"]) is None:
                log.info("removing orphaned container", extra={"container": cid})
                await self._remove_container(cid, rec)
                continue
            finalize_lost(self._state, cid)

    # ---- sandboxes ---------------------------------------------------------------------

    @_bounded()
    async def run_sandbox(self, pod: dict[str, Any], *, ip_hint: str | None = None) -> SandboxInfo:
        meta = pod_meta(pod)
        async with self._lock("pod:" + meta["uid"]):
            for sid in self._state.sandbox_of_pod(meta["uid"]):
                rec = self._state.load_sandbox(sid)
                if rec:
                    info = sandbox_info_of(rec)
                    if info.state == "ready":
                        return info
            sid = uuid.uuid4().hex
            rec = {"id": sid, **meta, "phase": "creating", "created_at": time.time(),
                   "ip": self._config.node_ip, "netns": None, "own_netns": False,
                   "namespaces": [], "pause": None, "cgroup": {}, "shm": None}
            self._state.save_sandbox(rec)
            try:
                await self._sandboxes.create(rec, ip_hint)
            except BaseException as exc:
                await asyncio.shield(self._abort_sandbox(rec))
                if isinstance(exc, (RuntimeFailure, asyncio.CancelledError, TimeoutError)):
                    raise
                raise RuntimeFailure(f"creating the pod sandbox failed: {exc}") from exc
            rec["phase"] = "ready"
            self._state.save_sandbox(rec)
            log.info("sandbox ready", extra={
                "sandbox": sid, "pod": f"{meta['namespace']}/{meta['name']}", "ip": rec["ip"]})
            return sandbox_info_of(rec)

    async def _abort_sandbox(self, rec: dict[str, Any]) -> None:
        try:
            await self._sandboxes.teardown(rec)
        finally:
            self._state.delete_sandbox(rec["id"])

    @_bounded()
    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self._stop_sandbox(sandbox_id)

    async def _stop_sandbox(self, sandbox_id: str) -> None:
        async with self._lock(sandbox_id):
            rec = self._state.load_sandbox(sandbox_id)
            if rec is None:
                return
            for status in self._containers_of(sandbox_id):
                await self._stop_container(status.id, 0.0)
            await self._sandboxes.teardown(rec)
            if rec.get("phase") != "stopped":
                rec["phase"] = "stopped"
                self._state.save_sandbox(rec)
                log.info("sandbox stopped", extra={"sandbox": sandbox_id})

    @_bounded()
    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self._stop_sandbox(sandbox_id)
        async with self._lock(sandbox_id):
            for status in self._containers_of(sandbox_id):
                await self._remove_container(status.id, self._state.load_container(status.id))
            self._state.delete_sandbox(sandbox_id)

    @_bounded()
    async def sandbox_status(self, sandbox_id: str) -> SandboxInfo | None:
        rec = self._state.load_sandbox(sandbox_id)
        return sandbox_info_of(rec) if rec and rec.get("phase") != "creating" else None

    @_bounded()
    async def list_sandboxes(self) -> list[SandboxInfo]:
        recs = (self._state.load_sandbox(sid) for sid in self._state.sandbox_ids())
        return [sandbox_info_of(r) for r in recs if r and r.get("phase") != "creating"]

    # ---- containers --------------------------------------------------------------------

    def _containers_of(self, sandbox_id: str | None) -> list[ContainerStatus]:
        out = []
        for cid in self._state.container_ids(sandbox_id):
            rec = self._state.load_container(cid)
            if rec:
                out.append(container_status_of(rec, self._state.load_status(cid)))
        return out

    def _sandbox_for_create(self, sandbox_id: str, name: str, attempt: int
                            ) -> tuple[dict[str, Any], str | None]:
        """The ready sandbox a container is created in, and the id of the container already
        created for (name, attempt) if any: create_container is idempotent. Call under the
        sandbox's lock."""
        sandbox = self._state.load_sandbox(sandbox_id)
        if sandbox is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        if sandbox_info_of(sandbox).state != "ready":
            raise InvalidState(f"sandbox {sandbox_id} is not ready")
        for status in self._containers_of(sandbox_id):
            if status.name == name and status.attempt == attempt:
                return sandbox, status.id
        return sandbox, None

    @_bounded()
    async def create_container(self, sandbox_id: str, container: dict[str, Any],
                               config: ContainerConfig) -> str:
        name = config.name or str(container.get("name", ""))
        async with self._lock(sandbox_id):
            sandbox, existing = self._sandbox_for_create(sandbox_id, name, config.attempt)
            if existing is not None:
                return existing
            if not config.argv:
                raise RuntimeFailure(f"container {name!r} has no command: the process runtime "
                                     "runs host programs and needs command or args")
            seccomp = dict(config.seccomp) if config.seccomp is not None else None
            bpf = None
            if seccomp is not None:
                try:   # compiled here, once per profile: helpers only install the program
                    program = compile_cached(seccomp)
                except SeccompProfileError as exc:
                    raise RuntimeFailure(f"container {name!r}: seccomp profile: {exc}") from None
                bpf = {"code": base64.b64encode(program.code).decode(), "flags": program.flags}
            cid = uuid.uuid4().hex
            log_path = str(self._config.log_dir / config.log_path)   # absolute paths win
            env = {"PATH": _DEFAULT_PATH, "HOSTNAME": sandbox["hostname"], **dict(config.env)}
            targets = [os.path.normpath(m.container_path) for m in config.mounts]
            rec = {"id": cid, "sandbox_id": sandbox_id, "name": name, "attempt": config.attempt,
                   "created_at": time.time(), "log_path": log_path, "mountpoints": [],
                   "targets": targets if self._caps.mounts else [], "cgroup": {},
                   "cwd": config.working_dir or "/", "labels": [list(kv) for kv in config.labels]}
            self._state.save_container(rec)
            try:
                if self._caps.mounts:
                    rec["mountpoints"] = mounts.prepare_mountpoints(
                        (m.host_path, m.container_path, m.read_only) for m in config.mounts)
                if sandbox.get("cgroup"):
                    group = {c: os.path.join(d, cid) for c, d in sandbox["cgroup"].items()}
                    rec["cgroup"] = group
                    self._state.save_container(rec)
                    cgroups.create(group)
                    cgroups.apply_limits(group, config.resources)
                self._state.save_container(rec)
                self._state.save_container_config(cid, {
                    "id": cid, "argv": list(config.argv), "env": env, "cwd": rec["cwd"],
                    "mounts": [[m.host_path, m.container_path, m.read_only] for m in config.mounts]
                    if self._caps.mounts else [],
                    "mount_namespace": self._caps.mounts, "namespaces": sandbox["namespaces"],
                    "pause": sandbox["pause"], "shm": sandbox.get("shm"), "cgroup": rec["cgroup"],
                    "log_path": log_path, "log_max_bytes": self._config.log_max_bytes,
                    "log_max_files": self._config.log_max_files, "tty": config.tty,
                    "stdin": config.stdin, "stdin_once": config.stdin_once,
                    "uid": config.run_as_user, "gid": config.run_as_group,
                    "seccomp": seccomp, "seccomp_bpf": bpf, "no_new_privs": config.no_new_privs,
                    "start_timeout": self._config.helper_timeout})
            except BaseException as exc:
                await asyncio.shield(self._remove_container(cid, rec))
                if isinstance(exc, (RuntimeFailure, asyncio.CancelledError)):
                    raise
                raise RuntimeFailure(f"creating container {name!r} failed: {exc}") from exc
            log.info("container created", extra={"container": cid, "sandbox": sandbox_id,
                                                 "container_name": name, "attempt": config.attempt})
            return cid

    @_bounded()
    async def start_container(self, container_id: str) -> None:
        async with self._lock(container_id):
            rec = self._state.load_container(container_id)
            if rec is None:
                raise NotFound(f"container {container_id} not found")
            if self._state.load_status(container_id) is not None:
                return   # already started (or already failed to)
            sandbox = self._state.load_sandbox(rec["sandbox_id"])
            if sandbox is None or sandbox_info_of(sandbox).state != "ready":
                raise InvalidState(f"sandbox {rec['sandbox_id']} is not ready")
            directory = str(self._state.container_dir(container_id))
            try:
                await self._forks.spawn("navio.runtime.supervisor", [directory],
                                        timeout=self._config.helper_timeout)
            except RuntimeFailure as exc:
                if self._state.load_status(container_id) is None:
                    finalize_lost(self._state, container_id, reason="StartError",
                                  message=str(exc), exit_code=128)
                raise RuntimeFailure(f"starting container {rec['name']!r} failed: {exc}") from None
            log.info("container started", extra={"container": container_id})

    @_bounded(lambda container_id, grace: max(0.0, grace))
    async def stop_container(self, container_id: str, grace: float) -> None:
        await self._stop_container(container_id, grace)

    async def _stop_container(self, container_id: str, grace: float) -> None:
        async with self._lock(container_id):
            rec = self._state.load_container(container_id)
            status = self._state.load_status(container_id)
            if rec is None or status is None or status.get("state") != "running":
                return
            pid, start = status["pid"], status.get("starttime")
            sup = (status.get("supervisor_pid"), status.get("supervisor_starttime"))
            if ns.process_alive(pid, start) and grace > 0:
                killpg_checked(pid, start, signal.SIGTERM)
                await wait_gone(pid, start, grace)
            if ns.process_alive(pid, start):
                killpg_checked(pid, start, signal.SIGKILL)
                if rec.get("cgroup"):
                    cgroups.signal_all(rec["cgroup"], signal.SIGKILL)
                await wait_gone(pid, start, 5.0)
            # The supervisor records the exit and exits right after its child.
            if not await wait_gone(sup[0], sup[1], 5.0):
                log.warning("supervisor still running after its container ended",
                            extra={"container": container_id, "pid": sup[0]})
            finalize_lost(self._state, container_id)
            log.info("container stopped", extra={"container": container_id, "grace": grace})

    @_bounded()
    async def remove_container(self, container_id: str) -> None:
        rec = self._state.load_container(container_id)
        if rec is not None:
            await self._remove_container(container_id, rec)

    async def _remove_container(self, container_id: str, rec: dict[str, Any] | None) -> None:
        await self._stop_container(container_id, 0.0)
        async with self._lock(container_id):
            if rec is not None:
                if rec.get("cgroup"):
                    await asyncio.to_thread(cgroups.remove, rec["cgroup"])
                in_use = {t for other in self._containers_records() if other["id"] != container_id
                          for t in other.get("targets", [])}
                mounts.remove_mountpoints(rec.get("mountpoints", []), in_use)
            self._state.delete_container(container_id)
        self._locks.pop(container_id, None)

    def _containers_records(self) -> list[dict[str, Any]]:
        recs = (self._state.load_container(cid) for cid in self._state.container_ids())
        return [r for r in recs if r]

    @_bounded()
    async def container_status(self, container_id: str) -> ContainerStatus | None:
        rec = self._state.load_container(container_id)
        if rec is None:
            return None
        return container_status_of(rec, self._state.load_status(container_id))

    @_bounded()
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return self._containers_of(sandbox_id)

    @_bounded()
    async def log_path(self, container_id: str) -> str | None:
        rec = self._state.load_container(container_id)
        return rec["log_path"] if rec else None

    # ---- exec, port-forward, stats -----------------------------------------------------

    def _running(self, container_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        rec = self._state.load_container(container_id)
        if rec is None:
            raise NotFound(f"container {container_id} not found")
        status = self._state.load_status(container_id)
        if not status or status.get("state") != "running" or not ns.process_alive(
                status.get("pid"), status.get("starttime")):
            raise InvalidState(f"container {container_id} is not running")
        return rec, status

    @_bounded()
    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                   tty: bool) -> ProcessExecSession:
        return await self._exec(container_id, cmd, stdin=stdin, tty=tty)

    async def _exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                    tty: bool) -> ProcessExecSession:
        if not cmd:
            raise RuntimeFailure("exec needs a command")
        rec, status = self._running(container_id)
        config = self._state.load_container_config(container_id) or {}
        args = ["--pid", str(status["pid"]), "--cwd", rec.get("cwd") or "/"]
        if status.get("starttime") is not None:
            args += ["--starttime", str(status["starttime"])]
        if config.get("seccomp_bpf") is not None or config.get("no_new_privs"):
            # the container's filter (and no_new_privs) for the exec'd command too, as runc exec
            args += ["--seccomp-from",
                     str(self._state.container_dir(container_id) / "config.json")]
        if rec.get("cgroup"):
            args += ["--cgroup-procs", *(os.path.join(d, "cgroup.procs")
                                         for d in rec["cgroup"].values())]
        return await start_exec(args, list(cmd), config.get("env") or {}, stdin=stdin, tty=tty,
                                python=self._config.python)

    @_bounded()
    async def attach(self, container_id: str, *, stdin: bool,
                     tty: bool) -> ProcessAttachSession:
        self._running(container_id)
        config = self._state.load_container_config(container_id) or {}
        keeps_stdin = bool(config.get("stdin"))
        sock = None
        if (stdin and keeps_stdin) or (tty and config.get("tty")):
            sock = await connect_relay(self._state.container_dir(container_id))
        return ProcessAttachSession(sock, stdin=stdin and keeps_stdin)

    @_bounded(lambda container_id, cmd, timeout: max(0.0, timeout))
    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[int, bytes, bytes]:
        """Run `cmd` to completion; TimeoutError (command killed) after `timeout` seconds."""
        session = await self._exec(container_id, cmd, stdin=False, tty=False)
        return await run_to_completion(session, timeout)

    @_bounded()
    async def port_forward(self, sandbox_id: str, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        rec = self._state.load_sandbox(sandbox_id)
        if rec is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        if sandbox_info_of(rec).state != "ready":
            raise InvalidState(f"sandbox {sandbox_id} is not ready")
        if not rec.get("netns"):
            return await asyncio.open_connection("127.0.0.1", port)
        sock = await asyncio.to_thread(ns.socket_in_netns, rec["netns"])
        try:
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    @_bounded()
    async def stats(self, container_id: str) -> ContainerStats | None:
        rec = self._state.load_container(container_id)
        status = self._state.load_status(container_id) if rec else None
        if not rec or not status or status.get("state") != "running":
            return None
        if rec.get("cgroup"):
            cpu, mem, working_set, pids = cgroups.usage(rec["cgroup"])
        else:
            cpu, mem, pids = proc_usage(status["pid"])
            working_set = mem
        return ContainerStats(container_id, time.time(), cpu, mem, working_set, pids)


if TYPE_CHECKING:
    from navio.runtime.protocol import Runtime
    _runtime: type[Runtime] = ProcessRuntime
