"""Persistent storage API (issue 13): PV/PVC/StorageClass validation with kube's messages,
storage.k8s.io defaults, and the `kubectl get pv,pvc,sc,...` table cells."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from navio.api.defaults import apply_defaults, prepare_for_create
from navio.api.registry import default_registry
from navio.api.tables import table_cells, table_columns
from navio.api.validation import validate

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _lines(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None
           ) -> list[str]:
    obj = copy.deepcopy(obj)
    apply_defaults(group, kind, obj)
    if old is None:
        prepare_for_create(group, kind, obj)
    else:
        old = copy.deepcopy(old)
        apply_defaults(group, kind, old)
    return [f"{c['field']}: {c['message']}" for c in validate(group, kind, obj, old)]


def _pv(**spec: Any) -> dict[str, Any]:
    base = {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/data"}}
    base.update(spec)
    return {"metadata": {"name": "pv1"}, "spec": {k: v for k, v in base.items() if v is not None}}


def _pvc(name: str = "c", **spec: Any) -> dict[str, Any]:
    base = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
            "spec": {k: v for k, v in base.items() if v is not None}}


def _sc(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "fast", "resourceVersion": "1"}, "provisioner": "example.com/x",
            **fields}


@pytest.mark.parametrize("obj,want", [
    pytest.param(_pvc(accessModes=["ReadWriteSometimes"]),
                 ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
                  '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'],
                 id="a claim with an unknown access mode names the field"),
    pytest.param(_pvc(resources={"requests": {"storage": "-1Gi"}}),
                 ['spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero'],
                 id="a negative size is refused"),
    pytest.param(_pvc(volumeMode="Disk"),
                 ['spec.volumeMode: Unsupported value: "Disk": supported values: "Block", '
                  '"Filesystem"'], id="volumeMode must be Block or Filesystem"),
])
def test_invalid_claims(obj: dict[str, Any], want: list[str]) -> None:
    assert _lines("", "PersistentVolumeClaim", obj) == want


@pytest.mark.parametrize("obj,want", [
    pytest.param(_pv(), [], id="a hostPath volume is valid"),
    pytest.param(_pv(accessModes=None), ["spec.accessModes: Required value"],
                 id="a volume needs access modes"),
    pytest.param(_pv(capacity={"storage": "0"}),
                 ['spec.capacity[storage]: Invalid value: "0": must be greater than zero'],
                 id="capacity must be positive"),
    pytest.param(_pv(hostPath=None), ["spec: Required value: must specify a volume type"],
                 id="a volume needs a source"),
    pytest.param(_pv(nfs={"server": "s", "path": "/x"}),
                 ["spec.nfs: Forbidden: may not specify more than 1 volume type"],
                 id="only one source"),
    pytest.param(_pv(hostPath=None, local={"path": "/mnt/disk"}),
                 ["spec.nodeAffinity: Required value: Local volume requires node affinity"],
                 id="a local volume needs node affinity"),
    pytest.param(_pv(persistentVolumeReclaimPolicy="Recycle", hostPath={"path": "/"}),
                 ["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a "
                  "hostPath mount of '/'"], id="recycling / is forbidden"),
])
def test_volume_validation(obj: dict[str, Any], want: list[str]) -> None:
    assert _lines("", "PersistentVolume", obj) == want


def test_volume_source_is_immutable() -> None:
    old = _pv()
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["spec"]["hostPath"]["path"] = "/other"
    assert "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable " \
        "after creation" in _lines("", "PersistentVolume", new, old)


def test_claim_spec_is_immutable_but_volume_name_may_be_set_once() -> None:
    old = _pvc()
    bound = copy.deepcopy(old)
    bound["spec"]["volumeName"] = "pv1"
    assert _lines("", "PersistentVolumeClaim", bound, old) == []
    changed = copy.deepcopy(bound)
    changed["spec"]["volumeName"] = "pv2"
    assert _lines("", "PersistentVolumeClaim", changed, bound) == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"]


def test_claim_class_may_go_from_unset_to_a_value_once() -> None:
    old = _pvc()
    new = _pvc(storageClassName="local-path")
    assert _lines("", "PersistentVolumeClaim", new, old) == []
    other = _pvc(storageClassName="fast")
    assert _lines("", "PersistentVolumeClaim", other, new) != []


def test_bound_claim_may_grow_but_not_shrink() -> None:
    old = _pvc()
    old["status"] = {"phase": "Bound"}
    grow = copy.deepcopy(old)
    grow["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert _lines("", "PersistentVolumeClaim", grow, old) == []
    shrink = copy.deepcopy(grow)
    shrink["spec"]["resources"]["requests"]["storage"] = "1Gi"
    assert _lines("", "PersistentVolumeClaim", shrink, grow) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value"]


def test_storage_class_defaults_and_immutability() -> None:
    sc = _sc()
    apply_defaults("storage.k8s.io", "StorageClass", sc)
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    new = copy.deepcopy(sc)
    new["parameters"] = {"a": "b"}
    new["provisioner"] = "other.io/y"
    new["reclaimPolicy"] = "Retain"
    new["volumeBindingMode"] = "WaitForFirstConsumer"
    assert _lines("storage.k8s.io", "StorageClass", new, sc) == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']


@pytest.mark.parametrize("sc,want", [
    pytest.param(_sc(provisioner=""), ["provisioner: Required value"],
                 id="a class needs a provisioner"),
    pytest.param(_sc(reclaimPolicy="Recycle"),
                 ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", '
                  '"Retain"'], id="classes cannot recycle"),
    pytest.param(_sc(volumeBindingMode="Later"),
                 ['volumeBindingMode: Unsupported value: "Later": supported values: '
                  '"Immediate", "WaitForFirstConsumer"'], id="binding mode is one of two"),
])
def test_storage_class_validation(sc: dict[str, Any], want: list[str]) -> None:
    assert _lines("storage.k8s.io", "StorageClass", sc) == want


def test_csi_driver_defaults_are_valid() -> None:
    d = {"metadata": {"name": "hostpath.csi.k8s.io"}}
    apply_defaults("storage.k8s.io", "CSIDriver", d)
    assert d["spec"]["attachRequired"] is True
    assert d["spec"]["volumeLifecycleModes"] == ["Persistent"]
    assert _lines("storage.k8s.io", "CSIDriver", d) == []


def test_storage_kinds_are_registered_cluster_scoped() -> None:
    reg = default_registry()
    sc = reg.resource("storage.k8s.io", "v1", "storageclasses")
    assert sc is not None and not sc.namespaced and sc.short_names == ("sc",)
    for plural in ("csidrivers", "csinodes", "volumeattachments"):
        k = reg.resource("storage.k8s.io", "v1", plural)
        assert k is not None and not k.namespaced


def test_storage_class_row_marks_the_default() -> None:
    sc = {"metadata": {"name": "local-path", "creationTimestamp": "2025-12-31T23:00:00Z",
                       "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
          "volumeBindingMode": "WaitForFirstConsumer"}
    names = [c["name"] for c in table_columns("storage.k8s.io", "StorageClass")]
    assert names == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                     "AllowVolumeExpansion", "Age"]
    assert table_cells("storage.k8s.io", "StorageClass", sc, NOW) == [
        "local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
        False, "60m"]


def test_volume_attachment_row() -> None:
    va = {"metadata": {"name": "csi-1", "creationTimestamp": "2025-12-31T23:59:00Z"},
          "spec": {"attacher": "x.csi", "nodeName": "n1",
                   "source": {"persistentVolumeName": "pv1"}},
          "status": {"attached": True}}
    assert table_cells("storage.k8s.io", "VolumeAttachment", va, NOW) == [
        "csi-1", "x.csi", "pv1", "n1", True, "60s"]
