"""The runtime cache and pod lifecycle event generator (pkg/kubelet/pleg/generic.go).

Why: the runtime has no event stream; like the kubelet's generic PLEG, the agent relists
sandboxes and containers every second and wakes the workers of pods whose containers changed
state (a container exited, a sandbox died). Workers read pod state from this cache instead of
listing the runtime for every decision, and refresh their own pod cheaply (per-id status
calls) after they changed something.

Guarantees:
- `relist()` replaces the whole cache and returns the pods (uids) whose sandboxes or
  containers were added, removed or changed state since the previous relist.
- `refresh_pod(uid)` brings one pod's known sandboxes and containers up to date without
  listing everything; `put_*` record objects the caller just created.
- `healthy` is False once relisting has failed for longer than 3 minutes (kubelet's PLEG
  health threshold), which the node reports as NotReady.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from navio.runtime.protocol import ContainerStatus, Runtime, RuntimeFailure, SandboxInfo

__all__ = ["RuntimeCache"]

log = logging.getLogger(__name__)

_UNHEALTHY_AFTER = 180.0


class RuntimeCache:
    def __init__(self, runtime: Runtime, *, period: float = 1.0,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.period = period
        self.on_change = on_change
        self.sandboxes: dict[str, SandboxInfo] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self._last_ok = time.monotonic()
        self._listed = False

    @property
    def healthy(self) -> bool:
        return time.monotonic() - self._last_ok < _UNHEALTHY_AFTER

    @property
    def listed(self) -> bool:
        """Whether one full relist has completed."""
        return self._listed

    # ---- reads --------------------------------------------------------------------------

    def pod_sandboxes(self, uid: str) -> list[SandboxInfo]:
        """The pod's sandboxes, newest first."""
        return sorted((s for s in self.sandboxes.values() if s.uid == uid),
                      key=lambda s: s.created_at, reverse=True)

    def ready_sandbox(self, uid: str) -> SandboxInfo | None:
        return next((s for s in self.pod_sandboxes(uid) if s.state == "ready"), None)

    def pod_containers(self, uid: str, sandbox_id: str | None = None) -> list[ContainerStatus]:
        sids = {s.id for s in self.sandboxes.values() if s.uid == uid}
        return [c for c in self.containers.values() if c.sandbox_id in sids
                and (sandbox_id is None or c.sandbox_id == sandbox_id)]

    def uids(self) -> set[str]:
        return {s.uid for s in self.sandboxes.values()}

    # ---- writes -------------------------------------------------------------------------

    def put_sandbox(self, info: SandboxInfo) -> None:
        self.sandboxes[info.id] = info

    def put_container(self, status: ContainerStatus) -> None:
        self.containers[status.id] = status

    def forget_sandbox(self, sandbox_id: str) -> None:
        self.sandboxes.pop(sandbox_id, None)
        for cid in [c.id for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            del self.containers[cid]

    def forget_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def refresh_container(self, container_id: str) -> ContainerStatus | None:
        status = await self.runtime.container_status(container_id)
        if status is None:
            self.containers.pop(container_id, None)
        else:
            self.containers[container_id] = status
        return status

    async def refresh_pod(self, uid: str) -> None:
        for sandbox in self.pod_sandboxes(uid):
            info = await self.runtime.sandbox_status(sandbox.id)
            if info is None:
                self.forget_sandbox(sandbox.id)
            else:
                self.sandboxes[sandbox.id] = info
        for c in self.pod_containers(uid):
            await self.refresh_container(c.id)

    # ---- relisting ----------------------------------------------------------------------

    @staticmethod
    def _fingerprints(sandboxes: dict[str, SandboxInfo],
                      containers: dict[str, ContainerStatus]) -> dict[str, frozenset[tuple]]:
        out: dict[str, set[tuple]] = {}
        for s in sandboxes.values():
            out.setdefault(s.uid, set()).add(("s", s.id, s.state))
        for c in containers.values():
            sandbox = sandboxes.get(c.sandbox_id)
            if sandbox is not None:
                out.setdefault(sandbox.uid, set()).add(("c", c.id, c.state, c.attempt))
        return {uid: frozenset(v) for uid, v in out.items()}

    async def relist(self) -> set[str]:
        sandboxes = {s.id: s for s in await self.runtime.list_sandboxes()}
        containers = {c.id: c for c in await self.runtime.list_containers()}
        before = self._fingerprints(self.sandboxes, self.containers)
        after = self._fingerprints(sandboxes, containers)
        self.sandboxes, self.containers = sandboxes, containers
        self._last_ok = time.monotonic()
        self._listed = True
        return {uid for uid in set(before) | set(after) if before.get(uid) != after.get(uid)}

    async def run(self) -> None:
        """Relist every `period` seconds until cancelled, notifying `on_change`."""
        while True:
            try:
                changed = await self.relist()
            except (RuntimeFailure, TimeoutError, OSError):
                log.warning("runtime relist failed", exc_info=True)
                changed = set()
            if self.on_change is not None:
                for uid in changed:
                    self.on_change(uid)
            await asyncio.sleep(self.period)
