"""`navio dns` and `navio proxy run` as components of their own, against a real navio server
(issue 8). DNS listens on 127.0.0.1 (a free port) and never forwards (its only upstream is a
closed loopback port; only cluster names are asked); the proxy programs a namespace created
here, and `navio proxy rules` reads what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import dns.message
import dns.query
import pytest

from cluster import Kubectl, NavioServer, wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_udp_tcp_port() -> int:
    import socket
    while True:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)


def start(tmp: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    with open(tmp / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "navio.cli.main", *args], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return int(proc.returncode)


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    name = f"nvc{os.getpid() % 100000}-proxy"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=20)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=20)


def test_navio_dns_answers_cluster_names(server: NavioServer, tmp_path: Path) -> None:
    port = free_udp_tcp_port()
    proc = start(tmp_path, "dns", "dns", "--kubeconfig", str(server.kubeconfig),
                 "--bind-address", "127.0.0.1", "--port", str(port), "--upstream",
                 "127.0.0.1:9")
    try:
        def answer() -> list[str] | None:
            q = dns.message.make_query("kubernetes.default.svc.cluster.local.", "A")
            try:
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1)
            except (OSError, dns.exception.Timeout):
                return None
            return [rr.to_text() for rrset in r.answer for rr in rrset] or None
        assert wait_for(answer, 30, "navio dns to answer") == ["10.43.0.1"]
    finally:
        assert stop(proc) == 0


def test_navio_proxy_run_programs_a_namespace_and_shows_its_rules(
        server: NavioServer, kubectl: Kubectl, ns: str, scratch_netns: str,
        tmp_path: Path) -> None:
    state = tmp_path / "rules.txt"
    kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns)
    proc = start(tmp_path, "proxy", "proxy", "run", "--kubeconfig", str(server.kubeconfig),
                 "--hostname-override", "n1", "--netns", scratch_netns, "--proxy-mode",
                 "nftables", "--state-file", str(state))
    try:
        def rules() -> str | None:
            out = subprocess.run([sys.executable, "-m", "navio.cli.main", "proxy", "rules",
                                  "--state-file", str(state), "--live", "--netns",
                                  scratch_netns], capture_output=True, text=True,
                                 timeout=30, cwd=ROOT)
            # Both parts: the state file (written after a sync) and the kernel's table,
            # which can show the service before the state file exists.
            ok = out.returncode == 0 and f"{ns}/web" in out.stdout and "mode " in out.stdout
            return out.stdout if ok else None
        text = wait_for(rules, 30, "the proxy to write its state")
        assert "mode nftables, node n1" in text and "table ip navio-proxy" in text
    finally:
        assert stop(proc) == 0
    tables = subprocess.run(["ip", "netns", "exec", scratch_netns, "nft", "list", "tables"],
                            capture_output=True, text=True, timeout=20).stdout
    assert "navio-proxy" not in tables                     # removed on shutdown
