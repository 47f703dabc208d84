"""navio's CSI attacher: VolumeAttachments of this node for drivers registered here (what
kubernetes-csi/external-attacher does as a sidecar, run by the agent since only this node
reaches the driver's socket).

- A VolumeAttachment not yet attached gets the finalizer `external-attacher/<driver, with
  '/' as '-'>`, then ControllerPublishVolume (volume handle from the PV, this node's CSI node
  id, the PV's capability and volume attributes) when the driver offers
  PUBLISH_UNPUBLISH_VOLUME — otherwise nothing needs doing — and `status.attached: true` with
  the returned publish context as `attachmentMetadata`.
- A VolumeAttachment being deleted gets ControllerUnpublishVolume, then loses the finalizer.
- Failures are written to `status.attachError` / `detachError` and retried with back-off.
Watches open only once a driver with the controller service registers on the node.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import datetime, timezone
from typing import Any

import grpc

from navio.api import errors
from navio.client import Client, Informer, WorkQueue
from navio.client.volumes import PVS, VOLUMEATTACHMENTS
from navio.kubelet.csi.messages import CSI
from navio.kubelet.csi.mounter import capability, rpc_message
from navio.kubelet.csi.plugins import CSIPlugins

__all__ = ["CSIAttacher", "attacher_finalizer"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def attacher_finalizer(driver: str) -> str:
    return "external-attacher/" + driver.replace("/", "-")


class CSIAttacher:
    def __init__(self, client: Client, node_name: str, plugins: CSIPlugins) -> None:
        self.client = client
        self.node_name = node_name
        self.plugins = plugins
        self.attachments = Informer(client, VOLUMEATTACHMENTS)
        self.queue = WorkQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._attached: set[str] = set()         # uids attached (the cache may lag behind)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._start_when_needed(),
                                           name="csi attacher start")]

    async def _start_when_needed(self) -> None:
        while not any(d.controller for d in self.plugins.drivers.values()):
            await asyncio.sleep(1.0)
        self.attachments.add_handler(on_add=self._changed,
                                     on_update=lambda o, n: self._changed(n))
        self.attachments.start()
        self._started = True
        self._tasks.append(asyncio.create_task(self._worker(), name="csi attacher"))

    async def stop(self) -> None:
        self.queue.shut_down()
        if self._started:
            await self.attachments.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _changed(self, va: Obj) -> None:
        if (va.get("spec") or {}).get("nodeName") == self.node_name:
            self.queue.add(va["metadata"]["name"])

    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, "volume attachment sync failed")

    async def sync(self, name: str) -> None:
        va = self.attachments.get(name)
        if va is None:
            return
        spec = va.get("spec") or {}
        drv = self.plugins.driver(str(spec.get("attacher") or ""))
        if drv is None or spec.get("nodeName") != self.node_name:
            return
        finalizer = attacher_finalizer(drv.name)
        meta = va["metadata"]
        pv_name = (spec.get("source") or {}).get("persistentVolumeName") or ""
        if meta.get("deletionTimestamp"):
            if finalizer not in (meta.get("finalizers") or []):
                return
            if drv.publish_unpublish:
                pv = await self._volume(pv_name)
                handle = str((((pv or {}).get("spec") or {}).get("csi") or {})
                             .get("volumeHandle") or "")
                try:
                    await drv.client.call("/csi.v1.Controller/ControllerUnpublishVolume",
                                          CSI.ControllerUnpublishVolumeRequest(
                                              volume_id=handle, node_id=drv.node_id))
                except grpc.RpcError as exc:
                    await self._status(va, {"detachError": _error(exc)})
                    raise RuntimeError(rpc_message(exc)) from None
            body = copy.deepcopy(va)
            body["metadata"]["finalizers"] = [f for f in meta.get("finalizers") or ()
                                              if f != finalizer]
            try:
                await self.client.update(VOLUMEATTACHMENTS, body)
            except errors.NotFound:
                pass
            log.info("volume detached", extra={"attachment": name, "driver": drv.name})
            return
        if (va.get("status") or {}).get("attached") or meta.get("uid") in self._attached:
            return
        if finalizer not in (meta.get("finalizers") or []):
            body = copy.deepcopy(va)
            body["metadata"]["finalizers"] = list(meta.get("finalizers") or []) + [finalizer]
            va = await self.client.update(VOLUMEATTACHMENTS, body)
        context: dict[str, str] = {}
        if drv.publish_unpublish:
            pv = await self._volume(pv_name)
            if pv is None:
                raise RuntimeError(f'persistentvolumes "{pv_name}" not found')
            src = pv["spec"].get("csi") or {}
            try:
                resp = await drv.client.call(
                    "/csi.v1.Controller/ControllerPublishVolume",
                    CSI.ControllerPublishVolumeRequest(
                        volume_id=str(src.get("volumeHandle") or ""), node_id=drv.node_id,
                        volume_capability=capability(pv["spec"]),
                        volume_context=dict(src.get("volumeAttributes") or {})))
            except grpc.RpcError as exc:
                await self._status(va, {"attached": False, "attachError": _error(exc)})
                raise RuntimeError(rpc_message(exc)) from None
            context = dict(resp.publish_context)
        status: Obj = {"attached": True}
        if context:
            status["attachmentMetadata"] = context
        await self._status(va, status)
        self._attached.add(str(meta.get("uid")))
        log.info("volume attached", extra={"attachment": name, "driver": drv.name})

    async def _volume(self, name: str) -> Obj | None:
        try:
            return await self.client.get(PVS, name)
        except errors.NotFound:
            return None

    async def _status(self, va: Obj, status: Obj) -> None:
        body = copy.deepcopy(va)
        body["status"] = {k: v for k, v in {**(va.get("status") or {}), **status}.items()
                          if k not in ("attachError", "detachError") or k in status}
        await self.client.update_status(VOLUMEATTACHMENTS, body)


def _error(exc: grpc.RpcError) -> Obj:
    return {"time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": rpc_message(exc)[:1024]}
