"""The kubelet API: TLS client certificates only, the API server's identity only (issue 7)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from navio.kubelet import tls
from navio.kubelet.server import KubeletServer, serve
from navio.pki.certs import load_or_create_ca
from navio.pki.kubeletclient import ensure_kubelet_client_cert, ensure_kubelet_serving_cert
from navio.runtime.sim import SimRuntime

POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
       "spec": {"containers": [{"name": "c"}]}}


class Host:
    def __init__(self) -> None:
        self.runtime = SimRuntime()

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return POD if (namespace, name) == ("ns", "web") else None

    def pods(self) -> list[dict[str, Any]]:
        return [POD]

    def pod_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        return {"containerStatuses": [{"name": "c", "state": {"waiting": {
            "reason": "ContainerCreating"}}}]}

    def sandbox_of(self, pod: dict[str, Any]) -> None:
        return None

    async def container_by_id(self, container_id: str) -> None:
        return None


@pytest.fixture
async def kubelet(tmp_path: Path):
    ca = load_or_create_ca(tmp_path)
    serving = ensure_kubelet_serving_cert(ca, tmp_path, "node-a", ("127.0.0.1",))
    ctx = tls.server_context(serving.cert, serving.key, client_ca_file=ca.pair.cert)
    runner, port = await serve(KubeletServer(Host()).app, "127.0.0.1", 0, ctx)
    yield ca, tmp_path, port
    await runner.cleanup()


def client_ctx(ca: Any, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.pair.cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def get(port: int, ctx: ssl.SSLContext, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{port}{path}", ssl=ctx) as resp:
            return resp.status, await resp.text()


async def test_the_api_servers_certificate_is_let_in(kubelet):
    ca, directory, port = kubelet
    pair = ensure_kubelet_client_cert(ca, directory)
    assert await get(port, client_ctx(ca, pair.cert, pair.key), "/healthz") == (200, "ok")
    status, body = await get(port, client_ctx(ca, pair.cert, pair.key),
                             "/containerLogs/ns/web/c")
    assert status == 400
    assert 'container \\"c\\" in pod \\"web\\" is waiting to start: ContainerCreating' in body
    status, body = await get(port, client_ctx(ca, pair.cert, pair.key),
                             "/containerLogs/ns/nope/c")
    assert status == 404 and 'pods \\"nope\\" not found' in body
    status, _ = await get(port, client_ctx(ca, pair.cert, pair.key),
                          "/containerLogs/ns/web/c?tailLines=x")
    assert status == 400


async def test_other_users_are_forbidden_with_the_kubelets_message(kubelet):
    ca, directory, port = kubelet
    other = ca.issue(directory, "someone", cn="someone", orgs=("developers",))
    assert await get(port, client_ctx(ca, other.cert, other.key), "/pods") == (
        403, "Forbidden (user=someone, verb=get, resource=nodes, subresource=pods)")


async def test_there_is_no_anonymous_access(kubelet):
    ca, _, port = kubelet
    with pytest.raises(aiohttp.ClientError):
        await get(port, client_ctx(ca), "/healthz")


def test_a_client_ca_is_required(tmp_path):
    cert, key = tls.ensure_self_signed(tmp_path, ("node-a", "127.0.0.1"))
    with pytest.raises(ValueError, match="no anonymous access"):
        tls.server_context(cert, key)
    assert tls.ensure_self_signed(tmp_path, ("node-a",)) == (cert, key)   # made once
    assert oct(key.stat().st_mode & 0o777) == "0o600"
