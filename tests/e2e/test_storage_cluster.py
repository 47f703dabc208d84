"""Persistent storage on the whole `navio server` with its local agent (issue 13).

A claim on the default `local-path` class is provisioned on the node its pod is scheduled to;
data written by one pod is read back by its replacement; a StatefulSet's replicas keep their
own volumes across pod deletion and a scale down and up; a claim in use stays Terminating
until its pod is gone; Delete reclaim removes the directory while Retain keeps it and leaves
the volume Released. The agent runs as root in the host's network namespace, as in
test_cluster.py; pods only touch files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

_WRITER = ("import os,time; p='/data/msg'; "
           "open(p,'a').write(os.environ['MSG']+'\\n') if os.environ.get('MSG') else None; "
           "print('content:'+open(p).read().replace('\\n','|') if os.path.exists(p) "
           "else 'content:none', flush=True); time.sleep(3600)")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    srv = NavioServer(tmp_path_factory.mktemp("storage") / "data", extra_args=()).start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("storagehome"))
    try:
        wait_for(lambda: "Ready" in kubectl("get", "nodes", "--no-headers"), 60,
                 "the local node to be Ready")
        yield srv, kubectl
    finally:
        for kind in ("statefulset", "pod"):
            kubectl("delete", kind, "--all", "-A", "--wait=true", "--timeout=60s",
                    check=False, timeout=70)
        kubectl("delete", "pvc", "--all", "-A", "--wait=false", check=False)
        srv.stop()


@pytest.fixture
def space(full: tuple[NavioServer, Kubectl], request: pytest.FixtureRequest) -> Iterator[str]:
    _, kubectl = full
    name = "st-" + request.node.name.lower().replace("_", "-")[5:40].strip("-")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _apply(kubectl: Kubectl, ns: str, *objs: dict) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objs))


def _claim(name: str, cls: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    if cls:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec}


def _pod(name: str, claim: str, msg: str = "") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "python", "command": ["python3", "-c", _WRITER],
                        "env": [{"name": "MSG", "value": msg}],
                        "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}


def _content(kubectl: Kubectl, ns: str, pod: str) -> str:
    def seen() -> str:
        for line in kubectl("logs", pod, "-n", ns, check=False).splitlines():
            if line.startswith("content:"):
                return line[len("content:"):]
        return ""
    return wait_for(seen, 90, f"pod {pod} to print what it found")


def _volume_of(kubectl: Kubectl, ns: str, claim: str) -> dict:
    name = kubectl("get", "pvc", claim, "-n", ns, "-o", "jsonpath={.spec.volumeName}")
    return json.loads(kubectl("get", "pv", name, "-o", "json"))


def test_default_class_claim_binds_when_its_pod_is_scheduled_and_data_survives(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    _apply(kubectl, space, _claim("data"))
    assert kubectl("get", "pvc", "data", "-n", space, "-o",
                   "jsonpath={.status.phase}") == "Pending"
    _apply(kubectl, space, _pod("writer", "data", msg="hello"))
    wait_for(lambda: kubectl("get", "pvc", "data", "-n", space, "-o",
                             "jsonpath={.status.phase}") == "Bound", 60, "the claim to bind")
    pv = _volume_of(kubectl, space, "data")
    node = kubectl("get", "pod", "writer", "-n", space, "-o", "jsonpath={.spec.nodeName}")
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [node]
    assert pv["spec"]["storageClassName"] == "local-path"
    assert _content(kubectl, space, "writer") == "hello|"
    kubectl("delete", "pod", "writer", "-n", space, "--timeout=60s", timeout=70)
    _apply(kubectl, space, _pod("reader", "data"))
    assert _content(kubectl, space, "reader") == "hello|"
    assert Path(pv["spec"]["hostPath"]["path"], "msg").read_text() == "hello\n"


def test_statefulset_replicas_keep_their_own_volumes(full: tuple[NavioServer, Kubectl],
                                                     space: str) -> None:
    _, kubectl = full
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
           "spec": {"serviceName": "web", "replicas": 2, "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "python", "command": [
                            "python3", "-c", _WRITER.replace(
                                "os.environ['MSG']", "os.environ['HOSTNAME']").replace(
                                "os.environ.get('MSG')", "os.environ.get('HOSTNAME')")],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                    "volumeClaimTemplates": [_claim("data") | {"metadata": {"name": "data"}}]}}
    _apply(kubectl, space, sts)
    for i in (0, 1):
        assert _content(kubectl, space, f"web-{i}") == f"web-{i}|"
    claims = kubectl("get", "pvc", "-n", space, "-o", "jsonpath={.items[*].metadata.name}")
    assert sorted(claims.split()) == ["data-web-0", "data-web-1"]
    kubectl("delete", "pod", "web-0", "-n", space, "--timeout=60s", timeout=70)
    wait_for(lambda: "web-0|web-0|" == _content(kubectl, space, "web-0"), 90,
             "web-0 to come back to its own volume")
    kubectl("scale", "statefulset", "web", "-n", space, "--replicas=1")
    wait_for(lambda: kubectl("get", "pod", "web-1", "-n", space, check=False) == "", 90,
             "web-1 to be removed by the scale down")
    assert "data-web-1" in kubectl("get", "pvc", "-n", space)
    kubectl("scale", "statefulset", "web", "-n", space, "--replicas=2")
    wait_for(lambda: _content(kubectl, space, "web-1") == "web-1|web-1|", 90,
             "web-1 to be back on its old volume")


def test_when_scaled_delete_removes_the_claims_of_scaled_away_replicas(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 2, "podManagementPolicy": "Parallel",
                    "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete",
                                                             "whenDeleted": "Retain"},
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "python", "command": [
                            "python3", "-c", _WRITER],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                    "volumeClaimTemplates": [_claim("data") | {"metadata": {"name": "data"}}]}}
    _apply(kubectl, space, sts)
    for i in (0, 1):
        assert _content(kubectl, space, f"db-{i}") == "none"
    directory = Path(_volume_of(kubectl, space, "data-db-1")["spec"]["hostPath"]["path"])
    kubectl("scale", "statefulset", "db", "-n", space, "--replicas=1")
    wait_for(lambda: kubectl.run("get", "pvc", "data-db-1", "-n", space, check=False)
             .returncode != 0, 90, "the scaled-away replica's claim to be deleted")
    wait_for(lambda: not directory.exists(), 60, "its local-path directory to be removed")
    assert kubectl("get", "pvc", "data-db-0", "-n", space, "-o",
                   "jsonpath={.status.phase}") == "Bound"


def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    _apply(kubectl, space, _claim("busy"), _pod("user", "busy", msg="x"))
    assert _content(kubectl, space, "user") == "x|"
    kubectl("delete", "pvc", "busy", "-n", space, "--wait=false")
    wait_for(lambda: "Terminating" in kubectl("get", "pvc", "busy", "-n", space,
                                              "--no-headers"), 30, "the claim Terminating")
    assert "Terminating" in kubectl("get", "pvc", "busy", "-n", space, "--no-headers")
    kubectl("delete", "pod", "user", "-n", space, "--timeout=60s", timeout=70)
    wait_for(lambda: kubectl.run("get", "pvc", "busy", "-n", space, check=False)
             .returncode != 0, 60, "the claim to go once its pod is gone")


_SUB_RO = ("import os,time; open('/sub/x','w').write('x'); "
           "err='none'\n"
           "try: open('/ro/y','w').write('y')\n"
           "except OSError as e: err=e.strerror\n"
           "print('ro:'+err+' sub:'+open('/sub/x').read(), flush=True); time.sleep(3600)")


def test_a_pod_with_an_unbound_immediate_claim_is_unschedulable(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    cls = f"{space}-ext"
    kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
        "provisioner": "example.com/absent"}))
    try:
        _apply(kubectl, space, _claim("ext", cls), _pod("waiter", "ext"))

        def events(name: str) -> list[tuple[str, str]]:
            items = json.loads(kubectl("get", "events", "-n", space, "--field-selector",
                                       f"involvedObject.name={name}", "-o", "json"))["items"]
            return [(e["reason"], e["message"]) for e in items]
        wait_for(lambda: any(r == "FailedScheduling" and "pod has unbound immediate "
                             "PersistentVolumeClaims" in m for r, m in events("waiter")), 60,
                 "FailedScheduling naming the unbound immediate claim")
        assert ("ExternalProvisioning", "Waiting for a volume to be created either by the "
                "external provisioner 'example.com/absent' or manually by the system "
                "administrator. If volume creation is delayed, please verify that the "
                "provisioner is running and correctly registered.") in events("ext")
        assert kubectl("get", "pod", "waiter", "-n", space, "-o",
                       "jsonpath={.spec.nodeName}") == ""
    finally:
        kubectl("delete", "sc", cls, "--wait=false", check=False)


def test_sub_path_and_read_only_mounts_of_a_claim(full: tuple[NavioServer, Kubectl],
                                                  space: str) -> None:
    _, kubectl = full
    pod = _pod("sub", "parts")
    container = pod["spec"]["containers"][0]
    container["command"] = ["python3", "-c", _SUB_RO]
    container["volumeMounts"] = [{"name": "d", "mountPath": "/sub", "subPath": "part"},
                                 {"name": "d", "mountPath": "/ro", "readOnly": True}]
    _apply(kubectl, space, _claim("parts"), pod)
    line = wait_for(lambda: next((ln for ln in kubectl("logs", "sub", "-n", space,
                                                       check=False).splitlines()
                                  if ln.startswith("ro:")), ""), 90, "the pod's report")
    assert line == "ro:Read-only file system sub:x"
    directory = Path(_volume_of(kubectl, space, "parts")["spec"]["hostPath"]["path"])
    assert (directory / "part" / "x").read_text() == "x"
    assert not (directory / "y").exists()


def test_a_local_path_claim_grows_when_its_class_allows_expansion(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    cls = f"{space}-grow"
    kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
        "provisioner": "rancher.io/local-path", "allowVolumeExpansion": True,
        "volumeBindingMode": "WaitForFirstConsumer"}))
    try:
        _apply(kubectl, space, _claim("grow", cls), _pod("g", "grow", msg="g"))
        assert _content(kubectl, space, "g") == "g|"
        kubectl("patch", "pvc", "grow", "-n", space, "-p",
                '{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}')
        wait_for(lambda: kubectl("get", "pvc", "grow", "-n", space, "-o",
                                 "jsonpath={.status.capacity.storage}") == "128Mi", 30,
                 "the claim's capacity to grow")
        assert _volume_of(kubectl, space, "grow")["spec"]["capacity"]["storage"] == "128Mi"
    finally:
        kubectl("delete", "sc", cls, "--wait=false", check=False)


def test_delete_reclaim_removes_the_directory_and_retain_keeps_it(
        full: tuple[NavioServer, Kubectl], space: str) -> None:
    _, kubectl = full
    keep = f"{space}-keep"
    kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": keep},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer"}))
    try:
        _apply(kubectl, space, _claim("gone"), _claim("kept", keep),
               _pod("a", "gone", msg="a"), _pod("b", "kept", msg="b"))
        assert _content(kubectl, space, "a") == "a|"
        assert _content(kubectl, space, "b") == "b|"
        gone, kept = _volume_of(kubectl, space, "gone"), _volume_of(kubectl, space, "kept")
        gone_dir, kept_dir = Path(gone["spec"]["hostPath"]["path"]), \
            Path(kept["spec"]["hostPath"]["path"])
        assert gone_dir.is_dir() and kept_dir.is_dir()
        kubectl("delete", "pod", "a", "b", "-n", space, "--timeout=60s", timeout=70)
        kubectl("delete", "pvc", "gone", "kept", "-n", space, "--timeout=60s", timeout=70)
        wait_for(lambda: kubectl.run("get", "pv", gone["metadata"]["name"], check=False)
                 .returncode != 0, 60, "the Delete volume to be removed")
        assert not gone_dir.exists()
        wait_for(lambda: kubectl("get", "pv", kept["metadata"]["name"], "-o",
                                 "jsonpath={.status.phase}") == "Released", 60,
                 "the retained volume to be Released")
        assert (kept_dir / "msg").read_text() == "b\n"
    finally:
        kubectl("delete", "sc", keep, "--wait=false", check=False)
