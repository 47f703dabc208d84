"""Taint-based eviction: kube-controller-manager's taint-eviction-controller
(pkg/controller/tainteviction, v1.32).

Guarantees: pods on a node with NoExecute taints they do not tolerate are deleted at once;
pods that tolerate them for `tolerationSeconds` are deleted when the shortest expires
(counted from when this controller saw the taint), each with a DisruptionTarget condition
and a `TaintManagerEviction` event; removing the taint cancels pending deletions (with an
event). Events are recorded as `taint-eviction-controller`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from navio.api import errors
from navio.client import NORMAL, PODS, Clock, Informer, WorkQueue
from navio.controllers.controller_utils import add_index
from navio.controllers.nodelifecycle.taints import matching_tolerations, min_toleration_seconds
from navio.controllers.nodelifecycle.times import timestamp

__all__ = ["NAME", "NODE_NAME_INDEX", "NoExecuteEvictor", "ensure_node_name_index", "pod_ref"]

log = logging.getLogger(__name__)

NAME = "taint-eviction-controller"
NODE_NAME_INDEX = "spec.nodeName"
_UPDATE_RETRIES = 5


def ensure_node_name_index(pods: Informer) -> None:
    """Index pods by `spec.nodeName` (controller.PodNodeNameKeyIndex), once per informer."""
    add_index(pods, NODE_NAME_INDEX,
              lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else [])



class NoExecuteEvictor:
    """tainteviction.Controller: deletes pods from nodes whose NoExecute taints they do not
    tolerate, or tolerate only for `tolerationSeconds`. Handlers enqueue node and pod keys;
    one worker processes them; each pending deletion is a timer task, cancelled when the
    taint goes or the pod leaves."""

    def __init__(self, client: Any, recorder: Any, nodes: Informer, pods: Informer,
                 clock: Clock) -> None:
        self.client, self.recorder, self.nodes, self.pods = client, recorder, nodes, pods
        self.clock = clock
        self.queue = WorkQueue(clock=clock, name="noexec_taint")
        self.tainted: dict[str, list[dict[str, Any]]] = {}
        # pod key -> (created, timer task); None once fired, so it is not fired twice.
        self.work: dict[str, tuple[float, asyncio.Task[None]] | None] = {}
        nodes.add_handler(on_add=lambda n: self._node_changed(None, n),
                          on_update=self._node_changed,
                          on_delete=lambda n: self._node_changed(n, None))
        pods.add_handler(on_add=lambda p: self._pod_changed(None, p),
                         on_update=self._pod_changed,
                         on_delete=lambda p: self._pod_changed(p, None))

    @staticmethod
    def _no_execute(node: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [t for t in ((node or {}).get("spec") or {}).get("taints") or ()
                if t.get("effect") == "NoExecute"]

    def _node_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if old is not None and new is not None and \
                self._no_execute(old) == self._no_execute(new):
            return
        self.queue.add(("node", (new or old or {})["metadata"]["name"]))

    def _pod_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        def facts(p: dict[str, Any]) -> tuple[Any, Any]:
            spec = p.get("spec") or {}
            return spec.get("nodeName"), spec.get("tolerations")
        if old is not None and new is not None and facts(old) == facts(new):
            return
        pod = new or old or {}
        meta = pod["metadata"]
        self.queue.add(("pod", f"{meta['namespace']}/{meta['name']}",
                        (pod.get("spec") or {}).get("nodeName") or ""))

    async def run(self) -> None:
        try:
            while (got := await self.queue.get()) is not None:
                item: tuple[str, ...] = got  # type: ignore[assignment]
                try:
                    if item[0] == "node":
                        self._handle_node(item[1])
                    else:
                        self._handle_pod(item[1], item[2])
                except Exception:
                    log.exception("taint eviction pass failed", extra={"key": str(item[1])})
                finally:
                    self.queue.done(got)
        finally:
            self.queue.shut_down()
            timers = [entry[1] for entry in self.work.values() if entry is not None]
            for timer in timers:
                timer.cancel()
            await asyncio.gather(*timers, return_exceptions=True)

    def _handle_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            self.tainted.pop(name, None)
            return
        taints = self._no_execute(node)
        if taints:
            self.tainted[name] = taints
        else:
            self.tainted.pop(name, None)
        now = self.clock.now()
        for pod in self.pods.by_index(NODE_NAME_INDEX, name):
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if not taints:
                self.cancel(key)
            else:
                self._process(key, (pod.get("spec") or {}).get("tolerations") or [], taints,
                              now)

    def _handle_pod(self, key: str, node_name: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self.cancel(key)
            return
        if (pod.get("spec") or {}).get("nodeName") != node_name or not node_name:
            return
        taints = self.tainted.get(node_name)
        if taints:
            self._process(key, (pod.get("spec") or {}).get("tolerations") or [], taints,
                          self.clock.now())

    def _process(self, key: str, tolerations: list[dict[str, Any]],
                 taints: list[dict[str, Any]], now: float) -> None:
        """processPodOnNode."""
        ok, used = matching_tolerations(taints, tolerations)
        if not ok:
            self.cancel(key)
            self._add_work(key, now, now)
            return
        seconds = min_toleration_seconds(used)
        if seconds < 0:
            self.cancel(key)
            return
        entry = self.work.get(key)
        if entry is not None:
            if entry[0] + seconds <= now + seconds:
                return                   # the earlier deadline stands
            self.cancel(key)
        self._add_work(key, now, now + seconds)

    def _add_work(self, key: str, created: float, fire_at: float) -> None:
        if key in self.work:
            return
        delay = max(fire_at - self.clock.now(), 0.0)
        self.work[key] = (created, asyncio.create_task(self._fire(key, delay),
                                                       name=f"taint eviction {key}"))

    def cancel(self, key: str) -> None:
        """cancelWorkWithEvent: drop a pending deletion, with an event if one was pending."""
        entry = self.work.pop(key, None)
        if entry is None:
            return
        entry[1].cancel()
        ns, _, name = key.partition("/")
        self.recorder.event(pod_ref(ns, name), NORMAL, "TaintManagerEviction",
                            f"Cancelling deletion of Pod {key}")

    async def _fire(self, key: str, delay: float) -> None:
        await self.clock.sleep(delay)
        ns, _, name = key.partition("/")
        self.recorder.event(pod_ref(ns, name), NORMAL, "TaintManagerEviction",
                            f"Marking for deletion Pod {key}")
        log.info("evicting pod for NoExecute taint", extra={"pod": key})
        for attempt in range(_UPDATE_RETRIES):
            try:
                await self._delete(ns, name)
                self.work[key] = None
                return
            except asyncio.CancelledError:
                raise
            except errors.NotFound:
                self.work.pop(key, None)
                return
            except Exception as exc:
                log.warning("taint eviction failed", extra={"pod": key, "error": str(exc)[:200],
                                                            "attempt": attempt})
                await self.clock.sleep(0.01)
        self.work.pop(key, None)

    async def _delete(self, ns: str, name: str) -> None:
        """addConditionAndDeletePod: a DisruptionTarget condition, then DELETE."""
        pod = await self.client.get(PODS, name, ns)
        conds = (pod.get("status") or {}).get("conditions") or []
        cond = {"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint"}
        old = next((c for c in conds if c.get("type") == "DisruptionTarget"), None)
        if old is None or any(old.get(k) != v for k, v in cond.items()):
            cond["lastTransitionTime"] = timestamp()
            await self.client.patch_subresource(PODS, name, "status",
                                                {"status": {"conditions": [cond]}}, ns,
                                                patch_type="strategic")
        await self.client.delete(PODS, name, ns)


def pod_ref(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}}

