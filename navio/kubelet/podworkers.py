"""Pod workers: one task per pod, serializing everything the agent does to it (pod_workers.go).

Why: a pod's sync, termination and cleanup must never overlap, while different pods proceed
in parallel; updates that arrive during a sync are coalesced into one more pass with the
latest spec, as the kubelet's podWorkers do.

Life of a worker (SyncPod → TerminatingPod → TerminatedPod in upstream terms):
- syncing: `sync` runs on every update, PLEG change, probe change, and when the previous
  sync asked to be woken (back-off expiry, retry, periodic resync).
- terminating, when the pod has a deletionTimestamp: containers are stopped with the pod's
  grace period, the final (terminal) status is written, volumes are cleaned up, then the pod
  object is deleted with gracePeriodSeconds=0.
- removed, when the pod is gone from the API: anything still running is stopped (at least
  2 s grace), everything the pod left on the node is removed, and the worker ends.
A failed sync is logged and retried after 10 s. `stop()` cancels all workers; containers
keep running (the runtime keeps them across agent restarts).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from navio.kubelet.containers import MINIMUM_GRACE, pod_ref
from navio.kubelet.sync import PodSyncer

__all__ = ["PodWorkers"]

log = logging.getLogger(__name__)

_RETRY = 10.0
_DELETE_RECHECK = 30.0


@dataclass
class _Worker:
    pod: dict[str, Any]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False
    task: asyncio.Task[None] | None = None


def _uid(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid"))


class PodWorkers:
    def __init__(self, syncer: PodSyncer) -> None:
        self.syncer = syncer
        self._workers: dict[str, _Worker] = {}

    def __contains__(self, uid: str) -> bool:
        return uid in self._workers

    def pods(self) -> list[dict[str, Any]]:
        return [w.pod for w in self._workers.values() if not w.removed]

    def update(self, pod: dict[str, Any], *, wake: bool = True) -> None:
        """The pod's latest version; `wake=False` only records it (a change the worker need
        not act on, such as the echo of its own status write)."""
        uid = _uid(pod)
        worker = self._workers.get(uid)
        if worker is None:
            worker = _Worker(pod)
            self._workers[uid] = worker
            worker.task = asyncio.create_task(self._run(uid, worker),
                                              name=f"pod worker {pod_ref(pod)}")
            wake = True
        else:
            worker.pod = pod
        if wake:
            worker.wake.set()

    def remove(self, pod: dict[str, Any]) -> None:
        worker = self._workers.get(_uid(pod))
        if worker is not None:
            worker.removed = True
            worker.wake.set()

    def notify(self, uid: str) -> None:
        worker = self._workers.get(uid)
        if worker is not None:
            worker.wake.set()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            log.info("pod workers stopped", extra={"cancelled": len(tasks)})
        self._workers.clear()

    async def _wait(self, worker: _Worker, timeout: float | None) -> None:
        if timeout is None:
            await worker.wake.wait()
            return
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await worker.wake.wait()
        except TimeoutError:
            pass

    async def _run(self, uid: str, worker: _Worker) -> None:
        terminated = False
        deleted_at = None
        try:
            while True:
                worker.wake.clear()
                pod = worker.pod
                meta = pod.get("metadata") or {}
                timeout: float | None = None
                try:
                    if worker.removed:
                        await self._removed(pod, terminated)
                        return
                    if meta.get("deletionTimestamp"):
                        if not terminated:
                            await self.syncer.terminate(pod)
                            terminated = True
                            self.syncer.set_status(pod, terminal=True)
                            await self.syncer.status.flushed(uid, 30.0)
                            await self.syncer.volumes.cleanup(uid)
                        loop = asyncio.get_running_loop()
                        if deleted_at is None or loop.time() - deleted_at > _DELETE_RECHECK:
                            await self.syncer.status.delete_pod(pod)
                            deleted_at = loop.time()
                        timeout = _DELETE_RECHECK
                    elif not terminated:
                        outcome = await self.syncer.sync(pod)
                        timeout = outcome.retry_in
                    else:
                        self.syncer.set_status(pod, terminal=True)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("pod sync failed", extra={"pod": pod_ref(pod)})
                    timeout = _RETRY
                await self._wait(worker, timeout)
        finally:
            if self._workers.get(uid) is worker:
                del self._workers[uid]

    async def _removed(self, pod: dict[str, Any], terminated: bool) -> None:
        meta = pod.get("metadata") or {}
        if not terminated:
            grace = meta.get("deletionGracePeriodSeconds")
            await self.syncer.terminate(pod, max(int(grace or 0), MINIMUM_GRACE)
                                        if grace is not None else None)
        prefix = f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"
        await self.syncer.cleanup(_uid(pod), prefix)
        log.info("pod removed from node", extra={"pod": pod_ref(pod)})
