"""A container of the whole `navio server` reads its service-account token, CA and namespace
at /var/run/secrets/kubernetes.io/serviceaccount, and that token authenticates as the pod's
account (issue 3, kube's default kube-api-access volume)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    srv = NavioServer(tmp_path_factory.mktemp("savol") / "data", extra_args=()).start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("savolhome"))
    try:
        yield srv, kubectl
    finally:
        kubectl("delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s",
                check=False)
        srv.stop()


def test_a_container_reads_a_working_token(full: tuple[NavioServer, Kubectl],
                                           tmp_path: Path) -> None:
    srv, kubectl = full
    wait_for(lambda: "Ready" in kubectl("get", "nodes", "--no-headers"), 60,
             "the local node to be Ready")
    wait_for(lambda: kubectl.run("get", "sa", "default", check=False).returncode == 0, 30,
             "the default service account")
    wait_for(lambda: kubectl.run("get", "cm", "kube-root-ca.crt", check=False).returncode
             == 0, 30, "the root CA ConfigMap")
    kubectl("run", "reader", "--image=python", "--restart=Never", "--", "python3", "-c",
            "import time; time.sleep(3600)")
    wait_for(lambda: kubectl("get", "pod", "reader", "-o", "jsonpath={.status.phase}")
             == "Running", 90, "the pod to run")
    assert kubectl("exec", "reader", "--", "cat", f"{SA_DIR}/namespace") == "default"
    ca = kubectl("exec", "reader", "--", "cat", f"{SA_DIR}/ca.crt")
    assert ca == (srv.data_dir / "pki" / "ca.crt").read_text()
    token = kubectl("exec", "reader", "--", "cat", f"{SA_DIR}/token").strip()
    assert token.count(".") == 2
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": srv.url, "certificate-authority": str(srv.data_dir / "pki" / "ca.crt")}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c"}))
    who = json.loads(kubectl("--kubeconfig", str(kc), "auth", "whoami", "-o",
                             "json"))["status"]["userInfo"]
    assert who["username"] == "system:serviceaccount:default:default"
    assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["reader"]
