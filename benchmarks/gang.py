"""Gang scheduling cost: PyTorchJobs admitted all-or-nothing, against plain pods (issue 15).

A fresh `navio server --no-agent --disable controller-manager,scheduler` (the API server
alone), N simulated nodes (`navio sim`: they heartbeat and report bound pods Running) of 8
cpu each, so J jobs of P pods of 1 cpu fill them exactly and every placement must be whole,
navio's scheduler in its own process, and a controller manager running only the
`pytorchjob` controller. Three rows, each
on empty nodes (the previous row's pods are deleted first), timed from the first create sent
to the last binding seen through a watch:

- plain:  J×P pods, 1 cpu each, created by the driver (the scheduler's baseline);
- gangs:  J PodGroups (minMember P) and their J×P member pods, created by the driver: the
          same pods, bound all-or-nothing;
- jobs:   J PyTorchJobs (1 master + P-1 workers): the controller creates each job's PodGroup,
          pods and headless Services, the scheduler admits each gang whole. "Time to admit"
          is until every pod of every job is bound.

    python3 benchmarks/gang.py [--nodes 100] [--jobs 100] [--pods-per-job 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from density import Proc  # noqa: E402
from scheduler import (Server, Watcher, _cpu, _gather_limited, _percentile,  # noqa: E402
                       _start_scheduler, _stop, _wait_bound)

from navio.client import NAMESPACES, PODS, Client, ResourceRef  # noqa: E402

PODGROUPS = ResourceRef("scheduling.navio.dev", "v1alpha1", "podgroups", True, "PodGroup")
PYTORCHJOBS = ResourceRef("kubeflow.org", "v1", "pytorchjobs", True, "PyTorchJob")
GANG_LABEL = "scheduling.navio.dev/pod-group"
NODE_CPU = 8


def _container(name: str = "c") -> dict[str, Any]:
    return {"name": name, "image": "python", "command": ["python3", "train.py"],
            "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}


def _pod(ns: str, name: str, group: str | None) -> dict[str, Any]:
    labels = {GANG_LABEL: group} if group else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [_container()]}}


def _job(ns: str, name: str, pods: int) -> dict[str, Any]:
    def replica(n: int) -> dict[str, Any]:
        return {"replicas": n, "restartPolicy": "OnFailure",
                "template": {"spec": {"containers": [_container("pytorch")]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"pytorchReplicaSpecs": {"Master": replica(1),
                                             "Worker": replica(pods - 1)}}}


async def _row(client: Client, ns: str, expect: int, create: Any, timeout: float
               ) -> dict[str, float]:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": ns}})
    watcher = Watcher(client, ns)
    watcher.expect = expect
    await watcher.start()
    t0 = time.perf_counter()
    await create()
    try:
        await asyncio.wait_for(watcher.done.wait(), timeout)
    except TimeoutError:
        pass
    await watcher.stop()
    times = sorted(watcher.bound.values())
    took = (times[-1] - t0) if times else float("nan")
    return {"bound": len(times), "seconds": took,
            "rate": len(times) / took if times else 0.0,
            "p50": _percentile([t - t0 for t in times], 50) * 1000,
            "p99": _percentile([t - t0 for t in times], 99) * 1000}


async def _clear(client: Client, ns: str) -> None:
    """Delete the row's pods at once (no kubelet: grace 0) so the nodes are empty again."""
    await client.delete_collection(PODS, ns, grace_period_seconds=0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not (await client.list(PODS, ns, limit=1)).get("items"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"pods of {ns} not gone within 120 s")


async def _run(nodes: int, jobs: int, per_job: int, workdir: Path) -> list[str]:
    server = Server(workdir / "data")
    kubeconfig = server.start()
    manager = subprocess.Popen(
        [sys.executable, "-m", "navio.cli.main", "controller-manager", "--kubeconfig",
         str(kubeconfig), "--leader-elect", "false", "--controllers", "pytorchjob"],
        cwd=ROOT, stderr=open(workdir / "controller-manager.log", "w"))
    sim = Proc(["sim", "--kubeconfig", str(kubeconfig), "--nodes", str(nodes), "--node-cpu",
                str(NODE_CPU), "--node-memory", "64Gi", "--seed", "1"], workdir / "sim.log")
    sched = None
    lines: list[str] = []
    total = jobs * per_job
    timeout = max(120.0, total / 20)

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    try:
        async with Client.from_kubeconfig(kubeconfig, qps=0, component="bench") as client:
            sim.wait_line(r"nodes registered", max(60.0, nodes / 20))
            sched = _start_scheduler(kubeconfig, workdir)
            await client.create(PODS, _pod("default", "warmup", None))
            await _wait_bound(client, "default", "warmup", 60)
            await client.delete(PODS, "warmup", "default", grace_period_seconds=0)
            say(f"{nodes} simulated nodes x {NODE_CPU} cpu, {jobs} jobs x {per_job} pods of 1 cpu "
                f"({total} pods: the nodes exactly full)")

            def row(label: str, r: dict[str, float], cpu: float) -> None:
                say(f"  {label:<7} bound {r['bound']:>5,}/{total:,} in {r['seconds']:6.2f} s  "
                    f"{r['rate']:7,.0f} pods/s  since start p50 {r['p50']:7,.0f} ms "
                    f"p99 {r['p99']:7,.0f} ms  scheduler cpu {cpu:5.2f} s")

            async def plain() -> None:
                await _gather_limited(total, lambda i: client.create(
                    PODS, _pod("plain", f"p-{i:05d}", None)))
            c0 = _cpu(sched)
            row("plain", await _row(client, "plain", total, plain, timeout), _cpu(sched) - c0)
            await _clear(client, "plain")

            async def gangs() -> None:
                await _gather_limited(jobs, lambda j: client.create(PODGROUPS, {
                    "apiVersion": PODGROUPS.api_version, "kind": "PodGroup",
                    "metadata": {"name": f"g-{j:04d}", "namespace": "gangs"},
                    "spec": {"minMember": per_job}}, "gangs"))
                await _gather_limited(total, lambda i: client.create(
                    PODS, _pod("gangs", f"g-{i // per_job:04d}-{i % per_job}",
                               f"g-{i // per_job:04d}")))
            c0 = _cpu(sched)
            row("gangs", await _row(client, "gangs", total, gangs, timeout), _cpu(sched) - c0)
            await _clear(client, "gangs")

            async def pytorchjobs() -> None:
                await _gather_limited(jobs, lambda j: client.create(
                    PYTORCHJOBS, _job("jobs", f"j-{j:04d}", per_job), "jobs"))
            c0 = _cpu(sched)
            r = await _row(client, "jobs", total, pytorchjobs, timeout)
            row("jobs", r, _cpu(sched) - c0)
            say(f"  time to admit {jobs} PyTorchJobs of {per_job} pods on {nodes} nodes: "
                f"{r['seconds']:.2f} s (controller creates pods, Services and PodGroups)")
    finally:
        _stop(sched)
        _stop(manager)
        sim.stop()
        server.stop()
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--pods-per-job", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    if args.jobs * args.pods_per_job > args.nodes * NODE_CPU:
        ap.error("more pods than the nodes hold")
    workdir = Path(tempfile.mkdtemp(prefix="navio-gang-bench-"))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    started = time.perf_counter()
    lines = asyncio.run(_run(args.nodes, args.jobs, args.pods_per_job, workdir))
    print(f"\nnavio gang benchmark ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))
    if args.keep:
        print(f"work directory: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
