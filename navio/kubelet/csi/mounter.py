"""Setting up and tearing down CSI volumes for pods (pkg/volume/csi csi_attacher/csi_mounter).

For a pod volume whose PV has a `csi` source and whose driver is registered on this node:

- stage once per volume and node, when the driver has STAGE_UNSTAGE_VOLUME:
  NodeStageVolume with staging path `<root>/plugins/kubernetes.io/csi/<driver>/<sha256 of the
  volume handle>/globalmount`;
- publish per pod: NodePublishVolume with target path
  `<pods>/<pod uid>/volumes/kubernetes.io~csi/<volume>/mount` (its parent is made here, the
  target itself is the driver's to create), the capability from the PV (mount, fsType, access
  mode), readonly and the PV's volumeAttributes as volume context (plus the pod's name,
  namespace, uid and service account when the driver's CSIDriver says podInfoOnMount, with
  kube's `csi.storage.k8s.io/...` keys). `vol_data.json` beside the
  target records what teardown needs, so it survives an agent restart;
- teardown of a pod: NodeUnpublishVolume for each of its CSI targets, then NodeUnstageVolume for
  volumes no other pod on the node still publishes.

Publishing is remembered per (pod, volume), so the sync loop does not call the driver again.
Errors surface as VolumeError with the driver's message, and the pod waits in
ContainerCreating.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import grpc

from navio.kubelet.csi.messages import CSI, enum_value
from navio.kubelet.csi.plugins import CSIPlugins
from navio.kubelet.iopool import run_io

__all__ = ["CSIMounter", "CSIError", "PLUGIN_DIR", "capability", "rpc_message"]

log = logging.getLogger(__name__)

PLUGIN_DIR = "kubernetes.io~csi"
_MODES = {"ReadWriteOnce": "SINGLE_NODE_WRITER", "ReadOnlyMany": "MULTI_NODE_READER_ONLY",
          "ReadWriteMany": "MULTI_NODE_MULTI_WRITER",
          "ReadWriteOncePod": "SINGLE_NODE_SINGLE_WRITER"}


class CSIError(Exception):
    """A CSI call failed or the driver is missing; the message is the kubelet's."""


def capability(pv_spec: Mapping[str, Any]) -> Any:
    cap = CSI.VolumeCapability()
    cap.mount.fs_type = str((pv_spec.get("csi") or {}).get("fsType") or "")
    cap.mount.mount_flags.extend(pv_spec.get("mountOptions") or [])
    modes = pv_spec.get("accessModes") or ["ReadWriteOnce"]
    cap.access_mode.mode = enum_value(CSI.VolumeCapability_AccessMode, "Mode",
                                      _MODES.get(modes[0], "SINGLE_NODE_WRITER"))
    return cap


def rpc_message(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"rpc error: code = {getattr(code, 'name', code)} desc = {details}"


class CSIMounter:
    def __init__(self, plugins: CSIPlugins, pods_dir: Path, plugins_dir: Path) -> None:
        self.plugins = plugins
        self.pods_dir = pods_dir
        self.plugins_dir = plugins_dir
        self._published: set[tuple[str, str]] = set()

    def staging_path(self, driver: str, handle: str) -> Path:
        digest = hashlib.sha256(handle.encode()).hexdigest()
        return self.plugins_dir / "kubernetes.io" / "csi" / driver / digest / "globalmount"

    def target_dir(self, uid: str, volume: str) -> Path:
        return self.pods_dir / uid / "volumes" / PLUGIN_DIR / volume

    async def publish(self, pod: Mapping[str, Any], volume: str, pv: Mapping[str, Any],
                      read_only: bool, csi_driver: Mapping[str, Any] | None = None,
                      publish_context: Mapping[str, str] | None = None) -> str:
        """Stage (if needed) and publish the PV for `pod`; the host path to bind-mount.
        `csi_driver` is the driver's CSIDriver object, if any (podInfoOnMount);
        `publish_context` the attachment's metadata (ControllerPublishVolume's result)."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        spec = pv.get("spec") or {}
        src = spec.get("csi") or {}
        driver_name, handle = str(src.get("driver") or ""), str(src.get("volumeHandle") or "")
        directory = self.target_dir(uid, volume)
        target = directory / "mount"
        if (uid, volume) in self._published:
            return str(target)
        drv = self.plugins.driver(driver_name)
        if drv is None:
            raise CSIError(f"kubernetes.io/csi: mounter.SetUpAt failed to get CSI client: "
                           f"driver name {driver_name} not found in the list of registered "
                           f"CSI drivers")
        cap = capability(spec)
        context = dict(src.get("volumeAttributes") or {})
        staging = ""
        if ((csi_driver or {}).get("spec") or {}).get("podInfoOnMount"):
            context.update({
                "csi.storage.k8s.io/pod.name": str(meta.get("name") or ""),
                "csi.storage.k8s.io/pod.namespace": str(meta.get("namespace") or ""),
                "csi.storage.k8s.io/pod.uid": uid,
                "csi.storage.k8s.io/serviceAccount.name": str(
                    (pod.get("spec") or {}).get("serviceAccountName") or "default"),
                "csi.storage.k8s.io/ephemeral": "false"})
        try:
            if drv.stage_unstage:
                path = self.staging_path(driver_name, handle)
                await run_io(path.parent.mkdir, 0o750, True, True)
                staging = str(path)
                await drv.client.call("/csi.v1.Node/NodeStageVolume", CSI.NodeStageVolumeRequest(
                    volume_id=handle, staging_target_path=staging, volume_capability=cap,
                    volume_context=context, publish_context=dict(publish_context or {})))
            await run_io(directory.mkdir, 0o750, True, True)
            record = {"driverName": driver_name, "volumeHandle": handle,
                      "stagingTargetPath": staging, "specVolID": pv["metadata"]["name"]}
            await run_io((directory / "vol_data.json").write_text, json.dumps(record))
            await drv.client.call("/csi.v1.Node/NodePublishVolume", CSI.NodePublishVolumeRequest(
                volume_id=handle, staging_target_path=staging, target_path=str(target),
                volume_capability=cap, readonly=read_only, volume_context=context,
                publish_context=dict(publish_context or {})))
        except grpc.RpcError as exc:
            raise CSIError(f"kubernetes.io/csi: mounter.SetUpAt failed: {rpc_message(exc)}"
                           ) from None
        self._published.add((uid, volume))
        log.info("csi volume published", extra={"driver": driver_name, "volume": handle,
                                                "target": str(target)})
        return str(target)

    def _records(self, uid: str) -> list[tuple[Path, dict[str, Any]]]:
        root = self.pods_dir / uid / "volumes" / PLUGIN_DIR
        out = []
        if root.is_dir():
            for d in sorted(root.iterdir()):
                try:
                    out.append((d, json.loads((d / "vol_data.json").read_text())))
                except (OSError, ValueError):
                    continue
        return out

    def _staged_elsewhere(self, uid: str, handle: str) -> bool:
        for pod_dir in self.pods_dir.iterdir() if self.pods_dir.is_dir() else ():
            if pod_dir.name == uid:
                continue
            if any(r.get("volumeHandle") == handle for _, r in self._records(pod_dir.name)):
                return True
        return False

    async def teardown(self, uid: str) -> None:
        """Unpublish every CSI volume of pod `uid` and unstage those no other pod uses; raises
        CSIError if a driver call fails (the pod directory must then be kept)."""
        for directory, record in await run_io(self._records, uid):
            driver_name, handle = record.get("driverName", ""), record.get("volumeHandle", "")
            drv = self.plugins.driver(driver_name)
            if drv is None:
                raise CSIError(f"kubernetes.io/csi: unmounter failed: driver name "
                               f"{driver_name} not found in the list of registered CSI drivers")
            target = str(directory / "mount")
            try:
                await drv.client.call("/csi.v1.Node/NodeUnpublishVolume",
                                      CSI.NodeUnpublishVolumeRequest(volume_id=handle,
                                                                     target_path=target))
                staging = record.get("stagingTargetPath") or ""
                if staging and not await run_io(self._staged_elsewhere, uid, handle):
                    await drv.client.call("/csi.v1.Node/NodeUnstageVolume",
                                          CSI.NodeUnstageVolumeRequest(
                                              volume_id=handle, staging_target_path=staging))
            except grpc.RpcError as exc:
                raise CSIError(f"kubernetes.io/csi: unmounter failed: {rpc_message(exc)}"
                               ) from None
            await run_io(_remove_record, directory)
            self._published.discard((uid, directory.name))
            log.info("csi volume unpublished", extra={"driver": driver_name, "volume": handle})


def _remove_record(directory: Path) -> None:
    try:
        os.unlink(directory / "vol_data.json")
    except FileNotFoundError:
        pass
