"""CSI end to end (issue 13): a Python test driver registers with the agent through the
plugin-registration socket, is listed in the node's CSINode, provisions a claim through a
StorageClass naming it (CreateVolume by navio's provisioner), is staged and published for the
pod after attaching it (VolumeAttachment, ControllerPublishVolume, whose publish context reaches
NodeStageVolume and NodePublishVolume with the pod's target path), sees the pod's data, and
gets the reverse calls (NodeUnpublishVolume, NodeUnstageVolume, ControllerUnpublishVolume,
DeleteVolume) as the pod and the claim go. Runs on `navio server` with its agent as root, as test_cluster.py does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

DRIVER = "csi.navio.test"
_WRITER = ("import time; open('/data/msg','w').write('from the pod\\n'); "
           "print('written', flush=True); time.sleep(3600)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[NavioServer, Kubectl, Path]]:
    base = tmp_path_factory.mktemp("csi")
    srv = NavioServer(base / "data", extra_args=()).start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("csihome"))
    driver: subprocess.Popen[str] | None = None
    driver_log = open(base / "driver.log", "w")
    try:
        wait_for(lambda: "Ready" in kubectl("get", "nodes", "--no-headers"), 60,
                 "the local node to be Ready")
        node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
        driver = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("csi_driver.py")), "--name", DRIVER,
             "--registry", str(base / "data" / "agent" / "plugins_registry"),
             "--socket", str(base / "csi.sock"), "--state", str(base / "state"),
             "--log", str(base / "calls.jsonl"), "--node-id", node],
            stdout=subprocess.PIPE, stderr=driver_log, text=True)
        assert driver.stdout is not None
        assert "csi driver ready" in driver.stdout.readline()
        yield srv, kubectl, base
    finally:
        kubectl("delete", "pod", "--all", "-A", "--wait=true", "--timeout=60s", check=False,
                timeout=70)
        kubectl("delete", "pvc", "--all", "-A", "--wait=true", "--timeout=60s", check=False,
                timeout=70)
        kubectl("delete", "csidriver", DRIVER, "--wait=false", check=False)
        if driver is not None:
            driver.terminate()
            try:
                driver.wait(10)
            except subprocess.TimeoutExpired:
                driver.kill()
                driver.wait(5)
            if driver.stdout:
                driver.stdout.close()
        driver_log.close()
        srv.stop()
        _unmount_below(base)


def _unmount_below(base: Path) -> None:
    """Bind mounts the driver made and a failed test left behind (none when all went well)."""
    root = str(base.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        leftovers = [line.split()[4] for line in f if line.split()[4].startswith(root)]
    for path in sorted(leftovers, reverse=True):
        subprocess.run(["umount", path], check=False)


def _calls(base: Path, method: str) -> list[dict]:
    path = base / "calls.jsonl"
    if not path.exists():
        return []
    return [c["request"] for c in map(json.loads, path.read_text().splitlines())
            if c["method"] == method]


def test_a_csi_driver_registers_provisions_and_publishes(
        cluster: tuple[NavioServer, Kubectl, Path]) -> None:
    _, kubectl, base = cluster
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    wait_for(lambda: DRIVER in kubectl("get", "csinode", node, "-o",
                                       "jsonpath={.spec.drivers[*].name}", check=False), 30,
             "the driver to be listed in the node's CSINode")
    assert kubectl("get", "csinode", node, "--no-headers").split()[:2] == [node, "1"]
    assert _calls(base, "NotifyRegistrationStatus")[0].get("pluginRegistered") is True
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": DRIVER},
         "spec": {"attachRequired": True, "podInfoOnMount": True}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "test-csi"}, "provisioner": DRIVER,
         "parameters": {"tier": "gold"}, "volumeBindingMode": "WaitForFirstConsumer"},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
            "name": "vol", "namespace": "default"},
         "spec": {"storageClassName": "test-csi", "accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "32Mi"}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user", "namespace": "default"},
         "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
             "name": "c", "image": "python", "command": ["python3", "-c", _WRITER],
             "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
             "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "vol"}}]}}]))
    wait_for(lambda: "written" in kubectl("logs", "user", check=False), 90,
             "the pod to write into its CSI volume")
    create = _calls(base, "CreateVolume")
    assert len(create) == 1 and create[0]["parameters"] == {"tier": "gold"}
    assert int(create[0]["capacityRange"]["requiredBytes"]) == 32 * 1024 * 1024
    volume_id = create[0]["name"]
    pv = json.loads(kubectl("get", "pv", volume_id, "-o", "json"))
    assert pv["spec"]["csi"]["driver"] == DRIVER
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == DRIVER
    uid = kubectl("get", "pod", "user", "-o", "jsonpath={.metadata.uid}")
    publish = _calls(base, "NodePublishVolume")
    assert len(publish) == 1
    assert publish[0]["targetPath"].endswith(f"/pods/{uid}/volumes/kubernetes.io~csi/d/mount")
    assert publish[0]["volumeContext"] == {
        "origin": "navio-test-driver", "csi.storage.k8s.io/pod.name": "user",
        "csi.storage.k8s.io/pod.namespace": "default", "csi.storage.k8s.io/pod.uid": uid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "false"}
    stage = _calls(base, "NodeStageVolume")
    assert stage and publish[0]["stagingTargetPath"] == stage[0]["stagingTargetPath"]
    attach = _calls(base, "ControllerPublishVolume")
    assert attach[0]["volumeId"] == volume_id and attach[0]["nodeId"] == node
    device = {"device": f"/dev/navio-test/{volume_id}"}
    assert stage[0]["publishContext"] == device == publish[0]["publishContext"]
    va = kubectl("get", "volumeattachment", "--no-headers").split()
    assert va[1:5] == [DRIVER, volume_id, node, "true"]
    assert (base / "state" / "volumes" / volume_id / "msg").read_text() == "from the pod\n"
    kubectl("delete", "pod", "user", "--timeout=60s", timeout=70)
    wait_for(lambda: _calls(base, "NodeUnstageVolume"), 30, "NodeUnstageVolume")
    assert _calls(base, "NodeUnpublishVolume")[0]["targetPath"] == publish[0]["targetPath"]
    wait_for(lambda: _calls(base, "ControllerUnpublishVolume"), 30, "the volume's detach")
    wait_for(lambda: kubectl("get", "volumeattachment", "--no-headers") == "", 30,
             "the VolumeAttachment to be gone")
    kubectl("delete", "pvc", "vol", "--timeout=60s", timeout=70)
    wait_for(lambda: _calls(base, "DeleteVolume"), 60, "DeleteVolume")
    assert _calls(base, "DeleteVolume")[0]["volumeId"] == volume_id
    wait_for(lambda: kubectl.run("get", "pv", volume_id, check=False).returncode != 0, 60,
             "the provisioned PV to be gone")
