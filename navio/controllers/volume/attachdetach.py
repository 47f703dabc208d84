"""The attach/detach controller, for CSI volumes (kube-controller-manager's "attachdetach",
pkg/controller/volume/attachdetach, v1.32, CSI part).

For every node, the volumes that must be attached there are those of the CSI PVs bound to
claims of scheduled, unfinished pods on that node whose driver requires attachment (a CSIDriver
with attachRequired false does not; no CSIDriver object does). Each gets a VolumeAttachment
`csi-<sha256(handle + driver + node)>` (attacher = the driver, source = the PV, nodeName); a
VolumeAttachment of this node that no pod needs any more is deleted (detach). The driver's
attacher (navio's, in the agent of that node) calls ControllerPublishVolume and sets
`status.attached`; the kubelet waits for that before staging. Keys are node names.
"""

from __future__ import annotations

import logging
from typing import Any

from navio.api import errors
from navio.api.persistentvolumes import attach_required, attachment_name, pod_claim_names
from navio.client import PODS
from navio.client.volumes import CSIDRIVERS, PVCS, PVS, VOLUMEATTACHMENTS
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["AttachDetachController", "NAME"]

log = logging.getLogger(__name__)

NAME = "attachdetach"
Obj = dict[str, Any]


class AttachDetachController(Controller):
    name = NAME
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.pods = ctx.informers.get(PODS)
        self.claims = ctx.informers.get(PVCS)
        self.volumes = ctx.informers.get(PVS)
        self.drivers = ctx.informers.get(CSIDRIVERS)
        self.attachments = ctx.informers.get(VOLUMEATTACHMENTS)
        self.pods.add_handler(**self.handlers(self._pod))
        self.attachments.add_handler(**self.handlers(self._attachment))
        for inf in (self.claims, self.volumes, self.drivers):
            inf.add_handler(**self.handlers(lambda _: self._all_nodes()))

    def _pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and pod_claim_names(pod):
            self.queue.add(node)

    def _attachment(self, va: Obj) -> None:
        node = (va.get("spec") or {}).get("nodeName")
        if node:
            self.queue.add(node)

    def _all_nodes(self) -> None:
        for node in {(p.get("spec") or {}).get("nodeName") for p in self.pods.list()} | \
                {(v.get("spec") or {}).get("nodeName") for v in self.attachments.list()}:
            if node:
                self.queue.add(node)

    def desired(self, node: str) -> dict[str, Obj]:
        """VolumeAttachment name -> body, for the volumes pods on `node` need attached."""
        out: dict[str, Obj] = {}
        for pod in self.pods.list():
            spec = pod.get("spec") or {}
            if spec.get("nodeName") != node or \
                    (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            ns = (pod.get("metadata") or {}).get("namespace", "")
            for _, claim, _ in pod_claim_names(pod):
                pvc = self.claims.get(f"{ns}/{claim}")
                volume = ((pvc or {}).get("spec") or {}).get("volumeName")
                pv = self.volumes.get(volume) if volume else None
                src = ((pv or {}).get("spec") or {}).get("csi")
                if not src or not attach_required(self.drivers.get(src.get("driver", ""))):
                    continue
                name = attachment_name(src.get("volumeHandle", ""), src.get("driver", ""), node)
                out[name] = {"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                             "metadata": {"name": name},
                             "spec": {"attacher": src.get("driver"), "nodeName": node,
                                      "source": {"persistentVolumeName": volume}}}
        return out

    async def reconcile(self, node: str) -> None:
        want = self.desired(node)
        have = {v["metadata"]["name"]: v for v in self.attachments.list()
                if (v.get("spec") or {}).get("nodeName") == node}
        for name, body in want.items():
            if name in have:
                continue
            try:
                await self.client.create(VOLUMEATTACHMENTS, body)
            except errors.AlreadyExists:
                continue
            log.info("volume attachment created", extra={"attachment": name, "node": node})
        for name, va in have.items():
            if name in want or va["metadata"].get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(VOLUMEATTACHMENTS, name)
            except errors.NotFound:
                continue
            log.info("volume attachment deleted", extra={"attachment": name, "node": node})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return AttachDetachController(ctx)
