"""Pod startup latency on one node, against Kubernetes' pod startup SLO (issue 7).

The SLO (kubernetes/community sig-scalability/slos/pod_startup_latency.md): the time from a
pod's creation to it being observed Running and Ready, excluding image pulls, is at most 5 s
at the 99th percentile. Here: a fresh `navio server --no-agent` on loopback, one
`navio agent` (process runtime, pods in network namespaces on a bridge inside a node netns
with no route out, PLATFORM.md), and this driver, which creates P pods bound to the node
(`sleep infinity`, no probes: Ready as soon as running) through the API with 20 concurrent
requests and watches for each pod's Ready condition. Latency = Ready seen by the watch -
create request sent; p50 / p99 / max and the wall time of the whole batch are printed, once
for a burst (all P created at once) and once paced (`--rate` pods per second, as the SLO's
density tests create pods at a steady rate).

Beside it, measured in the same run on the same machine:
- runtime alone: the process runtime starting P pods concurrently (run_sandbox,
  create_container, start_container per pod, as the agent's pod workers call them), no API:
  the floor the agent's own work sits on;
- sim agent: the same P pods on a `--runtime sim` node: the control plane + agent overhead
  with no processes at all.

For the runtime alone it also prints the CPU time spent per pod (less noisy than latency on a
shared machine): this process's own CPU time plus that of every helper process the runtime
started (its reaped children, the runtime's long-lived helper recorded in the state dir, and
each pod's pause and container supervisor read from /proc before removal); for the navio run,
the CPU time per pod of the agent (with its helpers) and of the API server.

    python3 benchmarks/pod_startup.py [--pods 100] [--rate 5] [--runtime-only]   (root)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navio.client import NAMESPACES, NODES, PODS, Client  # noqa: E402
from navio.runtime import cgroups  # noqa: E402
from navio.runtime import namespaces as ns  # noqa: E402
from navio.runtime.process import ProcessRuntime, ProcessRuntimeConfig  # noqa: E402
from navio.runtime.protocol import ContainerConfig  # noqa: E402

CONCURRENCY = 20
SLO = 5.0


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def summary(name: str, latencies: list[float], wall: float) -> str:
    return (f"{name:<16} p50 {statistics.median(latencies):6.2f}s  p99 "
            f"{percentile(latencies, 99):6.2f}s  max {max(latencies):6.2f}s  "
            f"all {len(latencies)} in {wall:6.2f}s")


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.log = open(data.parent / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "navio.cli.main", "server", "--data-dir", str(data),
             "--port", "0", "--no-agent"], stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if b"kubeconfig written" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("navio server did not start")
        self.kubeconfig = data / "admin.kubeconfig"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


def start_agent(server: Server, name: str, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(root.parent / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "navio.cli.agent", "--kubeconfig", str(server.kubeconfig),
             "--node-name", name, "--root-dir", str(root), "--node-ip", "127.0.0.1",
             "--address", "127.0.0.1", "--port", "0", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)


def stop_agent(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def pod(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "none",
                                     "command": ["sleep", "infinity"]}]}}


def is_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


async def wait_node(client: Client, node: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if is_ready(await client.get(NODES, node)):
                    return
            except Exception:   # not registered yet
                pass
            await asyncio.sleep(0.1)


async def startup(client: Client, node: str, count: int, prefix: str,
                  rate: float | None = None,
                  on_ready: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """Create `count` pods on `node` (all at once, or `rate` per second); latencies from
    create sent to Ready seen. `on_ready` runs once all are Ready, before they are deleted."""
    namespace = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": namespace}})
    listing = await client.list(PODS, namespace)
    sent: dict[str, float] = {}
    ready: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async with client.watch(PODS, namespace,
                                resource_version=listing["metadata"]["resourceVersion"]) as w:
            async for ev in w:
                name = ev.object["metadata"]["name"]
                if name not in ready and is_ready(ev.object):
                    ready[name] = time.monotonic()
                    if len(ready) == count:
                        done.set()
                        return

    watcher = asyncio.create_task(watch())
    sem = asyncio.Semaphore(CONCURRENCY)

    async def create(i: int) -> None:
        name = f"p{i:04d}"
        if rate:
            await asyncio.sleep(max(0.0, first + i / rate - time.monotonic()))
        async with sem:
            sent[name] = time.monotonic()
            await client.create(PODS, pod(name, node), namespace)

    first = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(count)))
    try:
        await asyncio.wait_for(done.wait(), 180)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    wall = max(ready.values()) - first
    if on_ready is not None:
        on_ready()
    await client.delete(NAMESPACES, namespace)
    return [ready[n] - sent[n] for n in sent], wall


async def remove_all(rt: ProcessRuntime) -> None:
    """Remove every sandbox; retried, as the runtime can race its supervisors (OSError)."""
    try:
        for _ in range(3):
            try:
                for sandbox in await rt.list_sandboxes():
                    await rt.remove_sandbox(sandbox.id)
                return
            except OSError:
                await asyncio.sleep(0.5)
    finally:
        await rt.close()


def force_remove(state_dir: Path) -> None:
    """Whatever a polite removal left: kill recorded processes (pid + start time checked),
    unmount /dev/shm copies, delete pod network namespaces."""
    for path in (*state_dir.glob("containers/*/status.json"),
                 *state_dir.glob("sandboxes/*/pause.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for pid, start in ((rec.get("pid"), rec.get("starttime")),
                           (rec.get("supervisor_pid"), rec.get("supervisor_starttime"))):
            if pid and start and ns.process_alive(pid, start):
                os.kill(pid, signal.SIGKILL)
    for sandbox in state_dir.glob("sandboxes/*"):
        subprocess.run(["umount", "-l", str(sandbox / "shm")], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", f"navio-{sandbox.name[:12]}"],
                       capture_output=True, timeout=20)


def remove_cgroup_parent(parent: str) -> None:
    for directory in cgroups.resolve(parent).values():
        for sub in sorted(Path(directory).glob("**/"), key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass


def _cpu_seconds(pid: int | None, start: int | None, *, children: bool = False) -> float:
    """utime+stime (+ reaped children's) of a live process, from /proc/<pid>/stat."""
    if not pid or not ns.process_alive(pid, start):
        return 0.0
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2:].split()
    ticks = sum(int(f) for f in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def helper_cpu(state_dir: Path) -> float:
    """CPU time of the runtime's helpers still running: pauses, supervisors, and the
    runtime's long-lived helper (with the launchers it reaped)."""
    total = 0.0
    for path in state_dir.glob("sandboxes/*/pause.json"):
        rec = json.loads(path.read_text())
        total += _cpu_seconds(rec.get("pid"), rec.get("starttime"), children=True)
    for path in state_dir.glob("containers/*/status.json"):
        rec = json.loads(path.read_text())
        total += _cpu_seconds(rec.get("supervisor_pid"), rec.get("supervisor_starttime"))
    forks = state_dir / "forkserver.json"
    if forks.exists():
        rec = json.loads(forks.read_text())
        total += _cpu_seconds(rec.get("pid"), rec.get("starttime"), children=True)
    return total


def own_cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def runtime_alone(base: Path, node_netns: str, count: int, parent: str,
                        rate: float | None = None) -> tuple[list[float], float, float]:
    """Latencies, wall time and CPU seconds per pod of the process runtime alone."""
    rt = ProcessRuntime(ProcessRuntimeConfig(
        state_dir=base / "baseline-state", log_dir=base / "baseline-logs",
        pod_cidr="10.246.0.0/24", bridge="navbench0", node_netns=node_netns,
        cgroup_parent=parent))
    latencies: list[float] = []
    state = base / "baseline-state"
    cpu_before = own_cpu() + helper_cpu(state)   # (a helper left from an earlier round)
    started = time.monotonic()

    async def one(i: int) -> None:
        if rate:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        t0 = time.monotonic()
        p = {"metadata": {"name": f"b{i}", "namespace": "bench", "uid": uuid.uuid4().hex},
             "spec": {"containers": [{"name": "main"}]}}
        sandbox = await rt.run_sandbox(p)
        cid = await rt.create_container(sandbox.id, {"name": "main"}, ContainerConfig(
            name="main", log_path=f"b{i}/0.log", command=("sleep", "infinity")))
        await rt.start_container(cid)
        latencies.append(time.monotonic() - t0)

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.monotonic() - started
        cpu = (own_cpu() + helper_cpu(state) - cpu_before) / count
    finally:
        try:
            await remove_all(rt)
        except Exception as exc:             # force_remove() in main() finishes the job
            print(f"baseline cleanup failed: {exc!r}", file=sys.stderr)
    return latencies, wall, cpu


async def remove_everything(state_dir: Path, log_dir: Path, node_netns: str,
                            parent: str) -> None:
    """What the agent left running on purpose (containers outlive it): stop and remove."""
    rt = ProcessRuntime(ProcessRuntimeConfig(state_dir=state_dir, log_dir=log_dir,
                                             pod_cidr="10.244.0.0/24", node_netns=node_netns,
                                             cgroup_parent=parent))
    await remove_all(rt)


async def main(pods: int, rate: float, runtime_only: bool) -> None:
    if os.geteuid() != 0:
        raise SystemExit("the process runtime needs root (namespaces, cgroups)")
    base = Path(tempfile.mkdtemp(prefix="navio-podstart-"))
    node_netns = f"nvb-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", node_netns)
    sh("ip", "-n", node_netns, "link", "set", "lo", "up")
    (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    agent_cgroups, base_cgroups = (f"navio-bench-{uuid.uuid4().hex[:6]}" for _ in range(2))
    server: Server | None = None
    agents: list[subprocess.Popen[bytes]] = []
    try:
        if runtime_only:
            print(f"process runtime alone, {pods} pods ({os.cpu_count()} cpus)")
            for label, r in (("burst: all at once", None), (f"paced: {rate:g} pods/s", rate)):
                base_lat, base_wall, cpu = await runtime_alone(base, node_netns, pods,
                                                               base_cgroups, r)
                print(f"{label}\n  " + summary("runtime alone", base_lat, base_wall)
                      + f"  cpu {cpu:.3f}s/pod", flush=True)
            return
        server = Server(base / "data")
        async with Client.from_kubeconfig(server.kubeconfig, qps=0) as client:
            proc_node, sim_node = "bench-process", "bench-sim"
            agents.append(start_agent(server, proc_node, base / proc_node, "--runtime",
                                      "process", "--node-netns", node_netns, "--pod-cidr",
                                      "10.244.0.0/24", "--resolv-conf",
                                      str(base / "resolv.conf"), "--cgroup-parent",
                                      agent_cgroups))
            agents.append(start_agent(server, sim_node, base / sim_node, "--runtime", "sim"))
            await wait_node(client, proc_node)
            await wait_node(client, sim_node)
            await startup(client, proc_node, 5, "warmup")
            await startup(client, sim_node, 5, "warmup")
            print(f"pod startup latency, {pods} pods on one node ({os.cpu_count()} cpus), "
                  f"creation -> Running and Ready; SLO p99 <= {SLO:.0f}s")
            for label, r in (("burst: all at once", None), (f"paced: {rate:g} pods/s", rate)):
                base_lat, base_wall, cpu = await runtime_alone(base, node_netns, pods,
                                                               base_cgroups, r)
                sim_lat, sim_wall = await startup(client, sim_node, pods, "sim", r)
                state = base / proc_node / "runtime"
                cpu0 = (_cpu_seconds(agents[0].pid, None, children=True) + helper_cpu(state),
                        _cpu_seconds(server.proc.pid, None, children=True))
                cpu1 = [0.0, 0.0]

                def measured() -> None:
                    cpu1[:] = [_cpu_seconds(agents[0].pid, None, children=True)
                               + helper_cpu(state),
                               _cpu_seconds(server.proc.pid, None, children=True)]

                nav_lat, nav_wall = await startup(client, proc_node, pods, "process", r,
                                                  measured)
                agent_cpu, server_cpu = ((b - a) / pods for a, b in zip(cpu0, cpu1))
                await asyncio.sleep(3)          # the deleted namespaces' pods go away
                print(label)
                print("  " + summary("navio (process)", nav_lat, nav_wall)
                      + f"  SLO {'met' if percentile(nav_lat, 99) <= SLO else 'MISSED'}")
                print(f"  cpu per pod: agent with its helpers {agent_cpu:.3f}s, API server "
                      f"{server_cpu:.3f}s (its watch of the pods included)")
                print("  " + summary("sim agent", sim_lat, sim_wall))
                print("  " + summary("runtime alone", base_lat, base_wall)
                      + f"  cpu {cpu:.3f}s/pod")
                p50 = statistics.median(nav_lat) / statistics.median(base_lat)
                p99 = percentile(nav_lat, 99) / percentile(base_lat, 99)
                print(f"  ratio navio/runtime-alone  p50 {p50:.2f}  p99 {p99:.2f}", flush=True)
    finally:
        for proc in agents:
            stop_agent(proc)
        if server is not None:
            server.stop()
        agent_state = base / "bench-process" / "runtime"
        try:
            await remove_everything(agent_state, base / "bench-process" / "pod-logs",
                                    node_netns, agent_cgroups)
        except Exception as exc:
            print(f"polite cleanup failed: {exc!r}", file=sys.stderr)
        for state in (agent_state, base / "baseline-state"):
            force_remove(state)
        subprocess.run(["ip", "netns", "del", node_netns], capture_output=True, timeout=20)
        for parent in (agent_cgroups, base_cgroups):
            remove_cgroup_parent(parent)
        shutil.rmtree(base, ignore_errors=True)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0,
                        help="pods per second of the paced run (default %(default)s)")
    parser.add_argument("--runtime-only", action="store_true",
                        help="measure only the process runtime (no API server, no agents)")
    args = parser.parse_args()
    asyncio.run(main(args.pods, args.rate, args.runtime_only))
