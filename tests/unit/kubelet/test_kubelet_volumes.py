"""Volume materialisation and the atomic writer (issue 7)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from navio.kubelet.atomicwriter import AtomicWriter, FileProjection, PayloadError
from navio.kubelet.volumes import VolumeError, VolumeManager

OBJECTS: dict[tuple[str, str], dict[str, Any]] = {}


async def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, name))


@pytest.fixture(autouse=True)
def objects():
    OBJECTS.clear()
    OBJECTS[("configmap", "cfg")] = {"data": {"app.conf": "port=80\n", "mode": "fast"},
                                     "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}}
    OBJECTS[("secret", "creds")] = {"data": {"password": base64.b64encode(b"s3cret").decode(),
                                             "user": base64.b64encode(b"admin").decode()}}
    yield


def pod(*volumes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1",
                         "labels": {"b": "2", "a": "1"}},
            "spec": {"nodeName": "n", "volumes": list(volumes),
                     "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}}


def manager(tmp_path: Path) -> VolumeManager:
    return VolumeManager(tmp_path / "pods", lookup, allocatable=lambda: {"memory": "1Gi"},
                         tmpfs=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def setup(tmp_path: Path, *volumes: dict[str, Any]) -> Any:
    return await manager(tmp_path).setup(pod(*volumes), host_ips=["192.168.1.2"],
                                         pod_ips=["10.0.0.9"])


async def test_config_map_volume_has_every_key_with_the_default_mode(tmp_path):
    vols = await setup(tmp_path, {"name": "config", "configMap": {"name": "cfg"}})
    d = Path(vols.paths["config"])
    assert d == tmp_path / "pods/uid-1/volumes/kubernetes.io~configmap/config"
    assert (d / "app.conf").read_text() == "port=80\n"
    assert (d / "blob").read_bytes() == b"\x00\x01"
    assert mode(d / "mode") == 0o644
    assert os.readlink(d / "app.conf") == "..data/app.conf"
    assert "config" in vols.read_only


async def test_secret_items_pick_keys_paths_and_modes(tmp_path):
    vols = await setup(tmp_path, {"name": "s", "secret": {
        "secretName": "creds", "defaultMode": 0o400,
        "items": [{"key": "password", "path": "db/pw"}, {"key": "user", "path": "u",
                                                          "mode": 0o440}]}})
    d = Path(vols.paths["s"])
    assert (d / "db/pw").read_text() == "s3cret" and mode(d / "db/pw") == 0o400
    assert mode(d / "u") == 0o440
    assert not (d / "password").exists()


async def test_missing_objects_fail_the_mount_with_the_kubelet_message(tmp_path):
    with pytest.raises(VolumeError) as err:
        await setup(tmp_path, {"name": "cfg", "configMap": {"name": "nope"}})
    assert str(err.value) == 'MountVolume.SetUp failed for volume "cfg" : configmap "nope" ' \
                             "not found"
    with pytest.raises(VolumeError) as err:
        await setup(tmp_path, {"name": "cfg", "configMap": {"name": "cfg",
                                                            "items": [{"key": "x", "path": "x"}]}})
    assert "configmap references non-existent config key: x" in str(err.value)


async def test_optional_missing_objects_give_an_empty_volume(tmp_path):
    vols = await setup(tmp_path, {"name": "cfg", "configMap": {"name": "nope", "optional": True}})
    assert [p for p in os.listdir(vols.paths["cfg"]) if not p.startswith("..")] == []


async def test_downward_api_volume_formats_labels_and_resources(tmp_path):
    vols = await setup(tmp_path, {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}}]}})
    d = Path(vols.paths["info"])
    assert (d / "labels").read_text() == 'a="1"\nb="2"'
    assert (d / "name").read_text() == "p"
    assert (d / "mem").read_text() == "64"


async def test_projected_volume_merges_sources_and_skips_tokens_with_a_warning(tmp_path):
    vols = await setup(tmp_path, {"name": "all", "projected": {"sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "mode", "path": "mode"}]}},
        {"secret": {"name": "creds", "items": [{"key": "user", "path": "user"}]}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath":
                                                               "metadata.namespace"}}]}},
        {"serviceAccountToken": {"path": "token"}}]}})
    d = Path(vols.paths["all"])
    assert sorted(p for p in os.listdir(d) if not p.startswith("..")) == ["mode", "ns", "user"]
    assert "serviceAccountToken" in vols.warnings[0]


async def test_empty_dir_and_host_path(tmp_path):
    host = tmp_path / "host-data"
    vols = await setup(tmp_path, {"name": "scratch", "emptyDir": {}},
                       {"name": "h", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}})
    assert mode(Path(vols.paths["scratch"])) == 0o777
    assert vols.paths["h"] == str(host) and host.is_dir()
    assert "scratch" not in vols.read_only
    with pytest.raises(VolumeError) as err:
        await setup(tmp_path, {"name": "f", "hostPath": {"path": str(host), "type": "File"}})
    assert f"hostPath type check failed: {host} is not a file" in str(err.value)


async def test_unsupported_volume_types_are_refused(tmp_path):
    with pytest.raises(VolumeError, match="nfs is not supported"):
        await setup(tmp_path, {"name": "data", "nfs": {"server": "s", "path": "/x"}})


async def test_cleanup_removes_the_pod_directory(tmp_path):
    m = manager(tmp_path)
    await m.setup(pod({"name": "config", "configMap": {"name": "cfg"}}), host_ips=[], pod_ips=[])
    await m.cleanup("uid-1")
    assert not (tmp_path / "pods/uid-1").exists()


def test_atomic_writer_swaps_the_whole_payload_and_removes_old_entries(tmp_path):
    w = AtomicWriter(tmp_path / "v")
    assert w.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2")})
    first = os.readlink(tmp_path / "v/..data")
    assert not w.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2")})
    assert w.write({"a": FileProjection(b"new"), "c": FileProjection(b"3", 0o600)})
    assert os.readlink(tmp_path / "v/..data") != first
    assert not (tmp_path / "v" / first).exists()
    assert (tmp_path / "v/a").read_bytes() == b"new"
    assert not (tmp_path / "v/dir").exists()
    assert mode(tmp_path / "v/c") == 0o600


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "..data/x", "a//b"])
def test_atomic_writer_refuses_paths_outside_the_volume(tmp_path, path):
    with pytest.raises(PayloadError):
        AtomicWriter(tmp_path / "v").write({path: FileProjection(b"x")})
    assert not (tmp_path / "v").exists() or os.listdir(tmp_path / "v") == []
