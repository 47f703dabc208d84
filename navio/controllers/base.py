"""What every controller is made of: shared informers, a work queue, and `reconcile(key)`.

A controller's event handlers only enqueue keys; a few workers take keys from the queue and
call the idempotent `reconcile`, which reads informer caches, compares desired with actual
state and writes the difference through the API. Failures requeue the key with per-key
back-off; success forgets it. A key is never reconciled by two workers at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from navio.client import Client, EventRecorder, Informer, ResourceRef, WorkQueue, object_key

__all__ = ["ControllerContext", "SharedInformers", "Controller", "owner_key", "EVENT_SOURCES",
           "event_source"]

log = logging.getLogger(__name__)

# The `source.component` / `reportingComponent` each kube-controller-manager controller writes
# on its Events (the EventSource its recorder is built with), by navio controller name.
EVENT_SOURCES = {
    "cronjob": "cronjob-controller",
    "daemonset": "daemonset-controller",
    "deployment": "deployment-controller",
    "endpoint": "endpoint-controller",
    "endpointslice": "endpoint-slice-controller",
    "endpointslicemirroring": "endpoint-slice-mirroring-controller",
    "garbagecollector": "garbage-collector-controller",
    "job": "job-controller",
    "namespace": "namespace-controller",
    "nodelifecycle": "node-controller",
    "replicaset": "replicaset-controller",
    "serviceaccount": "service-account-controller",
    "statefulset": "statefulset-controller",
    "taint-eviction-controller": "taint-eviction-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
}


def event_source(name: str) -> str:
    """The event source component of controller `name` (`<name>-controller` if unlisted)."""
    return EVENT_SOURCES.get(name, f"{name}-controller")


class SharedInformers:
    """One informer per (resource, namespace), shared by every controller that asks for it,
    as client-go's SharedInformerFactory."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[ResourceRef, str | None], Informer] = {}
        self._started: set[tuple[ResourceRef, str | None]] = set()

    def get(self, resource: ResourceRef, namespace: str | None = None) -> Informer:
        key = (resource, namespace)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, namespace)
            self._informers[key] = inf
        return inf

    def start(self) -> None:
        for key, inf in self._informers.items():
            if key not in self._started:
                inf.start()
                self._started.add(key)

    async def wait_synced(self, timeout: float = 60.0) -> bool:
        results = await asyncio.gather(*(inf.wait_synced(timeout)
                                         for inf in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()


@dataclass
class ControllerContext:
    """What the manager hands each controller."""

    client: Client
    informers: SharedInformers
    recorder: EventRecorder
    # Controller-specific settings by flag name (e.g. "node-monitor-grace-period": 40.0).
    options: dict[str, Any] = field(default_factory=dict)
    # Builds the recorder of one event source; without it every controller uses `recorder`.
    recorder_factory: Callable[[str], EventRecorder] | None = None
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def recorder_for(self, component: str) -> EventRecorder:
        """The recorder whose events name `component` as their source, made once."""
        if self.recorder_factory is None:
            return self.recorder
        rec = self._recorders.get(component)
        if rec is None:
            rec = self._recorders[component] = self.recorder_factory(component)
        return rec

    async def stop_recorders(self) -> None:
        for rec in self._recorders.values():
            await rec.stop()


def owner_key(obj: dict[str, Any], kind: str) -> str | None:
    """`ns/name` of the controlling owner of `obj` if it is of `kind`, else None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == kind:
            ns = (obj.get("metadata") or {}).get("namespace")
            return f"{ns}/{ref['name']}" if ns else ref["name"]
    return None


class Controller:
    """Base class: subclasses set `name`, register handlers in `__init__` (enqueueing keys
    through `self.enqueue`) and implement `reconcile(key)`."""

    name = "controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder_for(event_source(self.name))
        self.queue = WorkQueue(name=self.name)

    def enqueue(self, obj: dict[str, Any]) -> None:
        self.queue.add(object_key(obj))

    def enqueue_key(self, key: str) -> None:
        self.queue.add(key)

    def handlers(self, on_change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Handlers that call `on_change` for adds, updates (new object) and deletes."""
        return {"on_add": on_change, "on_update": lambda old, new: on_change(new),
                "on_delete": on_change}

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, workers: int | None = None) -> None:
        """Process keys until cancelled."""
        n = workers or self.workers
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(n)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for t in tasks:
                t.cancel()

    async def _worker(self) -> None:
        await self.queue.run_worker(self.reconcile, "reconcile failed", controller=self.name)
