"""Pod volumes: the host directories and files behind each `spec.volumes` entry.

Why: containers see volumes at their mount paths; the runtime bind-mounts host paths, and the
kubelet must first make those host paths exist with the right content (pkg/kubelet/volumemanager
and the emptyDir, hostPath, configMap, secret, downwardAPI and projected plugins), and claims:
a `persistentVolumeClaim` volume is its bound PV's hostPath or local directory, bind-mounted
like a hostPath (read-only when the volume source says so).

Layout (as the kubelet's): `<pods dir>/<pod uid>/volumes/kubernetes.io~<plugin>/<volume>`.

Guarantees:
- `setup` is idempotent and safe to repeat on every sync: configMap/secret/downwardAPI/projected
  content is rewritten through the AtomicWriter only when it changed, so an updated ConfigMap
  reaches running containers atomically on the next sync.
- File modes follow `items[].mode`, else `defaultMode` (0644 by API default).
- A failure names the volume and says why with the kubelet's words (`configmap "x" not
  found`, `hostPath type check failed: ...`); optional sources that are missing give an empty
  volume. Secret contents are never logged.
- emptyDir with medium Memory is a tmpfs of `sizeLimit` (else node allocatable memory) when
  mounts are possible; `cleanup` unmounts it before deleting the pod directory.
- serviceAccountToken projections get a token bound to the pod from `tokens`
  (navio.kubelet.projected), refreshed before expiry; clusterTrustBundle projections are
  skipped and reported once per pod as a warning.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from navio.api.persistentvolumes import attach_required, attachment_name
from navio.api.quantity import QuantityError, value
from navio.kubelet.atomicwriter import AtomicWriter, FileProjection, PayloadError
from navio.kubelet.csi.mounter import CSIError, CSIMounter
from navio.kubelet.env import Lookup
from navio.kubelet.fieldref import FieldRefError, pod_field, resource_field
from navio.kubelet.iopool import run_io
from navio.runtime import mounts

__all__ = ["PodVolumes", "VolumeError", "ClaimNotReady", "VolumeManager", "READ_ONLY_PLUGINS"]

if TYPE_CHECKING:
    from navio.kubelet.projected import ServiceAccountTokens

log = logging.getLogger(__name__)

_DEFAULT_MODE = 0o644
READ_ONLY_PLUGINS = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
                "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
                "projected": "kubernetes.io~projected"}


class VolumeError(Exception):
    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


class ClaimNotReady(VolumeError):
    """A claim-backed volume cannot be set up yet (claim missing, unbound or deleting)."""

    def __init__(self, volume: str, message: str) -> None:
        Exception.__init__(self, f"Unable to attach or mount volumes: unmounted volumes="
                                 f"[{volume}], unattached volumes=[{volume}], failed to process "
                                 f"volumes=[{volume}]: {message}")
        self.volume = volume


# PersistentVolume sources other than hostPath/local, named in "not supported" errors.
_PV_SOURCES = frozenset({"csi", "nfs", "iscsi", "rbd", "cephfs", "fc", "glusterfs",
                         "flexVolume", "azureDisk", "azureFile", "gcePersistentDisk",
                         "awsElasticBlockStore", "vsphereVolume", "cinder", "portworxVolume"})


@dataclass(frozen=True)
class PodVolumes:
    """Host path of each volume, and which ones containers must see read-only."""

    paths: dict[str, str] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


def _b64(data: Mapping[str, Any]) -> dict[str, bytes]:
    out = {}
    for k, v in data.items():
        try:
            out[str(k)] = base64.b64decode(v)
        except (binascii.Error, ValueError, TypeError):
            out[str(k)] = b""
    return out


class VolumeManager:
    def __init__(self, pods_dir: Path, lookup: Lookup, *,
                 allocatable: Callable[[], Mapping[str, str]], tmpfs: bool,
                 tokens: "ServiceAccountTokens | None" = None,
                 csi: "CSIMounter | None" = None) -> None:
        self.pods_dir = pods_dir
        self._tokens = tokens
        self._csi = csi
        # (pod uid, volume) -> host path of claims already set up: a claim deleted (or its
        # PV changed) under a running pod must not unmount it, as in the kubelet, whose
        # checks apply to volumes not mounted yet.
        self._claims: dict[tuple[str, str], str] = {}
        self._lookup = lookup
        self._allocatable = allocatable
        self._tmpfs = tmpfs

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    async def setup(self, pod: Mapping[str, Any], *, host_ips: list[str],
                    pod_ips: list[str]) -> PodVolumes:
        meta = pod.get("metadata") or {}
        uid, namespace = str(meta.get("uid")), str(meta.get("namespace") or "default")
        paths: dict[str, str] = {}
        read_only: set[str] = set()
        warnings: list[str] = []
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            name = str(vol.get("name"))
            plugin = next((k for k in vol if k != "name"), "")
            if plugin == "hostPath":
                paths[name] = await run_io(_host_path, name, vol["hostPath"])
                continue
            if plugin == "persistentVolumeClaim":
                source = vol["persistentVolumeClaim"] or {}
                path = self._claims.get((uid, name))
                if path is None:
                    path = await self._claim_path(namespace, name, source, pod)
                    self._claims[(uid, name)] = path
                paths[name] = path
                if source.get("readOnly"):
                    read_only.add(name)
                continue
            if plugin not in _PLUGIN_DIRS:
                raise VolumeError(name, f"volume type {plugin or 'unknown'} is not supported "
                                        "by this node")
            directory = self.pod_dir(uid) / "volumes" / _PLUGIN_DIRS[plugin] / name
            paths[name] = str(directory)
            if plugin == "emptyDir":
                await run_io(self._empty_dir, directory, vol["emptyDir"] or {})
                continue
            read_only.add(name)
            payload = await self._payload(pod, namespace, name, plugin, vol[plugin] or {},
                                          host_ips, pod_ips, warnings)
            try:
                changed = await run_io(AtomicWriter(directory).write, payload)
            except PayloadError as exc:
                raise VolumeError(name, str(exc)) from None
            if changed:
                log.info("volume updated", extra={"pod": f"{namespace}/{meta.get('name')}",
                                                  "volume": name})
        return PodVolumes(paths, frozenset(read_only), tuple(warnings))

    async def _claim_path(self, namespace: str, volume: str, source: Mapping[str, Any],
                          pod: Mapping[str, Any]) -> str:
        """The host path behind a claim: its bound PV's hostPath or local directory. Until the
        claim is bound to an existing PV this raises ClaimNotReady, and the pod waits in
        ContainerCreating with a FailedMount event saying why (kubelet's volume manager
        wording)."""
        claim = str(source.get("claimName") or "")
        ref = f"{namespace}/{claim}"
        pvc = await self._lookup("persistentvolumeclaim", namespace, claim)
        if pvc is None:
            raise ClaimNotReady(volume, f"error processing PVC {ref}: failed to fetch PVC from "
                                        f'API server: persistentvolumeclaims "{claim}" not '
                                        "found")
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            raise ClaimNotReady(volume, f"error processing PVC {ref}: can't start pod because "
                                        f"PVC {ref} is being deleted")
        phase = (pvc.get("status") or {}).get("phase") or ""
        pv_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if phase != "Bound" or not pv_name:
            raise ClaimNotReady(volume, f"error processing PVC {ref}: PVC {ref} has non-bound "
                                        f'phase ("{phase}") or empty pvc.Spec.VolumeName '
                                        f'("{pv_name}")')
        pv = await self._lookup("persistentvolume", "", pv_name)
        if pv is None:
            raise ClaimNotReady(volume, f"error processing PVC {ref}: failed to fetch PV "
                                        f'{pv_name} from API server: persistentvolumes '
                                        f'"{pv_name}" not found')
        spec = pv.get("spec") or {}
        if spec.get("hostPath") is not None:
            return await run_io(_host_path, volume, spec["hostPath"])
        if spec.get("local") is not None:
            return await run_io(_host_path, volume, {"path": spec["local"].get("path"),
                                                     "type": "Directory"})
        if spec.get("csi") is not None and self._csi is not None:
            csi = spec["csi"]
            driver = await self._lookup("csidriver", "", str(csi.get("driver") or ""))
            context = None
            if attach_required(driver):
                name = attachment_name(str(csi.get("volumeHandle") or ""),
                                       str(csi.get("driver") or ""),
                                       str((pod.get("spec") or {}).get("nodeName") or ""))
                va = await self._lookup("volumeattachment", "", name)
                if not ((va or {}).get("status") or {}).get("attached"):
                    raise VolumeError(volume, f"kubernetes.io/csi: attacher.WaitForAttach "
                                              f"failed for volume {csi.get('volumeHandle')}: "
                                              f"volume attachment {name} is not attached yet")
                context = (va.get("status") or {}).get("attachmentMetadata") or {}
            try:
                return await self._csi.publish(pod, volume, pv, bool(source.get("readOnly")),
                                               driver, context)
            except CSIError as exc:
                raise VolumeError(volume, str(exc)) from None
        kind = next((k for k in spec if k in _PV_SOURCES), "unknown")
        raise VolumeError(volume, f"persistent volume type {kind} is not supported by this "
                                  "node")

    def _empty_dir(self, directory: Path, source: Mapping[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if source.get("medium") == "Memory" and self._tmpfs:
            size = None
            try:
                limit = source.get("sizeLimit") or self._allocatable().get("memory")
                size = value(str(limit)) if limit else None
            except QuantityError:
                size = None
            mounts.mount_tmpfs(str(directory), size, mode=0o777)
        else:
            os.chmod(directory, 0o777)

    async def _payload(self, pod: Mapping[str, Any], namespace: str, volume: str, plugin: str,
                       source: Mapping[str, Any], host_ips: list[str], pod_ips: list[str],
                       warnings: list[str]) -> dict[str, FileProjection]:
        default_mode = int(source.get("defaultMode", _DEFAULT_MODE))
        if plugin in ("configMap", "secret"):
            return await self._object_payload(volume, plugin, namespace, source, default_mode)
        if plugin == "downwardAPI":
            return self._downward(volume, pod, source.get("items") or (), default_mode,
                                  host_ips, pod_ips)
        payload: dict[str, FileProjection] = {}
        for src in source.get("sources") or ():
            if src.get("configMap") or src.get("secret"):
                kind = "configMap" if src.get("configMap") else "secret"
                payload.update(await self._object_payload(volume, kind, namespace, src[kind],
                                                          default_mode))
            elif src.get("downwardAPI"):
                payload.update(self._downward(volume, pod, src["downwardAPI"].get("items") or (),
                                              default_mode, host_ips, pod_ips))
            elif src.get("serviceAccountToken") and self._tokens is not None:
                payload.update(await _token_payload(self._tokens, volume, pod,
                                                    src["serviceAccountToken"], default_mode))
            elif src.get("serviceAccountToken") or src.get("clusterTrustBundle"):
                kind = "serviceAccountToken" if src.get("serviceAccountToken") else \
                    "clusterTrustBundle"
                warnings.append(f"projected volume {volume}: {kind} sources are not supported "
                                "yet (they come with the security work) and were skipped")
        return payload

    async def _object_payload(self, volume: str, plugin: str, namespace: str,
                              source: Mapping[str, Any], default_mode: int
                              ) -> dict[str, FileProjection]:
        kind = "configmap" if plugin == "configMap" else "secret"
        # (secret volumes say secretName; configMap volumes and projections say name)
        name = str(source.get("secretName") or source.get("name") or "")
        optional = bool(source.get("optional"))
        obj = await self._lookup(kind, namespace, name)
        if obj is None:
            if optional:
                return {}
            raise VolumeError(volume, f'{kind} "{name}" not found')
        if kind == "configmap":
            data = {str(k): str(v).encode() for k, v in (obj.get("data") or {}).items()}
            data.update(_b64(obj.get("binaryData") or {}))
        else:
            data = _b64(obj.get("data") or {})
        items = source.get("items")
        if not items:
            return {k: FileProjection(v, default_mode) for k, v in data.items()}
        payload = {}
        for item in items:
            key = str(item.get("key"))
            if key not in data:
                if optional:
                    continue
                what = "configmap references non-existent config key" if kind == "configmap" \
                    else "references non-existent secret key"
                raise VolumeError(volume, f"{what}: {key}")
            payload[str(item.get("path") or key)] = FileProjection(
                data[key], int(item.get("mode", default_mode)))
        return payload

    def _downward(self, volume: str, pod: Mapping[str, Any], items: Any, default_mode: int,
                  host_ips: list[str], pod_ips: list[str]) -> dict[str, FileProjection]:
        payload = {}
        for item in items:
            try:
                if item.get("fieldRef"):
                    text = pod_field(pod, str(item["fieldRef"].get("fieldPath")),
                                     host_ips=host_ips, pod_ips=pod_ips)
                else:
                    ref = item.get("resourceFieldRef") or {}
                    text = resource_field(pod, str(ref.get("containerName") or ""),
                                          str(ref.get("resource")), ref.get("divisor"),
                                          self._allocatable())
            except FieldRefError as exc:
                raise VolumeError(volume, str(exc)) from None
            payload[str(item.get("path"))] = FileProjection(text.encode(),
                                                            int(item.get("mode", default_mode)))
        return payload

    async def cleanup(self, uid: str) -> None:
        """Unpublish CSI volumes, unmount and delete everything under the pod's directory;
        safe to repeat. A CSI driver that fails to unpublish keeps the directory (so that the
        driver's data behind a still-mounted target is never deleted) and raises CSIError."""
        if self._tokens is not None:
            self._tokens.forget(uid)
        if self._csi is not None:
            await self._csi.teardown(uid)
        for key in [k for k in self._claims if k[0] == uid]:
            del self._claims[key]
        await run_io(self._cleanup, self.pod_dir(uid))

    @staticmethod
    def _cleanup(directory: Path) -> None:
        empty_dirs = directory / "volumes" / _PLUGIN_DIRS["emptyDir"]
        if empty_dirs.is_dir():
            for entry in empty_dirs.iterdir():
                mounts.unmount(str(entry))
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)


async def _token_payload(tokens: "ServiceAccountTokens", volume: str, pod: Mapping[str, Any],
                         projection: Mapping[str, Any], default_mode: int
                         ) -> dict[str, FileProjection]:
    from navio.kubelet.projected import TokenError
    try:
        token = await tokens.token(pod, projection)
    except TokenError as exc:
        raise VolumeError(volume, str(exc)) from None
    return {str(projection.get("path") or "token"): FileProjection(token, default_mode)}


_HOST_PATH_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def _host_path(volume: str, source: Mapping[str, Any]) -> str:
    """hostPath with its `type` check (pkg/volume/hostpath checkType)."""
    path = str(source.get("path") or "")
    kind = source.get("type") or ""
    if kind == "DirectoryOrCreate" and not os.path.exists(path):
        os.makedirs(path, 0o755, exist_ok=True)
        return path
    if kind == "FileOrCreate" and not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        return path
    if kind == "DirectoryOrCreate":
        kind = "Directory"
    elif kind == "FileOrCreate":
        kind = "File"
    if kind in _HOST_PATH_CHECKS:
        check, what = _HOST_PATH_CHECKS[kind]
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise VolumeError(volume, f"hostPath type check failed: {path} {what}") from None
        if not check(mode):
            raise VolumeError(volume, f"hostPath type check failed: {path} {what}")
    return path
