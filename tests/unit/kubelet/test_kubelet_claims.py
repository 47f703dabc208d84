"""Claim-backed volumes and the node half of local-path (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from navio.kubelet.localpath import inside
from navio.kubelet.volumes import ClaimNotReady, VolumeManager


def _manager(tmp_path: Path, objects: dict[tuple[str, str], dict[str, Any]]) -> VolumeManager:
    async def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return objects.get((kind, name))
    return VolumeManager(tmp_path / "pods", lookup, allocatable=lambda: {}, tmpfs=False)


def _pod(read_only: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {
                "claimName": "c", "readOnly": read_only}}], "containers": []}}


def _claim(phase: str = "Bound", volume: str = "pv1", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "c", "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"volumeName": volume}, "status": {"phase": phase}}


async def test_a_bound_claim_mounts_its_volume_directory(tmp_path: Path) -> None:
    target = tmp_path / "disk" / "pvc-1"
    objects = {("persistentvolumeclaim", "c"): _claim(),
               ("persistentvolume", "pv1"): {"metadata": {"name": "pv1"}, "spec": {
                   "hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}}}
    vols = await _manager(tmp_path, objects).setup(_pod(read_only=True), host_ips=[],
                                                   pod_ips=[])
    assert vols.paths["data"] == str(target) and target.is_dir()
    assert "data" in vols.read_only


@pytest.mark.parametrize("objects,why", [
    pytest.param({}, 'error processing PVC ns/c: failed to fetch PVC from API server: '
                     'persistentvolumeclaims "c" not found', id="missing claim"),
    pytest.param({("persistentvolumeclaim", "c"): _claim("Pending", "")},
                 'error processing PVC ns/c: PVC ns/c has non-bound phase ("Pending") or empty '
                 'pvc.Spec.VolumeName ("")', id="unbound claim"),
    pytest.param({("persistentvolumeclaim", "c"): _claim(deleting=True)},
                 "error processing PVC ns/c: can't start pod because PVC ns/c is being deleted",
                 id="deleting claim"),
    pytest.param({("persistentvolumeclaim", "c"): _claim()},
                 'error processing PVC ns/c: failed to fetch PV pv1 from API server: '
                 'persistentvolumes "pv1" not found', id="missing volume"),
])
async def test_a_claim_not_ready_says_why(tmp_path: Path, objects: dict, why: str) -> None:
    with pytest.raises(ClaimNotReady) as e:
        await _manager(tmp_path, objects).setup(_pod(), host_ips=[], pod_ips=[])
    assert str(e.value) == ("Unable to attach or mount volumes: unmounted volumes=[data], "
                            "unattached volumes=[data], failed to process volumes=[data]: "
                            + why)


@pytest.mark.parametrize("path,ok", [
    ("/var/lib/navio/storage/pvc-1_ns_c", True),
    ("/var/lib/navio/storage", False),
    ("/var/lib/navio/storage/../etc", False),
    ("/etc", False),
])
def test_local_path_touches_only_paths_inside_its_storage_dir(path: str, ok: bool) -> None:
    assert inside(Path("/var/lib/navio/storage"), path) is ok


async def test_a_claim_deleted_under_a_running_pod_keeps_its_mount(tmp_path: Path) -> None:
    target = tmp_path / "disk"
    objects = {("persistentvolumeclaim", "c"): _claim(),
               ("persistentvolume", "pv1"): {"metadata": {"name": "pv1"}, "spec": {
                   "hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}}}
    mgr = _manager(tmp_path, objects)
    first = await mgr.setup(_pod(), host_ips=[], pod_ips=[])
    objects[("persistentvolumeclaim", "c")] = _claim(deleting=True)
    again = await mgr.setup(_pod(), host_ips=[], pod_ips=[])
    assert again.paths == first.paths
    await mgr.cleanup("u1")
    with pytest.raises(ClaimNotReady):
        await mgr.setup(_pod(), host_ips=[], pod_ips=[])
