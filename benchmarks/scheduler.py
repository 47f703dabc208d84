"""Scheduling throughput and latency of navio's scheduler, in the manner of scheduler_perf.

A fresh `navio server --no-agent --disable controller-manager,scheduler` (own data dir,
loopback, port 0: the API server alone, so that nothing else loads it and no node lifecycle
controller taints the heartbeat-less nodes) and navio's scheduler in its own process (uvloop,
no leader election). For each node count: N Nodes are created through
the API (status.allocatable 32 cpu / 128Gi / 110 pods, 10 zones), the scheduler is started
and warmed up with one pod, then for each scenario P pods are created through the API by 128
concurrent requests while the scheduler binds them:

- plain:        1 container requesting 100m cpu / 128Mi (SchedulingBasic);
- antiaffinity: as plain, plus required pod anti-affinity on kubernetes.io/hostname to pods of
                the same group (50 groups), as SchedulingPodAntiAffinity;
- spread:       as plain, plus a zone topologySpreadConstraint maxSkew 1 DoNotSchedule
                (50 groups), as SchedulingPodTopologySpread.

Figures (end to end, measured by this driver through a watch): pods/s = P / (last binding
seen - first create sent); latency = binding seen - creation acknowledged, p50 / p99. The
baseline, measured in the same run on the same server, is the API alone: P pods created and
bound by the driver itself (no scheduler), i.e. the ceiling any scheduler binding through this
API server can reach here. kube-scheduler's published scheduler_perf figures are printed
beside: the minimum pods/s of its CI performance job (scheduler_perf thresholds), measured
with a Go API server and etcd on a larger machine. Two more rows isolate navio's parts: the
scheduling algorithm alone (in memory), and "drain": pods already pending when the scheduler
starts, so that only bindings load the API server.

    python3 benchmarks/scheduler.py [--nodes 5000] [--pods 10000]
                                    [--scenarios plain,antiaffinity,spread]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navio.client import NAMESPACES, NODES, PODS, Client  # noqa: E402

CONCURRENCY = 128
GROUPS = 50
ZONES = 10
# kube-scheduler's scheduler_perf CI thresholds (the minimum pods/s its performance job
# accepts, kubernetes master, test/integration/scheduler_perf/*/performance-config.yaml),
# measured with a Go API server and etcd on a much larger machine.
PUBLISHED = {"plain": ">= 680 (SchedulingBasic/5000Nodes_10000Pods)",
             "antiaffinity": ">= 60 (SchedulingPodAntiAffinity/5000Nodes_2000Pods)",
             "spread": ">= 460 (TopologySpreading/5000Nodes_5000Pods)"}
SIDE_PODS = 5000        # pods for the drain and baseline rows (keeps a run near 3 minutes)
_SCHEDULER = """
import asyncio, sys
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
from navio.scheduler import SchedulerConfig, run
asyncio.run(run(SchedulerConfig(kubeconfig=sys.argv[1], leader_elect=False)))
"""


def _percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _node(i: int) -> dict[str, Any]:
    name = f"node-{i:05d}"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": f"zone-{i % ZONES}"}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"}}}


def _pod(name: str, ns: str, scenario: str, i: int, scheduler: str = "default-scheduler"
         ) -> dict[str, Any]:
    group = f"g{i % GROUPS}"
    spec: dict[str, Any] = {
        "schedulerName": scheduler,
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    if scenario == "antiaffinity":
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": group}},
             "topologyKey": "kubernetes.io/hostname"}]}}
    elif scenario == "spread":
        spec["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"group": group}}}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"group": group}},
            "spec": spec}


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Path:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "navio.cli.main", "server", "--data-dir", str(self.data),
             "--port", "0", "--no-agent", "--disable", "controller-manager,scheduler"],
            stdout=subprocess.PIPE,
            stderr=open(self.data.parent / "server.log", "w"), text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if "kubeconfig written" in line:
                return self.data / "admin.kubeconfig"
            if time.monotonic() > deadline:
                break
        raise SystemExit(f"navio server did not start; see {self.data.parent}/server.log")

    def stop(self) -> None:
        _stop(self.proc)


def _cpu(proc: subprocess.Popen[Any] | None) -> float:
    """CPU seconds (user + system) the process has used so far (Linux /proc)."""
    if proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _gather_limited(n: int, fn: Any) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            await fn(i)
    await asyncio.gather(*(one(i) for i in range(n)))


class Watcher:
    """Records when each pod in `ns` is first seen bound."""

    def __init__(self, client: Client, ns: str) -> None:
        self.client, self.ns = client, ns
        self.bound: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expect = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.list(PODS, self.ns, limit=1)
        rv = listed["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async with self.client.watch(PODS, self.ns, resource_version=rv,
                                     timeout_seconds=600) as stream:
            async for ev in stream:
                obj = ev.object
                name = (obj.get("metadata") or {}).get("name")
                if (obj.get("spec") or {}).get("nodeName") and name not in self.bound:
                    self.bound[name] = time.perf_counter()
                    if len(self.bound) >= self.expect:
                        self.done.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _scenario(client: Client, scenario: str, pods: int, ns: str, timeout: float
                    ) -> dict[str, float]:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": ns}})
    watcher = Watcher(client, ns)
    watcher.expect = pods
    await watcher.start()
    created: dict[str, float] = {}

    async def make(i: int) -> None:
        name = f"p-{i:06d}"
        await client.create(PODS, _pod(name, ns, scenario, i))
        created[name] = time.perf_counter()

    t0 = time.perf_counter()
    await _gather_limited(pods, make)
    t_created = time.perf_counter()
    try:
        await asyncio.wait_for(watcher.done.wait(), timeout)
    except TimeoutError:
        pass
    await watcher.stop()
    bound = watcher.bound
    lat = [bound[n] - created[n] for n in bound if n in created]
    end = max(bound.values()) if bound else time.perf_counter()
    return {"bound": len(bound), "rate": len(bound) / (end - t0),
            "create_rate": pods / (t_created - t0),
            "p50": _percentile(lat, 50) * 1000, "p99": _percentile(lat, 99) * 1000}


async def _baseline(client: Client, pods: int, nodes: int) -> float:
    """Create and bind `pods` pods ourselves (a scheduler name nobody serves): API ceiling."""
    ns = "baseline"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": ns}})

    async def make(i: int) -> None:
        name = f"b-{i:06d}"
        pod = await client.create(PODS, _pod(name, ns, "plain", i, scheduler="nobody"))
        await client.create_subresource(
            PODS, name, "binding",
            {"apiVersion": "v1", "kind": "Binding",
             "metadata": {"name": name, "namespace": ns, "uid": pod["metadata"]["uid"]},
             "target": {"kind": "Node", "name": f"node-{i % nodes:05d}"}}, ns)

    t0 = time.perf_counter()
    await _gather_limited(pods, make)
    return pods / (time.perf_counter() - t0)


async def _wait_bound(client: Client, ns: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = await client.get(PODS, name, ns)
        if (pod.get("spec") or {}).get("nodeName"):
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"warm-up pod {ns}/{name} not scheduled within {timeout}s")


def _algorithm_only(nodes: int, pods: int, scenario: str) -> float:
    """Cycles/s of the scheduling algorithm alone (in memory, no API): each pod scheduled
    and assumed, as the scheduler does before binding."""
    from navio.scheduler.algorithm import Algorithm
    from navio.scheduler.cache import Cache
    from navio.scheduler.plugins import default_profile
    from navio.scheduler.podinfo import pod_info

    cache = Cache()
    for i in range(nodes):
        cache.set_node(_node(i))
    algorithm = Algorithm(cache, default_profile(cache))
    infos = [pod_info({**_pod(f"a-{i:06d}", "mem", scenario, i),
                       "metadata": {"name": f"a-{i:06d}", "namespace": "mem", "uid": str(i),
                                    "labels": {"group": f"g{i % GROUPS}"}}})
             for i in range(pods)]
    t = time.perf_counter()
    for pi in infos:
        cache.assume(pi, algorithm.schedule(pi).node)
    return pods / (time.perf_counter() - t)


def _start_scheduler(kubeconfig: Path, workdir: Path) -> subprocess.Popen[Any]:
    return subprocess.Popen([sys.executable, "-c", _SCHEDULER, str(kubeconfig)], cwd=ROOT,
                            stderr=open(workdir / "scheduler.log", "a"),
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def _drain(client: Client, kubeconfig: Path, workdir: Path, pods: int, nodes: int
                 ) -> tuple[float, float]:
    """Pods created with no scheduler running, then one started: (bindings/s between the
    first and the last binding, scheduler CPU seconds per 1000 pods)."""
    ns = f"drain-{nodes}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": ns}})
    await _gather_limited(pods, lambda i: client.create(PODS, _pod(f"d-{i:06d}", ns, "plain",
                                                                   i)))
    watcher = Watcher(client, ns)
    watcher.expect = pods
    await watcher.start()
    sched = _start_scheduler(kubeconfig, workdir)
    try:
        await asyncio.wait_for(watcher.done.wait(), max(60.0, pods / 50))
    except TimeoutError:
        pass
    cpu = _cpu(sched)
    _stop(sched)
    await watcher.stop()
    times = sorted(watcher.bound.values())
    if len(times) < 2:
        return 0.0, 0.0
    return (len(times) - 1) / (times[-1] - times[0]), cpu / len(times) * 1000


async def _run_nodes(nodes: int, pods: int, scenarios: list[str], baseline: bool,
                     workdir: Path) -> list[str]:
    server = Server(workdir / f"data-{nodes}")
    kubeconfig = server.start()
    sched: subprocess.Popen[str] | None = None
    lines = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    try:
        async with Client.from_kubeconfig(kubeconfig, qps=0, component="bench") as client:
            t = time.perf_counter()
            await _gather_limited(nodes, lambda i: client.create(NODES, _node(i)))
            say(f"nodes {nodes:,}: created through the API at "
                f"{nodes / (time.perf_counter() - t):,.0f}/s")
            sched = _start_scheduler(kubeconfig, workdir)
            await client.create(PODS, _pod("warmup", "default", "plain", 0))
            await _wait_bound(client, "default", "warmup", 60)
            for scenario in scenarios:
                say(f"  {scenario:<12} algorithm alone (in memory, no API): "
                    f"{_algorithm_only(nodes, pods, scenario):,.0f} pods/s")
                cpu_sched, cpu_server = _cpu(sched), _cpu(server.proc)
                r = await _scenario(client, scenario, pods, f"{scenario}-{nodes}",
                                    timeout=max(60.0, pods / 50))
                per_k = 1000 / max(r["bound"], 1)
                say(f"  {scenario:<12} {pods:,} pods  bound {r['bound']:,}  "
                    f"pods/s navio {r['rate']:,.0f} (creates/s {r['create_rate']:,.0f})  "
                    f"latency p50 {r['p50']:,.0f} ms p99 {r['p99']:,.0f} ms  "
                    f"cpu s/1000 pods: scheduler {(_cpu(sched) - cpu_sched) * per_k:.2f} "
                    f"server {(_cpu(server.proc) - cpu_server) * per_k:.2f}  "
                    f"| kube-scheduler scheduler_perf {PUBLISHED[scenario]}")
            _stop(sched)
            sched = None
            side = min(pods, SIDE_PODS)
            rate, cpu = await _drain(client, kubeconfig, workdir, side, nodes)
            say(f"  drain        {side:,} plain pods already pending, scheduler started: "
                f"{rate:,.0f} bindings/s (scheduler cpu {cpu:.2f} s/1000 pods)")
            if baseline:
                rate = await _baseline(client, side, nodes)
                say(f"  baseline     {side:,} pods created+bound by the driver, no "
                    f"scheduler: {rate:,.0f} pods/s (API ceiling for the end-to-end rows)")
    finally:
        _stop(sched)
        server.stop()
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", default="5000", help="comma-separated node counts, e.g. 500,5000")
    ap.add_argument("--pods", type=int, default=10000, help="pods per scenario")
    ap.add_argument("--scenarios", default="plain,antiaffinity,spread")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    bad = set(scenarios) - set(PUBLISHED)
    if bad:
        ap.error(f"unknown scenarios: {sorted(bad)}")
    workdir = Path(tempfile.mkdtemp(prefix="navio-sched-bench-"))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    started = time.perf_counter()
    out = []
    for n in [int(x) for x in args.nodes.split(",") if x]:
        out += asyncio.run(_run_nodes(n, args.pods, scenarios, args.baseline, workdir))
    print(f"\nnavio scheduler benchmark ({os.cpu_count()} cores, "
          f"{time.perf_counter() - started:.0f} s)")
    print("\n".join(out))
    if args.keep:
        print(f"work directory: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
