"""Persistent storage through the API and the PV controller, with the real kubectl (issue 13).

Runs on the session server (controller manager and scheduler, no agent): StorageClasses and
their table, 422s for invalid claims, binding to static volumes (smallest fit), Retain,
the missing-class event, the default class and WaitForFirstConsumer, and claim protection
with a pod placed on a Node object the test creates (no kubelet runs it).
"""

from __future__ import annotations

import json

import yaml

from cluster import Kubectl, wait_for


def _apply(kubectl: Kubectl, ns: str, *objs: dict, check: bool = True):
    return kubectl.run("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objs),
                       check=check)


def _pvc(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
         cls: str | None = None, **spec: object) -> dict:
    body: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                  **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": body}


def _pv(name: str, size: str, path: str, policy: str = "Retain", cls: str = "",
        labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": policy, "storageClassName": cls,
                     "hostPath": {"path": path}}}


def _phase(kubectl: Kubectl, kind: str, name: str, ns: str | None = None) -> str:
    args = ["get", kind, name, "-o", "jsonpath={.status.phase}"]
    if ns:
        args += ["-n", ns]
    return kubectl(*args, check=False)


def _events(kubectl: Kubectl, ns: str, name: str) -> list[dict]:
    return json.loads(kubectl("get", "events", "-n", ns, "--field-selector",
                              f"involvedObject.name={name}", "-o", "json"))["items"]


def test_local_path_is_the_default_class(kubectl: Kubectl) -> None:
    out = kubectl("get", "sc")
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                              "ALLOWVOLUMEEXPANSION", "AGE"]
    assert row.split()[:6] == ["local-path", "(default)", "rancher.io/local-path", "Delete",
                               "WaitForFirstConsumer", "false"]


def test_invalid_claims_get_422_naming_the_field(kubectl: Kubectl, ns: str) -> None:
    bad_mode = _apply(kubectl, ns, _pvc("bad", modes=("ReadWriteSometimes",)), check=False)
    assert bad_mode.returncode != 0
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in bad_mode.stderr
    negative = _apply(kubectl, ns, _pvc("neg", size="-1Gi"), check=False)
    assert negative.returncode != 0
    assert "spec.resources[storage]: Invalid value: \"-1Gi\": must be greater than zero" \
        in negative.stderr
    verbose = kubectl.run("create", "-n", ns, "-f", "-", "-v=6",
                          input=json.dumps(_pvc("neg2", size="-1Gi")), check=False)
    assert any("persistentvolumeclaims" in line and " 422 Unprocessable Entity" in line
               for line in verbose.stderr.splitlines() if "POST" in line)


def test_a_claim_for_a_missing_class_stays_pending_with_an_event(kubectl: Kubectl,
                                                                 ns: str) -> None:
    _apply(kubectl, ns, _pvc("orphan", cls="nope"))
    wait_for(lambda: any(e["reason"] == "ProvisioningFailed" and
                         e["message"] == 'storageclass.storage.k8s.io "nope" not found'
                         for e in _events(kubectl, ns, "orphan")), 30,
             "the ProvisioningFailed event naming the class")
    assert _phase(kubectl, "pvc", "orphan", ns) == "Pending"
    assert "storageclass.storage.k8s.io \"nope\" not found" in \
        kubectl("describe", "pvc", "orphan", "-n", ns)


def test_a_claim_without_class_gets_the_default_and_waits_for_its_consumer(
        kubectl: Kubectl, ns: str) -> None:
    _apply(kubectl, ns, _pvc("later"))
    pvc = kubectl.json("get", "pvc", "later", "-n", ns)
    assert pvc["spec"]["storageClassName"] == "local-path"
    assert "kubernetes.io/pvc-protection" in pvc["metadata"]["finalizers"]
    wait_for(lambda: any(e["reason"] == "WaitForFirstConsumer"
                         for e in _events(kubectl, ns, "later")), 30,
             "the WaitForFirstConsumer event")
    assert _phase(kubectl, "pvc", "later", ns) == "Pending"


def test_static_volumes_bind_smallest_fit_and_retain_releases(kubectl: Kubectl,
                                                               ns: str) -> None:
    big, small, other = f"{ns}-big", f"{ns}-small", f"{ns}-other"
    _apply(kubectl, ns, _pv(big, "5Gi", "/tmp/navio-e2e-big", labels={"t": ns}),
           _pv(small, "1Gi", "/tmp/navio-e2e-small", labels={"t": ns}),
           _pv(other, "1Gi", "/tmp/navio-e2e-other", labels={"t": "elsewhere"}))
    try:
        wait_for(lambda: _phase(kubectl, "pv", small) == "Available", 30, "PV Available")
        _apply(kubectl, ns, _pvc("data", size="500Mi", cls="",
                                 selector={"matchLabels": {"t": ns}}))
        wait_for(lambda: _phase(kubectl, "pvc", "data", ns) == "Bound", 30, "the claim bound")
        pvc = kubectl.json("get", "pvc", "data", "-n", ns)
        assert pvc["spec"]["volumeName"] == small
        assert pvc["status"]["capacity"] == {"storage": "1Gi"}
        assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
        row = kubectl("get", "pvc", "data", "-n", ns, "--no-headers").split()
        assert row[:5] == ["data", "Bound", small, "1Gi", "RWO"]
        pv_row = kubectl("get", "pv", small, "--no-headers").split()
        assert pv_row[:6] == [small, "1Gi", "RWO", "Retain", "Bound", f"{ns}/data"]
        assert _phase(kubectl, "pv", big) == "Available"
        bound_at = kubectl.json("get", "pv", small)["status"]["lastPhaseTransitionTime"]
        assert bound_at.endswith("Z") and "T" in bound_at
        kubectl("delete", "pvc", "data", "-n", ns, "--timeout=30s")
        wait_for(lambda: _phase(kubectl, "pv", small) == "Released", 30,
                 "the retained volume to be Released")
    finally:
        kubectl("delete", "pv", big, small, other, "--wait=false", check=False)


def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(kubectl: Kubectl,
                                                                ns: str) -> None:
    node, pv = f"{ns}-node"[:60], f"{ns}-vol"
    kubectl.run("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
        "spec": {"taints": [{"key": "e2e/fake", "effect": "NoSchedule"}]}}))
    try:
        _apply(kubectl, ns, _pv(pv, "1Gi", "/tmp/navio-e2e-inuse", cls="manual"))
        _apply(kubectl, ns, _pvc("used", cls="manual"), {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {
                         "claimName": "used"}}]}})
        wait_for(lambda: _phase(kubectl, "pvc", "used", ns) == "Bound", 30, "claim bound")
        kubectl("delete", "pvc", "used", "-n", ns, "--wait=false")
        wait_for(lambda: "Terminating" in kubectl("get", "pvc", "used", "-n", ns,
                                                  "--no-headers"), 30, "Terminating")
        assert "Terminating" in kubectl("get", "pvc", "used", "-n", ns, "--no-headers")
        kubectl("delete", "pod", "user", "-n", ns, "--grace-period=0", "--force")
        wait_for(lambda: kubectl.run("get", "pvc", "used", "-n", ns, check=False)
                 .returncode != 0, 30, "the claim to be deleted once its pod is gone")
    finally:
        kubectl("delete", "node", node, "--wait=false", check=False)
        kubectl("delete", "pv", pv, "--wait=false", check=False)


def test_claims_grow_only_when_bound_and_their_class_allows_it(kubectl: Kubectl,
                                                              ns: str) -> None:
    pv = f"{ns}-grow"
    _apply(kubectl, ns, _pv(pv, "1Gi", "/tmp/navio-e2e-grow", cls=""))
    try:
        _apply(kubectl, ns, _pvc("pending", cls="nope"), _pvc("static", cls=""))
        grow = kubectl.run("patch", "pvc", "pending", "-n", ns, "-p",
                           '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}', check=False)
        assert grow.returncode != 0
        assert 'persistentvolumeclaims "pending" is forbidden: Only bound persistent volume ' \
            "claims can be resized" in grow.stderr
        wait_for(lambda: _phase(kubectl, "pvc", "static", ns) == "Bound", 30, "claim bound")
        grow = kubectl.run("patch", "pvc", "static", "-n", ns, "-p",
                           '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}', check=False)
        assert grow.returncode != 0
        assert "only dynamically provisioned pvc can be resized and the storageclass that " \
            "provisions the pvc must support resize" in grow.stderr
    finally:
        kubectl("delete", "pvc", "static", "-n", ns, "--wait=false", check=False)
        kubectl("delete", "pv", pv, "--wait=false", check=False)
