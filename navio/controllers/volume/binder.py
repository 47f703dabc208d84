"""The PersistentVolume controller: binds claims to volumes, provisions, reclaims
(kube-controller-manager's "persistentvolume-binder", pkg/controller/volume/persistentvolume/
pv_controller.go, v1.32).

Keys are `claim:<ns>/<name>` and `volume:<name>`; both kinds of object enqueue themselves and
each other, so a change on either side re-checks the pair.

Claims (`sync_claim`):
- Unbound: a claim that names no class gets the default class (retroactive assignment). The
  best volume (navio.api.persistentvolumes.find_matching_volume) is bound. With none, a class
  in WaitForFirstConsumer mode waits for the scheduler's `volume.kubernetes.io/selected-node`
  (event WaitForFirstConsumer); a missing class gives ProvisioningFailed
  `storageclass.storage.k8s.io "X" not found`; no class gives FailedBinding; local-path
  provisions (provisioning.py); any other provisioner is external (ExternalProvisioning).
- Bound (`spec.volumeName` set): the volume gone makes the claim Lost (ClaimLost); otherwise
  both sides are completed: PV `claimRef` + phase Bound, PVC annotations
  `pv.kubernetes.io/bind-completed` (and `bound-by-controller`) + phase Bound with the volume's
  capacity and access modes. Every write is skipped when already in place, so a sync repeats
  safely.

Volumes (`sync_volume`): no claimRef → Available; its claim gone (by uid) → Released, then
reclaimed: Retain keeps it; Delete deletes a local-path volume (its agent removes the directory
before the finalizer goes) and leaves other provisioned volumes to their provisioner; a
volume with Delete that nothing provisioned fails (VolumeFailedDelete), Recycle is not
supported (VolumeFailedRecycle). A bound local-path claim whose request grew (admission allows
that only for classes with allowVolumeExpansion) has its volume's capacity raised to match.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from navio.api import errors
from navio.api.persistentvolumes import (BETA_CLASS_ANNOTATION, LOCAL_PATH_PROVISIONER,
                                         PROVISIONED_BY, SELECTED_NODE_ANNOTATION,
                                         claim_class, claim_matches_ref, find_matching_volume,
                                         is_default_class, storage_request, volume_capacity)
from navio.client import NODES, NORMAL, WARNING, EventRecorder, object_key
from navio.client.volumes import PVCS, PVS, STORAGECLASSES
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register
from navio.controllers.volume.provisioning import (BETA_STORAGE_PROVISIONER,
                                                   STORAGE_PROVISIONER, ProvisionError,
                                                   external_message, local_path_volume)

__all__ = ["PersistentVolumeController", "NAME", "BIND_COMPLETED", "BOUND_BY_CONTROLLER"]

log = logging.getLogger(__name__)

NAME = "persistentvolume-binder"
COMPONENT = "persistentvolume-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
_CLAIM, _VOLUME = "claim:", "volume:"

Obj = dict[str, Any]


def _ann(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


class PersistentVolumeController(Controller):
    name = NAME
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.recorder = EventRecorder(ctx.client, COMPONENT)
        self.claims = ctx.informers.get(PVCS)
        self.volumes = ctx.informers.get(PVS)
        self.classes = ctx.informers.get(STORAGECLASSES)
        self.nodes = ctx.informers.get(NODES)
        self.claims.add_handler(**self.handlers(self._claim_changed))
        self.volumes.add_handler(**self.handlers(self._volume_changed))
        self.classes.add_handler(on_add=self._class_changed,
                                 on_update=lambda o, n: self._class_changed(n))
        self.nodes.add_handler(on_update=self._node_changed)

    # ---- event handlers: keys only -------------------------------------------------------

    def _claim_changed(self, pvc: Obj) -> None:
        self.queue.add(_CLAIM + object_key(pvc))
        volume = (pvc.get("spec") or {}).get("volumeName")
        if volume:
            self.queue.add(_VOLUME + volume)
        for pv in self.volumes.list():
            if claim_matches_ref(pvc, (pv.get("spec") or {}).get("claimRef")):
                self.queue.add(_VOLUME + pv["metadata"]["name"])

    def _volume_changed(self, pv: Obj) -> None:
        self.queue.add(_VOLUME + pv["metadata"]["name"])
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref and ref.get("namespace") and ref.get("name"):
            self.queue.add(f"{_CLAIM}{ref['namespace']}/{ref['name']}")
        elif _phase(pv) == "Available":
            # A new volume may satisfy any pending claim.
            for pvc in self.claims.list():
                if not (pvc.get("spec") or {}).get("volumeName"):
                    self.queue.add(_CLAIM + object_key(pvc))

    def _class_changed(self, sc: Obj) -> None:
        for pvc in self.claims.list():
            if not (pvc.get("spec") or {}).get("volumeName"):
                self.queue.add(_CLAIM + object_key(pvc))

    def _node_changed(self, old: Obj, new: Obj) -> None:
        # A node publishing its local-path directory unblocks claims waiting for it.
        if _ann(old) != _ann(new):
            name = new["metadata"]["name"]
            for pvc in self.claims.list():
                if _ann(pvc).get(SELECTED_NODE_ANNOTATION) == name and \
                        not (pvc.get("spec") or {}).get("volumeName"):
                    self.queue.add(_CLAIM + object_key(pvc))

    async def run(self, workers: int | None = None) -> None:
        self.recorder.start()
        try:
            await super().run(workers)
        finally:
            await self.recorder.stop()

    async def reconcile(self, key: str) -> None:
        if key.startswith(_CLAIM):
            await self.sync_claim(key[len(_CLAIM):])
        elif key.startswith(_VOLUME):
            await self.sync_volume(key[len(_VOLUME):])

    # ---- claims ------------------------------------------------------------------------------

    async def sync_claim(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None:
            return
        if (pvc.get("spec") or {}).get("volumeName"):
            await self._sync_bound_claim(pvc)
        else:
            await self._sync_unbound_claim(pvc)

    def _default_class(self) -> Obj | None:
        marked = [c for c in self.classes.list() if is_default_class(c)]
        marked.sort(key=lambda c: (c["metadata"].get("creationTimestamp") or "",
                                   c["metadata"].get("name", "")), reverse=True)
        return marked[0] if marked else None

    async def _sync_unbound_claim(self, pvc: Obj) -> None:
        spec = pvc.get("spec") or {}
        if spec.get("storageClassName") is None and BETA_CLASS_ANNOTATION not in _ann(pvc):
            default = self._default_class()
            if default is not None:
                body = copy.deepcopy(pvc)
                body["spec"]["storageClassName"] = default["metadata"]["name"]
                await self.client.update(PVCS, body)
                return
        cls_name = claim_class(pvc)
        sc = self.classes.get(cls_name) if cls_name else None
        delayed = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        selected = _ann(pvc).get(SELECTED_NODE_ANNOTATION)
        node = self.nodes.get(selected) if selected else None
        pv = find_matching_volume(pvc, self.volumes.list(), node=node,
                                  delay_binding=delayed and not selected)
        if pv is not None:
            await self._bind(pv, pvc)
            return
        await self._set_claim_phase(pvc, "Pending")
        if delayed and not selected:
            self.recorder.event(pvc, NORMAL, "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            return
        if not cls_name:
            self.recorder.event(pvc, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage "
                                "class is set")
            return
        if sc is None:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{cls_name}" not found')
            return
        await self._provision(pvc, sc, node)

    async def _provision(self, pvc: Obj, sc: Obj, node: Obj | None) -> None:
        provisioner = str(sc.get("provisioner") or "")
        if _ann(pvc).get(STORAGE_PROVISIONER) != provisioner:
            # Whoever provisions (local-path included, an external provisioner in k3s) is
            # named on the claim first, as kube's PV controller does.
            body = copy.deepcopy(pvc)
            ann = body["metadata"].setdefault("annotations", {})
            ann[STORAGE_PROVISIONER] = ann[BETA_STORAGE_PROVISIONER] = provisioner
            pvc = await self.client.update(PVCS, body)
        if provisioner != LOCAL_PATH_PROVISIONER:
            self.recorder.event(pvc, NORMAL, "ExternalProvisioning",
                                external_message(provisioner))
            return
        try:
            pv = local_path_volume(pvc, sc, node)
        except ProvisionError as exc:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed", exc.message)
            # The node may publish its directory later (watched); retry with back-off too.
            raise RuntimeError(exc.message) from None
        self.recorder.event(pvc, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim '
                            f'"{object_key(pvc)}"')
        try:
            await self.client.create(PVS, pv)
        except errors.AlreadyExists:
            return
        log.info("volume provisioned", extra={"claim": object_key(pvc),
                                              "volume": pv["metadata"]["name"]})
        self.recorder.event(pvc, NORMAL, "ProvisioningSucceeded",
                            f"Successfully provisioned volume {pv['metadata']['name']}")

    async def _sync_bound_claim(self, pvc: Obj) -> None:
        name = pvc["spec"]["volumeName"]
        pv = self.volumes.get(name)
        if pv is None:
            try:
                pv = await self.client.get(PVS, name)
            except errors.NotFound:
                pv = None
        if pv is None:
            if _phase(pvc) != "Lost":
                await self._set_claim_phase(pvc, "Lost")
                self.recorder.event(pvc, WARNING, "ClaimLost",
                                    "Bound claim has lost its PersistentVolume. Data on the "
                                    "volume is lost!")
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None or claim_matches_ref(pvc, ref):
            if ref is not None:
                pv = await self._expand(pv, pvc)
            await self._bind(pv, pvc)
            return
        if _phase(pvc) != "Lost":
            await self._set_claim_phase(pvc, "Lost")
            self.recorder.event(pvc, WARNING, "ClaimMisbound",
                                "Two claims are bound to the same volume, this one is bound "
                                "incorrectly")

    async def _expand(self, pv: Obj, pvc: Obj) -> Obj:
        """Grow a local-path volume to its claim's larger request (admission already checked
        that the class allows expansion; a directory has no size to change on disk)."""
        want = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}) \
            .get("storage")
        if _ann(pv).get(PROVISIONED_BY) != LOCAL_PATH_PROVISIONER or want is None or \
                storage_request(pvc) <= volume_capacity(pv):
            return pv
        body = copy.deepcopy(pv)
        body["spec"]["capacity"]["storage"] = want
        pv = await self.client.update(PVS, body)
        self.recorder.event(pvc, NORMAL, "VolumeResizeSuccessful",
                            f'resize volume "{pv["metadata"]["name"]}" by resizer '
                            f'"{LOCAL_PATH_PROVISIONER}" succeeded')
        return pv

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """Complete the binding on both sides (kube's bind()), skipping what is in place."""
        meta = pvc["metadata"]
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != meta.get("uid") or ref.get("name") != meta.get("name"):
            body = copy.deepcopy(pv)
            body["spec"]["claimRef"] = {
                "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
                "resourceVersion": meta.get("resourceVersion")}
            if not ref:
                body["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            pv = await self.client.update(PVS, body)
        if _phase(pv) != "Bound":
            body = copy.deepcopy(pv)
            body["status"] = {"phase": "Bound"}
            pv = await self.client.update_status(PVS, body)
        name = pv["metadata"]["name"]
        ann = _ann(pvc)
        if (pvc.get("spec") or {}).get("volumeName") != name or \
                ann.get(BIND_COMPLETED) != "yes":
            body = copy.deepcopy(pvc)
            new_ann = body["metadata"].setdefault("annotations", {})
            if body["spec"].get("volumeName") != name:
                body["spec"]["volumeName"] = name
                new_ann[BOUND_BY_CONTROLLER] = "yes"
            new_ann[BIND_COMPLETED] = "yes"
            pvc = await self.client.update(PVCS, body)
        status = pvc.get("status") or {}
        want = {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes") or []),
                "capacity": dict(pv["spec"].get("capacity") or {})}
        if any(status.get(k) != v for k, v in want.items()):
            body = copy.deepcopy(pvc)
            body["status"] = {**status, **want}
            await self.client.update_status(PVCS, body)
            log.info("claim bound", extra={"claim": object_key(pvc), "volume": name})

    async def _set_claim_phase(self, pvc: Obj, phase: str) -> None:
        if _phase(pvc) == phase:
            return
        body = copy.deepcopy(pvc)
        status = body.setdefault("status", {})
        status["phase"] = phase
        if phase == "Lost":
            status.pop("capacity", None)
            status.pop("accessModes", None)
        await self.client.update_status(PVCS, body)

    # ---- volumes ----------------------------------------------------------------------------

    async def _claim_for(self, ref: Obj) -> Obj | None:
        """The claim a volume refers to, asking the API server when the cache has none (a
        claim created a moment ago must not make its volume Released)."""
        key = f"{ref.get('namespace')}/{ref.get('name')}"
        pvc = self.claims.get(key)
        if pvc is None:
            try:
                pvc = await self.client.get(PVCS, ref["name"], ref["namespace"])
            except errors.NotFound:
                return None
        return pvc

    async def sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref:
            await self._set_volume_phase(pv, "Available")
            return
        pvc = await self._claim_for(ref)
        if pvc is not None and ref.get("uid") and pvc["metadata"].get("uid") != ref["uid"]:
            pvc = None
        if pvc is None:
            if not ref.get("uid"):
                await self._set_volume_phase(pv, "Available")     # pre-bound by name
                return
            if _phase(pv) not in ("Released", "Failed"):
                pv = await self._set_volume_phase(pv, "Released")
            await self._reclaim(pv)
            return
        bound_to = (pvc.get("spec") or {}).get("volumeName")
        if not bound_to:
            self.queue.add(_CLAIM + object_key(pvc))
            return
        if bound_to == name:
            await self._set_volume_phase(pv, "Bound")
            return
        # The claim is bound elsewhere: a binding this controller made is undone.
        if _ann(pv).get(BOUND_BY_CONTROLLER) == "yes":
            body = copy.deepcopy(pv)
            body["spec"].pop("claimRef", None)
            body["metadata"]["annotations"].pop(BOUND_BY_CONTROLLER, None)
            pv = await self.client.update(PVS, body)
            await self._set_volume_phase(pv, "Available")

    async def _reclaim(self, pv: Obj) -> None:
        if _phase(pv) != "Released":
            return
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        name = pv["metadata"]["name"]
        if policy == "Retain":
            return
        if policy == "Recycle":
            await self._set_volume_phase(pv, "Failed", "No recycler plugin found for the volume!")
            self.recorder.event(pv, WARNING, "VolumeFailedRecycle",
                                "No recycler plugin found for the volume!")
            return
        provisioner = _ann(pv).get(PROVISIONED_BY)
        if provisioner == LOCAL_PATH_PROVISIONER:
            if not (pv.get("metadata") or {}).get("deletionTimestamp"):
                try:
                    await self.client.delete(PVS, name)
                except errors.NotFound:
                    return
                log.info("released volume deleted", extra={"volume": name})
            return
        if provisioner:
            return                       # an external provisioner deletes its own volumes
        message = (f'error getting deleter volume plugin for volume "{name}": no deletable '
                   f"volume plugin matched")
        await self._set_volume_phase(pv, "Failed", message)
        self.recorder.event(pv, WARNING, "VolumeFailedDelete", message)

    async def _set_volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        status = pv.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return pv
        body = copy.deepcopy(pv)
        body["status"] = {"phase": phase}
        if message:
            body["status"]["message"] = message
        return await self.client.update_status(PVS, body)


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return PersistentVolumeController(ctx)
