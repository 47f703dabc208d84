"""The whole single-node cluster of `navio server`, as a user first meets it (issues #5-#7).

`kubectl create deployment` → a ReplicaSet and pods (controller manager) → bound to the local
node (scheduler) → running processes (agent) that logs and exec reach. The agent runs in the
host's network namespace, as `navio server` does by default: its bridge and low-priority
blackhole routes keep cluster traffic on this machine; nothing here sends to a pod IP.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from cluster import Kubectl, NavioServer, wait_for


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    srv = NavioServer(tmp_path_factory.mktemp("full") / "data", extra_args=()).start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("fullhome"))
    try:
        yield srv, kubectl
    finally:
        kubectl("delete", "deployment", "--all", "-n", "default", "--wait=true",
                "--timeout=60s", check=False)
        wait_for(lambda: not json.loads(kubectl("get", "pods", "-o", "json"))["items"],
                 60, "pods to be gone before the server stops")
        srv.stop()


def test_create_deployment_runs_pods_on_the_local_node(full: tuple[NavioServer, Kubectl]
                                                       ) -> None:
    _, kubectl = full
    wait_for(lambda: "Ready" in kubectl("get", "nodes", "--no-headers"), 30,
             "the local node to be Ready")
    kubectl("create", "deployment", "hello", "--image=python", "--replicas=2", "--",
            "python3", "-c", "import time,socket; print('hello from', socket.gethostname(), "
            "flush=True); time.sleep(3600)")
    kubectl("rollout", "status", "deployment/hello", "--timeout=90s", timeout=100)
    pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"]
    assert len(pods) == 2
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == node
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"].startswith("10.42.")
        wait_for(lambda: f"hello from {name}" in kubectl("logs", name), 20,
                 f"the greeting of {name}")
        assert kubectl("exec", name, "--", "cat", "/etc/hostname").strip() == name
    # A deleted pod is replaced by the ReplicaSet, scheduled and started again.
    victim = pods[0]["metadata"]["name"]
    kubectl("delete", "pod", victim, "--wait=true", "--timeout=60s", timeout=70)
    kubectl("rollout", "status", "deployment/hello", "--timeout=90s", timeout=100)
    names = kubectl("get", "pods", "-l", "app=hello", "-o",
                    "jsonpath={.items[*].metadata.name}").split()
    assert len(names) == 2 and victim not in names
