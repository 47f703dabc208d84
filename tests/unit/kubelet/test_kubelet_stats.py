"""/stats/summary: node usage from /proc and each pod's running containers as the runtime
samples them, in the Summary API's shape (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from navio.kubelet import tls
from navio.kubelet.server import KubeletServer, serve
from navio.kubelet.stats import summary
from navio.pki.certs import load_or_create_ca
from navio.pki.kubeletclient import ensure_kubelet_client_cert, ensure_kubelet_serving_cert
from navio.runtime.protocol import ContainerStats
from navio.runtime.sim import SimRuntime
from test_kubelet_server import client_ctx, get

POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
       "spec": {"containers": [{"name": "app"}, {"name": "gone"}]}}
STATUS = {"startTime": "2026-01-02T03:04:05Z", "containerStatuses": [
    {"name": "app", "containerID": "sim://c1",
     "state": {"running": {"startedAt": "2026-01-02T03:04:06Z"}}},
    {"name": "gone", "containerID": "sim://c2", "state": {"terminated": {"exitCode": 0}}}]}


class Runtime(SimRuntime):
    async def stats(self, container_id: str) -> ContainerStats | None:
        assert container_id == "c1"      # only running containers are sampled
        return ContainerStats("c1", 1_767_000_000.0, 2_500_000_000, 40 << 20, 30 << 20, 3)


class Host:
    def __init__(self) -> None:
        self.runtime = Runtime()

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def pods(self) -> list[dict[str, Any]]:
        return [POD]

    def pod_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        return STATUS

    def sandbox_of(self, pod: dict[str, Any]) -> None:
        return None

    async def container_by_id(self, container_id: str) -> None:
        return None


async def test_the_summary_has_node_and_pod_usage() -> None:
    body = await summary(Host(), "node-a")
    node = body["node"]
    assert node["nodeName"] == "node-a" and node["startTime"].endswith("Z")
    assert node["cpu"]["usageCoreNanoSeconds"] > 0
    assert 0 < node["memory"]["workingSetBytes"] <= node["memory"]["usageBytes"] + \
        node["memory"]["availableBytes"]
    [pod] = body["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "ns", "uid": "u1"}
    assert pod["startTime"] == "2026-01-02T03:04:05Z"
    assert pod["containers"] == [{
        "name": "app", "startTime": "2026-01-02T03:04:06Z",
        "cpu": {"time": "2025-12-29T09:20:00Z", "usageCoreNanoSeconds": 2_500_000_000},
        "memory": {"time": "2025-12-29T09:20:00Z", "usageBytes": 40 << 20,
                   "workingSetBytes": 30 << 20}}]
    assert pod["cpu"]["usageCoreNanoSeconds"] == 2_500_000_000
    assert pod["memory"]["workingSetBytes"] == 30 << 20


async def test_the_summary_is_served_to_the_api_server(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path)
    serving = ensure_kubelet_serving_cert(ca, tmp_path, "node-a", ("127.0.0.1",))
    ctx = tls.server_context(serving.cert, serving.key, client_ca_file=ca.pair.cert)
    runner, port = await serve(KubeletServer(Host(), node_name="node-a").app, "127.0.0.1", 0,
                               ctx)
    try:
        pair = ensure_kubelet_client_cert(ca, tmp_path)
        status, text = await get(port, client_ctx(ca, pair.cert, pair.key), "/stats/summary")
        assert status == 200
        body = json.loads(text)
        assert body["node"]["nodeName"] == "node-a"
        assert [p["podRef"]["name"] for p in body["pods"]] == ["web"]
    finally:
        await runner.cleanup()
