"""Persistent volume controllers (kube-controller-manager's "persistentvolume-binder",
"pvc-protection" and "pv-protection"), and the built-in local-path provisioner.

Importing the package registers them with the manager: `binder` binds claims to volumes,
provisions through `provisioning` and reclaims released volumes; `protection` keeps the
`kubernetes.io/pvc-protection` and `kubernetes.io/pv-protection` finalizers until an object is
no longer in use.
"""

from __future__ import annotations

from navio.controllers.volume import binder, protection

__all__ = ["binder", "protection"]
