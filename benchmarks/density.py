"""Density: N simulated nodes × 30 pods, measured as Kubernetes' scalability SLIs (issue 9).

For each N: a fresh `navio server --no-agent` (SQLite) with its scheduler, a controller
manager started here (kube's node-lifecycle defaults except the grace period and eviction
rate, printed, so that the failure phase ends in seconds; the sim's Leases last 20 s and are
renewed every 5 s, kube's 4:1 ratio to the grace period), `navio sim --nodes N`, then
Deployments totalling 30 pods per node, created at once. Measured:

- pod startup latency (kube's SLI: creation → observed Running by a watch; SLO p99 ≤ 5 s):
  from the pod's ADDED event on this driver's watch to the event showing it Running; once
  for the saturation burst, and once, as kube's density test reports the SLO, for
  `--latency-pods` single-replica Deployments created at `--latency-rate` per second after
  the burst has settled (the "latency pods");
- API call latency p99 per verb and resource (SLO ≤ 1 s for single-object calls), from the
  API server's own apiserver_request_duration_seconds, counting only the workload phase
  (bucket counts before are subtracted; the quantile is interpolated in the bucket as
  Prometheus' histogram_quantile does); WATCH and CONNECT are excluded as in kube's SLI;
- scheduler throughput: pods bound per second between the first and the last binding seen;
- pods/s end to end (all pods Running ÷ time from the first create) and the time until all
  pods are Running;
- peak RSS (VmHWM) and CPU seconds of the server, scheduler, controller manager and sim;
- then 1 % of the nodes stop their heartbeats (the sim's control endpoint) and the time until
  every pod of theirs runs elsewhere is measured (pods tolerate `unreachable` for 5 s).

    python3 benchmarks/density.py --nodes 100,1000 [--pods-per-node 30] [--plot out.png]

The plot (matplotlib: `pip install -e '.[bench]'`) shows startup p50/p90/p99 and the worst
API p99 against N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navio.client import DEPLOYMENTS, NAMESPACES, PODS, Client  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
NS = "density"
DEPLOY_SIZE = 300
GRACE = "20s"
TOLERATION = 5


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process; (0, 0) if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        hwm = next((int(line.split()[1]) / 1024 for line in
                    Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmHWM:")), 0.0)
        return (int(fields[11]) + int(fields[12])) / TICKS, hwm
    except OSError:
        return 0.0, 0.0


def children(pid: int) -> dict[str, int]:
    """The server's component processes by name (`navio scheduler` → scheduler)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"navio.cli.main" in argv:
            out[argv[argv.index(b"navio.cli.main") + 1].decode()] = int(entry.name)
    return out


class Proc:
    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "navio.cli.main", *argv],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(pattern, line)
            if m:
                return m
        raise SystemExit(f"no {pattern!r} from {self.proc.args} (see {self.log.name})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def deployment(name: str, replicas: int) -> dict[str, Any]:
    tolerate = [{"key": key, "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": TOLERATION}
                for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"tolerations": tolerate, "containers": [
                                      {"name": "c", "image": "registry.k8s.io/pause:3.10",
                                       "resources": {"requests": {"cpu": "10m"}}}]}}}}


def scrape(url: str, pki: Path) -> dict[tuple[str, str], dict[float, float]]:
    """apiserver_request_duration_seconds buckets by (verb, resource[/subresource])."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    with urllib.request.urlopen(url + "/metrics", context=ctx, timeout=60) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], dict[float, float]] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != "apiserver_request_duration_seconds":
            continue
        for s in fam.samples:
            if not s.name.endswith("_bucket"):
                continue
            res = s.labels["resource"] + (f"/{s.labels['subresource']}"
                                          if s.labels.get("subresource") else "")
            key = (s.labels["verb"], res)
            le = float(s.labels["le"])
            out.setdefault(key, {})
            out[key][le] = out[key].get(le, 0.0) + s.value
    return out


def quantile(q: float, buckets: dict[float, float]) -> tuple[float, int]:
    """histogram_quantile over cumulative buckets; (seconds, count)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan"), 0
    rank, prev_bound, prev_count = q * total, 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"):
                return prev_bound, int(total)
            width = buckets[b] - prev_count
            frac = (rank - prev_count) / width if width else 1.0
            return prev_bound + (b - prev_bound) * frac, int(total)
        prev_bound, prev_count = b, buckets[b]
    return bounds[-2], int(total)


class Watcher:
    """Pod timeline from one watch of the benchmark namespace."""

    def __init__(self) -> None:
        self.added: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.node: dict[str, str] = {}
        self.terminating: set[str] = set()

    async def run(self, client: Client) -> None:
        rv = None
        while True:                          # the server ends watches; resume where it was
            try:
                async with client.watch(PODS, NS, resource_version=rv,
                                        timeout_seconds=3600) as stream:
                    async for ev in stream:
                        rv = ev.object.get("metadata", {}).get("resourceVersion") or rv
                        if ev.type != "BOOKMARK":
                            self.observe(ev.type, ev.object)
            except asyncio.CancelledError:
                raise
            except Exception as exc:         # noqa: BLE001 - report, then resume
                print(f"watch interrupted ({type(exc).__name__}); resuming", flush=True)
                await asyncio.sleep(0.5)

    def observe(self, kind: str, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            for d in (self.added, self.bound, self.running, self.node):
                d.pop(name, None)
            self.terminating.discard(name)
            return
        self.added.setdefault(name, now)
        node = obj["spec"].get("nodeName")
        if node:
            self.bound.setdefault(name, now)
            self.node[name] = node
        if obj.get("status", {}).get("phase") == "Running":
            self.running.setdefault(name, now)
        if obj["metadata"].get("deletionTimestamp"):
            self.terminating.add(name)

    def healthy_running(self, failed: set[str]) -> int:
        return sum(1 for n in self.running if n not in self.terminating
                   and self.node.get(n) not in failed)


async def measure(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / f"n{n}"
    server = Proc(["server", "--data-dir", str(data), "--port", "0", "--no-agent",
                   "--disable", "controller-manager"], work / f"server-{n}.log")
    url = server.wait_line(r"listening on (https://\S+)", 60).group(1)
    server.wait_line(r"kubeconfig written", 30)
    kc = data / "admin.kubeconfig"
    cm = Proc(["controller-manager", "--kubeconfig", str(kc), "--leader-elect", "false",
               "--secure-port", "-1", "--node-monitor-grace-period", GRACE,
               "--node-eviction-rate", "1", "--kube-api-qps", "1000", "--kube-api-burst",
               "2000", "--concurrent-replicaset-syncs", "10"], work / f"cm-{n}.log")
    sim = Proc(["sim", "--kubeconfig", str(kc), "--nodes", str(n), "--seed", "1",
                "--node-lease-duration", "20"],
               work / f"sim-{n}.log")
    control = sim.wait_line(r"control endpoint (http://\S+)", 60).group(1)
    t0 = time.monotonic()
    sim.wait_line(r"nodes registered", max(60, n / 20))
    register_s = time.monotonic() - t0
    pids = {"server": server.proc.pid, "controller-manager": cm.proc.pid,
            "sim": sim.proc.pid, **{k: v for k, v in children(server.proc.pid).items()
                                    if k == "scheduler"}}
    total = n * args.pods_per_node
    result: dict[str, Any] = {"nodes": n, "pods": total, "register_s": register_s}
    client = Client.from_kubeconfig(kc, component="density", qps=0, burst=0)
    try:
        await client.create(NAMESPACES, {"metadata": {"name": NS}})
        watcher = Watcher()
        watch_task = asyncio.create_task(watcher.run(client))
        await asyncio.sleep(1.0)
        before = scrape(url, data / "pki")
        cpu0 = {k: proc_stat(p)[0] for k, p in pids.items()}
        start = time.monotonic()
        sizes = [DEPLOY_SIZE] * (total // DEPLOY_SIZE) + ([total % DEPLOY_SIZE]
                                                            if total % DEPLOY_SIZE else [])
        await asyncio.gather(*(client.create(DEPLOYMENTS, deployment(f"d{i}", size), NS)
                               for i, size in enumerate(sizes)))
        deadline = start + max(120.0, total / 20)
        while len(watcher.running) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        all_running = time.monotonic() - start if len(watcher.running) >= total else None
        latencies = [watcher.running[p] - watcher.added[p] for p in watcher.running
                     if p in watcher.added]
        # ---- latency pods: single-replica Deployments at a steady rate ----------------
        lat_start = time.monotonic()
        for i in range(args.latency_pods):
            await client.create(DEPLOYMENTS, deployment(f"lat{i}", 1), NS)
            await asyncio.sleep(max(0.0, lat_start + (i + 1) / args.latency_rate
                                    - time.monotonic()))
        expected = total + args.latency_pods
        deadline = time.monotonic() + 60
        while len(watcher.running) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        lat = [watcher.running[p] - watcher.added[p] for p in watcher.running
               if p.startswith("lat") and p in watcher.added]
        result["latency_startup"] = {q: pct(lat, q) for q in (50, 90, 99)}
        result["latency_pods"] = len(lat)
        after = scrape(url, data / "pki")
        # Rates of the burst alone (the latency pods trickle in at their own pace).
        binds = sorted(t for p, t in watcher.bound.items() if not p.startswith("lat"))
        burst = [t for p, t in watcher.running.items() if not p.startswith("lat")]
        result.update(
            running=len(burst), all_running_s=all_running,
            startup={q: pct(latencies, q) for q in (50, 90, 99)},
            sched_pods_s=(len(binds) - 1) / (binds[-1] - binds[0]) if len(binds) > 1 else 0,
            e2e_pods_s=len(burst) / (max(burst) - start) if burst else 0)
        api = {}
        for key, buckets in after.items():
            prev = before.get(key, {})
            delta = {le: c - prev.get(le, 0.0) for le, c in buckets.items()}
            if key[0] in ("WATCH", "CONNECT") or max(delta.values()) <= 0:
                continue
            api[key] = quantile(0.99, delta)
        result["api"] = api
        result["cpu"] = {k: proc_stat(p)[0] - cpu0[k] for k, p in pids.items()}
        result["rss"] = {k: proc_stat(p)[1] for k, p in pids.items()}
        # ---- failure: 1 % of the nodes stop heartbeating --------------------------------
        req = urllib.request.Request(f"{control}/fail?fraction={args.fail}%25", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            failed = set(json.loads(resp.read())["failed"])
        t_fail = time.monotonic()
        moved = sum(1 for p, node in watcher.node.items() if node in failed)
        deadline = t_fail + 300
        while watcher.healthy_running(failed) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        result.update(failed_nodes=len(failed), pods_on_failed=moved,
                      recovered_s=time.monotonic() - t_fail
                      if watcher.healthy_running(failed) >= expected else None)
        result["rss"] = {k: proc_stat(p)[1] for k, p in pids.items()}
        watch_task.cancel()
        try:
            await watch_task
        except (asyncio.CancelledError, aiohttp.ClientError, Exception):
            pass
    finally:
        await client.close()
        for p in (sim, cm, server):
            p.stop()
    return result


def report(results: list[dict[str, Any]]) -> None:
    print("\nKubernetes SLOs: pod startup p99 <= 5 s; API call p99 <= 1 s (single-object "
          "mutating and read calls); kwok: 20 pods/s; aim >= 500 pods/s")
    print("startup = saturation burst (all pods at once); SLO = latency pods at a steady rate")
    print(f"{'nodes':>6} {'pods':>7} {'all run s':>9} {'start p50':>9} {'p90':>6} {'p99':>6} "
          f"{'SLO p50':>7} {'p99':>6} {'sched/s':>8} {'e2e/s':>6} {'api p99 worst':>22} "
          f"{'fail 1%: moved in':>18}")
    for r in results:
        worst = max(r["api"].items(), key=lambda kv: kv[1][0], default=(("-", "-"), (0, 0)))
        allrun = f"{r['all_running_s']:.1f}" if r["all_running_s"] else f"({r['running']})"
        rec = f"{r['recovered_s']:.1f}s ({r['pods_on_failed']} pods)" \
            if r["recovered_s"] is not None else "not within 300 s"
        print(f"{r['nodes']:>6} {r['pods']:>7} {allrun:>9} {r['startup'][50]:>8.2f}s "
              f"{r['startup'][90]:>5.2f}s {r['startup'][99]:>5.2f}s "
              f"{r['latency_startup'][50]:>6.2f}s {r['latency_startup'][99]:>5.2f}s "
              f"{r['sched_pods_s']:>8.0f} "
              f"{r['e2e_pods_s']:>6.0f} {worst[1][0]:>6.3f}s {worst[0][0]:>6} "
              f"{worst[0][1][:9]:<9} {rec:>18}")
    for r in results:
        print(f"\nN={r['nodes']}: registration {r['register_s']:.1f}s; "
              "API p99 by verb/resource (calls):")
        for (verb, res), (p99, count) in sorted(r["api"].items(), key=lambda kv: -kv[1][0]):
            print(f"    {verb:<7} {res:<36} p99 {p99 * 1000:8.1f} ms  ({count})")
        print("  component      peak RSS MiB   CPU s (workload phase)")
        for k in r["rss"]:
            print(f"    {k:<18} {r['rss'][k]:8.0f} {r['cpu'].get(k, 0):10.1f}")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [r["nodes"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for q, style in ((50, "o-"), (90, "s-"), (99, "^-")):
        ax.plot(xs, [r["startup"][q] for r in results], style,
                label=f"pod startup p{q} (saturation burst)")
    for q, style in ((50, "o:"), (99, "^:")):
        ax.plot(xs, [r["latency_startup"][q] for r in results], style,
                label=f"pod startup p{q} (latency pods, the SLO's)")
    ax.plot(xs, [max((v[0] for v in r["api"].values()), default=0) for r in results], "x--",
            label="API call p99 (worst verb/resource)")
    ax.axhline(5.0, color="red", lw=0.8, ls=":", label="pod startup SLO (5 s)")
    ax.axhline(1.0, color="orange", lw=0.8, ls=":", label="API call SLO (1 s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated nodes (30 pods each)")
    ax.set_ylabel("seconds")
    ax.set_title("navio density on 2 cores (SQLite)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot written to {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--nodes", default="100,1000", help="comma-separated cluster sizes")
    p.add_argument("--pods-per-node", type=int, default=30)
    p.add_argument("--fail", type=float, default=1.0, help="percent of nodes to fail")
    p.add_argument("--latency-pods", type=int, default=100)
    p.add_argument("--latency-rate", type=float, default=5.0, help="latency pods per second")
    p.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "density.png")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} before")
    results = []
    with tempfile.TemporaryDirectory(prefix="navio-density-") as tmp:
        for n in (int(x) for x in args.nodes.split(",")):
            r = asyncio.run(measure(n, args, Path(tmp)))
            results.append(r)
            report([r])
    print(f"\nload average {os.getloadavg()[0]:.1f} after")
    report(results)
    args.plot.with_suffix(".json").write_text(json.dumps(
        [{**r, "api": {f"{v} {res}": q for (v, res), q in r["api"].items()}} for r in results],
        indent=1))
    try:
        plot(results, args.plot)
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")


if __name__ == "__main__":
    main()
