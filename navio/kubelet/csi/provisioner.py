"""navio's CSI provisioner: CreateVolume/DeleteVolume for classes naming a registered driver
(what kubernetes-csi/external-provisioner does as a sidecar, run here by the agent of the node
the driver is registered on, since only that node can reach the driver's socket).

- A claim is provisioned when it is unbound, its class's provisioner is a driver registered
  here that offers the controller service, the PV controller has annotated it
  `volume.kubernetes.io/storage-provisioner` with that driver, and either the scheduler
  selected this node (`volume.kubernetes.io/selected-node`) or, with no node selected
  (Immediate), this is the first node (by name) whose CSINode lists the driver.
  CreateVolume gets name `pvc-<claim uid>`, the requested bytes, a mount capability with the
  claim's access mode, the class parameters and, when a node was selected, that node's
  topology as requisite/preferred. The PV (pre-bound to the claim, reclaim policy from the
  class, `csi` source with the returned handle and context, node affinity from the returned
  accessible topology) carries `pv.kubernetes.io/provisioned-by` and the finalizer
  `external-provisioner.volume.kubernetes.io/finalizer`; the PV controller then binds it.
- A Released volume with reclaim policy Delete that this node provisioned is deleted with
  DeleteVolume, then the PV object is deleted and the finalizer removed.

Events on the claim as external-provisioner writes them: Provisioning, ProvisioningSucceeded,
ProvisioningFailed (with the driver's gRPC error).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import grpc

from navio.api import errors
from navio.api.persistentvolumes import (PROVISIONED_BY, SELECTED_NODE_ANNOTATION, claim_class,
                                         storage_request)
from navio.client import NORMAL, WARNING, Client, EventRecorder, Informer, WorkQueue, object_key
from navio.client.volumes import CSINODES, PVCS, PVS, STORAGECLASSES
from navio.kubelet.csi.messages import CSI, enum_value
from navio.kubelet.csi.plugins import CSIPlugins

__all__ = ["CSIProvisioner", "PROVISIONER_FINALIZER", "PROVISIONER_NODE"]

log = logging.getLogger(__name__)

STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
PROVISIONER_FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
PROVISIONER_NODE = "navio.dev/csi-provisioner-node"
_MODES = {"ReadWriteOnce": "SINGLE_NODE_WRITER", "ReadOnlyMany": "MULTI_NODE_READER_ONLY",
          "ReadWriteMany": "MULTI_NODE_MULTI_WRITER",
          "ReadWriteOncePod": "SINGLE_NODE_SINGLE_WRITER"}
_CLAIM, _VOLUME = "claim:", "volume:"

Obj = dict[str, Any]


def _rpc_error(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    return f"rpc error: code = {getattr(code, 'name', code)} desc = " \
           f"{exc.details() if hasattr(exc, 'details') else exc}"


class CSIProvisioner:
    def __init__(self, client: Client, node_name: str, plugins: CSIPlugins) -> None:
        self.client = client
        self.node_name = node_name
        self.plugins = plugins
        self.recorder = EventRecorder(client, "csi-provisioner", host=node_name)
        self.claims = Informer(client, PVCS)
        self.volumes = Informer(client, PVS)
        self.classes = Informer(client, STORAGECLASSES)
        self.csinodes = Informer(client, CSINODES)
        self.queue = WorkQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._deleted: set[str] = set()          # handles DeleteVolume succeeded for
        self._started = False

    def start(self) -> None:
        """Start once a driver with the controller service registers here: a node without
        one opens no watches (many simulated nodes share one API server)."""
        self._tasks = [asyncio.create_task(self._start_when_needed(),
                                           name="csi provisioner start")]

    async def _start_when_needed(self) -> None:
        while not any(d.controller for d in self.plugins.drivers.values()):
            await asyncio.sleep(1.0)
        self.claims.add_handler(on_add=self._claim, on_update=lambda o, n: self._claim(n))
        self.volumes.add_handler(on_add=self._volume, on_update=lambda o, n: self._volume(n))
        for inf in (self.claims, self.volumes, self.classes, self.csinodes):
            inf.start()
        self.recorder.start()
        self._started = True
        self._tasks += [asyncio.create_task(self._worker(), name="csi provisioner"),
                        asyncio.create_task(self._resync(), name="csi provisioner resync")]

    async def stop(self) -> None:
        self.queue.shut_down()
        if self._started:
            for inf in (self.claims, self.volumes, self.classes, self.csinodes):
                await inf.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._started:
            await self.recorder.stop(2.0)

    def _claim(self, pvc: Obj) -> None:
        if not (pvc.get("spec") or {}).get("volumeName"):
            self.queue.add(_CLAIM + object_key(pvc))

    def _volume(self, pv: Obj) -> None:
        ann = (pv.get("metadata") or {}).get("annotations") or {}
        if ann.get(PROVISIONER_NODE) == self.node_name:
            self.queue.add(_VOLUME + pv["metadata"]["name"])

    async def _resync(self) -> None:
        """Claims waiting for a driver that registers later are looked at again."""
        while True:
            await asyncio.sleep(5.0)
            for pvc in self.claims.list():
                self._claim(pvc)

    async def _worker(self) -> None:
        await self.queue.run_worker(self._sync, "csi provisioning failed")

    async def _sync(self, key: str) -> None:
        if key.startswith(_CLAIM):
            await self.provision(key[len(_CLAIM):])
        else:
            await self.delete(key[len(_VOLUME):])

    def _first_node_with(self, driver: str) -> str | None:
        names = sorted(n["metadata"]["name"] for n in self.csinodes.list()
                       if any(d.get("name") == driver
                              for d in (n.get("spec") or {}).get("drivers") or ()))
        return names[0] if names else None

    async def provision(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None or (pvc.get("spec") or {}).get("volumeName") or \
                pvc["metadata"].get("deletionTimestamp"):
            return
        sc = self.classes.get(claim_class(pvc))
        driver = self.plugins.driver(str((sc or {}).get("provisioner") or ""))
        ann = pvc["metadata"].get("annotations") or {}
        if sc is None or driver is None or not driver.controller or \
                ann.get(STORAGE_PROVISIONER) != driver.name:
            return
        selected = ann.get(SELECTED_NODE_ANNOTATION)
        if selected and selected != self.node_name:
            return
        if not selected and (sc.get("volumeBindingMode") == "WaitForFirstConsumer" or
                             self._first_node_with(driver.name) != self.node_name):
            return
        name = f"pvc-{pvc['metadata']['uid']}"
        if self.volumes.get(name) is not None:
            return
        self.recorder.event(pvc, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{key}"')
        modes = (pvc.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"]
        cap = CSI.VolumeCapability()
        cap.mount.SetInParent()
        cap.access_mode.mode = enum_value(CSI.VolumeCapability_AccessMode, "Mode",
                                          _MODES.get(modes[0], "SINGLE_NODE_WRITER"))
        req = CSI.CreateVolumeRequest(name=name, volume_capabilities=[cap],
                                      parameters=dict(sc.get("parameters") or {}))
        req.capacity_range.required_bytes = storage_request(pvc)
        if selected and driver.topology:
            for part in (req.accessibility_requirements.requisite,
                         req.accessibility_requirements.preferred):
                part.add().segments.update(driver.topology)
        try:
            resp = await driver.client.call("/csi.v1.Controller/CreateVolume", req)
        except grpc.RpcError as exc:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                f"failed to provision volume with StorageClass "
                                f'"{sc["metadata"]["name"]}": {_rpc_error(exc)}')
            raise RuntimeError(_rpc_error(exc)) from None
        vol = resp.volume
        size = vol.capacity_bytes or storage_request(pvc)
        spec: Obj = {
            "capacity": {"storage": str(size)}, "accessModes": list(modes),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(pvc), "volumeMode": "Filesystem",
            "csi": {"driver": driver.name, "volumeHandle": vol.volume_id,
                    **({"volumeAttributes": dict(vol.volume_context)}
                       if vol.volume_context else {})},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                         "namespace": pvc["metadata"]["namespace"],
                         "name": pvc["metadata"]["name"], "uid": pvc["metadata"]["uid"],
                         "resourceVersion": pvc["metadata"].get("resourceVersion")}}
        terms = [{"matchExpressions": [{"key": k, "operator": "In", "values": [v]}
                                       for k, v in sorted(t.segments.items())]}
                 for t in vol.accessible_topology if t.segments]
        if terms:
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": terms}}
        body = {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "finalizers": [PROVISIONER_FINALIZER],
                             "annotations": {PROVISIONED_BY: driver.name,
                                             PROVISIONER_NODE: self.node_name}},
                "spec": spec}
        try:
            await self.client.create(PVS, body)
        except errors.AlreadyExists:
            return
        self.recorder.event(pvc, NORMAL, "ProvisioningSucceeded",
                            f"Successfully provisioned volume {name}")
        log.info("csi volume provisioned", extra={"claim": key, "volume": name,
                                                  "driver": driver.name})

    async def delete(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            return
        meta, spec = pv["metadata"], pv.get("spec") or {}
        driver = self.plugins.driver(str((meta.get("annotations") or {}).get(PROVISIONED_BY)))
        if driver is None or PROVISIONER_FINALIZER not in (meta.get("finalizers") or []):
            return
        released = (pv.get("status") or {}).get("phase") == "Released"
        if not (released or meta.get("deletionTimestamp")) or \
                spec.get("persistentVolumeReclaimPolicy") != "Delete":
            return
        handle = str((spec.get("csi") or {}).get("volumeHandle") or "")
        if handle not in self._deleted:
            try:
                await driver.client.call("/csi.v1.Controller/DeleteVolume",
                                         CSI.DeleteVolumeRequest(volume_id=handle))
            except grpc.RpcError as exc:
                self.recorder.event(pv, WARNING, "VolumeFailedDelete", _rpc_error(exc))
                raise RuntimeError(_rpc_error(exc)) from None
            self._deleted.add(handle)
        if not meta.get("deletionTimestamp"):
            try:
                await self.client.delete(PVS, name)
            except errors.NotFound:
                return
        try:
            current = await self.client.get(PVS, name)
        except errors.NotFound:
            return
        body = copy.deepcopy(current)
        body["metadata"]["finalizers"] = [f for f in body["metadata"].get("finalizers") or ()
                                          if f != PROVISIONER_FINALIZER]
        try:
            await self.client.update(PVS, body)
        except errors.NotFound:
            return
        log.info("csi volume deleted", extra={"volume": name, "driver": driver.name})
