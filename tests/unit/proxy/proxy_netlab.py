"""Network namespaces for kernel tests, following PLATFORM.md's safe pattern (tests only).

A node netns with a bridge and no route out, pod netns on veths whose host ends live only in
the node netns, servers that answer their own name (TCP and UDP, no DNS lookups), and a client
that connects a bounded number of times. Everything created is removed by `close()`, which is
safe to repeat and runs even after a failed setup. Processes are stopped by PID.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import subprocess
import sys
from typing import Any

_counter = itertools.count()

# The lab's addresses: pods answer their name on SERVER_PORT; clients only connect.
PODS = {"pod1": "10.244.0.11", "pod2": "10.244.0.12", "pod3": "10.244.0.13"}
CLIENTS = {"client": "10.244.0.100", "outside": "10.244.0.200"}
SERVER_PORT = 8080

SERVER = r"""
import socket, sys, threading
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((ip, port)); tcp.listen(128)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((ip, port))
def serve_udp():
    while True:
        _, addr = udp.recvfrom(2048)
        udp.sendto(name.encode(), addr)
threading.Thread(target=serve_udp, daemon=True).start()
print("READY", flush=True)
while True:
    conn, addr = tcp.accept()
    try:
        conn.sendall(f"{name} {addr[0]}".encode())
    finally:
        conn.close()
"""

CLIENT = r"""
import socket, sys
ip, port, count, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for _ in range(count):
    try:
        if proto == "tcp":
            with socket.create_connection((ip, port), timeout=2) as s:
                data = b""
                while chunk := s.recv(1024):
                    data += chunk
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2); s.sendto(b"hi", (ip, port)); data = s.recv(1024)
        print(data.decode() or "EMPTY", flush=True)
    except OSError as exc:
        print("ERR", type(exc).__name__, flush=True)
"""


def sh(*argv: str, check: bool = True, timeout: float = 15.0,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc


def unique(tag: str) -> str:
    return f"nvp{os.getpid() % 100000}-{next(_counter)}-{tag}"


def delete_netns(name: str) -> None:
    sh("ip", "netns", "del", name, check=False)
    shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


def add_netns(name: str) -> None:
    delete_netns(name)
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    os.makedirs(f"/etc/netns/{name}", exist_ok=True)
    with open(f"/etc/netns/{name}/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\n")


def nft_canonical(netns: str, table: str = "navio-proxy") -> dict[str, Any]:
    """The table as comparable data: rules per chain in order, elements per set/map sorted,
    independent of creation order and handles."""
    out = sh("ip", "netns", "exec", netns, "nft", "-j", "list", "table", "ip", table).stdout
    chains: dict[str, list[str]] = {}
    sets: dict[str, Any] = {}
    for item in json.loads(out)["nftables"]:
        if "chain" in item:
            c = item["chain"]
            chains.setdefault(c["name"], [])
            chains[c["name"] + "#decl"] = [json.dumps({k: v for k, v in c.items()
                                                      if k != "handle"}, sort_keys=True)]
        elif "rule" in item:
            r = item["rule"]
            chains.setdefault(r["chain"], []).append(json.dumps(r["expr"], sort_keys=True))
        elif "set" in item or "map" in item:
            s = item.get("set") or item.get("map")
            decl = {k: v for k, v in s.items() if k not in ("handle", "elem")}
            elems = sorted(json.dumps(e, sort_keys=True) for e in s.get("elem", ()))
            sets[s["name"]] = (json.dumps(decl, sort_keys=True), elems)
    return {"chains": chains, "sets": sets}


class NetLab:
    """A node netns (bridge `br0`, `gateway`/24, a route for the service CIDR and nothing
    else) with pod netns attached through veths."""

    def __init__(self, gateway: str = "10.244.0.1", service_cidr: str = "10.43.0.0/16") -> None:
        self.gateway = gateway
        self.node = unique("node")
        self.pods: dict[str, str] = {}          # pod name → netns
        self.ips: dict[str, str] = {}           # pod name → IP
        self.procs: list[subprocess.Popen[str]] = []
        add_netns(self.node)
        n = ["ip", "-n", self.node]
        sh(*n, "link", "add", "br0", "type", "bridge")
        sh(*n, "addr", "add", f"{gateway}/24", "dev", "br0")
        sh(*n, "link", "set", "br0", "up")
        sh(*n, "route", "add", service_cidr, "dev", "br0")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        bnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
        sh("ip", "netns", "exec", self.node, "sh", "-c", f"test ! -e {bnf} || echo 1 > {bnf}")
        self.assert_no_route_out()

    def assert_no_route_out(self) -> None:
        routes = sh("ip", "-n", self.node, "route").stdout
        assert "default" not in routes, routes

    def add_pod(self, name: str, ip: str) -> str:
        ns = unique(name)
        self.pods[name], self.ips[name] = ns, ip
        add_netns(ns)
        veth = f"v{len(self.pods)}"
        sh("ip", "-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", self.node, "link", "set", veth, "master", "br0", "up")
        sh("bridge", "-n", self.node, "link", "set", "dev", veth, "hairpin", "on")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "route", "add", "default", "via", self.gateway)
        return ns

    def serve(self, pod: str, port: int) -> None:
        """Start a server in `pod` answering `<pod> <client ip>`; returns once it listens."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.pods[pod], sys.executable, "-c",
                                 SERVER, pod, self.ips[pod], str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10.0)
        line = proc.stdout.readline() if ready else ""
        assert line.strip() == "READY", f"server in {pod} did not start: {line!r}"

    def connect(self, pod: str, ip: str, port: int, count: int,
                proto: str = "tcp") -> list[str]:
        """`count` fresh connections from `pod` to ip:port; one answer (or `ERR …`) each."""
        ns = self.pods[pod] if pod != "node" else self.node
        out = sh("ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, ip, str(port),
                 str(count), proto, timeout=5 + 2.5 * count).stdout
        return out.split("\n")[:-1]

    def nft(self, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.node, "nft", *args, stdin=stdin, check=check)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs = []
        for ns in self.pods.values():
            delete_netns(ns)
        delete_netns(self.node)
