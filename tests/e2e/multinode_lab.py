"""The multi-node harness (issue 16): three "hosts" on a test LAN, a control plane on one,
agents joining it from the other two.

Each host is a network namespace (a RuntimeLab node netns). The LAN is a fourth namespace
the test creates: one bridge (`flat`: every host on 10.201.0.0/24, one L2 segment), or, with
`routed=True`, two bridges on two subnets with the LAN namespace routing between them (host
C on 10.202.0.0/24 behind a router, so no host-gw route can reach it). No namespace has a
route out of the machine (PLATFORM.md): hosts only route the other LAN subnet, via the
router; every veth is made inside the test's namespaces.

The control plane (`navio server --no-agent`) runs in host A and listens on A's LAN address
only. With `controller_manager=(flags...)` the server runs without its own controller manager
and `navio controller-manager` runs beside it in host A with those extra flags (tight
node-lifecycle timings, as kube-controller-manager takes them). Agents on B and C join with a
bootstrap token, each with its own --node-ip, its pods' bridge in its own host namespace and
no --pod-cidr (node IPAM assigns one); `agent_args` are added to both.

Everything started here is stopped by PID; namespaces, pods and cgroups are removed by the
RuntimeLab cleanup, even after a failed test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cluster import KUBECTL, Kubectl, wait_for
from kubelet_lab import NetnsServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import ROOT, RuntimeLab, sh  # noqa: E402

__all__ = ["Cluster", "Host", "NetnsKubectl", "multinode_cluster", "FLAT", "ROUTED",
           "DNS_IP", "node", "ready", "pod_ip", "server_pod", "FETCH", "SERVE", "in_net",
           "host_run", "sh"]

# host -> address/prefix on the LAN
FLAT = {"a": "10.201.0.1/24", "b": "10.201.0.2/24", "c": "10.201.0.3/24"}
ROUTED = {"a": "10.201.0.1/24", "b": "10.201.0.2/24", "c": "10.202.0.3/24"}
DNS_IP = "10.43.0.10"


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
    cidr: str                       # its LAN address with prefix
    tag: str
    agent: subprocess.Popen[bytes] | None = None
    agent_argv: list[str] = field(default_factory=list)
    root: Path = field(default_factory=Path)

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]

    @property
    def netns(self) -> str:
        assert self.lab.node
        return self.lab.node

    @property
    def node(self) -> str:
        return f"mn-{self.key}-{self.tag}"

    def routes(self) -> str:
        return sh("ip", "-n", self.netns, "route").stdout

    def start_agent(self) -> None:
        log = open(self.lab.tmp / "agent.log", "ab")
        self.agent = subprocess.Popen(self.agent_argv, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(10)
        self.agent = None

    def link(self, up: bool) -> None:
        """Cut (or restore) this host's only link to the LAN, as a pulled cable would."""
        sh("ip", "-n", self.netns, "link", "set", "lan0", "up" if up else "down")
        if up:   # the route to the other subnet went with the link
            _lan_routes(self)


@dataclass
class Cluster:
    server: NetnsServer
    kubectl: NetnsKubectl
    hosts: dict[str, Host]
    lan: str
    controller_manager: subprocess.Popen[bytes] | None = None

    def on(self, key: str, *argv: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command in host `key`'s network namespace."""
        return host_run(self.hosts[key].netns, *argv, env=env, timeout=timeout)


def host_run(netns: str, *argv: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *argv],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _router(cidr: str) -> str:
    """The LAN router's address on a host's subnet (its last usable address)."""
    net = ipaddress.ip_interface(cidr).network
    return str(net.broadcast_address - 1)


def _subnets(addrs: dict[str, str]) -> list[str]:
    return sorted({str(ipaddress.ip_interface(c).network) for c in addrs.values()})


def _lan_routes(host: Host, subnets: list[str] | None = None) -> None:
    mine = str(ipaddress.ip_interface(host.cidr).network)
    for net in subnets if subnets is not None else _ALL_SUBNETS.get(host.tag, []):
        if net != mine:
            sh("ip", "-n", host.netns, "route", "replace", net, "via", _router(host.cidr))


_ALL_SUBNETS: dict[str, list[str]] = {}


def _lan(name: str, hosts: dict[str, Host]) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    subnets = _subnets({k: h.cidr for k, h in hosts.items()})
    routed = len(subnets) > 1
    if routed:
        sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for i, net in enumerate(subnets):
        sh("ip", "-n", name, "link", "add", f"br{i}", "type", "bridge")
        sh("ip", "-n", name, "link", "set", f"br{i}", "up")
        if routed:
            prefix = ipaddress.ip_network(net).prefixlen
            sh("ip", "-n", name, "addr", "add", f"{_router(net)}/{prefix}", "dev", f"br{i}")
    for key, host in hosts.items():
        net = str(ipaddress.ip_interface(host.cidr).network)
        # both ends are made inside the test's namespaces, never in the host's
        sh("ip", "-n", name, "link", "add", f"v{key}", "type", "veth", "peer", "name", "lan0",
           "netns", host.netns)
        sh("ip", "-n", name, "link", "set", f"v{key}", "master", f"br{subnets.index(net)}",
           "up")
        sh("ip", "-n", host.netns, "addr", "add", host.cidr, "dev", "lan0")
        sh("ip", "-n", host.netns, "link", "set", "lan0", "up")
        if routed:
            _ALL_SUBNETS[host.tag] = subnets
            _lan_routes(host, subnets)
        host.lab.assert_no_route_out()
    assert "default" not in sh("ip", "-n", name, "route").stdout


def _agent_argv(cluster_url: str, host: Host, token: Path, ca: Path, resolv: Path,
                extra: tuple[str, ...]) -> list[str]:
    host.root = host.lab.tmp / "agent"
    host.lab.state_dirs.add(host.root / "runtime")
    return ["nsenter", f"--net=/run/netns/{host.netns}", sys.executable, "-m",
            "navio.cli.main", "agent", "--server", cluster_url, "--token-file", str(token),
            "--ca-file", str(ca), "--node-name", host.node, "--node-ip", host.ip,
            "--root-dir", str(host.root), "--runtime", "process", "--node-netns", host.netns,
            "--cgroup-parent", host.lab.cgroup_parent, "--resolv-conf", str(resolv),
            "--node-status-update-frequency", "2s", *extra]


def _start_controller_manager(cluster: Cluster, flags: tuple[str, ...]) -> None:
    server = cluster.server
    pki = server.data_dir / "pki"
    log = open(server.data_dir.parent / "controller-manager.log", "ab")
    cluster.controller_manager = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{cluster.hosts['a'].netns}", sys.executable, "-m",
         "navio.cli.main", "controller-manager", "--kubeconfig", str(server.kubeconfig),
         "--leader-elect", "false", "--cluster-signing-cert-file", str(pki / "ca.crt"),
         "--cluster-signing-key-file", str(pki / "ca.key"), "--root-ca-file",
         str(pki / "ca.crt"), *flags],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    log.close()


@contextlib.contextmanager
def multinode_cluster(base: Path, *, addrs: dict[str, str] = FLAT,
                      agent_args: tuple[str, ...] = (),
                      controller_manager: tuple[str, ...] | None = None,
                      dns: bool = False, bind: str | None = None,
                      join_addrs: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Three hosts, the control plane on A, agents of B and C joined and Ready. With `dns`
    every agent serves the node-local cluster DNS on 10.43.0.10. `bind`: the API server's
    bind address (default A's LAN address); `join_addrs`: the addresses the agents are
    given as their --server URLs (default the server's own URL)."""
    assert os.geteuid() == 0, "multi-node tests need root (network namespaces)"
    tag = uuid.uuid4().hex[:6]
    lan = f"mnl-{tag}"
    hosts: dict[str, Host] = {}
    server: NetnsServer | None = None
    kubectl: NetnsKubectl | None = None
    cluster: Cluster | None = None
    try:
        for key in addrs:
            (base / key).mkdir()
            hosts[key] = Host(key, RuntimeLab(base / key), addrs[key], tag)
        _lan(lan, hosts)
        server_args = ["--no-agent", "--bind-address", bind or hosts["a"].ip]
        if controller_manager is not None:
            server_args += ["--disable", "controller-manager"]
        server = NetnsServer(base / "data", extra_args=tuple(server_args))
        server.netns = hosts["a"].netns
        server.start()
        kubectl = NetnsKubectl(server.kubeconfig, base / "home")
        kubectl.netns = hosts["a"].netns
        cluster = Cluster(server, kubectl, hosts, lan)
        if controller_manager is not None:
            _start_controller_manager(cluster, controller_manager)
        token = base / "join.token"
        made = subprocess.run(
            ["nsenter", f"--net=/run/netns/{hosts['a'].netns}", sys.executable, "-m",
             "navio.cli.main", "token", "create", "--data-dir", str(server.data_dir),
             "--ttl", "1h", "--output-file", str(token)],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        resolv = base / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        extra = agent_args + (("--cluster-dns", DNS_IP, "--serve-cluster-dns") if dns else ())
        url = ",".join(f"https://{ip}:{server.port}" for ip in join_addrs) or server.url
        for key in ("b", "c"):
            hosts[key].agent_argv = _agent_argv(url, hosts[key], token,
                                                server.data_dir / "pki" / "ca.crt", resolv,
                                                extra)
            hosts[key].start_agent()
        for key in ("b", "c"):
            wait_for(lambda: ready(kubectl, hosts[key].node), 120,
                     f"node {hosts[key].node} to join and be Ready", 0.5)
        yield cluster
    finally:
        if kubectl is not None and server is not None and server.proc is not None:
            for h in hosts.values():
                if _link_down(h):     # a test that failed with a link cut
                    h.link(True)
            kubectl.run("delete", "pods", "--all", "--all-namespaces", "--wait=true",
                        "--timeout=30s", check=False, timeout=40)
        for host in hosts.values():
            host.stop_agent()
        if cluster is not None and cluster.controller_manager is not None:
            proc = cluster.controller_manager
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if server is not None:
            server.stop()
        for host in hosts.values():
            asyncio.run(host.lab.cleanup())
        if os.path.exists(f"/run/netns/{lan}"):
            sh("ip", "netns", "del", lan, check=False)
        shutil.rmtree(f"/etc/netns/{lan}", ignore_errors=True)
        _ALL_SUBNETS.pop(tag, None)


def _link_down(host: Host) -> bool:
    if not host.lab.node or not os.path.exists(f"/run/netns/{host.lab.node}"):
        return False
    out = sh("ip", "-n", host.netns, "-o", "link", "show", "lan0", check=False).stdout
    return bool(out) and "state DOWN" in out


# ---- reading the cluster ------------------------------------------------------------------

def node(kubectl: Kubectl, name: str) -> dict[str, Any]:
    proc = kubectl.run("get", "node", name, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def ready(kubectl: Kubectl, name: str) -> bool:
    conds = (node(kubectl, name).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def pod_ip(kubectl: Kubectl, name: str, namespace: str = "default") -> str | None:
    """The pod's IP once it is Ready."""
    proc = kubectl.run("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        return None
    pod = json.loads(proc.stdout)
    ok = any(c.get("type") == "Ready" and c.get("status") == "True"
             for c in (pod.get("status") or {}).get("conditions") or ())
    return pod["status"].get("podIP") if ok else None


# An HTTP server answering "<POD> <client address>", doing no DNS lookups.
SERVE = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ["POD"] + " " + self.client_address[0]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), H).serve_forever()
"""

# `python3 -c FETCH URL [timeout]`: prints the body, exits 1 on any failure.
FETCH = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], "
         "timeout=float(sys.argv[2]) if len(sys.argv) > 2 else 5).read().decode())")


def server_container() -> dict[str, Any]:
    return {"name": "main", "image": "python", "command": ["python3", "-c", SERVE],
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.name"}}}],
            "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}


def server_pod(name: str, node_name: str, labels: dict[str, str] | None = None,
               namespace: str = "default") -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": namespace,
                                    "labels": labels or {}},
                       "spec": {"nodeName": node_name, "terminationGracePeriodSeconds": 2,
                                "containers": [server_container()]}})


def in_net(ip: str | None, cidr: str) -> bool:
    return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
