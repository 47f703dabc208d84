"""Scaffolding for the Services e2e tests and benchmark: a whole `navio server` whose local node
keeps its pods in a network namespace the test creates (PLATFORM.md's safe pattern), and
scripts that run inside pods through `kubectl exec`.

The node namespace has no route out: pods, the proxy's rules (nftables in the node netns) and
the node-local DNS (10.43.0.10 on the node netns' `lo`) all live there. The agent's resolv.conf
names only 127.0.0.1, so the cluster DNS never forwards a name to the host's resolver.
Everything created is removed by `close()`, even after a failed start: deployments first
(their pods' namespaces go with them), then the server, then the node namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from cluster import Kubectl, NavioServer, wait_for

__all__ = ["ServicesLab", "WEB_SERVER", "HTTP_CLIENT", "web_deployment"]

# A pod that answers every HTTP request with its name; on SIGTERM it keeps serving for
# GRACE seconds (so that rollouts lose no request), then exits.
WEB_SERVER = textwrap.dedent("""
    import os, signal, socket, sys, threading
    name = os.environ["POD_NAME"]
    grace = float(os.environ.get("GRACE", "6"))
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(512)
    def term(*_):
        print("SIGTERM", flush=True)
        threading.Timer(grace, lambda: os._exit(0)).start()
    signal.signal(signal.SIGTERM, term)
    body = name.encode()
    reply = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n"
             b"Connection: close\\r\\n\\r\\n" % len(body)) + body
    def handle(c):
        try:
            c.settimeout(5); data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = c.recv(4096)
                if not chunk: break
                data += chunk
            c.sendall(reply)
        except OSError:
            pass
        finally:
            c.close()
    print("serving", name, flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
""")

# Runs inside a pod: `count` HTTP GETs (a new connection each, the name resolved each time);
# prints {"counts": {pod: n}, "errors": [...], "seq": [pod or "ERR", ...]}.
HTTP_CLIENT = textwrap.dedent("""
    import http.client, json, sys, time
    url_host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    counts, errors, seq = {}, [], []
    for i in range(count):
        try:
            c = http.client.HTTPConnection(url_host, port, timeout=5)
            c.request("GET", "/", headers={"Connection": "close"})
            r = c.getresponse(); body = r.read().decode(); c.close()
            if r.status != 200: raise OSError(f"status {r.status}")
            counts[body] = counts.get(body, 0) + 1; seq.append(body)
        except Exception as exc:
            errors.append(f"{i}: {type(exc).__name__}: {exc}"); seq.append("ERR")
        if pause: time.sleep(pause)
    print(json.dumps({"counts": counts, "errors": errors, "seq": seq}))
""")


def web_deployment(name: str = "web", replicas: int = 3, grace: float = 6.0,
                   version: str = "1") -> dict[str, Any]:
    """A Deployment of WEB_SERVER pods labelled app=<name>, Ready once they listen."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": int(grace) + 10,
                    "containers": [{
                        "name": "web", "image": "python",
                        "command": ["python3", "-c", WEB_SERVER],
                        "env": [{"name": "POD_NAME", "valueFrom": {
                                    "fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "GRACE", "value": str(grace)},
                                {"name": "VERSION", "value": version}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080},
                                           "periodSeconds": 1, "failureThreshold": 1}}]}}}}


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


class ServicesLab:
    """`navio server` + its local node in a fresh node netns, and the real kubectl."""

    def __init__(self, tmp: Path, tag: str = "svc", proxy_mode: str = "auto") -> None:
        self.tmp = tmp
        self.proxy_mode = proxy_mode
        self.node_netns = f"nvs{os.getpid() % 100000}-{tag}"
        self.server: NavioServer | None = None
        self.kubectl: Kubectl | None = None
        self.resolv = tmp / "host-resolv.conf"

    def start(self) -> "ServicesLab":
        _sh("ip", "netns", "del", self.node_netns, check=False)
        _sh("ip", "netns", "add", self.node_netns)
        _sh("ip", "-n", self.node_netns, "link", "set", "lo", "up")
        self.resolv.write_text("nameserver 127.0.0.1\n")
        self.server = NavioServer(self.tmp / "data", extra_args=(
            "--node-netns", self.node_netns, "--resolv-conf", str(self.resolv),
            "--proxy-mode", self.proxy_mode, "--kubelet-port", "0")).start()
        self.kubectl = Kubectl(self.server.kubeconfig, self.tmp / "home")
        wait_for(lambda: "Ready" in self.kubectl("get", "nodes", "--no-headers"), 60,
                 "the local node to be Ready")
        self.assert_no_route_out()
        return self

    def assert_no_route_out(self) -> None:
        routes = _sh("ip", "-n", self.node_netns, "route").stdout
        assert "default" not in routes, routes

    @property
    def agent_root(self) -> Path:
        assert self.server is not None
        return self.server.data_dir / "agent"

    def apply(self, *objs: dict[str, Any]) -> None:
        assert self.kubectl is not None
        self.kubectl("apply", "--validate=false", "-f", "-",
                     input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))

    def exec_python(self, pod: str, script: str, *args: str, timeout: float = 120) -> Any:
        """Run `script` inside `pod` with this interpreter (which has dnspython) and parse
        its JSON output."""
        assert self.kubectl is not None
        out = self.kubectl("exec", pod, "--", sys.executable, "-c", script, *args,
                           timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def exec_popen(self, pod: str, script: str, *args: str) -> subprocess.Popen[str]:
        assert self.kubectl is not None
        return self.kubectl.popen("exec", pod, "--", sys.executable, "-c", script, *args)

    def close(self) -> None:
        if self.kubectl is not None and self.server is not None and self.server.proc:
            k = self.kubectl
            k("delete", "deployment,pod", "--all", "-n", "default", "--wait=true",
              "--timeout=90s", "--grace-period=1", check=False, timeout=100)
            try:
                wait_for(lambda: not json.loads(k("get", "pods", "-o", "json"))["items"],
                         90, "pods to be gone before the server stops")
            except AssertionError:
                pass
        if self.server is not None:
            self.server.stop()
        _sh("ip", "netns", "del", self.node_netns, check=False)
