"""Stopping a pod's containers and sandboxes (kuberuntime killPodWithSyncResult).

Why: the kubelet stops a pod when it is deleted, when its deadline passes or when it is done
under its restart policy; the order matters since sidecars arrived (kube 1.29+): the app
containers first, all at once, then the sidecars one at a time, the last started first, so
that they serve the app until it has stopped.

Guarantees: each container gets the pod's grace period (or the one given): preStop,
SIGTERM, SIGKILL (containers.py); the pod's sandboxes are stopped afterwards (their IPs
released), a failed stop tried twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

from navio.kubelet.containers import ContainerRunner
from navio.kubelet.pleg import RuntimeCache
from navio.kubelet.podstatus import is_sidecar
from navio.runtime.protocol import ContainerStatus, Runtime, RuntimeFailure

__all__ = ["PodKiller"]

log = logging.getLogger(__name__)


class PodKiller:
    def __init__(self, runtime: Runtime, cache: RuntimeCache, runner: ContainerRunner) -> None:
        self.runtime = runtime
        self.cache = cache
        self.runner = runner

    async def kill_sidecars(self, pod: Mapping[str, Any], running: list[ContainerStatus],
                            grace: int | None, pod_ip: str) -> None:
        """Stop sidecars one at a time, the last started first (as the kubelet does)."""
        spec = pod.get("spec") or {}
        order = [str(c.get("name")) for c in spec.get("initContainers") or () if is_sidecar(c)]
        specs = {c.get("name"): c for c in spec.get("initContainers") or ()}
        for c in sorted(running, key=lambda c: -order.index(c.name) if c.name in order else 0):
            await self.runner.kill(pod, specs.get(c.name), c, grace=grace, pod_ip=pod_ip)

    async def kill_all(self, pod: Mapping[str, Any], grace: int | None) -> None:
        """Stop every running container of the pod, then its ready sandboxes."""
        uid = str((pod.get("metadata") or {}).get("uid"))
        spec = pod.get("spec") or {}
        specs = {c.get("name"): c for c in (*(spec.get("containers") or ()),
                                             *(spec.get("initContainers") or ()))}
        sandbox = self.cache.ready_sandbox(uid)
        pod_ip = sandbox.ip if sandbox else ""
        sidecars = {c.get("name") for c in spec.get("initContainers") or () if is_sidecar(c)}
        running = [c for c in self.cache.pod_containers(uid) if c.state == "running"]
        await asyncio.gather(*(self.runner.kill(pod, specs.get(c.name), c, grace=grace,
                                                pod_ip=pod_ip)
                               for c in running if c.name not in sidecars))
        # Then the sidecars, in reverse order (they serve the app until it has stopped).
        await self.kill_sidecars(pod, [c for c in running if c.name in sidecars], grace,
                                  pod_ip)
        for s in self.cache.pod_sandboxes(uid):
            if s.state == "ready":
                await self.stop_sandbox(s.id)
        await self.cache.refresh_pod(uid)

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """stop_sandbox, tried twice: the runtime can race its own supervisors (OSError)."""
        for attempt in range(2):
            try:
                await self.runtime.stop_sandbox(sandbox_id)
                return
            except (RuntimeFailure, OSError):
                if attempt:
                    raise
                log.warning("stopping sandbox failed; retrying", extra={"sandbox": sandbox_id},
                            exc_info=True)
