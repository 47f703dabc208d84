"""Informers that keep the DNS record set current: the only place DNS touches the API.

Why: CoreDNS's kubernetes plugin answers from client-go caches (plugin/kubernetes/controller.go);
navio's DNS does the same with navio's Informer, so no query costs an API call.

What is guaranteed:
- Services, EndpointSlices (discovery.k8s.io/v1) and Namespaces are listed and watched across
  all namespaces; Pods too, only for the `verified` pod mode.
- Each event is applied to the record set inside the informer's handler, in the order the
  server sent it; applying is incremental (one Service's records at a time).
- `RecordSet.synced` becomes true only after every informer has delivered its first list, so
  that until then the server answers SERVFAIL instead of a false NXDOMAIN.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from navio.client import ENDPOINTSLICES, NAMESPACES, PODS, SERVICES, Client, Informer
from navio.client.resources import ResourceRef
from navio.dns.records import RecordSet

__all__ = ["DnsCache"]

log = logging.getLogger(__name__)

_Apply = Callable[[dict[str, Any]], None]


class DnsCache:
    def __init__(self, client: Client, records: RecordSet, *, watch_pods: bool = False) -> None:
        self.records = records
        self.informers: list[Informer] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._add(client, SERVICES, records.upsert_service, records.remove_service)
        self._add(client, ENDPOINTSLICES, records.upsert_endpoint_slice,
                  records.remove_endpoint_slice)
        self._add(client, NAMESPACES, records.upsert_namespace, records.remove_namespace)
        if watch_pods:
            self._add(client, PODS, records.upsert_pod, records.remove_pod)

    def _add(self, client: Client, resource: ResourceRef, upsert: _Apply,
             remove: _Apply) -> None:
        informer = Informer(client, resource)
        informer.add_handler(on_add=upsert, on_update=lambda _old, new: upsert(new),
                             on_delete=remove)
        self.informers.append(informer)

    def start(self) -> None:
        """Start every informer and the task that marks the record set synced."""
        for informer in self.informers:
            informer.start()
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._mark_synced(), name="dns cache sync")

    async def _mark_synced(self) -> None:
        pending = list(self.informers)
        waited = 0.0
        while pending:
            pending = [i for i in pending if not await i.wait_synced(1.0)]
            waited += 1.0
            if pending and waited % 10 == 0:
                log.warning("dns cache still waiting for informers", extra={
                    "resources": ",".join(i.resource.resource_name for i in pending),
                    "waited_s": waited})
        self.records.synced = True
        self._synced.set()
        log.info("dns cache synced", extra={"generation": self.records.generation})

    async def wait_synced(self, timeout: float) -> bool:
        """True once every informer has listed; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        """Stop every informer; safe to repeat."""
        task, self._sync_task = self._sync_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        for informer in self.informers:
            await informer.stop()
