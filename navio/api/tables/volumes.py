"""Tables for PersistentVolumes and PersistentVolumeClaims.

Ports of printPersistentVolume and printPersistentVolumeClaim (printers.go, v1.32) with the
helpers they use from pkg/apis/core/helper: access modes print as `RWO,ROX,RWX,RWOP` in that
fixed order, and the storage class comes from the beta annotation
`volume.beta.kubernetes.io/storage-class` before `spec.storageClassName`. Capacities print in
canonical quantity form; a claim shows capacity and access modes only once it is bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, age_column, column, get, name_column
from navio.api.tables.core import quantity_string
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS", "access_modes"]

_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
          ("ReadWriteOncePod", "RWOP"))

PV_COLUMNS = (
    name_column(),
    column("Capacity", "string", DOC["PersistentVolumeSpec.capacity"]),
    column("Access Modes", "string", DOC["PersistentVolumeSpec.accessModes"]),
    column("Reclaim Policy", "string", DOC["PersistentVolumeSpec.persistentVolumeReclaimPolicy"]),
    column("Status", "string", DOC["PersistentVolumeStatus.phase"]),
    column("Claim", "string", DOC["PersistentVolumeSpec.claimRef"]),
    column("StorageClass", "string", "StorageClass of the pv"),
    column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    column("Reason", "string", DOC["PersistentVolumeStatus.reason"]),
    age_column(),
    column("VolumeMode", "string", DOC["PersistentVolumeSpec.volumeMode"], priority=1),
)

PVC_COLUMNS = (
    name_column(),
    column("Status", "string", DOC["PersistentVolumeClaimStatus.phase"]),
    column("Volume", "string", DOC["PersistentVolumeClaimSpec.volumeName"]),
    column("Capacity", "string", DOC["PersistentVolumeClaimStatus.capacity"]),
    column("Access Modes", "string", DOC["PersistentVolumeClaimStatus.accessModes"]),
    column("StorageClass", "string", "StorageClass of the pvc"),
    column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    age_column(),
    column("VolumeMode", "string", DOC["PersistentVolumeClaimSpec.volumeMode"], priority=1),
)


def access_modes(modes: list[str] | None) -> str:
    """helper.GetAccessModesAsString."""
    present = set(modes or ())
    return ",".join(short for mode, short in _MODES if mode in present)


def _storage_class(obj: Mapping[str, Any]) -> str:
    annotations = get(obj, "metadata", "annotations", default={})
    if _BETA_STORAGE_CLASS in annotations:
        return str(annotations[_BETA_STORAGE_CLASS])
    return str(get(obj, "spec", "storageClassName", default=""))


def _phase(obj: Mapping[str, Any]) -> str:
    if get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    return str(get(obj, "status", "phase", default=""))


def pv_cells(pv: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = get(pv, "spec", default={})
    claim = spec.get("claimRef")
    claim_cell = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    return [get(pv, "metadata", "name", default=""),
            quantity_string(get(spec, "capacity", "storage")),
            access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "", _phase(pv), claim_cell,
            _storage_class(pv), spec.get("volumeAttributesClassName") or "<unset>",
            get(pv, "status", "reason", default=""), age(pv, now),
            spec.get("volumeMode") or "<unset>"]


def pvc_cells(pvc: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = get(pvc, "spec", default={})
    volume = spec.get("volumeName") or ""
    capacity = modes = ""
    if volume:
        capacity = quantity_string(get(pvc, "status", "capacity", "storage"))
        modes = access_modes(get(pvc, "status", "accessModes"))
    return [get(pvc, "metadata", "name", default=""), _phase(pvc), volume, capacity, modes,
            _storage_class(pvc), spec.get("volumeAttributesClassName") or "<unset>",
            age(pvc, now), spec.get("volumeMode") or "<unset>"]


PRINTERS = {
    ("", "PersistentVolume"): Printer(PV_COLUMNS, pv_cells),
    ("", "PersistentVolumeClaim"): Printer(PVC_COLUMNS, pvc_cells),
}
