"""Scaffolding for the agent (kubelet) e2e tests: a wired API server, agents as child
processes, and a node network namespace with no route out (PLATFORM.md's safe pattern).

Everything started here is stopped by PID, and everything the agents' runtimes made
(container processes, pod netns, cgroups, the node netns) is removed by the runtime tests'
RuntimeLab cleanup, which reads the agents' state dirs — even after a failed test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import NavioServer

from navio.pki.certs import load_or_create_ca
from navio.pki.kubeletclient import ensure_kubelet_serving_cert
from navio.runtime import namespaces as ns

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass
class Agent:
    """One `navio agent` child process."""

    name: str
    server: NavioServer
    root: Path
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root.parent / f"{self.name}.log"

    def argv(self) -> list[str]:
        pki = self.server.data_dir / "pki"
        pair = ensure_kubelet_serving_cert(load_or_create_ca(pki), pki, self.name,
                                           ("127.0.0.1", "localhost"))
        return [sys.executable, "-m", "navio.cli.agent", "--kubeconfig",
                str(self.server.kubeconfig), "--node-name", self.name, "--root-dir",
                str(self.root), "--node-ip", "127.0.0.1", "--address", "127.0.0.1",
                "--port", "0", "--tls-cert-file", str(pair.cert), "--tls-private-key-file",
                str(pair.key), "--client-ca-file", str(pki / "ca.crt"), *self.extra]

    def start(self) -> "Agent":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        return self

    def unmount_all(self) -> None:
        """Unmount what the agent mounted under its root (memory emptyDirs) and left behind
        because it was stopped with pods still on it."""
        with open("/proc/mounts") as f:
            targets = [line.split()[1] for line in f]
        root = str(self.root) + "/"
        for target in sorted((t for t in targets if t.startswith(root)), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, timeout=20)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None

    @property
    def state_dir(self) -> Path:
        return self.root / "runtime"

    def container_record(self, container_id: str) -> dict[str, Any]:
        """The runtime's status record of a container (`process://<id>` or `<id>`)."""
        cid = container_id.split("://", 1)[-1]
        path = self.state_dir / "containers" / cid / "status.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def running_container_pids(self) -> set[int]:
        pids = set()
        for path in (self.state_dir / "containers").glob("*/status.json"):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if rec.get("state") == "running" and ns.process_alive(rec.get("pid"),
                                                                   rec.get("starttime")):
                pids.add(int(rec["pid"]))
        return pids


def netns_http_get(netns: str, ip: str, port: int, path: str = "/", timeout: float = 3.0
                   ) -> bytes:
    """An HTTP/1.0 GET from inside `netns` (blocking: call through asyncio.to_thread)."""
    sock = ns.socket_in_netns(f"/run/netns/{netns}")
    with sock:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NetnsServer(NavioServer):
    """`navio server` (with its local agent) run inside network namespace `netns` through
    nsenter: the agent's bridge, routes and kubelet port stay in there, and only clients
    that enter it (NetnsKubectl) reach the API server."""

    netns: str = ""

    def launcher(self) -> tuple[str, ...]:
        return ("nsenter", f"--net=/run/netns/{self.netns}")


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append((int(entry), cmdline))
    return out
