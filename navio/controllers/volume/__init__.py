"""Persistent volume controllers (kube-controller-manager's "persistentvolume-binder",
"pvc-protection" and "pv-protection"), and the built-in local-path provisioner.

Importing the package registers them with the manager: `binder` binds claims to volumes,
provisions through `provisioning` and reclaims released volumes; `protection` keeps the
`kubernetes.io/pvc-protection` and `kubernetes.io/pv-protection` finalizers until an object is
no longer in use; `attachdetach` keeps a VolumeAttachment for every CSI volume a pod on a node
needs attached.
"""

from __future__ import annotations

from navio.controllers.volume import attachdetach, binder, protection

__all__ = ["attachdetach", "binder", "protection"]
