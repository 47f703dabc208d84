"""`/metrics` on a real navio server: kube-apiserver's metric names and labels, authenticated."""

from __future__ import annotations

import http.client
import json
import ssl

from prometheus_client.parser import text_string_to_metric_families

from cluster import Kubectl, NavioServer
from rawhttp import request


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = [(s.name, s.labels, s.value) for s in fam.samples]
    return out


def _created(kubectl: Kubectl) -> float:
    fams = _families(kubectl("get", "--raw", "/metrics"))
    return sum(v for name, labels, v in fams.get("apiserver_request", [])
               if name == "apiserver_request_total" and labels["verb"] == "POST"
               and labels["resource"] == "configmaps" and labels["code"] == "201"
               and labels["dry_run"] == "")


def test_metrics_count_requests_storage_and_objects(server: NavioServer, kubectl: Kubectl,
                                                    ns: str) -> None:
    before = _created(kubectl)
    for i in range(3):
        kubectl("create", "configmap", f"m{i}", "-n", ns, "--from-literal=a=b")
    code, _, _ = request(server, "GET", f"/api/v1/namespaces/{ns}/configmaps/missing")
    assert code == 404
    kubectl("get", "configmaps", "-n", ns)

    text = kubectl("get", "--raw", "/metrics")
    fams = _families(text)

    creates = [(labels, v) for name, labels, v in fams["apiserver_request"]
               if name == "apiserver_request_total" and labels["verb"] == "POST"
               and labels["resource"] == "configmaps" and labels["code"] == "201"
               and labels["dry_run"] == ""]
    assert len(creates) == 1, "no POST configmaps counted"
    labels, value = creates[0]
    assert value - before >= 3
    assert labels == {"verb": "POST", "dry_run": "", "group": "", "version": "v1",
                      "resource": "configmaps", "subresource": "", "scope": "namespace",
                      "component": "apiserver", "code": "201"}
    not_found = [v for name, labels, v in fams["apiserver_request"]
                 if name == "apiserver_request_total" and labels["verb"] == "GET"
                 and labels["resource"] == "configmaps" and labels["code"] == "404"
                 and labels["scope"] == "resource"]
    assert not_found and not_found[0] >= 1
    lists = [v for name, labels, v in fams["apiserver_request"]
             if name == "apiserver_request_total" and labels["verb"] == "LIST"
             and labels["resource"] == "configmaps" and labels["code"] == "200"]
    assert lists and lists[0] >= 1

    hist = fams["apiserver_request_duration_seconds"]
    buckets = [labels for name, labels, _ in hist
               if name == "apiserver_request_duration_seconds_bucket"
               and labels["verb"] == "POST" and labels["resource"] == "configmaps"]
    assert {b["le"] for b in buckets} >= {"0.005", "0.025", "1.0", "60.0", "+Inf"}
    assert "code" not in buckets[0]
    counts = [v for name, labels, v in hist
              if name == "apiserver_request_duration_seconds_count"
              and labels["verb"] == "POST" and labels["resource"] == "configmaps"]
    assert counts and counts[0] >= 3

    objects = {labels["resource"]: v for _, labels, v in fams["apiserver_storage_objects"]}
    assert objects["configmaps"] >= 3
    assert "deployments.apps" in objects
    assert objects["namespaces"] >= 1

    storage = [labels for name, labels, _ in fams["etcd_request_duration_seconds"]
               if name == "etcd_request_duration_seconds_count"]
    assert {"operation": "create", "type": "configmaps"} in storage


def test_metrics_need_credentials(server: NavioServer) -> None:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    code, headers, data = request(server, "GET", "/metrics")
    assert code == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE apiserver_request_total counter" in data
    assert b"\nprocess_cpu_seconds_total " in data
