"""Defaulting for storage.k8s.io/v1 (pkg/apis/storage/v1/defaults.go, v1.32).

StorageClass: reclaimPolicy Delete, volumeBindingMode Immediate. CSIDriver: attachRequired
true, podInfoOnMount false, requiresRepublish false, storageCapacity false, seLinuxMount false,
fsGroupPolicy ReadWriteOnceWithFSType, volumeLifecycleModes [Persistent]. Only missing fields
are filled, so applying twice changes nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KIND_DEFAULTS", "default_storage_class", "default_csi_driver"]

_GROUP = "storage.k8s.io"


def default_storage_class(sc: dict[str, Any]) -> None:
    if not sc.get("reclaimPolicy"):
        sc["reclaimPolicy"] = "Delete"
    if not sc.get("volumeBindingMode"):
        sc["volumeBindingMode"] = "Immediate"


def default_csi_driver(d: dict[str, Any]) -> None:
    spec = d.get("spec")
    if not isinstance(spec, dict):
        spec = d["spec"] = {}
    for name, value in (("attachRequired", True), ("podInfoOnMount", False),
                        ("requiresRepublish", False), ("storageCapacity", False),
                        ("seLinuxMount", False), ("fsGroupPolicy", "ReadWriteOnceWithFSType")):
        if spec.get(name) is None:
            spec[name] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


KIND_DEFAULTS = {
    (_GROUP, "StorageClass"): default_storage_class,
    (_GROUP, "CSIDriver"): default_csi_driver,
}
