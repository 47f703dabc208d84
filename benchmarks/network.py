"""The pod network's cost: pod-to-pod throughput and latency on one node, across nodes
(host-gw and VXLAN) and through a ClusterIP, beside a bare veth pair measured in the same run.

A real three-host cluster per backend (tests/e2e/multinode_lab.py: hosts are network
namespaces on a test LAN, the control plane on A, agents on B and C joined with a token;
for vxlan the hosts are on two routed subnets). A server pod on B; client pods on B (same
node) and C (across the LAN); a Service in front of the server. The baseline is two
namespaces joined by one veth pair, made here, running the same two programs.

Measured inside the pods (so `kubectl exec` start-up is not counted), `--rounds` times,
median reported:
- throughput: one TCP connection, 64 KiB writes for `--seconds`, the receiver counts bytes;
- latency: one TCP connection, 1-byte request/response ping-pong, `--pings` round trips,
  p50 and p99 per round trip.
Python moves the bytes on both ends, so absolute figures are Python's; the ratios to the
veth pair show what the pod network adds (a bridge hop, routing, an overlay, NAT).

Everything runs in namespaces this program creates with no route out (PLATFORM.md) and is
removed at the end. Needs root.

    python3 benchmarks/network.py [--backends host-gw,vxlan] [--seconds 3] [--pings 5000]
                                  [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from cluster import wait_for  # noqa: E402
from multinode_lab import FLAT, ROUTED, Cluster, multinode_cluster, pod_ip  # noqa: E402

PORT = 5001

# The receiving end: per connection, the first byte picks the test. 'T': count bytes until
# EOF, answer the count; 'P': echo single bytes until EOF.
SERVER = r"""
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = s.recv(1)
        if mode == b"T":
            n, buf = 0, bytearray(1 << 16)
            while True:
                k = s.recv_into(buf)
                if not k:
                    break
                n += k
            s.sendall(str(n).encode())
        elif mode == b"P":
            while True:
                b = s.recv(1)
                if not b:
                    break
                s.sendall(b)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""

# The sending end: `python3 -c CLIENT host port seconds pings` prints one JSON line.
CLIENT = r"""
import json, socket, sys, time
host, port, seconds, pings = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=30)
s.sendall(b"T")
chunk, sent = bytes(1 << 16), 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < seconds:
    s.sendall(chunk); sent += len(chunk)
s.shutdown(socket.SHUT_WR)
got = int(s.recv(64).decode())
elapsed = time.perf_counter() - t0
s.close()
assert got == sent, (got, sent)
p = socket.create_connection((host, port), timeout=30)
p.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
p.sendall(b"P")
rtts = []
for _ in range(pings):
    t = time.perf_counter(); p.sendall(b"x"); p.recv(1); rtts.append(time.perf_counter() - t)
p.close()
rtts.sort()
print(json.dumps({"gbps": sent * 8 / elapsed / 1e9, "p50_us": rtts[len(rtts) // 2] * 1e6,
                  "p99_us": rtts[int(len(rtts) * 0.99)] * 1e6}))
"""

SLEEPER = "import time; time.sleep(10**9)"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


# ---- the baseline: one veth pair between two namespaces ------------------------------------

class VethPair:
    """Two namespaces joined by one veth pair, the server running in one of them; measured
    once before each cluster measurement, so both see the same machine."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = f"nbv-{tag}-a", f"nbv-{tag}-b"
        self.server: subprocess.Popen[bytes] | None = None
        self.rounds: list[dict[str, float]] = []

    def __enter__(self) -> "VethPair":
        try:
            for n in (self.a, self.b):
                sh("ip", "netns", "add", n)
                sh("ip", "-n", n, "link", "set", "lo", "up")
            sh("ip", "-n", self.a, "link", "add", "eth0", "type", "veth", "peer", "name",
               "eth0", "netns", self.b)
            for n, ip in ((self.a, "10.209.9.1/24"), (self.b, "10.209.9.2/24")):
                sh("ip", "-n", n, "addr", "add", ip, "dev", "eth0")
                sh("ip", "-n", n, "link", "set", "eth0", "up")
                assert "default" not in sh("ip", "-n", n, "route").stdout
            self.server = subprocess.Popen(["ip", "netns", "exec", self.b, sys.executable,
                                            "-c", SERVER, str(PORT)],
                                           stdout=subprocess.DEVNULL)
        except BaseException:
            self.__exit__()
            raise
        return self

    def measure(self, args: argparse.Namespace) -> None:
        out = wait_for(lambda: sh("ip", "netns", "exec", self.a, sys.executable, "-c", CLIENT,
                                  "10.209.9.2", str(PORT), str(args.seconds), str(args.pings),
                                  check=False).stdout, 30, "the veth baseline", 0.2)
        self.rounds.append(json.loads(out))

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)
        for n in (self.a, self.b):
            sh("ip", "netns", "del", n, check=False)


# ---- the cluster paths ----------------------------------------------------------------------

def _pod(name: str, node: str, script: str, labels: dict[str, str] | None = None) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": labels or {}},
                       "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "main", "image": "python",
                                                "command": ["python3", "-c", script,
                                                            str(PORT)]}]}})


def cluster_paths(cluster: Cluster, args: argparse.Namespace, veth: VethPair
                  ) -> dict[str, dict[str, float]]:
    k, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    k("apply", "-f", "-", input=_pod("srv", b.node, SERVER, {"app": "srv"}))
    k("apply", "-f", "-", input=_pod("cli-b", b.node, SLEEPER))
    k("apply", "-f", "-", input=_pod("cli-c", c.node, SLEEPER))
    k("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv"},
        "spec": {"selector": {"app": "srv"}, "ports": [{"port": PORT}]}}))
    srv = wait_for(lambda: k("get", "pod", "srv", "-o", "jsonpath={.status.podIP}"), 90,
                   "the server pod", 0.5)
    for name in ("cli-b", "cli-c"):
        wait_for(lambda: pod_ip(k, name) or k("get", "pod", name, "-o",
                                              "jsonpath={.status.phase}") == "Running",
                 90, name, 0.5)
    vip = k("get", "service", "srv", "-o", "jsonpath={.spec.clusterIP}")
    paths = {"pod→pod, same node": ("cli-b", srv), "pod→pod, across nodes": ("cli-c", srv),
             "pod→ClusterIP, across nodes": ("cli-c", vip)}
    out: dict[str, dict[str, float]] = {}
    for label, (client, target) in paths.items():
        rounds = []
        for _ in range(args.rounds):
            veth.measure(args)
            got = wait_for(lambda: k.run("exec", client, "--", "python3", "-c", CLIENT, target,
                                         str(PORT), str(args.seconds), str(args.pings),
                                         check=False, timeout=120).stdout, 60, label, 0.5)
            rounds.append(json.loads(got))
        out[label] = median_of(rounds)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="host-gw,vxlan")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--pings", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    results: dict[str, dict[str, float]] = {}
    with VethPair() as veth:
        for backend in [x.strip() for x in args.backends.split(",") if x.strip()]:
            base = Path(tempfile.mkdtemp(prefix=f"navio-netbench-{backend}-"))
            try:
                with multinode_cluster(base, addrs=FLAT if backend == "host-gw" else ROUTED,
                                       agent_args=("--pod-network-backend", backend)) as c:
                    for label, figures in cluster_paths(c, args, veth).items():
                        results[f"{label} ({backend})"] = figures
            finally:
                shutil.rmtree(base, ignore_errors=True)
    results = {"veth pair (baseline)": median_of(veth.rounds), **results}
    ref = results["veth pair (baseline)"]
    print(f"{'path':44} {'Gbit/s':>8} {'×veth':>6} {'RTT p50 µs':>11} {'p99 µs':>8} "
          f"{'×veth':>6}")
    for label, r in results.items():
        print(f"{label:44} {r['gbps']:8.2f} {r['gbps'] / ref['gbps']:6.2f} "
              f"{r['p50_us']:11.1f} {r['p99_us']:8.1f} {r['p50_us'] / ref['p50_us']:6.2f}")
    print(json.dumps({"seconds": args.seconds, "pings": args.pings, "rounds": args.rounds,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
