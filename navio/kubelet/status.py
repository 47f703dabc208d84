"""The status manager: writes pods' status to the API server, only when it changed.

Why: every pod sync computes a full status, but the API server should see a write only when
something a user can see changed (pkg/kubelet/status/status_manager.go needsUpdate), and the
kubelet alone removes a terminated pod's object (`DELETE` with gracePeriodSeconds=0 and a UID
precondition) once it is sure nothing of the pod is left on the node.

Guarantees:
- Writes for one pod are serialized and coalesced: only the latest status is sent; a status
  equal to the last one sent (or, before any write, to the pod's API status) is not sent.
- A write is a merge PATCH of pods/<name>/status; keys the kubelet no longer sets are removed
  (null). Failed writes are retried with back-off (0.5 s doubling to 10 s) while the pod is
  known; a pod that is gone (404) is dropped.
- At most `concurrency` writes are in flight at once.
- `delete_pod` sends the latest status first, then deletes; 404 and a UID mismatch (409) mean
  the object is already gone or replaced, which is success.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from navio.api import errors
from navio.client import PODS, Client, TransportError
from navio.kubelet.metrics import PodStartTracker

__all__ = ["StatusManager"]

log = logging.getLogger(__name__)

_RETRY_INITIAL = 0.5
_RETRY_MAX = 10.0


@dataclass
class _Pending:
    namespace: str
    name: str
    status: dict[str, Any]


class StatusManager:
    def __init__(self, client: Client, *, concurrency: int = 16) -> None:
        self._client = client
        self._sem = asyncio.Semaphore(concurrency)
        self._latest: dict[str, dict[str, Any]] = {}
        self._sent: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, _Pending] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self.starts = PodStartTracker()     # kubelet_pod_start_duration_seconds

    def get(self, uid: str) -> dict[str, Any] | None:
        """The last status computed for the pod (the base for the next one)."""
        return self._latest.get(uid)

    def set(self, pod: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        self._latest[uid] = status
        self.starts.status(uid, status.get("phase"),
                           was_running=(pod.get("status") or {}).get("phase") == "Running")
        baseline = self._sent.get(uid)
        if baseline is None:
            baseline = dict(pod.get("status") or {})
        if baseline == status and uid not in self._pending:
            return
        self._pending[uid] = _Pending(str(meta.get("namespace")), str(meta.get("name")), status)
        if uid not in self._flushing or self._flushing[uid].done():
            self._flushing[uid] = asyncio.create_task(self._flush(uid),
                                                      name=f"status {meta.get('name')}")

    async def _flush(self, uid: str) -> None:
        delay = _RETRY_INITIAL
        while uid in self._pending:
            item = self._pending.pop(uid)
            previous = self._sent.get(uid)
            if previous == item.status:
                continue
            body_status: dict[str, Any] = dict(item.status)
            for key in previous or {}:
                body_status.setdefault(key, None)
            try:
                async with self._sem:
                    await self._client.patch(PODS, item.name, {"status": body_status},
                                             item.namespace, patch_type="merge",
                                             subresource="status")
            except errors.NotFound:
                log.info("pod gone before its status was written",
                         extra={"pod": f"{item.namespace}/{item.name}"})
                return
            except (errors.ApiError, TransportError):
                log.warning("pod status write failed; retrying",
                            extra={"pod": f"{item.namespace}/{item.name}", "delay": delay})
                self._pending.setdefault(uid, item)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_INITIAL
            self._sent[uid] = item.status

    async def flushed(self, uid: str, timeout: float) -> bool:
        """Wait until no write for the pod is pending; False at the deadline."""
        task = self._flushing.get(uid)
        if task is None or task.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
            return True
        except TimeoutError:
            return False

    async def delete_pod(self, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        await self.flushed(uid, 30.0)
        try:
            await self._client.delete(PODS, str(meta.get("name")), str(meta.get("namespace")),
                                      grace_period_seconds=0, preconditions={"uid": uid})
            log.info("pod deleted", extra={"pod": f"{meta.get('namespace')}/{meta.get('name')}"})
        except (errors.NotFound, errors.Conflict):
            pass

    def forget(self, uid: str) -> None:
        self.starts.forget(uid)
        self._latest.pop(uid, None)
        self._sent.pop(uid, None)
        self._pending.pop(uid, None)
        task = self._flushing.pop(uid, None)
        if task is not None and not task.done():
            task.cancel()

    async def stop(self) -> None:
        tasks = [t for t in self._flushing.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
