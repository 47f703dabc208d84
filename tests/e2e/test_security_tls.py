"""Issue 3, TLS: every navio listener speaks TLS 1.2/1.3 with ECDHE+AEAD suites only.

Checked against real listeners: the API server of a running `navio server` and the kubelet
API of a running `navio agent`. Each refusal is first shown to be the server's: the same
client handshake succeeds against a permissive control server.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Iterator

import pytest

from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent
from tlsprobe import handshake, permissive_server_context

OLD_TLS = ssl.TLSVersion.TLSv1_1
CBC_SUITES = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256"


@pytest.fixture(scope="module")
def control_port(server: NavioServer) -> Iterator[int]:
    """A permissive TLS server with the same (ECDSA) certificate: the probes' control."""
    ctx = permissive_server_context(server.data_dir / "pki" / "apiserver.crt",
                                    server.data_dir / "pki" / "apiserver.key")
    lsock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield lsock.getsockname()[1]
    stop.set()
    t.join(5)
    lsock.close()


def test_control_server_accepts_what_navio_refuses(control_port: int) -> None:
    assert handshake(control_port, OLD_TLS)[0] == "TLSv1.1"
    assert handshake(control_port, ssl.TLSVersion.TLSv1_2, CBC_SUITES)[1] in CBC_SUITES


def _assert_policy(port: int, cert: Path | None = None, key: Path | None = None) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(port, OLD_TLS, cert=cert, key=key)
    with pytest.raises(ssl.SSLError):
        handshake(port, ssl.TLSVersion.TLSv1_2, CBC_SUITES, cert=cert, key=key)
    version, cipher = handshake(port, ssl.TLSVersion.TLSv1_3, cert=cert, key=key)
    assert version == "TLSv1.3" and cipher.startswith("TLS_")
    version, cipher = handshake(port, ssl.TLSVersion.TLSv1_2, cert=cert, key=key)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-") and \
        ("GCM" in cipher or "CHACHA20" in cipher), cipher


def test_api_server_tls_policy(server: NavioServer, control_port: int) -> None:
    _assert_policy(server.port)


def test_kubelet_api_tls_policy(server: NavioServer, kubectl: Kubectl, tmp_path: Path,
                                control_port: int) -> None:
    name = "tls-probe-node"
    agent = Agent(name, server, tmp_path / name,
                  ("--runtime", "sim", "--pod-cidr", "10.249.0.0/24")).start()
    try:
        def port() -> int:
            proc = kubectl.run("get", "node", name, "-o",
                               "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
                               check=False)
            return int(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() not in (
                "", "0") else 0
        kport = wait_for(port, 60, "the agent's kubelet API port")
        pki = server.data_dir / "pki"
        # The kubelet API requires a client certificate: present the admin's.
        _assert_policy(kport, pki / "admin.crt", pki / "admin.key")
    finally:
        agent.stop()
        kubectl.run("delete", "node", name, "--wait=false", check=False)
