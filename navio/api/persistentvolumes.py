"""Which PersistentVolume a claim may bind to: the matching rules the PV controller and the
scheduler's VolumeBinding plugin share (pkg/controller/volume/persistentvolume/util, v1.32).

- A claim's class is the beta annotation `volume.beta.kubernetes.io/storage-class` if present,
  else `spec.storageClassName`, else "" (no class); a volume's likewise. Classes must be equal.
- A volume pre-bound to the claim (`spec.claimRef` names it, and its uid if the ref has one)
  wins at once if it is big enough, has the access modes and its node affinity admits the
  node; a volume bound or pre-bound to another claim never matches.
- Otherwise only Available volumes compete (and none when binding is delayed to the
  scheduler): same class, same volumeMode, the claim's selector matches the volume's labels,
  the volume's access modes include all of the claim's, capacity >= request, node affinity
  admits the node (when a node is given). The smallest such volume wins; ties keep list order.
Pure functions over JSON dicts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from navio.api.nodeaffinity import term_matches
from navio.api.quantity import QuantityError
from navio.api.selectors import label_selector_from_spec
from navio.api.validation.resources import parse_json_quantity

__all__ = ["BETA_CLASS_ANNOTATION", "SELECTED_NODE_ANNOTATION", "claim_class", "volume_class",
           "storage_request", "volume_capacity", "volume_admits_node", "claim_matches_ref",
           "find_matching_volume", "pod_claim_names", "is_default_class", "PROVISIONED_BY",
           "LOCAL_PATH_PROVISIONER", "LOCAL_PATH_DIR_ANNOTATION", "LOCAL_PATH_NODE_ANNOTATION",
           "LOCAL_PATH_FINALIZER", "LOCAL_PATH_NODE_LABEL",
           "attachment_name", "attach_required"]

BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
# The built-in local-path provisioner (k3s's name). The controller manager creates the PV; the
# agent of the node named by LOCAL_PATH_NODE_ANNOTATION makes the directory and, when the PV
# is deleted with reclaim policy Delete, removes it and then the finalizer. Each agent
# publishes its storage directory on its Node as LOCAL_PATH_DIR_ANNOTATION.
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_DIR_ANNOTATION = "navio.dev/local-path-dir"
LOCAL_PATH_NODE_ANNOTATION = "local.path.provisioner/selected-node"
LOCAL_PATH_FINALIZER = "navio.dev/local-path-cleanup"
# Also a label (when the node name is a valid label value) so that an agent watches only its
# own volumes.
LOCAL_PATH_NODE_LABEL = "navio.dev/local-path-node"
_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class",
                  "storageclass.beta.kubernetes.io/is-default-class")

Obj = Mapping[str, Any]


def _annotations(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def claim_class(pvc: Obj) -> str:
    """storagehelpers.GetPersistentVolumeClaimClass."""
    ann = _annotations(pvc)
    if BETA_CLASS_ANNOTATION in ann:
        return str(ann[BETA_CLASS_ANNOTATION])
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def volume_class(pv: Obj) -> str:
    """storagehelpers.GetPersistentVolumeClass."""
    ann = _annotations(pv)
    if BETA_CLASS_ANNOTATION in ann:
        return str(ann[BETA_CLASS_ANNOTATION])
    return str((pv.get("spec") or {}).get("storageClassName") or "")


def is_default_class(sc: Obj) -> bool:
    return any(_annotations(sc).get(a) == "true" for a in _DEFAULT_CLASS)


def _quantity(raw: Any) -> int | None:
    if raw is None:
        return None
    try:
        q = parse_json_quantity(raw)
    except QuantityError:
        return None
    return int(q.amount) if q.amount == int(q.amount) else int(q.amount) + 1


def storage_request(pvc: Obj) -> int:
    """The claim's `resources.requests[storage]` in bytes (0 when absent or malformed)."""
    raw = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return _quantity(raw) or 0


def volume_capacity(pv: Obj) -> int:
    return _quantity(((pv.get("spec") or {}).get("capacity") or {}).get("storage")) or 0


def volume_admits_node(pv: Obj, node: Obj | None) -> bool:
    """The volume's required node affinity admits `node` (always, without affinity)."""
    if node is None:
        return True
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if required is None:
        return True
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    return any(term_matches(t, labels, meta.get("name", ""))
               for t in required.get("nodeSelectorTerms") or ())


def claim_matches_ref(pvc: Obj, ref: Obj | None) -> bool:
    """`ref` (a volume's claimRef) names this claim: same namespace and name, and the same
    uid unless the ref has none (pre-bound by name)."""
    if not ref:
        return False
    meta = pvc.get("metadata") or {}
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def _modes_ok(pv: Obj, pvc: Obj) -> bool:
    have = set((pv.get("spec") or {}).get("accessModes") or ())
    return set((pvc.get("spec") or {}).get("accessModes") or ()) <= have


def _volume_mode(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("volumeMode") or "Filesystem")


def find_matching_volume(pvc: Obj, volumes: Iterable[Obj], *, node: Obj | None = None,
                         delay_binding: bool = False) -> Obj | None:
    """The volume `pvc` should bind to (see the module docstring), or None."""
    request = storage_request(pvc)
    cls = claim_class(pvc)
    spec = pvc.get("spec") or {}
    selector = label_selector_from_spec(spec["selector"]) if spec.get("selector") else None
    best: Obj | None = None
    best_size = 0
    for pv in volumes:
        pv_spec = pv.get("spec") or {}
        if (pv.get("metadata") or {}).get("deletionTimestamp"):
            continue
        size = volume_capacity(pv)
        if _volume_mode(pv) != _volume_mode(pvc):
            continue
        ref = pv_spec.get("claimRef")
        if ref:
            if claim_matches_ref(pvc, ref) and size >= request and _modes_ok(pv, pvc) and \
                    volume_admits_node(pv, node):
                return pv
            continue
        if (pv.get("status") or {}).get("phase") != "Available" or delay_binding:
            continue
        if selector is not None and not selector.matches(
                (pv.get("metadata") or {}).get("labels") or {}):
            continue
        if volume_class(pv) != cls or not _modes_ok(pv, pvc) or size < request:
            continue
        if not volume_admits_node(pv, node):
            continue
        if best is None or size < best_size:
            best, best_size = pv, size
    return best


def pod_claim_names(pod: Obj) -> list[tuple[str, str, bool]]:
    """(volume name, claim name, readOnly) for each claim the pod uses, generic ephemeral
    volumes included (their claim is `<pod>-<volume>`)."""
    out = []
    pod_name = (pod.get("metadata") or {}).get("name", "")
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        src = vol.get("persistentVolumeClaim")
        if src is not None:
            out.append((vol.get("name", ""), src.get("claimName", ""), bool(src.get("readOnly"))))
        elif vol.get("ephemeral") is not None:
            out.append((vol.get("name", ""), f"{pod_name}-{vol.get('name', '')}", False))
    return out


def attachment_name(volume_handle: str, driver: str, node: str) -> str:
    """The VolumeAttachment name kube derives for a CSI volume on a node:
    `csi-<hex sha256 of handle + driver + node>`."""
    return "csi-" + hashlib.sha256(f"{volume_handle}{driver}{node}".encode()).hexdigest()


def attach_required(csi_driver: Obj | None) -> bool:
    """A CSI volume needs a VolumeAttachment unless its CSIDriver says attachRequired false
    (no CSIDriver object means attach, as in kube)."""
    if csi_driver is None:
        return True
    return (csi_driver.get("spec") or {}).get("attachRequired") is not False
