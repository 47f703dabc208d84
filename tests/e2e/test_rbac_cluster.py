"""The whole `navio server` with authorization on: every component works under its own
identity and least privilege, and none of them is ever refused.

The agent (kubelet, service proxy, DNS) runs as `system:node:NAME` through the Node
authorizer, the controller manager as `system:kube-controller-manager` and the scheduler as
`system:kube-scheduler` through RBAC. A pod that reads a ConfigMap and a Secret (volumes and
env) runs to completion, a Deployment behind a Service gets endpoints, and no component log
mentions a refusal.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from cluster import Kubectl, NavioServer, wait_for

_POD = """apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: python
    command: ["python3", "-c", "import os; print(os.environ['GREETING'], os.environ['PASSWORD'],
              open('/cfg/GREETING').read(), open('/sec/PASSWORD').read())"]
    envFrom: [{configMapRef: {name: cfg}}, {secretRef: {name: sec}}]
    volumeMounts: [{name: c, mountPath: /cfg}, {name: s, mountPath: /sec}]
  volumes:
  - {name: c, configMap: {name: cfg}}
  - {name: s, secret: {secretName: sec}}
"""


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    srv = NavioServer(tmp_path_factory.mktemp("rbacfull") / "data", extra_args=()).start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("rbacfullhome"))
    try:
        yield srv, kubectl
    finally:
        kubectl("delete", "deployment,pod", "--all", "-n", "default", "--wait=true",
                "--timeout=60s", check=False)
        wait_for(lambda: not json.loads(kubectl("get", "pods", "-o", "json"))["items"],
                 60, "pods to be gone before the server stops")
        srv.stop()


def test_components_work_with_least_privilege(full: tuple[NavioServer, Kubectl]) -> None:
    srv, kubectl = full
    wait_for(lambda: " Ready" in kubectl("get", "nodes", "--no-headers"), 60,
             "the local node to be Ready")
    kubectl("create", "configmap", "cfg", "--from-literal=GREETING=hi")
    kubectl("create", "secret", "generic", "sec", "--from-literal=PASSWORD=pw")
    kubectl("apply", "-f", "-", input=_POD)
    wait_for(lambda: kubectl("get", "pod", "reader", "-o",
                             "jsonpath={.status.phase}") in ("Succeeded", "Failed"), 90,
             "the reader pod to finish")
    assert kubectl("logs", "reader").split() == ["hi", "pw", "hi", "pw"]
    kubectl("create", "deployment", "web", "--image=python", "--replicas=2", "--",
            "python3", "-c", "import time; time.sleep(3600)")
    kubectl("expose", "deployment", "web", "--port=80")
    wait_for(lambda: kubectl("get", "deployment", "web", "-o",
                             "jsonpath={.status.readyReplicas}") == "2", 90, "web to be ready")
    wait_for(lambda: len(kubectl.json("get", "endpointslices", "-l",
                                      "kubernetes.io/service-name=web")["items"]) == 1, 30,
             "the web EndpointSlice")
    kubectl("scale", "deployment", "web", "--replicas=0")
    wait_for(lambda: "web-" not in kubectl("get", "pods", "--no-headers"), 90,
             "web pods to go")
    bound = {b["metadata"]["name"] for b in kubectl.json("get", "clusterrolebindings")["items"]
             if any(s.get("name") == "system:kube-controller-manager"
                    for s in b.get("subjects") or ())}
    assert "system:controller:replicaset-controller" in bound
    logs = sorted((srv.data_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"agent", "controller-manager", "scheduler"}
    for path in logs:
        text = path.read_text(errors="replace").lower()
        assert "forbidden" not in text and " 403" not in text, \
            f"{path.name} reports a refusal: " + next(
                line for line in text.splitlines() if "forbidden" in line or " 403" in line)
