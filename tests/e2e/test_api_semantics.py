"""API semantics kubectl does not show directly: errors, concurrency, deletion, paging."""

from __future__ import annotations

import json

import pytest

from cluster import Kubectl, NavioServer
from rawhttp import request, status_of


def _cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_malformed_json_is_400_and_writes_nothing(server: NavioServer, ns: str) -> None:
    code, status = status_of(server, "POST", f"/api/v1/namespaces/{ns}/configmaps", b"{not json")
    assert code == 400 and status["kind"] == "Status" and status["reason"] == "BadRequest"
    code, lst = status_of(server, "GET", f"/api/v1/namespaces/{ns}/configmaps")
    # (every namespace holds the root CA ConfigMap, as in kube)
    assert [o for o in lst["items"] if o["metadata"]["name"] != "kube-root-ca.crt"] == []


def test_body_over_3mib_is_413(server: NavioServer, ns: str) -> None:
    big = json.dumps(_cm("big", blob="x" * (3 * 1024 * 1024 + 10)))
    code, status = status_of(server, "POST", f"/api/v1/namespaces/{ns}/configmaps", big)
    assert code == 413 and status["reason"] == "RequestEntityTooLarge"


def test_unknown_content_type_is_415(server: NavioServer, ns: str) -> None:
    code, status = status_of(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                             b"<xml/>", {"Content-Type": "application/xml"})
    assert code == 415 and status["reason"] == "UnsupportedMediaType"


def test_invalid_object_is_422_with_kind_and_causes(server: NavioServer, ns: str) -> None:
    code, status = status_of(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                             _cm("Bad_Name"))
    assert code == 422 and status["reason"] == "Invalid"
    assert status["details"]["kind"] == "ConfigMap"
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_create_in_a_missing_namespace_is_404(server: NavioServer) -> None:
    code, status = status_of(server, "POST", "/api/v1/namespaces/nope-nope/configmaps",
                             _cm("x"))
    assert code == 404 and status["message"] == 'namespaces "nope-nope" not found'


def test_duplicate_create_is_409_already_exists(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert status_of(server, "POST", path, _cm("dup"))[0] == 201
    code, status = status_of(server, "POST", path, _cm("dup"))
    assert code == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "dup" already exists'


def test_stale_update_is_409_conflict(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    _, created = status_of(server, "POST", path, _cm("c", v="1"))
    first = dict(created, data={"v": "2"})
    assert status_of(server, "PUT", f"{path}/c", first)[0] == 200
    stale = dict(created, data={"v": "3"})
    code, status = status_of(server, "PUT", f"{path}/c", stale)
    assert code == 409 and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


def test_generate_name_and_server_owned_metadata(server: NavioServer, ns: str) -> None:
    code, obj = status_of(server, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                          {"metadata": {"generateName": "gen-", "uid": "mine"}})
    assert code == 201
    meta = obj["metadata"]
    assert meta["name"].startswith("gen-") and len(meta["name"]) == 9
    assert meta["uid"] != "mine" and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0


def test_generation_moves_on_spec_change_only(kubectl: Kubectl, server: NavioServer,
                                              ns: str) -> None:
    kubectl("create", "deployment", "g", "-n", ns, "--image=nginx")
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/g"
    kubectl("label", "deploy", "g", "-n", ns, "x=y")
    assert status_of(server, "GET", path)[1]["metadata"]["generation"] == 1
    kubectl("scale", "deploy", "g", "-n", ns, "--replicas=3")
    assert status_of(server, "GET", path)[1]["metadata"]["generation"] == 2
    # Status writes leave spec alone; main-resource writes leave status alone. (A PDB whose
    # selector matches no pod: the disruption controller may rewrite its status to 0 healthy
    # at any time, never to the 1 the main-resource patch below tries.)
    base = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"
    assert status_of(server, "POST", base, {"metadata": {"name": "b"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}})[0] == 201
    code, d = status_of(server, "PATCH", base + "/b/status",
                        {"metadata": {"annotations": {"seen": "yes"}},
                         "status": {"currentHealthy": 7, "desiredHealthy": 1,
                                    "disruptionsAllowed": 0, "expectedPods": 7},
                         "spec": {"minAvailable": 5}},
                        {"Content-Type": "application/merge-patch+json"})
    assert code == 200, d
    assert d["status"]["currentHealthy"] == 7 and d["spec"]["minAvailable"] == 1
    assert d["metadata"]["annotations"]["seen"] == "yes"
    assert d["metadata"]["generation"] == 1
    code, d = status_of(server, "PATCH", base + "/b", {"status": {"currentHealthy": 1}},
                        {"Content-Type": "application/merge-patch+json"})
    assert code == 200 and d["status"]["currentHealthy"] in (7, 0), d["status"]


def test_finalizers_hold_deletion_until_removed(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    status_of(server, "POST", path, {"metadata": {"name": "f",
                                                  "finalizers": ["example.com/hold"]}})
    code, obj = status_of(server, "DELETE", f"{path}/f")
    assert code == 202 and obj["metadata"]["deletionTimestamp"]
    assert status_of(server, "GET", f"{path}/f")[0] == 200
    code, _ = status_of(server, "PATCH", f"{path}/f", {"metadata": {"finalizers": None}},
                        {"Content-Type": "application/merge-patch+json"})
    assert code == 200
    assert status_of(server, "GET", f"{path}/f")[0] == 404


def test_scheduled_pod_deletes_gracefully(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [
        {"name": "c", "image": "busybox"}]}}
    assert status_of(server, "POST", path, pod)[0] == 201
    code, obj = status_of(server, "DELETE", f"{path}/p", {"gracePeriodSeconds": 10})
    assert code == 202 and obj["metadata"]["deletionGracePeriodSeconds"] == 10
    # The kubelet confirms with grace 0.
    code, _ = status_of(server, "DELETE", f"{path}/p", {"gracePeriodSeconds": 0})
    assert code == 200
    assert status_of(server, "GET", f"{path}/p")[0] == 404


def test_binding_assigns_a_pod_once(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    status_of(server, "POST", path, {"metadata": {"name": "b"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    assert status_of(server, "POST", f"{path}/b/binding", binding)[0] == 201
    pod = status_of(server, "GET", f"{path}/b")[1]
    assert pod["spec"]["nodeName"] == "node-a"
    # As kube's BindingREST: the binder gets no managedFields entry (the session's scheduler
    # may have written PodScheduled=False through /status meanwhile: that entry is its own).
    for entry in pod["metadata"]["managedFields"]:
        assert entry.get("subresource") != "binding"
        assert "f:nodeName" not in (entry["fieldsV1"].get("f:spec") or {}), entry
    assert {"type": "PodScheduled", "status": "True"}.items() <= pod["status"]["conditions"][0].items()
    code, status = status_of(server, "POST", f"{path}/b/binding", binding)
    assert code == 409 and "already assigned" in status["message"]


def test_paging_with_limit_and_continue(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        status_of(server, "POST", path, _cm(f"page-{i}"))
    names, token, rvs = [], "", set()
    while True:
        _, page = status_of(server, "GET", f"{path}?limit=3" + (f"&continue={token}" if token else ""))
        names += [o["metadata"]["name"] for o in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue", "")
        if not token:
            break
        # A write between pages does not leak into the snapshot being paged.
        status_of(server, "POST", path, _cm(f"late-{len(names)}"))
    # (the root CA ConfigMap every namespace gets may or may not be in the snapshot yet)
    assert [n for n in names if n != "kube-root-ca.crt"] == [f"page-{i}" for i in range(7)]
    assert len(rvs) == 1


def test_dry_run_writes_nothing(server: NavioServer, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    code, obj = status_of(server, "POST", f"{path}?dryRun=All", _cm("dry"))
    assert code == 201 and obj["metadata"]["name"] == "dry"
    assert status_of(server, "GET", f"{path}/dry")[0] == 404


def test_strict_field_validation_names_the_unknown_field(server: NavioServer, ns: str) -> None:
    body = {"metadata": {"name": "u"}, "data": {}, "bogus": 1}
    code, status = status_of(server, "POST",
                             f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", body)
    assert code == 400 and 'unknown field "bogus"' in status["message"]
    code, hdrs, _ = request(server, "POST",
                            f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Warn",
                            json.dumps(body))
    assert code == 201 and 'unknown field \\"bogus\\"' in hdrs.get("warning", "") or \
        "bogus" in hdrs.get("warning", "")


@pytest.mark.parametrize("path", ["/api/v1/nope", "/apis/nope.io/v1/things",
                                  "/api/v1/namespaces/default/nopes/x"])
def test_unknown_resources_are_404_status(server: NavioServer, path: str) -> None:
    code, status = status_of(server, "GET", path)
    assert code == 404 and status["kind"] == "Status"
