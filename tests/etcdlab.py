"""Real etcd members on loopback ports for tests: started in a temp data dir, stopped by PID.

Debian's etcd-server (3.4) is installed by .ci/install. Every member listens on 127.0.0.1
only (clients and peers); ports are picked free at start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ETCD = "/usr/bin/etcd"

__all__ = ["EtcdCluster", "EtcdMember", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdMember:
    name: str
    data_dir: Path
    client_port: int
    peer_port: int
    proc: subprocess.Popen[bytes] | None = None

    tls: bool = False

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    """`size` members forming one cluster; `endpoints` is navio's --datastore value."""

    base: Path
    size: int = 1
    members: list[EtcdMember] = field(default_factory=list)
    # TLS on the client URLs, with client certificates required: a directory holding ca.crt,
    # server.crt/server.key (SAN 127.0.0.1) and client.crt/client.key.
    tls_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.members:
            self.members = [EtcdMember(f"m{i}", self.base / f"m{i}", free_port(), free_port(),
                                       tls=self.tls_dir is not None)
                            for i in range(self.size)]

    @property
    def datastore(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)

    def _command(self, m: EtcdMember) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [ETCD, "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"navio-test-{os.getpid()}-{id(self)}",
                "--logger", "zap", "--log-outputs", "stderr",
                # Loopback: short heartbeats make elections quick after a member stops.
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                *self._tls_flags()]

    def _tls_flags(self) -> list[str]:
        if self.tls_dir is None:
            return []
        d = self.tls_dir
        return ["--cert-file", str(d / "server.crt"), "--key-file", str(d / "server.key"),
                "--trusted-ca-file", str(d / "ca.crt"), "--client-cert-auth"]

    def etcdctl_tls(self) -> list[str]:
        if self.tls_dir is None:
            return []
        d = self.tls_dir
        return ["--cacert", str(d / "ca.crt"), "--cert", str(d / "client.crt"),
                "--key", str(d / "client.key")]

    def start(self, timeout: float = 30.0) -> "EtcdCluster":
        for m in self.members:
            self.start_member(m, wait=False)
        self.wait_healthy(timeout)
        return self

    def start_member(self, m: EtcdMember, *, wait: bool = True) -> None:
        m.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.base / f"{m.name}.log", "ab")
        m.proc = subprocess.Popen(self._command(m), stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_member(m, 30.0)

    def wait_member(self, m: EtcdMember, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                raise AssertionError(f"etcd {m.name} exited: {self.tail(m)}")
            try:
                with socket.create_connection(("127.0.0.1", m.client_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"etcd {m.name} did not listen within {timeout}s: {self.tail(m)}")

    def wait_healthy(self, timeout: float) -> None:
        """Every running member listens, and the cluster accepts a write."""
        for m in self.members:
            if m.proc is not None:
                self.wait_member(m, timeout)
        env = {**os.environ, "ETCDCTL_API": "3"}
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(["/usr/bin/etcdctl", "--endpoints", ",".join(
                m.client_url for m in self.members if m.proc is not None),
                *self.etcdctl_tls(), "--command-timeout=3s", "put", "navio-test-health", "ok"],
                capture_output=True, env=env, timeout=10)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"etcd cluster not healthy: {r.stderr.decode()}")
            time.sleep(0.2)

    def tail(self, m: EtcdMember) -> str:
        log = self.base / f"{m.name}.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop_member(self, m: EtcdMember, sig: int = signal.SIGTERM) -> None:
        proc, m.proc = m.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        for m in self.members:
            self.stop_member(m)
