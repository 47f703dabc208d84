"""What users see of the scheduler's decisions: Events and the PodScheduled condition.

As schedule_one.go and preemption.go report them (v1.32):
- success: Normal `Scheduled` "Successfully assigned <ns>/<name> to <node>";
- failure: Warning `FailedScheduling` with the FitError message (truncated to 1024 bytes as
  NoteLengthLimit), and `status.conditions[PodScheduled]` = False, reason `Unschedulable`
  (or `SchedulerError` for errors), message the full text — patched only when it changes, so
  a pod retried a hundred times for the same reason costs one status write;
  `status.nominatedNodeName` set or cleared alongside when preemption nominates a node;
- preemption: Normal `Preempted` on each victim "Preempted by pod <uid> on node <node>",
  after a `DisruptionTarget` condition (reason PreemptionByScheduler) is added to it.

Events go through an EventRecorder on their own rate-limited client (never blocks, drops when
full); status patches are background tasks, at most `concurrency` at a time, and failures
are logged only (the next attempt writes again).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import NORMAL, PODS, WARNING, Client, EventRecorder
from navio.scheduler.podinfo import PodInfo

__all__ = ["Reporter", "UNSCHEDULABLE_REASON", "SCHEDULER_ERROR_REASON", "truncate_message"]

log = logging.getLogger(__name__)

UNSCHEDULABLE_REASON = "Unschedulable"
SCHEDULER_ERROR_REASON = "SchedulerError"
NOTE_LENGTH_LIMIT = 1024


def truncate_message(message: str) -> str:
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    suffix = " ..."
    return message[: NOTE_LENGTH_LIMIT - len(suffix)] + suffix


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_kind(pod: dict[str, Any]) -> dict[str, Any]:
    if pod.get("kind") and pod.get("apiVersion"):
        return pod
    return {**pod, "kind": "Pod", "apiVersion": "v1"}


def _condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


class Reporter:
    def __init__(self, client: Client, recorder: EventRecorder, scheduler_name: str, *,
                 concurrency: int = 16) -> None:
        self.client = client
        self.recorder = recorder
        self.scheduler_name = scheduler_name
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for t in pending:
                t.cancel("reporter stopping")

    # ---- outcomes ---------------------------------------------------------------------------

    def scheduled(self, pi: PodInfo, node: str) -> None:
        self.recorder.event(_with_kind(pi.pod), NORMAL, "Scheduled",
                            f"Successfully assigned {pi.key} to {node}")

    def failed(self, pi: PodInfo, message: str, *, reason: str = UNSCHEDULABLE_REASON,
               nominated: str | None = None) -> None:
        """FailedScheduling: an event, and the PodScheduled condition (plus, when `nominated`
        is not None, status.nominatedNodeName set to it; "" clears it)."""
        self.recorder.event(_with_kind(pi.pod), WARNING, "FailedScheduling",
                            truncate_message(message))
        old = _condition(pi.pod, "PodScheduled")
        status: dict[str, Any] = {}
        if old is None or old.get("status") != "False" or old.get("reason") != reason or \
                old.get("message") != message:
            transition = old.get("lastTransitionTime") if old is not None and \
                old.get("status") == "False" else _now()
            status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                     "reason": reason, "message": message,
                                     "lastProbeTime": None,
                                     "lastTransitionTime": transition}]
        current = (pi.pod.get("status") or {}).get("nominatedNodeName") or ""
        if nominated is not None and nominated != current:
            status["nominatedNodeName"] = nominated or None
        if status:
            self._spawn(self._patch_status(pi, status))

    def nominate(self, pi: PodInfo, node: str) -> None:
        current = (pi.pod.get("status") or {}).get("nominatedNodeName") or ""
        if node != current:
            self._spawn(self._patch_status(pi, {"nominatedNodeName": node or None}))

    async def _patch_status(self, pi: PodInfo, status: dict[str, Any]) -> None:
        async with self._sem:
            try:
                await self.client.patch(PODS, pi.name, {"status": status}, pi.namespace,
                                        patch_type="strategic", subresource="status")
            except errors.NotFound:
                pass
            except (errors.ApiError, ConnectionError) as exc:
                log.info("pod status update failed", extra={"pod": pi.key,
                                                            "error": type(exc).__name__})

    # ---- preemption -------------------------------------------------------------------------

    def preempt(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        """Evict `victim` for `preemptor` in the background."""
        self._spawn(self._preempt(victim, preemptor, node))

    async def _preempt(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        """Mark `victim` DisruptionTarget, delete it, and record `Preempted`; NotFound is
        success (already gone)."""
        condition = {"type": "DisruptionTarget", "status": "True",
                     "reason": "PreemptionByScheduler",
                     "message": f"{self.scheduler_name}: preempting to accommodate a higher "
                                f"priority pod",
                     "lastTransitionTime": _now()}
        async with self._sem:
            try:
                await self.client.patch(PODS, victim.name,
                                        {"status": {"conditions": [condition]}},
                                        victim.namespace, patch_type="strategic",
                                        subresource="status")
                await self.client.delete(PODS, victim.name, victim.namespace,
                                         preconditions={"uid": victim.uid} if victim.uid
                                         else None)
            except errors.NotFound:
                return
            except (errors.ApiError, ConnectionError) as exc:
                log.warning("preemption of victim failed",
                            extra={"pod": victim.key, "error": type(exc).__name__})
                return
        self.recorder.event(_with_kind(victim.pod), NORMAL, "Preempted",
                            f"Preempted by pod {preemptor.uid} on node {node}")
