"""Multi-node clusters (issue 16): node IPAM and host-gw pod routing across three "hosts".

Each host is a network namespace (a RuntimeLab node netns) with one address on a test LAN: a
bridge inside a fourth namespace the test creates. No namespace has a route out of the
machine (PLATFORM.md). The control plane (`navio server --no-agent`) runs inside host A and
listens on A's LAN address only; two agents join it with a bootstrap token from hosts B and
C, each with its own --node-ip and its pods' bridge in its own host namespace, and no
--pod-cidr: each waits for the range node IPAM assigns its Node.

Shown: the Nodes get distinct pod CIDRs and each agent routes the other's range via its
InternalIP; a pod on B reaches a pod on C by pod IP with its own source address; stopping
C's agent removes its routes, deleting C's Node removes B's route to it and frees the range
for the next node.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from cluster import KUBECTL, Kubectl, wait_for
from kubelet_lab import NetnsServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import ROOT, RuntimeLab, sh  # noqa: E402

TAG = uuid.uuid4().hex[:6]
LAN = f"mnl-{TAG}"
ADDR = {"a": "10.201.0.1", "b": "10.201.0.2", "c": "10.201.0.3"}


class NetnsKubectl(Kubectl):
    netns: str = ""

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60.0, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", KUBECTL, *args],
                              input=input, capture_output=True, text=True, timeout=timeout,
                              env={**self.env(), **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc


@dataclass
class Host:
    key: str
    lab: RuntimeLab
    agent: subprocess.Popen[bytes] | None = None
    root: Path = field(default_factory=Path)

    @property
    def netns(self) -> str:
        assert self.lab.node
        return self.lab.node

    @property
    def node(self) -> str:
        return f"mn-{self.key}-{TAG}"

    def routes(self) -> str:
        return sh("ip", "-n", self.netns, "route").stdout

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(10)
        self.agent = None


@dataclass
class Cluster:
    server: NetnsServer
    kubectl: NetnsKubectl
    hosts: dict[str, Host]


def _lan(hosts: dict[str, Host]) -> None:
    sh("ip", "netns", "add", LAN)
    sh("ip", "-n", LAN, "link", "set", "lo", "up")
    sh("ip", "-n", LAN, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", LAN, "link", "set", "br0", "up")
    for key, host in hosts.items():
        # both ends are made inside the test's namespaces, never in the host's
        sh("ip", "-n", LAN, "link", "add", f"v{key}", "type", "veth", "peer", "name", "lan0",
           "netns", host.netns)
        sh("ip", "-n", LAN, "link", "set", f"v{key}", "master", "br0", "up")
        sh("ip", "-n", host.netns, "addr", "add", f"{ADDR[key]}/24", "dev", "lan0")
        sh("ip", "-n", host.netns, "link", "set", "lan0", "up")
        host.lab.assert_no_route_out()


def _start_agent(cluster_url: str, host: Host, token: Path, ca: Path, resolv: Path) -> None:
    host.root = host.lab.tmp / "agent"
    host.lab.state_dirs.add(host.root / "runtime")
    log = open(host.lab.tmp / "agent.log", "ab")
    host.agent = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{host.netns}", sys.executable, "-m", "navio.cli.main",
         "agent", "--server", cluster_url, "--token-file", str(token), "--ca-file", str(ca),
         "--node-name", host.node, "--node-ip", ADDR[host.key], "--root-dir", str(host.root),
         "--runtime", "process", "--node-netns", host.netns,
         "--cgroup-parent", host.lab.cgroup_parent, "--resolv-conf", str(resolv),
         "--node-status-update-frequency", "2s"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert os.geteuid() == 0, "multi-node tests need root (network namespaces)"
    base = tmp_path_factory.mktemp("multinode")
    hosts: dict[str, Host] = {}
    server: NetnsServer | None = None
    kubectl: NetnsKubectl | None = None
    try:
        for key in ADDR:
            (base / key).mkdir()
            hosts[key] = Host(key, RuntimeLab(base / key))
        _lan(hosts)
        server = NetnsServer(base / "data", extra_args=(
            "--no-agent", "--bind-address", ADDR["a"]))
        server.netns = hosts["a"].netns
        server.start()
        kubectl = NetnsKubectl(server.kubeconfig, base / "home")
        kubectl.netns = hosts["a"].netns
        token = base / "join.token"
        made = subprocess.run(
            ["nsenter", f"--net=/run/netns/{hosts['a'].netns}", sys.executable, "-m",
             "navio.cli.main", "token", "create", "--data-dir", str(server.data_dir),
             "--ttl", "1h", "--output-file", str(token)],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        resolv = base / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        for key in ("b", "c"):
            _start_agent(server.url, hosts[key], token, server.data_dir / "pki" / "ca.crt",
                         resolv)
        for key in ("b", "c"):
            wait_for(lambda: _ready(kubectl, hosts[key].node), 120,
                     f"node {hosts[key].node} to join and be Ready", 0.5)
        yield Cluster(server, kubectl, hosts)
    finally:
        if kubectl is not None and server is not None and server.proc is not None:
            kubectl.run("delete", "pods", "--all", "--wait=true",
                             "--timeout=30s", check=False, timeout=40)
        for host in hosts.values():
            host.stop_agent()
        if server is not None:
            server.stop()
        for host in hosts.values():
            asyncio.run(host.lab.cleanup())
        if os.path.exists(f"/run/netns/{LAN}"):
            sh("ip", "netns", "del", LAN, check=False)
        shutil.rmtree(f"/etc/netns/{LAN}", ignore_errors=True)


def _node(kubectl: Kubectl, name: str) -> dict[str, Any]:
    proc = kubectl.run("get", "node", name, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def _ready(kubectl: Kubectl, name: str) -> bool:
    conds = (_node(kubectl, name).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


_SERVE = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ["POD"] + " " + self.client_address[0]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), H).serve_forever()
"""


def _pod(name: str, node: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                                "containers": [{
                                    "name": "main", "image": "python",
                                    "command": ["python3", "-c", _SERVE],
                                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {
                                        "fieldPath": "metadata.name"}}}],
                                    "readinessProbe": {"tcpSocket": {"port": 8080},
                                                       "periodSeconds": 1}}]}})


def _pod_ip(kubectl: Kubectl, name: str) -> str | None:
    proc = kubectl.run("get", "pod", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return None
    pod = json.loads(proc.stdout)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or ())
    return pod["status"].get("podIP") if ready else None


def test_nodes_get_distinct_pod_cidrs_and_pods_reach_each_other(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    nb, nc = _node(kubectl, b.node), _node(kubectl, c.node)
    cidr_b, cidr_c = nb["spec"]["podCIDR"], nc["spec"]["podCIDR"]
    assert {cidr_b, cidr_c} == {"10.42.0.0/24", "10.42.1.0/24"}
    assert nb["spec"]["podCIDRs"] == [cidr_b] and nc["spec"]["podCIDRs"] == [cidr_c]
    # kubectl shows the ranges as kube does
    assert kubectl("get", "node", b.node, "-o", "jsonpath={.spec.podCIDR}") == cidr_b
    # each agent routes the other's range via its InternalIP, in its own host namespace
    wait_for(lambda: f"{cidr_c} via {ADDR['c']} dev lan0" in b.routes(), 30,
             "B's route to C's pods")
    wait_for(lambda: f"{cidr_b} via {ADDR['b']} dev lan0" in c.routes(), 30,
             "C's route to B's pods")
    assert "default" not in b.routes() and "default" not in c.routes()

    kubectl("apply", "-f", "-", input=_pod("web-b", b.node))
    kubectl("apply", "-f", "-", input=_pod("web-c", c.node))
    ip_b = wait_for(lambda: _pod_ip(kubectl, "web-b"), 90, "pod web-b Ready", 0.5)
    ip_c = wait_for(lambda: _pod_ip(kubectl, "web-c"), 90, "pod web-c Ready", 0.5)
    assert ip_b in _net(cidr_b) and ip_c in _net(cidr_c)
    fetch = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
             "sys.argv[1], timeout=5).read().decode())")
    # B's pod asks C's pod, by pod IP: C's pod answers with its name and sees B's pod IP
    out = kubectl("exec", "web-b", "--", "python3", "-c", fetch, f"http://{ip_c}:8080/",
                  timeout=60)
    assert out == f"web-c {ip_b}"
    out = kubectl("exec", "web-c", "--", "python3", "-c", fetch, f"http://{ip_b}:8080/",
                  timeout=60)
    assert out == f"web-b {ip_c}"

    # Leaving the cluster CIDR (to host A's own address, outside the pod network), a pod's
    # packet is masqueraded to its node's address.
    host_a = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{cluster.hosts['a'].netns}", sys.executable, "-c",
         _SERVE], env={**os.environ, "POD": "host-a", "PORT": "8099"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = wait_for(lambda: kubectl.run(
            "exec", "web-b", "--", "python3", "-c", fetch, f"http://{ADDR['a']}:8099/",
            check=False, timeout=60).stdout, 30, "host A's server to answer web-b", 0.5)
        assert out == f"host-a {ADDR['b']}"
    finally:
        host_a.terminate()
        host_a.wait(10)


def test_a_departed_node_takes_its_routes_and_frees_its_range(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    cidr_b = _node(kubectl, b.node)["spec"]["podCIDR"]
    cidr_c = _node(kubectl, c.node)["spec"]["podCIDR"]
    wait_for(lambda: f"{cidr_b} via {ADDR['b']}" in c.routes(), 30, "C's route to B")
    kubectl("delete", "pod", "web-c", "--wait=true", "--timeout=30s", check=False,
            timeout=40)
    c.stop_agent()
    # a clean shutdown takes the agent's routes with it
    assert f"{cidr_b} via" not in c.routes(), c.routes()
    kubectl("delete", "node", c.node, "--timeout=30s", timeout=40)
    wait_for(lambda: f"{cidr_c} via" not in b.routes(), 30,
             "B's route to the deleted node's pods to go")
    # the range is free again: the next Node gets it
    newcomer = f"mn-d-{TAG}"
    kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": newcomer}}))
    try:
        got = wait_for(lambda: _node(kubectl, newcomer).get("spec", {}).get("podCIDR"), 30,
                       "the new node's pod CIDR")
        assert got == cidr_c
        # ...and B routes it once the node has an address
        kubectl("patch", "node", newcomer, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"addresses": [
                    {"type": "InternalIP", "address": ADDR["c"]}]}}))
        wait_for(lambda: f"{cidr_c} via {ADDR['c']}" in b.routes(), 30,
                 "B's route to the new node")
    finally:
        kubectl("delete", "node", newcomer, check=False)


def _net(cidr: str) -> Any:
    import ipaddress

    class _In:
        def __contains__(self, ip: object) -> bool:
            return ipaddress.ip_address(str(ip)) in ipaddress.ip_network(cidr)
    return _In()
