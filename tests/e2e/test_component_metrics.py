"""/metrics on every component (#9): scheduler, controller manager and kubelet, with kube's
names, over TLS, authenticated and authorized by delegation to the API server."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent
from prometheus_client.parser import text_string_to_metric_families

from navio.pki.certs import load_or_create_ca

NODE = "metrics-node"


class _Component:
    """`navio scheduler` / `navio controller-manager` with `--secure-port 0`."""

    def __init__(self, server: NavioServer, name: str, log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "navio.cli.main", name, "--kubeconfig",
                 str(server.kubeconfig), "--leader-elect", "false", "--secure-port", "0"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def port(self) -> int:
        m = re.search(r'"serving securely" address=\S+ port=(\d+)', self.log.read_text())
        return int(m.group(1)) if m else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[NavioServer, Kubectl, dict[str, int]]]:
    base = tmp_path_factory.mktemp("metrics")
    server = NavioServer(base / "data", extra_args=(
        "--no-agent", "--disable", "scheduler,controller-manager")).start()
    kubectl = Kubectl(server.kubeconfig, base / "home")
    parts: list[Any] = []
    try:
        sched = _Component(server, "scheduler", base / "scheduler.log")
        cm = _Component(server, "controller-manager", base / "cm.log")
        parts += [sched, cm]
        agent = Agent(NODE, server, base / NODE,
                      ("--runtime", "sim", "--pod-cidr", "10.247.0.0/24")).start()
        parts.append(agent)
        ports = wait_for(lambda: sched.port() and cm.port() and _kubelet_port(kubectl) and {
            "scheduler": sched.port(), "controller-manager": cm.port(),
            "kubelet": _kubelet_port(kubectl)}, 60, "the components' secure ports")
        yield server, kubectl, ports
    finally:
        for part in reversed(parts):
            part.stop()
        server.stop()


def _kubelet_port(kubectl: Kubectl) -> int:
    out = kubectl.run("get", "node", NODE, "-o", "json", check=False)
    if out.returncode != 0:
        return 0
    node = json.loads(out.stdout)
    return int(node["status"].get("daemonEndpoints", {}).get("kubeletEndpoint", {})
               .get("Port", 0))


def _get(port: int, path: str, *, cert: tuple[Path, Path] | None = None,
         token: str | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE        # self-signed serving certificates
    if cert is not None:
        ctx.load_cert_chain(*cert)
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _admin(server: NavioServer) -> tuple[Path, Path]:
    pki = server.data_dir / "pki"
    return pki / "admin.crt", pki / "admin.key"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _value(samples: dict[str, Any], metric: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(metric, ())
               if all(lab.get(k) == x for k, x in labels.items()))


def test_secure_port_authenticates_and_authorizes(cluster: Any) -> None:
    server, kubectl, ports = cluster
    port = ports["scheduler"]
    assert _get(port, "/healthz") == (200, "ok")                  # always allowed
    code, body = _get(port, "/metrics")
    assert code == 401 and json.loads(body)["reason"] == "Unauthorized"
    pair = load_or_create_ca(server.data_dir / "pki").issue(
        server.data_dir.parent, "nobody", cn="somebody", orgs=("some-group",))
    code, body = _get(port, "/metrics", cert=(pair.cert, pair.key))
    assert code == 403
    assert json.loads(body)["message"] == 'forbidden: User "somebody" cannot get path "/metrics"'
    assert _get(port, "/metrics", cert=_admin(server))[0] == 200
    # A service account's token, checked with a TokenReview; allowed once it is a monitor.
    kubectl("create", "serviceaccount", "prom", "-n", "default")
    token = kubectl("create", "token", "prom", "-n", "default").strip()
    assert _get(ports["controller-manager"], "/metrics", token=token)[0] == 403
    assert _get(ports["controller-manager"], "/metrics", token="not-a-token")[0] == 401
    kubectl("create", "clusterrolebinding", "prom-monitoring", "--clusterrole",
            "system:monitoring", "--serviceaccount", "default:prom")
    wait_for(lambda: _get(ports["controller-manager"], "/metrics", token=token)[0] == 200,
             30, "the monitoring binding to apply (10 s decision cache)", interval=1.0)


def test_components_report_kube_metric_names(cluster: Any) -> None:
    server, kubectl, ports = cluster
    kubectl("create", "deployment", "m", "--image=registry.k8s.io/pause:3.10",
            "--replicas=2", "-n", "default")
    wait_for(lambda: kubectl("get", "deployment", "m", "-n", "default", "-o",
                             "jsonpath={.status.readyReplicas}") == "2",
             60, "the deployment's pods to run", interval=0.5)
    cert = _admin(server)
    sched = _samples(_get(ports["scheduler"], "/metrics", cert=cert)[1])
    assert _value(sched, "scheduler_schedule_attempts_total", result="scheduled") >= 2
    assert _value(sched, "scheduler_scheduling_attempt_duration_seconds_count",
                  result="scheduled") >= 2
    assert {lab["queue"] for lab, _ in sched["scheduler_pending_pods"]} == {
        "active", "backoff", "unschedulable", "gated"}
    assert _value(sched, "rest_client_requests_total", method="POST", code="201") >= 2
    assert "process_resident_memory_bytes" in sched
    assert not [n for n in sched if n.endswith("_created")]

    cm = _samples(_get(ports["controller-manager"], "/metrics", cert=cert)[1])
    assert _value(cm, "workqueue_adds_total", name="deployment") >= 1
    assert _value(cm, "workqueue_adds_total", name="replicaset") >= 1
    assert _value(cm, "workqueue_queue_duration_seconds_count", name="replicaset") >= 1
    assert _value(cm, "workqueue_work_duration_seconds_count", name="replicaset") >= 1
    assert any(lab == {"name": "replicaset"} for lab, _ in cm["workqueue_depth"])
    assert _value(cm, "rest_client_request_duration_seconds_count", verb="POST") >= 2

    def kubelet() -> dict[str, Any]:
        return _samples(_get(ports["kubelet"], "/metrics", cert=cert)[1])
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # no client cert: refused
        _get(ports["kubelet"], "/metrics")
    k = wait_for(lambda: (s := kubelet()) and _value(s, "kubelet_running_pods") == 2 and s,
                 30, "kubelet_running_pods to reach 2")
    assert _value(k, "kubelet_pod_start_duration_seconds_count") >= 2
    assert _value(k, "kubelet_node_name", node=NODE) == 1
