"""Dynamic provisioning: what the PV controller does for a claim no volume satisfies.

The built-in `rancher.io/local-path` provisioner makes one directory per claim on the node the
scheduler picked for the claim's first consumer (annotation
`volume.kubernetes.io/selected-node`): the PV `pvc-<claim uid>` is a hostPath
`<node's storage dir>/pvc-<uid>_<namespace>_<name>` (DirectoryOrCreate) with required node
affinity to that node, pre-bound to the claim, with the class's reclaim policy. The node's
storage dir comes from its `navio.dev/local-path-dir` annotation, written by its agent; the
same agent creates the directory and removes it when the PV is deleted (finalizer
`navio.dev/local-path-cleanup`). The PV is also labelled `navio.dev/local-path-node` so that
each agent watches only its own volumes.

Other provisioners are external, as in kube: the claim is annotated
`volume.kubernetes.io/storage-provisioner` and an ExternalProvisioning event says whom it waits
for. Messages follow pv_controller.go (v1.32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from navio.api.persistentvolumes import (LOCAL_PATH_DIR_ANNOTATION, LOCAL_PATH_FINALIZER,
                                         LOCAL_PATH_NODE_ANNOTATION, LOCAL_PATH_NODE_LABEL,
                                         LOCAL_PATH_PROVISIONER, PROVISIONED_BY,
                                         SELECTED_NODE_ANNOTATION, claim_class)
from navio.api.validation.names import is_valid_label_value

__all__ = ["ProvisionError", "local_path_volume", "external_message", "STORAGE_PROVISIONER",
           "BETA_STORAGE_PROVISIONER", "HOSTNAME_LABEL", "volume_name"]

STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
HOSTNAME_LABEL = "kubernetes.io/hostname"

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProvisionError(Exception):
    """Provisioning cannot go on; `message` is the ProvisioningFailed event text."""

    message: str

    def __str__(self) -> str:
        return self.message


def volume_name(pvc: Obj) -> str:
    """The provisioned volume's name, `pvc-<claim uid>`, as kube names them."""
    return f"pvc-{pvc['metadata']['uid']}"


def external_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation is "
            f"delayed, please verify that the provisioner is running and correctly registered.")


def local_path_volume(pvc: Obj, sc: Obj, node: Obj | None) -> Obj:
    """The PV the local-path provisioner makes for `pvc` on its selected node; raises
    ProvisionError when no node was selected or the node has no storage directory."""
    meta = pvc["metadata"]
    selected = (meta.get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)
    if not selected:
        raise ProvisionError("configuration error, no node was specified")
    if node is None:
        raise ProvisionError(f'nodes "{selected}" not found')
    base = ((node.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PATH_DIR_ANNOTATION)
    if not base:
        raise ProvisionError(f'node "{selected}" has no local-path storage directory '
                             f"(annotation {LOCAL_PATH_DIR_ANNOTATION}); is its agent running?")
    if (pvc.get("spec") or {}).get("volumeMode") == "Block":
        raise ProvisionError("local-path provisioner does not support block volumes")
    name = volume_name(pvc)
    path = f"{base.rstrip('/')}/{name}_{meta['namespace']}_{meta['name']}"
    hostname = ((node.get("metadata") or {}).get("labels") or {}).get(HOSTNAME_LABEL, selected)
    spec = pvc.get("spec") or {}
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name,
                     "labels": {LOCAL_PATH_NODE_LABEL: selected}
                     if not is_valid_label_value(selected) else {},
                     "annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER,
                                     LOCAL_PATH_NODE_ANNOTATION: selected},
                     "finalizers": [LOCAL_PATH_FINALIZER]},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(pvc),
            "volumeMode": "Filesystem",
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                         "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")},
        },
    }
