"""syncPod: drive the runtime one step towards a pod's spec (kubelet.go SyncPod +
kuberuntime_manager.go computePodActions/SyncPod).

Why: every decision the kubelet makes about a pod's containers lives here: volumes, the
sandbox (recreated when it died, unless restartPolicy Never already ran the pod), init
containers one at a time (sidecars — restartPolicy Always — started in that order and kept
running), restarts per restartPolicy with CrashLoopBackOff, kills after failed
liveness/startup probes, and the status that results. Stopping pods is podkill.py's.

Guarantees:
- `sync` is idempotent: it reads state from the runtime cache (refreshed for this pod first)
  and only acts on differences; the runtime itself refuses duplicates ((sandbox, name,
  attempt) identifies a container), so a sync repeated after an agent restart starts nothing
  twice. It returns when to sync again (back-off expiry, retry, resync).
- A pod whose phase is terminal is never started again; its sandbox is stopped (its IP
  released) but its containers are kept for `kubectl logs`.
- `terminate` stops every container with the pod's grace period (preStop first) and the
  sandboxes; `cleanup` removes everything the pod left on the node. Only the pod's
  own runtime objects are touched.
- At most two instances per container name are kept (current and previous, for lastState
  and `logs --previous`).
- activeDeadlineSeconds (active_deadline.go): once the pod has been active on the node that
  long since its startTime, it is killed and Failed with reason DeadlineExceeded (and a
  DeadlineExceeded event); until then a sync is due when the deadline passes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from navio.kubelet.backoff import Backoff, go_duration
from navio.kubelet.containergc import collect_pod
from navio.kubelet.containers import ContainerRunner, format_pod, pod_ref
from navio.kubelet.deadline import DEADLINE_EXCEEDED, deadline_left
from navio.kubelet.ephemeral import to_start
from navio.kubelet.iopool import run_io
from navio.kubelet.pleg import RuntimeCache
from navio.kubelet.podkill import PodKiller
from navio.kubelet.podfiles import write_pod_files
from navio.kubelet.podstatus import (PodStatusInput, generate_pod_status, is_sidecar, rfc3339,
                                     should_restart)
from navio.kubelet.prober import ProbeManager
from navio.kubelet.status import StatusManager
from navio.kubelet.volumes import VolumeError, VolumeManager
from navio.runtime.protocol import ContainerStatus, Runtime, RuntimeFailure, SandboxInfo

__all__ = ["PodSyncer", "SyncOutcome"]

log = logging.getLogger(__name__)

_RETRY = 10.0          # podWorkers backOffPeriod after a failed sync
_MOUNT_RETRY = 2.0
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    retry_in: float | None
    terminal: bool = False


def _latest(containers: list[ContainerStatus], name: str) -> ContainerStatus | None:
    mine = [c for c in containers if c.name == name]
    return max(mine, key=lambda c: (c.created_at, c.attempt)) if mine else None


class PodSyncer:
    def __init__(self, *, runtime: Runtime, cache: RuntimeCache, prober: ProbeManager,
                 runner: ContainerRunner, volumes: VolumeManager, status: StatusManager,
                 event: Callable[[Mapping[str, Any], str, str, str], None],
                 backoff: Backoff, reasons: dict[tuple[str, str], tuple[str, str]],
                 host_ips: Callable[[], list[str]], pod_logs_dir: Path,
                 dns: Mapping[str, Any], sync_frequency: float,
                 clock: Callable[[], float] = time.time,
                 runtime_class: Callable[[Mapping[str, Any]], Awaitable[str]] | None = None
                 ) -> None:
        self.runtime = runtime
        self.cache = cache
        self.prober = prober
        self.runner = runner
        self.volumes = volumes
        self.status = status
        self.event = event
        self.backoff = backoff
        self.reasons = reasons
        self.host_ips = host_ips
        self.pod_logs_dir = pod_logs_dir
        self.dns = dns
        self.sync_frequency = sync_frequency
        self.clock = clock
        self.runtime_class = runtime_class   # checked before a sandbox is made
        self.killer = PodKiller(runtime, cache, runner)
        self._evicted: dict[str, tuple[str, str]] = {}
        # Starting a pod (sandbox, then containers) is mostly CPU-bound work of helper
        # processes; with two pods per core starting at a time, a burst is served first
        # come, first served instead of every pod finishing together at the end: the same
        # throughput, a far lower median startup latency (benchmarks/pod_startup.py).
        self._slots = asyncio.Semaphore(2 * (os.cpu_count() or 1))
        self._pod_files_done: dict[str, tuple[str, list[tuple[str, str]]]] = {}

    # ---- status -------------------------------------------------------------------------

    def set_status(self, pod: Mapping[str, Any], *, terminal: bool = False) -> dict[str, Any]:
        uid = str((pod.get("metadata") or {}).get("uid"))
        spec = pod.get("spec") or {}
        specs = {c.get("name"): c for c in (*(spec.get("containers") or ()),
                                             *(spec.get("initContainers") or ()))}
        sandbox = self.cache.ready_sandbox(uid)
        pod_ips = []
        if sandbox is not None:
            pod_ips = self.host_ips() if sandbox.host_network else [sandbox.ip]
        old = self.status.get(uid) or dict(pod.get("status") or {})
        inp = PodStatusInput(
            pod=pod, containers=self.cache.pod_containers(uid),
            sandbox_ready=sandbox is not None, pod_ips=pod_ips, host_ips=self.host_ips(),
            runtime_name=self.runtime.name, old_status=old,
            ready=lambda n, cid: self.prober.ready(uid, n, cid, specs.get(n) or {}),
            started=lambda n, cid: self.prober.started(uid, n, cid, specs.get(n) or {}),
            reasons={name: r for (u, name), r in self.reasons.items() if u == uid},
            terminal=terminal, now=rfc3339(self.clock()), evicted=self._evicted.get(uid))
        status = generate_pod_status(inp)
        self.status.set(pod, status)
        return status

    # ---- the sync ---------------------------------------------------------------------------

    async def sync(self, pod: Mapping[str, Any]) -> SyncOutcome:
        uid = str((pod.get("metadata") or {}).get("uid"))
        cached = self.status.get(uid) or {}
        if (pod.get("status") or {}).get("phase") in _TERMINAL or cached.get("phase") in _TERMINAL:
            await self.finish(pod)
            return SyncOutcome(None, terminal=True)
        left = self._deadline_left(pod)
        if left is not None and left <= 0:
            reason, message = self._evicted[uid] = DEADLINE_EXCEEDED
            self.event(pod, "Normal", reason, message)
            await self.finish(pod)
            return SyncOutcome(None, terminal=True)
        await self.cache.refresh_pod(uid)
        try:
            volumes = await self.volumes.setup(pod, host_ips=self.host_ips(),
                                               pod_ips=self._ips(uid))
        except VolumeError as exc:
            self.event(pod, "Warning", "FailedMount", str(exc))
            self.set_status(pod)
            return SyncOutcome(_MOUNT_RETRY)
        for warning in volumes.warnings:
            log.info("volume source skipped", extra={"pod": pod_ref(pod), "why": warning})
        sandbox = self.cache.ready_sandbox(uid)
        if sandbox is not None:
            await self._kill_unhealthy(pod, sandbox)
        wake = [self.sync_frequency]
        async with self._slots:
            if sandbox is None:
                sandbox = await self._new_sandbox(pod, wake)
                if sandbox is None:
                    return await self._after(pod, wake)
            files = await self._pod_files(pod, sandbox)
            for ephemeral in to_start(pod, self.cache.pod_containers(uid)):   # (ephemeral.py)
                await self._start(pod, ephemeral, sandbox, volumes, files, wake)
            if await self._init_containers(pod, sandbox, volumes, files, wake):
                await self._regular_containers(pod, sandbox, volumes, files, wake)
        await collect_pod(self.runtime, self.cache, uid, sandbox.id)   # (containergc.py)
        return await self._after(pod, wake)

    def _deadline_left(self, pod: Mapping[str, Any]) -> float | None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        return deadline_left(pod, self.status.get(uid), self.clock())

    async def _new_sandbox(self, pod: Mapping[str, Any], wake: list[float]
                           ) -> SandboxInfo | None:
        """A ready sandbox in place of the dead (or missing) one; None when the pod must not
        get one (restartPolicy Never after its containers ran) or creating it failed."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        old = self.cache.pod_sandboxes(uid)
        if old and policy == "Never" and self.cache.pod_containers(uid):
            for s in old:
                await self.killer.stop_sandbox(s.id)
            await self.cache.refresh_pod(uid)
            wake.clear()
            return None
        if old:
            self.event(pod, "Normal", "SandboxChanged",
                       "Pod sandbox changed, it will be killed and re-created.")
            for s in old:
                await self.killer.stop_sandbox(s.id)
            await self.cache.refresh_pod(uid)
        try:
            if self.runtime_class is not None:
                await self.runtime_class(pod)
            sandbox = await self.runtime.run_sandbox(dict(pod),
                                                     ip_hint=old[0].ip if old else None)
        except RuntimeFailure as exc:
            self.event(pod, "Warning", "FailedCreatePodSandBox",
                       f"Failed to create pod sandbox: {exc}")
            wake[:] = [_RETRY]
            return None
        self.cache.put_sandbox(sandbox)
        return sandbox

    async def _after(self, pod: Mapping[str, Any], wake: list[float]) -> SyncOutcome:
        uid = str((pod.get("metadata") or {}).get("uid"))
        sandbox = self.cache.ready_sandbox(uid)
        running = {}
        for c in self.cache.pod_containers(uid, sandbox.id if sandbox else None):
            if c.state == "running" and sandbox is not None:
                running[c.name] = (c.id, c.started_at or time.time(),
                                   self.host_ips()[0] if sandbox.host_network else sandbox.ip)
        self.prober.sync(pod, running)
        status = self.set_status(pod)
        if status["phase"] in _TERMINAL:
            await self.finish(pod)
            return SyncOutcome(None, terminal=True)
        left = self._deadline_left(pod)   # (startTime is set by the first status)
        if left is not None:
            wake.append(max(0.0, left) + 0.05)
        return SyncOutcome(min(wake) if wake else None)

    def _ips(self, uid: str) -> list[str]:
        sandbox = self.cache.ready_sandbox(uid)
        if sandbox is None:
            return []
        return self.host_ips() if sandbox.host_network else [sandbox.ip]

    async def _pod_files(self, pod: Mapping[str, Any],
                         sandbox: SandboxInfo) -> list[tuple[str, str]]:
        """/etc/hosts, hostname and resolv.conf, written once per sandbox (as the kubelet
        and the CRI runtime do), with their DNS warnings recorded then."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        done = self._pod_files_done.get(uid)
        if done is None or done[0] != sandbox.id:
            files, events = await run_io(
                write_pod_files, self.volumes.pod_dir(uid), pod,
                self._ips(uid) or [sandbox.ip], cluster_dns=self.dns["cluster_dns"],
                cluster_domain=self.dns["cluster_domain"], host_resolv=self.dns["host_resolv"],
                node_ips=self.host_ips())
            for reason, message in events:
                self.event(pod, "Warning", reason, message)
            done = self._pod_files_done[uid] = (sandbox.id, files)
        return done[1] if self.runtime.capabilities.mounts else []

    async def _kill_unhealthy(self, pod: Mapping[str, Any], sandbox: SandboxInfo) -> None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        spec = pod.get("spec") or {}
        specs = {c.get("name"): c for c in (
            *(c for c in spec.get("initContainers") or () if is_sidecar(c)),
            *(spec.get("containers") or ()))}
        for c in self.cache.pod_containers(uid, sandbox.id):
            if c.state != "running" or c.name not in specs:
                continue
            restart = (specs[c.name].get("restartPolicy") or spec.get("restartPolicy")
                       or "Always") != "Never"
            failed = self.prober.failed(uid, c.name, c.id)
            if failed is None:
                continue
            message = f"Container {c.name} failed {failed} probe" + \
                (", will be restarted" if restart else "")
            probe = specs[c.name].get("livenessProbe" if failed == "liveness" else "startupProbe")
            await self.runner.kill(pod, specs[c.name], c, message=message,
                                   grace=self.runner.grace_period(pod, probe), pod_ip=sandbox.ip)

    def _attempt(self, uid: str, name: str) -> int:
        attempts = [c.attempt for c in self.cache.pod_containers(uid) if c.name == name]
        return max(attempts) + 1 if attempts else 0

    def _in_backoff(self, pod: Mapping[str, Any], name: str, last: ContainerStatus,
                    wake: list[float]) -> bool:
        """doBackOff: True (and the CrashLoopBackOff reason recorded) while restarting must
        wait; otherwise the back-off advances and the caller restarts now."""
        if last.state != "exited":
            return False
        uid = str((pod.get("metadata") or {}).get("uid"))
        key = f"{uid}/{name}"
        ts = last.finished_at or time.time()
        if self.backoff.in_backoff_since(key, ts):
            self.reasons[(uid, name)] = (
                "CrashLoopBackOff", f"back-off {go_duration(self.backoff.get(key))} restarting "
                                    f"failed container={name} pod={format_pod(pod)}")
            self.event(pod, "Warning", "BackOff",
                       f"Back-off restarting failed container {name} in pod {format_pod(pod)}")
            wake.append(self.backoff.remaining(key, ts) + 0.05)
            return True
        self.backoff.next(key, ts)
        return False

    async def _init_containers(self, pod: Mapping[str, Any], sandbox: SandboxInfo,
                               volumes: Any, files: list[tuple[str, str]],
                               wake: list[float]) -> bool:
        """Init containers in order (computeInitContainerActions): a regular one must exit 0
        before the next starts, a sidecar (restartPolicy Always) must have started (its
        startup probe passed); True once all did, i.e. the app containers may run. Sidecars
        that exit are restarted (with back-off) then too."""
        spec = pod.get("spec") or {}
        inits = list(spec.get("initContainers") or ())
        if not inits:
            return True
        uid = str((pod.get("metadata") or {}).get("uid"))
        current = self.cache.pod_containers(uid, sandbox.id)
        regular = {c.get("name") for c in spec.get("containers") or ()}
        initialized = any(c.name in regular for c in current)
        for c in inits:
            name = str(c.get("name"))
            s = _latest(current, name)
            if is_sidecar(c):
                if s is not None and s.state == "running":
                    if initialized or self.prober.started(uid, name, s.id, c):
                        continue
                    return False
                if s is not None and self._in_backoff(pod, name, s, wake):
                    if initialized:
                        continue
                    return False
                await self._start(pod, c, sandbox, volumes, files, wake, init=True)
                if initialized:
                    continue
                return False
            if initialized or (s is not None and s.state == "exited" and s.exit_code == 0):
                continue
            if s is not None and s.state == "running":
                return False
            if s is not None and s.state in ("exited", "unknown"):   # failed
                if (spec.get("restartPolicy") or "Always") == "Never":
                    return False
                if self._in_backoff(pod, name, s, wake):
                    return False
            await self._start(pod, c, sandbox, volumes, files, wake, init=True)
            return False
        return True

    async def _start(self, pod: Mapping[str, Any], spec: Mapping[str, Any],
                     sandbox: SandboxInfo, volumes: Any, files: list[tuple[str, str]],
                     wake: list[float], *, init: bool = False) -> None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        attempt = self._attempt(uid, str(spec.get("name")))
        if not await self.runner.start(pod, spec, sandbox, attempt, volumes, files, init=init):
            images = getattr(self.runner, "images", None)
            retry = images.retry_in(pod, spec) if images is not None else None
            # (an image pull that failed is retried once its back-off ends; until then the
            # next sync reports ImagePullBackOff, as the kubelet's pod worker does)
            wake.append(_RETRY if retry is None else min(_RETRY, max(1.0, retry)))

    async def _regular_containers(self, pod: Mapping[str, Any], sandbox: SandboxInfo,
                                  volumes: Any, files: list[tuple[str, str]],
                                  wake: list[float]) -> None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        for spec in (pod.get("spec") or {}).get("containers") or ():
            name = str(spec.get("name"))
            current = _latest(self.cache.pod_containers(uid, sandbox.id), name)
            if current is not None and current.state == "running":
                continue
            last = current or _latest(self.cache.pod_containers(uid), name)
            if last is not None and not should_restart(spec, pod, last):
                continue
            if last is not None and self._in_backoff(pod, name, last, wake):
                continue
            await self._start(pod, spec, sandbox, volumes, files, wake)
        await self._end_sidecars_if_done(pod, sandbox)

    async def _end_sidecars_if_done(self, pod: Mapping[str, Any], sandbox: SandboxInfo) -> None:
        """Once every app container has ended for good (restartPolicy Never/OnFailure),
        the sidecars are stopped, so that the pod can complete."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        spec = pod.get("spec") or {}
        sidecars = {c.get("name"): c for c in spec.get("initContainers") or () if is_sidecar(c)}
        if not sidecars or (spec.get("restartPolicy") or "Always") == "Always":
            return
        current = self.cache.pod_containers(uid)
        for c in spec.get("containers") or ():
            last = _latest(current, str(c.get("name")))
            if last is None or last.state != "exited" or should_restart(c, pod, last):
                return
        await self.killer.kill_sidecars(pod, [c for c in self.cache.pod_containers(uid, sandbox.id)
                                        if c.state == "running" and c.name in sidecars],
                                  None, sandbox.ip)
        await self.cache.refresh_pod(uid)

    # ---- ending a pod -------------------------------------------------------------------

    async def finish(self, pod: Mapping[str, Any]) -> None:
        """The pod is done under its restart policy: stop what still runs and the sandbox
        (its IP is released), keep the containers for their logs."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        await self.cache.refresh_pod(uid)
        await self.killer.kill_all(pod, None)
        self.prober.remove_pod(uid)
        self.set_status(pod, terminal=True)

    async def terminate(self, pod: Mapping[str, Any], grace: int | None = None) -> None:
        """Stop every container (preStop, SIGTERM, grace, SIGKILL) and the sandboxes."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        await self.cache.refresh_pod(uid)
        await self.killer.kill_all(pod, grace)
        self.prober.remove_pod(uid)

    async def cleanup(self, uid: str, log_dir_prefix: str | None = None) -> None:
        """Remove every trace of the pod from the node: sandboxes and containers, volumes,
        logs, caches. Safe to repeat."""
        for s in self.cache.pod_sandboxes(uid):
            await self.killer.stop_sandbox(s.id)
            await self.runtime.remove_sandbox(s.id)
            self.cache.forget_sandbox(s.id)
        await self.volumes.cleanup(uid)
        self.prober.remove_pod(uid)
        self._pod_files_done.pop(uid, None)
        self._evicted.pop(uid, None)
        self.backoff.forget(f"{uid}/")
        if getattr(self.runner, "images", None) is not None:
            self.runner.images.forget(uid)
        for key in [k for k in self.reasons if k[0] == uid]:
            del self.reasons[key]
        self.status.forget(uid)
        if log_dir_prefix:
            await run_io(shutil.rmtree, self.pod_logs_dir / log_dir_prefix,
                                    ignore_errors=True)
