"""Resource references for persistent storage: claims, volumes and the storage.k8s.io kinds.

Kept apart from `resources` so that the storage components (PV controller, VolumeBinding,
the kubelet's volume code) name them in one place.
"""

from __future__ import annotations

from navio.client.resources import ResourceRef

__all__ = ["PVCS", "PVS", "STORAGECLASSES", "CSIDRIVERS", "CSINODES", "VOLUMEATTACHMENTS"]

PVCS = ResourceRef("", "v1", "persistentvolumeclaims", True, "PersistentVolumeClaim")
PVS = ResourceRef("", "v1", "persistentvolumes", False, "PersistentVolume")
STORAGECLASSES = ResourceRef("storage.k8s.io", "v1", "storageclasses", False, "StorageClass")
CSIDRIVERS = ResourceRef("storage.k8s.io", "v1", "csidrivers", False, "CSIDriver")
CSINODES = ResourceRef("storage.k8s.io", "v1", "csinodes", False, "CSINode")
VOLUMEATTACHMENTS = ResourceRef("storage.k8s.io", "v1", "volumeattachments", False,
                                "VolumeAttachment")
