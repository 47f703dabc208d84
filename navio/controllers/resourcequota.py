"""The resource quota controller: every ResourceQuota's `status.hard` and `status.used`.

Why: ResourceQuota admission charges creates against `status.used`; something must fill it for
a new quota and give usage back when objects go away (kube's
pkg/controller/resourcequota). Guarantees: a quota whose `spec.hard` differs from
`status.hard` (a new or edited quota) is recalculated at once; so is every quota of a namespace
when an object it counts is deleted or a pod terminates (replenishment), and all quotas every
`resource-quota-sync-period` seconds (default 30). Usage is recounted from the informers over
pods, services, configmaps, secrets, persistentvolumeclaims, replicationcontrollers and
resourcequotas; a `count/...` resource of another kind keeps the value admission wrote. The
status write is pinned to the resourceVersion read, so a charge admission made meanwhile is
never overwritten: the conflict requeues the quota.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from navio.api import errors, resourcequota
from navio.client import CONFIGMAPS, PODS, SECRETS, SERVICES, ResourceRef
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["ResourceQuotaController", "RESOURCEQUOTAS"]

log = logging.getLogger(__name__)

NAME = "resourcequota"
RESOURCEQUOTAS = ResourceRef("", "v1", "resourcequotas", True, "ResourceQuota")
_PVCS = ResourceRef("", "v1", "persistentvolumeclaims", True, "PersistentVolumeClaim")
_RCS = ResourceRef("", "v1", "replicationcontrollers", True, "ReplicationController")
_COUNTED = (PODS, SERVICES, CONFIGMAPS, SECRETS, _PVCS, _RCS, RESOURCEQUOTAS)
DEFAULT_SYNC_PERIOD = 30.0

Obj = dict[str, Any]


def _ns(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("namespace", "")


class ResourceQuotaController(Controller):
    name = NAME
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sync_period = float(ctx.options.get("resource-quota-sync-period",
                                                 DEFAULT_SYNC_PERIOD))
        self.quotas = ctx.informers.get(RESOURCEQUOTAS)
        self.informers = {ref.plural: ctx.informers.get(ref) for ref in _COUNTED}
        self.quotas.add_handler(on_add=self._quota_changed,
                                on_update=lambda old, new: self._quota_changed(new))
        for ref in _COUNTED:
            if ref is RESOURCEQUOTAS:
                continue
            inf = self.informers[ref.plural]
            inf.add_handler(on_delete=self._replenish)
        self.informers["pods"].add_handler(on_update=self._pod_updated)

    def _quota_changed(self, quota: Obj) -> None:
        hard = (quota.get("spec") or {}).get("hard") or {}
        status = quota.get("status") or {}
        if status.get("hard") != hard or set(status.get("used") or {}) != set(hard):
            self.enqueue(quota)

    def _replenish(self, obj: Obj) -> None:
        ns = _ns(obj)
        for q in self.quotas.list():
            if _ns(q) == ns:
                self.enqueue(q)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        terminal = ("Succeeded", "Failed")
        if (new.get("status") or {}).get("phase") in terminal and \
                (old.get("status") or {}).get("phase") not in terminal:
            self._replenish(new)

    def usage(self, namespace: str, hard: dict[str, Any],
              quota_spec: dict[str, Any] | None = None) -> dict[str, str]:
        objects = [(ref.group, ref.plural, o) for ref in _COUNTED
                   for o in self.informers[ref.plural].list() if _ns(o) == namespace]
        used = resourcequota.namespace_usage(hard, objects, quota_spec)
        return {k: resourcequota.format_amount(k, v, hard.get(k)) for k, v in used.items()}

    async def reconcile(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        meta = quota["metadata"]
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        old_used = (quota.get("status") or {}).get("used") or {}
        counted = {f"count/{r.plural}" for r in _COUNTED}
        used = self.usage(meta.get("namespace", ""), hard, quota.get("spec") or {})
        for k in hard:   # kinds this controller does not count keep admission's figure
            if k.startswith("count/") and k not in counted and k in old_used:
                used[k] = old_used[k]
        status = {"hard": hard, "used": used}
        if quota.get("status") == status:
            return
        body = {"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                             "resourceVersion": meta.get("resourceVersion")},
                "spec": quota.get("spec") or {}, "status": status}
        try:
            await self.client.update_status(RESOURCEQUOTAS, body, meta.get("namespace"))
        except errors.Conflict:
            self.queue.add_after(key, 0.2)    # admission charged meanwhile: recount
        except errors.NotFound:
            return

    async def run(self, workers: int | None = None) -> None:
        async def resync() -> None:
            while True:
                await asyncio.sleep(self.sync_period)
                for q in self.quotas.list():
                    self.enqueue(q)
        task = asyncio.create_task(resync(), name="resourcequota-resync")
        try:
            await super().run(workers)
        finally:
            task.cancel()


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return ResourceQuotaController(ctx)
