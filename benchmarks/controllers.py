"""Workload controllers at scale: 1,000 Deployments of 10 replicas created at once.

A fresh `navio server --no-agent --disable controller-manager` (own data dir, loopback, port
0) and `navio controller-manager` in its own process (no leader election; controllers
replicaset, deployment, garbagecollector, namespace, serviceaccount; its client is limited to
200 qps / burst 400 as the manager sets it). The driver creates 1,000 Deployments (64
concurrent requests) and follows ReplicaSets and pods with watches.

Figures: seconds from the first Deployment create to the last of the 1,000 ReplicaSets and of
the 10,000 pods seen; the controller-manager's CPU seconds (utime + stime from
/proc/<pid>/stat, its own process) and peak RSS (VmHWM) over that interval. Baselines measured
in the same run on the same server: the same 10,000 pod creates sent directly by the driver
with the controllers' concurrency (40: 5 workers x slow-start batch of 8) and the same client
limits (200 qps / burst 400), and unthrottled.

    python3 benchmarks/controllers.py [--deployments 1000] [--replicas 10]
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

from navio.client import DEPLOYMENTS, NAMESPACES, PODS, REPLICASETS, Client

CONTROLLERS = "replicaset,deployment,garbagecollector,namespace,serviceaccount"
CONCURRENCY = 64
CONTROLLER_CONCURRENCY = 40
TICKS = os.sysconf("SC_CLK_TCK")


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                             str(data), "--port", "0", "--no-agent", "--disable",
                             "controller-manager"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            proc.stdout.readline()
            return proc, line.rsplit(" ", 1)[1].strip()
    proc.kill()
    raise SystemExit("navio server did not start")


def start_controllers(kubeconfig: Path, log: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "navio.cli.main", "controller-manager",
                             "--kubeconfig", str(kubeconfig), "--leader-elect", "false",
                             "--controllers", CONTROLLERS], cwd=ROOT, stdout=log, stderr=log,
                            text=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{name}-", "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


async def run_all(n: int, concurrency: int, make: Any) -> None:
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await make(i)
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def count_until(client: Client, resource: Any, ns: str, rv: str, want: int,
                      done: dict[str, float], t0: list[float]) -> None:
    seen: set[str] = set()
    async with client.watch(resource, ns, resource_version=rv, timeout_seconds=3600) as stream:
        async for ev in stream:
            if ev.type == "ADDED":
                seen.add(ev.object["metadata"]["name"])
                if len(seen) >= want:
                    done[resource.plural] = time.monotonic() - t0[0]
                    return


async def controllers_run(kubeconfig: Path, args: argparse.Namespace, cm_pid: int
                          ) -> dict[str, float]:
    async with Client.from_kubeconfig(kubeconfig, qps=0) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "bench"}})
        rv = {r.plural: (await client.list(r, "bench"))["metadata"]["resourceVersion"]
              for r in (PODS, REPLICASETS)}
        done: dict[str, float] = {}
        t0 = [0.0]
        cpu0 = cpu_seconds(cm_pid)
        watchers = [asyncio.create_task(count_until(client, PODS, "bench", rv["pods"],
                                                    args.deployments * args.replicas, done, t0)),
                    asyncio.create_task(count_until(client, REPLICASETS, "bench",
                                                    rv["replicasets"], args.deployments, done,
                                                    t0))]
        await asyncio.sleep(0.5)     # watches established
        t0[0] = time.monotonic()
        await run_all(args.deployments, CONCURRENCY, lambda i: client.create(
            DEPLOYMENTS, deployment(f"d{i}", args.replicas), "bench"))
        created = time.monotonic() - t0[0]
        await asyncio.wait_for(asyncio.gather(*watchers), args.timeout)
        return {"deployments created": created, "replicasets": done["replicasets"],
                "pods": done["pods"], "cpu": cpu_seconds(cm_pid) - cpu0,
                "rss": peak_rss_mib(cm_pid)}


async def baseline_run(kubeconfig: Path, n: int, qps: float, burst: int, ns: str) -> float:
    async with Client.from_kubeconfig(kubeconfig, qps=qps, burst=burst) as client:
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
        t0 = time.monotonic()
        await run_all(n, CONTROLLER_CONCURRENCY,
                      lambda i: client.create(PODS, pod(f"p{i % 1000}"), ns))
        return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--deployments", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=10)
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="navio-ctrl-bench-"))
    server, _ = start_server(tmp / "data")
    kubeconfig = tmp / "data" / "admin.kubeconfig"
    log = open(tmp / "controller-manager.log", "w")
    cm = start_controllers(kubeconfig, log)
    try:
        time.sleep(3)            # warm-up: informers listed the (empty) cluster
        if cm.poll() is not None:
            raise SystemExit(f"controller-manager exited; see {log.name}")
        res = asyncio.run(controllers_run(kubeconfig, args, cm.pid))
        pods = args.deployments * args.replicas
        cm.send_signal(signal.SIGTERM)
        cm.wait(30)
        base = asyncio.run(baseline_run(kubeconfig, pods, 200.0, 400, "baseline"))
        raw = asyncio.run(baseline_run(kubeconfig, pods, 0.0, 0, "baseline-raw"))
        print(f"{args.deployments} deployments x {args.replicas} replicas "
              f"(deployment creates took {res['deployments created']:.1f} s)")
        print(f"all replicasets  navio {res['replicasets']:8.1f} s")
        print(f"all {pods} pods  navio {res['pods']:8.1f} s  "
              f"baseline (direct creates, 40 concurrent, 200 qps) {base:.1f} s  "
              f"ratio {res['pods'] / base:.2f}")
        print(f"{'':17}unthrottled direct creates (40 concurrent) {raw:.1f} s  "
              f"ratio {res['pods'] / raw:.2f}")
        print(f"controller-manager  cpu {res['cpu']:.1f} s  "
              f"({res['cpu'] / res['pods'] * 100:.0f}% of one core)  "
              f"peak rss {res['rss']:.0f} MiB")
    finally:
        if cm.poll() is None:
            cm.kill()
            cm.wait(10)
        log.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if server.stdout:
            server.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
