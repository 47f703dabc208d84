"""Footprint: resident memory of `navio server` with its local node, idle and with 30 pods.

k3s publishes about 1.6 GB for a server with a workload; navio's aims (issue 9) are
≤ 120 MB idle and ≤ 400 MB with 30 pods running. Measured: the RSS (VmRSS, and the sum of
proportional set sizes, Pss, which does not double-count pages the processes share) of the
server and every navio process it started (controller manager, scheduler, the local agent
with its runtime helpers), not the pods' own processes (pause, `sleep`): those are the
workload, not the orchestrator. Once in the default layout (components as child processes)
and, with `--single-process-too`, with `--single-process` (at the time of writing
`navio server --single-process` with its local agent stops itself a second after starting —
also without this benchmark — so that layout is opt-in here until it is fixed).

The local node runs the process runtime in a network namespace created here with no route
out (PLATFORM.md's safe pattern), so nothing leaves the machine; needs root.

    python3 benchmarks/footprint.py [--pods 30] [--settle 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = "/usr/bin/kubectl"


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def navio_processes(root: int) -> dict[int, str]:
    """`root` and its descendants that run navio code (python), by pid → name."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if argv and b"python" in Path(argv[0].decode(errors="replace")).name.encode():
            names[int(entry.name)] = " ".join(a.decode(errors="replace") for a in argv[1:5])
    out = {}
    for pid in names:
        p = pid
        while p > 1:
            if p == root:
                out[pid] = names[pid]
                break
            p = parents.get(p, 0)
    return out


def measure(root: int) -> tuple[float, float, list[str]]:
    procs = navio_processes(root)
    rss = sum(_status_kib(p, "VmRSS") for p in procs) / 1024
    pss = sum(_pss_kib(p) for p in procs) / 1024
    rows = [f"      {_status_kib(p, 'VmRSS') / 1024:6.0f} MiB  {name}"
            for p, name in sorted(procs.items())]
    return rss, pss, rows


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1.0)


def run(mode: list[str], pods: int, settle: float, base: Path, netns: str) -> None:
    data = base / f"data{len(mode)}"
    log = open(base / f"server{len(mode)}.log", "ab")
    (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    proc = subprocess.Popen([sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                             str(data), "--port", "0", "--kubelet-port", "0",
                             "--node-netns", netns, "--resolv-conf",
                             str(base / "resolv.conf"), *mode],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    kc = data / "admin.kubeconfig"
    label = " ".join(mode) or "default (components as child processes)"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "kubeconfig written" in line:
                break
        wait(lambda: "True" in kubectl(kc, "get", "nodes", "-o",
                                       "jsonpath={.items[*].status.conditions[?(@.type=="
                                       "'Ready')].status}", check=False), 90, "the node")
        time.sleep(settle)
        idle_rss, idle_pss, idle_rows = measure(proc.pid)
        kubectl(kc, "create", "deployment", "fp", "--image=none", f"--replicas={pods}",
                "--", "sleep", "infinity")
        wait(lambda: kubectl(kc, "get", "deployment", "fp", "-o",
                             "jsonpath={.status.readyReplicas}") == str(pods), 300,
             f"{pods} pods")
        time.sleep(settle)
        work_rss, work_pss, work_rows = measure(proc.pid)
        print(f"{label}:")
        print(f"  idle with its node   RSS {idle_rss:6.0f} MiB  PSS {idle_pss:6.0f} MiB  "
              f"(aim <= 120 MB)")
        print("\n".join(idle_rows))
        print(f"  with {pods} pods running RSS {work_rss:6.0f} MiB  PSS {work_pss:6.0f} MiB  "
              f"(aim <= 400 MB)")
        print("\n".join(work_rows), flush=True)
        kubectl(kc, "delete", "deployment", "fp", "--wait=false")
        wait(lambda: not kubectl(kc, "get", "pods", "-o", "name", check=False).strip(), 180,
             "the pods to go")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--pods", type=int, default=30)
    p.add_argument("--single-process-too", action="store_true")
    p.add_argument("--settle", type=float, default=20.0,
                   help="seconds to wait before each measurement")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the local node's process runtime needs root")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f}; k3s server with a workload: ~1.6 GB")
    base = Path(tempfile.mkdtemp(prefix="navio-footprint-"))
    netns = f"nfp-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=20)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, timeout=20)
    try:
        for mode in ([], ["--single-process"]) if args.single_process_too else ([],):
            run(mode, args.pods, args.settle, base, netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=20)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
