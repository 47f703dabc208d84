"""Storage object in-use protection (kube's "pvc-protection" and "pv-protection"
controllers, pkg/controller/volume/pvcprotection and pvprotection, v1.32).

New claims and volumes get their finalizer at admission (StorageObjectInUseProtection); these
controllers add it to older objects that lack it and remove it once a deleted object is no
longer in use, so that deleting a claim a running pod mounts leaves it Terminating until the
pod is gone:

- a claim is in use while a pod that is scheduled (`spec.nodeName`) and not finished (phase
  neither Succeeded nor Failed) names it in a `persistentVolumeClaim` volume (or owns it as a
  generic ephemeral volume). The informer's answer is confirmed with a live pod list before the
  finalizer is removed, as upstream does, so a pod created a moment ago is not missed;
- a volume is in use while its phase is Bound.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from navio.api import errors
from navio.api.persistentvolumes import pod_claim_names
from navio.client import PODS, object_key
from navio.client.volumes import PVCS, PVS
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["PVCProtectionController", "PVProtectionController", "PVC_PROTECTION",
           "PV_PROTECTION", "pod_uses_claim"]

log = logging.getLogger(__name__)

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"

Obj = dict[str, Any]


def pod_uses_claim(pod: Obj, claim: str) -> bool:
    """The pod is scheduled, not finished, and mounts `claim` (same namespace assumed)."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return any(c == claim for _, c, _ in pod_claim_names(pod))


async def _drop_finalizer(ctx_client: Any, resource: Any, obj: Obj, finalizer: str) -> None:
    body = copy.deepcopy(obj)
    body["metadata"]["finalizers"] = [f for f in body["metadata"].get("finalizers") or ()
                                      if f != finalizer]
    try:
        await ctx_client.update(resource, body)
    except errors.NotFound:
        return


async def _add_finalizer(ctx_client: Any, resource: Any, obj: Obj, finalizer: str) -> None:
    body = copy.deepcopy(obj)
    body["metadata"]["finalizers"] = list(body["metadata"].get("finalizers") or ()) + [finalizer]
    try:
        await ctx_client.update(resource, body)
    except errors.NotFound:
        return


class PVCProtectionController(Controller):
    name = "pvc-protection"
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.claims = ctx.informers.get(PVCS)
        self.pods = ctx.informers.get(PODS)
        self.claims.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.pods.add_handler(on_update=lambda o, n: self._pod_changed(n),
                              on_delete=self._pod_changed)

    def _pod_changed(self, pod: Obj) -> None:
        ns = (pod.get("metadata") or {}).get("namespace", "")
        for _, claim, _ in pod_claim_names(pod):
            self.queue.add(f"{ns}/{claim}")

    def _in_use_cached(self, ns: str, name: str) -> bool:
        return any(pod_uses_claim(p, name) for p in self.pods.list()
                   if (p.get("metadata") or {}).get("namespace") == ns)

    async def reconcile(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None:
            return
        meta = pvc["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp"):
            if PVC_PROTECTION not in finalizers:
                await _add_finalizer(self.client, PVCS, pvc, PVC_PROTECTION)
            return
        if PVC_PROTECTION not in finalizers:
            return
        ns, name = meta["namespace"], meta["name"]
        if self._in_use_cached(ns, name):
            return
        live = await self.client.list(PODS, ns)
        if any(pod_uses_claim(p, name) for p in live.get("items") or ()):
            return
        await _drop_finalizer(self.client, PVCS, pvc, PVC_PROTECTION)
        log.info("claim protection removed", extra={"claim": object_key(pvc)})


class PVProtectionController(Controller):
    name = "pv-protection"
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.volumes = ctx.informers.get(PVS)
        self.volumes.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))

    async def reconcile(self, key: str) -> None:
        pv = self.volumes.get(key)
        if pv is None:
            return
        meta = pv["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp"):
            if PV_PROTECTION not in finalizers:
                await _add_finalizer(self.client, PVS, pv, PV_PROTECTION)
            return
        if PV_PROTECTION in finalizers and (pv.get("status") or {}).get("phase") != "Bound":
            await _drop_finalizer(self.client, PVS, pv, PV_PROTECTION)


@register("pvc-protection")
def _pvc_factory(ctx: ControllerContext) -> Controller:
    return PVCProtectionController(ctx)


@register("pv-protection")
def _pv_factory(ctx: ControllerContext) -> Controller:
    return PVProtectionController(ctx)
