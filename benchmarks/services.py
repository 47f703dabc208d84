"""The Service proxy's cost: requests through a cluster IP versus straight to the pod, and how
fast a changed EndpointSlice becomes a kernel rule at 1,000 services × 10 endpoints.

1. Data path (same run, alternating): client pods send HTTP/1.1 requests (a new TCP
   connection each, as the proxy's DNAT applies per connection, `--concurrency` at once, for
   `--seconds`) to a server pod, one client to its pod IP and one to a Service's cluster IP
   whose nftables rules navio's proxy backend loaded in the node namespace. Reported: requests/s and
   p50/p99 latency of each, and the ratios (cluster IP / pod IP); median of `--rounds`.
2. Rule updates: a real `navio server --no-agent` holds `--services` Services with
   `--endpoints` ready endpoints each; navio's proxy (in process, nftables, in the node
   namespace) watches them. Reported: the first full sync, and — `--changes` times — the time
   from the API write of a changed EndpointSlice (one endpoint stops being ready) to the end
   of the sync that put it in the kernel (median, p90, max).

Everything runs in network namespaces created here with no route out (PLATFORM.md's safe
pattern) and the API server on 127.0.0.1; all are removed at the end. Needs root and nft.

    python3 benchmarks/services.py [--seconds 5] [--concurrency 16] [--rounds 3]
                                   [--services 1000] [--endpoints 10] [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from navio.client import ENDPOINTSLICES, NAMESPACES, SERVICES, Client  # noqa: E402
from navio.proxy import ProxyConfig, Proxier, run as run_proxy  # noqa: E402
from navio.proxy.model import build_service_map  # noqa: E402
from navio.proxy.nftables import RuleOptions  # noqa: E402
from navio.proxy.nftables_backend import NftablesBackend, NftRunner  # noqa: E402

TAG = f"nvb{os.getpid() % 100000}"
NODE = f"{TAG}-node"
GATEWAY, SERVER_IP, CLUSTER_IP = "10.42.0.1", "10.42.0.11", "10.43.0.20"
# Two client pods, one per path: the server pod's TIME_WAIT sockets are keyed by the client's
# address and port, and a client's TCP timestamps have a per-destination offset, so one
# client alternating between the pod IP and the cluster IP to the same pod has new SYNs
# refused by PAWS on reused ports (1 s retransmits) — a measurement artifact, not a cost.
CLIENTS = {"direct": ("cld", "10.42.0.100"), "service": ("cls", "10.42.0.101")}

SERVER = r"""
import asyncio, sys
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
BODY = b"pod1"
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n" + BODY
async def handle(r, w):
    try:
        await r.readuntil(b"\r\n\r\n")
        w.write(REPLY); await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]), backlog=4096)
    print("READY", flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""

LOAD = r"""
import asyncio, json, sys, time
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
ip, port, conc, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
REQ = f"GET / HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n".encode()
lat, errors = [], 0
async def worker(end):
    global errors
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
            w.write(REQ)
            data = await asyncio.wait_for(r.read(), 5)
            w.close()
            if not data.startswith(b"HTTP/1.1 200"):
                raise OSError("bad reply")
            lat.append(time.perf_counter() - t0)
        except Exception:
            errors += 1
async def main():
    t0 = time.perf_counter()
    end = t0 + secs
    await asyncio.gather(*(worker(end) for _ in range(conc)))
    took = time.perf_counter() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(json.dumps({"requests": len(lat), "errors": errors, "rps": len(lat) / took,
                      "p50_ms": q(0.50), "p99_ms": q(0.99)}))
asyncio.run(main())
"""


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def add_netns(name: str) -> None:
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def build_lab() -> list[str]:
    """The node netns (bridge, service route, no route out) and two pod netns."""
    made = [NODE]
    add_netns(NODE)
    n = ("ip", "-n", NODE)
    sh(*n, "link", "add", "br0", "type", "bridge")
    sh(*n, "addr", "add", f"{GATEWAY}/24", "dev", "br0")
    sh(*n, "link", "set", "br0", "up")
    sh(*n, "route", "add", "10.43.0.0/16", "dev", "br0")
    sh("ip", "netns", "exec", NODE, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for i, (pod, ip) in enumerate((("srv", SERVER_IP), *CLIENTS.values())):
        name = f"{TAG}-{pod}"
        made.append(name)
        add_netns(name)
        sh(*n, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", name)
        sh(*n, "link", "set", f"v{i}", "master", "br0", "up")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", name, "route", "add", "default", "via", GATEWAY)
    routes = sh(*n, "route").stdout
    assert "default" not in routes, routes
    return made


def load(path: str, ip: str, port: int, conc: int, secs: float) -> dict[str, float]:
    client = f"{TAG}-{CLIENTS[path][0]}"
    out = sh("ip", "netns", "exec", client, sys.executable, "-c", LOAD, ip, str(port),
             str(conc), str(secs), timeout=secs + 60).stdout
    return json.loads(out)


async def data_path(args: argparse.Namespace) -> None:
    svc = {"metadata": {"namespace": "bench", "name": "web"},
           "spec": {"clusterIP": CLUSTER_IP, "ports": [{"name": "http", "port": 80}]}}
    sl = {"metadata": {"namespace": "bench", "name": "web-1",
                       "labels": {"kubernetes.io/service-name": "web"}},
          "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": [SERVER_IP], "conditions": {"ready": True},
                         "nodeName": "n0"}]}
    backend = NftablesBackend(RuleOptions(cluster_cidr="10.42.0.0/16",
                                          service_cidr="10.43.0.0/16"), NftRunner(NODE))
    m = build_service_map([svc], [sl], "n0")
    await backend.sync(m, m.keys(), full=True)
    server = subprocess.Popen(["ip", "netns", "exec", f"{TAG}-srv", sys.executable, "-c",
                               SERVER, SERVER_IP, "8080"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "READY"
        load("direct", SERVER_IP, 8080, args.concurrency, 1.0)               # warm up
        load("service", CLUSTER_IP, 80, args.concurrency, 1.0)
        direct, via = [], []
        for _ in range(args.rounds):
            direct.append(load("direct", SERVER_IP, 8080, args.concurrency, args.seconds))
            via.append(load("service", CLUSTER_IP, 80, args.concurrency, args.seconds))
        med = lambda runs, k: statistics.median(r[k] for r in runs)   # noqa: E731
        errors = sum(r["errors"] for r in direct + via)
        print(f"data path: {args.concurrency} concurrent clients, a new connection per "
              f"request, {args.seconds:g} s x {args.rounds} rounds each (median); "
              f"errors {errors}")
        for label, runs in (("pod IP    ", direct), ("cluster IP", via)):
            print(f"  {label} {med(runs, 'rps'):8.0f} req/s  p50 {med(runs, 'p50_ms'):6.2f} ms"
                  f"  p99 {med(runs, 'p99_ms'):6.2f} ms")
        print(f"  ratio cluster IP / pod IP: req/s {med(via, 'rps') / med(direct, 'rps'):.3f}"
              f"  p99 {med(via, 'p99_ms') / med(direct, 'p99_ms'):.3f}")
    finally:
        server.kill()
        server.wait(10)
        await backend.cleanup()


async def _create_world(client: Client, n_services: int, n_endpoints: int) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "bench"}})
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        name = f"svc-{i}"
        eps = [{"addresses": [f"10.42.{(i * n_endpoints + j) // 250 % 256}."
                              f"{(i * n_endpoints + j) % 250 + 1}"],
                "conditions": {"ready": True}, "nodeName": f"n{j % 3}"}
               for j in range(n_endpoints)]
        async with sem:
            await client.create(SERVICES, {"metadata": {"name": name}, "spec": {
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, "bench")
            await client.create(ENDPOINTSLICES, {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": f"{name}-x",
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "endpoints": eps,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}, "bench")
    await asyncio.gather(*(one(i) for i in range(n_services)))


async def rule_updates(args: argparse.Namespace, kubeconfig: Path) -> None:
    async with Client.from_kubeconfig(kubeconfig) as client:
        t0 = time.perf_counter()
        await _create_world(client, args.services, args.endpoints)
        print(f"rule updates: {args.services} services x {args.endpoints} endpoints created "
              f"through the API in {time.perf_counter() - t0:.1f} s")
        proxiers: list[Proxier] = []
        config = ProxyConfig(kubeconfig=kubeconfig, node_name="n0", netns=NODE,
                             mode="nftables", cluster_cidr="10.42.0.0/16")
        task = asyncio.create_task(run_proxy(config, on_ready=proxiers.append))
        try:
            async with asyncio.timeout(300):
                while not (proxiers and proxiers[0].generation >= 1
                           and len(proxiers[0].services) >= args.services):
                    await asyncio.sleep(0.05)
            p = proxiers[0]
            assert p.last_sync is not None
            print(f"  first full sync: {p.last_sync.seconds * 1000:.0f} ms "
                  f"({len(p.services)} services)")
            latencies = []
            for c in range(args.changes):
                i = (c * 37) % args.services
                key = f"bench/svc-{i}"
                before = p.services[key]
                gen = p.generation
                sl = await client.get(ENDPOINTSLICES, f"svc-{i}-x", "bench")
                sl["endpoints"][c % args.endpoints]["conditions"] = {
                    "ready": False, "serving": True, "terminating": True}
                t0 = time.perf_counter()
                await client.update(ENDPOINTSLICES, sl, "bench")
                async with asyncio.timeout(30):
                    while p.services.get(key) == before or p.generation == gen:
                        await asyncio.sleep(0.001)
                latencies.append(time.perf_counter() - t0)
                assert len(p.services[key][0].cluster_endpoints) == args.endpoints - 1
            latencies.sort()
            ms = [x * 1000 for x in latencies]
            print(f"  EndpointSlice write -> rule in the kernel, {args.changes} changes: "
                  f"median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * len(ms))]:.0f} ms,"
                  f" max {ms[-1]:.0f} ms (last sync: {p.last_sync.kind})")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("nft"):
        sys.exit("needs root and nft (it creates network namespaces and loads rules there)")
    from cluster import NavioServer
    made: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="navio-bench-svc-"))
    server = None
    try:
        made = build_lab()
        await data_path(args)
        server = NavioServer(tmp / "data").start()
        await rule_updates(args, server.kubeconfig)
    finally:
        if server is not None:
            server.stop()
        for name in reversed(made):
            sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
