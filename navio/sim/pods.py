"""The pods of simulated nodes: one shared watch, compact records, Running and deleted.

Why: a kubelet per node would mean a watch per node; kwok instead watches every bound pod once
and plays all its nodes' kubelets from that stream. So does this module.

Guarantees:
- One list+watch of pods with `spec.nodeName!=` (paged list, then a watch with bookmarks from
  its resourceVersion; a 410 re-lists and treats pods that vanished meanwhile as deleted).
  Pods bound to other nodes are ignored; a pod is kept as a `SimPod` of a few fields, never
  as the whole object.
- A pod bound to a healthy simulated node is reported Running and Ready `startup_delay`
  seconds after the sim saw it bound: one merge patch of `pods/status` with phase, the
  kubelet's five conditions, host and pod IPs (from the node's CIDR), startTime and a running
  status per container (init containers: terminated, Completed). A pod found already Running
  with an IP (the sim restarted) is adopted as it is.
- A Running pod that the API shows not Ready while its node is healthy (the node lifecycle
  controller marks pods not Ready when their node misses heartbeats) is reported Ready again,
  as the kubelet's status sync does.
- A pod with a deletionTimestamp on a healthy node is deleted with grace 0 and a UID
  precondition, as the kubelet's final delete; its address is freed when the DELETED event
  arrives. Pods of failed nodes are left alone (their kubelet is "dead"), so the node
  lifecycle controller's eviction is what moves them.
- Writes go through a bounded pool of workers; a write that fails for want of an answer is
  retried with back-off, one that the API refuses is dropped with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

from navio.api import errors
from navio.client import PODS, Client, TransportError, WatchStreamError
from navio.sim.nodes import NodeShape, SimNode, rfc3339

__all__ = ["PodSimulator", "SimPod", "running_status"]

log = logging.getLogger(__name__)

_PAGE = 500
_WATCH_TIMEOUT = 300
_BOUND = "spec.nodeName!="
_WAITING, _RUNNING, _DELETING, _REPORT = 0, 1, 2, 3
_MAX_BACKOFF = 10.0


class SimPod:
    """What the sim keeps of one pod bound to one of its nodes."""

    __slots__ = ("namespace", "name", "uid", "node", "ip", "state", "containers", "inits",
                 "scheduled_at", "seen_at")

    def __init__(self, namespace: str, name: str, uid: str, node: SimNode) -> None:
        self.namespace, self.name, self.uid, self.node = namespace, name, uid, node
        self.ip = ""
        self.state = _WAITING
        self.containers: tuple[tuple[str, str], ...] = ()
        self.inits: tuple[tuple[str, str], ...] = ()
        self.scheduled_at = ""
        self.seen_at = 0.0


def _containers(spec: dict[str, Any], field: str) -> tuple[tuple[str, str], ...]:
    return tuple((sys.intern(str(c.get("name", ""))), sys.intern(str(c.get("image", ""))))
                 for c in spec.get(field) or ())


def _parse_time(text: str, default: float) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return default


def _not_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") != "True"
               for c in status.get("conditions") or ())


def running_status(pod: SimPod, shape: NodeShape, now: float) -> dict[str, Any]:
    """The status the kubelet would report for `pod` once all its containers run."""
    stamp = rfc3339(now)
    started = rfc3339(pod.seen_at)
    host = shape.node_ip(pod.node.index)

    def cid(name: str) -> str:
        return f"sim://{pod.uid}/{name}"

    conds = [{"type": t, "status": "True", "lastProbeTime": None,
              "lastTransitionTime": stamp}
             for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")]
    conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": pod.scheduled_at or started})
    status: dict[str, Any] = {
        "phase": "Running", "conditions": conds, "hostIP": host, "hostIPs": [{"ip": host}],
        "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": started,
        "containerStatuses": [
            {"name": n, "image": image, "imageID": f"sim://{image}", "containerID": cid(n),
             "ready": True, "started": True, "restartCount": 0,
             "state": {"running": {"startedAt": stamp}}} for n, image in pod.containers]}
    if pod.inits:
        status["initContainerStatuses"] = [
            {"name": n, "image": image, "imageID": f"sim://{image}", "containerID": cid(n),
             "ready": True, "started": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                      "startedAt": started, "finishedAt": started,
                                      "containerID": cid(n)}}} for n, image in pod.inits]
    return status


class PodSimulator:
    """Plays the kubelet of every simulated node for the pods bound to them."""

    def __init__(self, client: Client, shape: NodeShape, node_of: Callable[[str], SimNode | None],
                 *, startup_delay: float = 0.0, workers: int = 32,
                 on_started: Callable[[float, float], None] | None = None) -> None:
        self.client = client
        self.shape = shape
        self.node_of = node_of
        self.startup_delay = startup_delay
        self.workers = workers
        self.on_started = on_started   # (seen→Running seconds, write seconds)
        self.pods: dict[tuple[str, str], SimPod] = {}
        self.synced = asyncio.Event()
        self._queue: asyncio.Queue[tuple[int, tuple[str, str]]] = asyncio.Queue()
        self._rv = ""

    # ---- the watch ----------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(self.workers):
                tg.create_task(self._worker())
            tg.create_task(self._reflect())

    async def _reflect(self) -> None:
        delay = 0.5
        while True:
            try:
                if not self._rv:
                    await self._list()
                await self._watch()
                delay = 0.5
                continue
            except asyncio.CancelledError:
                raise
            except errors.Expired:
                self._rv = ""
                continue
            except (errors.ApiError, TransportError, WatchStreamError) as exc:
                log.warning("sim pod watch failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _list(self) -> None:
        seen: set[tuple[str, str]] = set()
        token: str | None = None
        while True:
            page = await self.client.list(PODS, field_selector=_BOUND, limit=_PAGE,
                                          continue_=token)
            for obj in page.get("items") or ():
                seen.add(self.observe(obj))
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                break
        for key in [k for k in self.pods if k not in seen]:
            self.forget(key)
        self._rv = str(meta.get("resourceVersion") or "")
        self.synced.set()

    async def _watch(self) -> None:
        async with self.client.watch(PODS, field_selector=_BOUND, resource_version=self._rv,
                                     timeout_seconds=_WATCH_TIMEOUT) as stream:
            async for ev in stream:
                obj = ev.object
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if ev.type == "DELETED":
                    meta = obj.get("metadata") or {}
                    self.forget((meta.get("namespace", ""), meta.get("name", "")))
                elif ev.type != "BOOKMARK":
                    self.observe(obj)
                if rv:
                    self._rv = str(rv)

    # ---- events -------------------------------------------------------------------------

    def observe(self, obj: dict[str, Any]) -> tuple[str, str]:
        """Take in a pod as listed or watched; queue what its kubelet would do next."""
        meta = obj.get("metadata") or {}
        key = (sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", "")))
        spec = obj.get("spec") or {}
        node = self.node_of(str(spec.get("nodeName", "")))
        pod = self.pods.get(key)
        if node is None:
            return key
        uid = str(meta.get("uid", ""))
        if pod is not None and pod.uid != uid:       # replaced under the same name
            self.forget(key)
            pod = None
        if pod is None:
            pod = self.pods[key] = SimPod(key[0], key[1], uid, node)
            self._adopt(pod, obj)
        if meta.get("deletionTimestamp"):
            if pod.state != _DELETING and not node.failed:
                pod.state = _DELETING
                self._queue.put_nowait((_DELETING, key))
        elif pod.state == _RUNNING and pod.ip and not node.failed and _not_ready(obj):
            self._queue.put_nowait((_REPORT, key))
        return key

    def _adopt(self, pod: SimPod, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        node = pod.node
        pod.containers = _containers(spec, "containers")
        pod.inits = _containers(spec, "initContainers")
        for c in status.get("conditions") or ():
            if c.get("type") == "PodScheduled":
                pod.scheduled_at = str(c.get("lastTransitionTime") or "")
        pod.seen_at = time.time()
        ip = str(status.get("podIP") or "")
        if status.get("phase") in ("Succeeded", "Failed"):
            pod.state = _RUNNING
            return
        if status.get("phase") == "Running" and ip and node.mark_ip(self.shape, ip):
            pod.ip, pod.state = ip, _RUNNING         # a restarted sim adopts it as it is
            node.pods += 1
            started = str(status.get("startTime") or "")
            if started:
                pod.seen_at = _parse_time(started, pod.seen_at)
            return
        if node.failed:
            return                    # a dead kubelet starts nothing; kept for recovery
        self._schedule_start(pod)

    def _schedule_start(self, pod: SimPod) -> None:
        key = (pod.namespace, pod.name)
        if self.startup_delay > 0:
            asyncio.get_running_loop().call_later(self.startup_delay, self._queue.put_nowait,
                                                  (_WAITING, key))
        else:
            self._queue.put_nowait((_WAITING, key))

    def forget(self, key: tuple[str, str]) -> None:
        pod = self.pods.pop(key, None)
        if pod is not None and pod.ip:
            pod.node.release_ip(self.shape, pod.ip)
            pod.node.pods -= 1

    def node_recovered(self, node: SimNode) -> None:
        """Start what a failed node's kubelet missed (pods bound or deleted meanwhile)."""
        for key, pod in list(self.pods.items()):
            if pod.node is not node:
                continue
            if pod.state == _WAITING:
                pod.seen_at = time.time()
                self._schedule_start(pod)

    # ---- writes -------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            action, key = await self._queue.get()
            pod = self.pods.get(key)
            if pod is None or pod.node.failed:
                continue
            try:
                if action == _WAITING and pod.state == _WAITING:
                    await self._start(pod)
                elif action == _REPORT and pod.state == _RUNNING:
                    await self._start(pod)
                elif action == _DELETING:
                    await self._delete(pod)
            except asyncio.CancelledError:
                raise
            except TransportError:
                asyncio.get_running_loop().call_later(1.0, self._queue.put_nowait,
                                                      (action, key))
            except errors.ApiError as exc:
                if not isinstance(exc, (errors.NotFound, errors.Conflict)):
                    log.warning("sim pod write refused", extra={
                        "pod": f"{key[0]}/{key[1]}", "code": exc.code, "error": str(exc)[:200]})

    async def _start(self, pod: SimPod) -> None:
        action_was_start = pod.state == _WAITING
        if not pod.ip:
            ip = pod.node.take_ip(self.shape)
            if ip is None:
                log.warning("sim node out of pod addresses",
                            extra={"node": self.shape.name(pod.node.index)})
                return
            pod.ip = ip
            pod.node.pods += 1
        now = time.time()
        body = {"metadata": {"uid": pod.uid},
                "status": running_status(pod, self.shape, now)}
        started = time.monotonic()
        await self.client.patch_subresource(PODS, pod.name, "status", body, pod.namespace)
        if pod.state == _WAITING:
            pod.state = _RUNNING
        if self.on_started is not None and action_was_start:
            self.on_started(now - pod.seen_at, time.monotonic() - started)

    async def _delete(self, pod: SimPod) -> None:
        await self.client.delete(PODS, pod.name, pod.namespace, grace_period_seconds=0,
                                 preconditions={"uid": pod.uid})
