"""What NetworkPolicy enforcement costs: rule-update latency and per-packet throughput.

Everything runs on 127.0.0.1 and inside network namespaces created (and deleted) here, with no
route out; needs root, nft and iperf3 (`.ci/install`).

1. Latency, at each scale S of `--scales` (S pods on the node and S policies): a fresh
   `navio server --no-agent --disable scheduler,controller-manager` holds S pods bound to
   this node (status.podIP set by the benchmark) and S NetworkPolicies (policy i isolates pod
   i for ingress, allowing `role=client` pods on 5201/TCP+UDP); the agent's own
   `NetworkPolicyController` runs in this process against it, loading its table into a
   throwaway netns. Measured over `--runs` runs, medians:
   - add: write an egress policy for pod 0 (POST returns) -> the `nft -f` that puts its
     chain in the kernel has returned (the chain is then listed with `nft list chain`);
   - delete: DELETE of that policy -> the transaction without the chain has returned;
   beside baselines from the same run: API write -> the controller's informer sees the
   event (the watch path alone), rendering the script alone (compute + render), loading the
   whole table with `nft -f`, and one `nft -f` of an empty table in the same netns (one nft
   process and one transaction). The controller waits `debounce` (50 ms) to coalesce events.
2. Throughput through a router netns (ip forwarding; a client netns and a server netns on
   two veths): iperf3 TCP bits/s and UDP 64-byte packets/s with no table (baseline) and
   with the netpol table of the largest scale loaded, in which the server is an isolated
   pod and the client an allowed one. Conditions alternate (ABBA...) after a warm-up run,
   `--rounds` rounds, medians. Each
   UDP packet is a new conntrack flow direction without reply, so every one of them walks the
   vmap and the server's ingress chain; TCP packets after the handshake take the
   `ct state established` shortcut. Enforcement is checked too: with the table, a TCP
   connection to a port no policy allows times out instead of being refused.

    python3 benchmarks/netpol.py [--scales 10,100,1000] [--runs 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navio.client import NAMESPACES, PODS, Client, Informer  # noqa: E402
from navio.netpol import controller as netpol_controller  # noqa: E402
from navio.netpol.controller import (NETWORKPOLICIES, NetpolConfig,  # noqa: E402
                                     NetworkPolicyController)
from navio.netpol.model import compute  # noqa: E402
from navio.netpol.nftables import chain_name, render  # noqa: E402

NODE = "netpol-bench-node"
NS = "netpol-bench"
SERVER_IP, CLIENT_IP = "10.244.2.2", "10.244.1.2"
_LISTENING = re.compile(r"listening on (https://\S+)")


def pod_ip(i: int) -> str:
    if i == 0:
        return SERVER_IP
    if i == 1:
        return CLIENT_IP
    return f"10.244.{3 + (i - 2) // 250}.{(i - 2) % 250 + 2}"


def pod(i: int) -> dict[str, Any]:
    labels = {"app": f"p{i}", "role": "client" if i % 2 else "server"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": NS, "labels": labels},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x",
                                                       "command": ["sleep", "1"]}]}}


def pod_status(i: int) -> dict[str, Any]:
    return {"status": {"phase": "Running", "podIP": pod_ip(i), "podIPs": [{"ip": pod_ip(i)}]}}


def policy(i: int) -> dict[str, Any]:
    ports = [{"protocol": "TCP", "port": 5201}, {"protocol": "UDP", "port": 5201}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"np{i}", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": f"p{i}"}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                  "ports": ports}]}}


def probe_policy(r: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"probe{r}", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "p0"}}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}


def world(scale: int) -> tuple[list[dict], list[dict], list[dict]]:
    """The API objects (as the informers hold them) of a scale, for offline rendering."""
    pods = [{**pod(i), **pod_status(i)} for i in range(scale)]
    nss = [{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"kubernetes.io/metadata.name": NS}}}]
    return pods, nss, [policy(i) for i in range(scale)]


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(netns: str, *argv: str, check: bool = True,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", netns, *argv, check=check, timeout=timeout)


def nft_load(netns: str, script: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script, text=True,
                   check=True, capture_output=True, timeout=300)
    return time.perf_counter() - t0


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms" if samples else "     n/a"


# ---- 1. latency -------------------------------------------------------------------------------

class Server:
    """One `navio server` child process on a free port of 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.data = base / "data"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> "Server":
        self.log = open(self.data.parent / "server.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "navio.cli.main", "server", "--data-dir", str(self.data),
             "--port", "0", "--no-agent", "--disable", "scheduler,controller-manager"],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            cwd=Path(__file__).resolve().parents[1])
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if "kubeconfig written" in line or time.monotonic() > deadline:
                break
        if not (self.data / "admin.kubeconfig").exists():
            raise SystemExit(f"navio server did not start; see {self.log.name}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


async def populate(client: Client, scale: int) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": NS}})
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await client.create(PODS, pod(i), NS)
            await client.patch(PODS, f"p{i}", pod_status(i), NS, subresource="status")
            await client.create(NETWORKPOLICIES, policy(i), NS)
    await asyncio.gather(*(one(i) for i in range(scale)))


async def latency(scale: int, runs: int, netns: str) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="netpol-bench-"))
    server = Server(base).start()
    applied: list[tuple[float, str]] = []      # (monotonic time nft -f returned, script)
    real_nft = netpol_controller._nft

    async def timed_nft(config: NetpolConfig, script: str, timeout: float = 30.0) -> None:
        await real_nft(config, script, timeout)
        applied.append((time.monotonic(), script))
    netpol_controller._nft = timed_nft          # type: ignore[assignment]
    client = Client.from_kubeconfig(server.data / "admin.kubeconfig", component="netpol-bench")
    ctl: NetworkPolicyController | None = None
    task: asyncio.Task[None] | None = None
    try:
        t0 = time.monotonic()
        await populate(client, scale)
        populate_s = time.monotonic() - t0
        config = NetpolConfig(kubeconfig=server.data / "admin.kubeconfig", node_name=NODE,
                              netns=f"/run/netns/{netns}")
        policies = Informer(client, NETWORKPOLICIES)
        seen: dict[str, float] = {}
        policies.add_handler(lambda o: seen.setdefault(f"add/{o['metadata']['name']}",
                                                       time.monotonic()),
                             lambda old, new: None,
                             lambda o: seen.setdefault(f"del/{o['metadata']['name']}",
                                                       time.monotonic()))
        ctl = NetworkPolicyController(config, Informer(client, PODS),
                                      Informer(client, NAMESPACES), policies)
        task = asyncio.create_task(ctl.run())
        own = chain_name("in", SERVER_IP)
        while not any(f"chain {own} {{" in s for _, s in applied):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        full = applied[-1][1]
        chains = full.count("\tchain ")
        probe = chain_name("eg", SERVER_IP)
        add, delete, add_event, del_event = [], [], [], []
        for r in range(runs):
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            await client.create(NETWORKPOLICIES, probe_policy(r), NS)
            while not any(t > t0 and f"chain {probe} {{" in s for t, s in applied):
                await asyncio.sleep(0.001)
            t1 = next(t for t, s in applied if t > t0 and f"chain {probe} {{" in s)
            add.append(t1 - t0)
            add_event.append(seen[f"add/probe{r}"] - t0)
            in_ns(netns, "nft", "list", "chain", "inet", "navio-netpol", probe)  # in the kernel
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            await client.delete(NETWORKPOLICIES, f"probe{r}", NS)
            while not any(t > t0 and f"chain {probe} {{" not in s for t, s in applied):
                await asyncio.sleep(0.001)
            t1 = next(t for t, s in applied if t > t0 and f"chain {probe} {{" not in s)
            delete.append(t1 - t0)
            del_event.append(seen[f"del/probe{r}"] - t0)
            gone = in_ns(netns, "nft", "list", "chain", "inet", "navio-netpol", probe,
                         check=False)
            assert gone.returncode != 0, "the probe chain is still in the kernel"
        render_s = []
        for _ in range(runs):
            t0 = time.perf_counter()
            ctl.script()
            render_s.append(time.perf_counter() - t0)
        empty = [nft_load(netns, "add table inet warm\ndelete table inet warm\n")
                 for _ in range(runs)]
        whole = [nft_load(netns, full) for _ in range(runs)]
        return {"scale": scale, "populate_s": populate_s, "chains": chains,
                "bytes": len(full), "add": add, "delete": delete, "add_event": add_event,
                "del_event": del_event, "render": render_s, "empty_nft": empty,
                "whole_nft": whole}
    finally:
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if ctl is not None:
            await ctl.stop()
        netpol_controller._nft = real_nft       # type: ignore[assignment]
        await client.close()
        server.stop()
        in_ns(netns, "nft", "delete", "table", "inet", "navio-netpol", check=False)
        shutil.rmtree(base, ignore_errors=True)


# ---- 2. throughput --------------------------------------------------------------------------

def make_topology(tag: str) -> tuple[str, str, str]:
    c, r, s = f"npb-c-{tag}", f"npb-r-{tag}", f"npb-s-{tag}"
    for n in (c, r, s):
        sh("ip", "netns", "add", n)
    sh("ip", "link", "add", f"npc{tag}", "netns", c, "type", "veth", "peer", "name",
       f"npcr{tag}", "netns", r)
    sh("ip", "link", "add", f"nps{tag}", "netns", s, "type", "veth", "peer", "name",
       f"npsr{tag}", "netns", r)
    for netns, dev, addr, gw in ((c, f"npc{tag}", f"{CLIENT_IP}/24", "10.244.1.1"),
                                 (s, f"nps{tag}", f"{SERVER_IP}/24", "10.244.2.1")):
        in_ns(netns, "ip", "link", "set", "lo", "up")
        in_ns(netns, "ip", "addr", "add", addr, "dev", dev)
        in_ns(netns, "ip", "link", "set", dev, "up")
        in_ns(netns, "ip", "route", "add", "default", "via", gw)
    in_ns(r, "ip", "link", "set", "lo", "up")
    for dev, addr in ((f"npcr{tag}", "10.244.1.1/24"), (f"npsr{tag}", "10.244.2.1/24")):
        in_ns(r, "ip", "addr", "add", addr, "dev", dev)
        in_ns(r, "ip", "link", "set", dev, "up")
    in_ns(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # The veths' only routes lead to each other: nothing here can reach the host's network.
    assert "default" not in in_ns(r, "ip", "route").stdout
    return c, r, s


def iperf(client_ns: str, server_ns: str, udp: bool, seconds: float) -> float:
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", "5201"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if in_ns(server_ns, "ss", "-ltn", "sport = :5201").stdout.count("LISTEN"):
                break
            time.sleep(0.05)
        args = ["iperf3", "-c", SERVER_IP, "-p", "5201", "-t", str(seconds), "-J"]
        if udp:
            args += ["-u", "-b", "0", "-l", "64"]
        out = json.loads(in_ns(client_ns, *args, timeout=seconds + 30).stdout)
        end = out["end"]
        if udp:
            s = end["sum"]
            return (s["packets"] - s["lost_packets"]) / s["seconds"]
        return float(end["sum_received"]["bits_per_second"])
    finally:
        srv.wait(30)


def blocked(client_ns: str, port: int) -> bool:
    """A TCP connect to the server on `port` (nothing listens there): refused at once without
    a policy, silently dropped (times out) when a policy isolates the server."""
    code = ("import socket,sys\ns=socket.socket();s.settimeout(1.0)\n"
            f"try:\n s.connect(('{SERVER_IP}',{port}))\nexcept socket.timeout:\n sys.exit(3)\n"
            "except OSError:\n sys.exit(0)\n")
    return in_ns(client_ns, sys.executable, "-c", code, check=False).returncode == 3


def throughput(scale: int, rounds: int, seconds: float) -> dict[str, Any]:
    tag = str(os.getpid())
    c = r = s = ""
    try:
        c, r, s = make_topology(tag)
        pods, namespaces, policies = world(scale)
        table = render(compute(pods, pods, namespaces, policies))
        assert not blocked(c, 5202), "traffic is dropped with no policy loaded"
        nft_load(r, table)
        enforced = blocked(c, 5202)
        nft_load(r, "add table inet navio-netpol\ndelete table inet navio-netpol\n")
        res: dict[str, list[float]] = {k: [] for k in ("tcp0", "tcp1", "udp0", "udp1")}
        iperf(c, s, False, 1.0)     # warm-up (first connection, caches), not counted
        for n in range(rounds):
            for loaded in ((False, True) if n % 2 == 0 else (True, False)):
                if loaded:
                    nft_load(r, table)
                res[f"tcp{int(loaded)}"].append(iperf(c, s, False, seconds))
                res[f"udp{int(loaded)}"].append(iperf(c, s, True, seconds))
                if loaded:
                    nft_load(r, "add table inet navio-netpol\ndelete table inet navio-netpol\n")
        return {"scale": scale, "enforced": enforced, "chains": table.count("\tchain "), **res}
    finally:
        for n in (c, r, s):
            if n:
                sh("ip", "netns", "del", n, check=False)


# ---- main -------------------------------------------------------------------------------------

async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="10,100,1000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces and nftables)")
    for tool in ("nft", "iperf3"):
        if shutil.which(tool) is None:
            sys.exit(f"needs {tool} (.ci/install installs it)")
    scales = [int(x) for x in args.scales.split(",")]
    netns = f"npb-{os.getpid()}"
    sh("ip", "netns", "add", netns)
    print(f"NetworkPolicy rule-update latency (S pods on the node, S policies); "
          f"median of {args.runs} runs")
    try:
        for scale in scales:
            got = await latency(scale, args.runs, netns)
            print(f"S={scale:5d}  {got['chains']:5d} chains {got['bytes'] / 1024:7.1f} KiB  "
                  f"add {ms(got['add'])}  delete {ms(got['delete'])}  | "
                  f"write->event {ms(got['add_event'])}  render {ms(got['render'])}  "
                  f"nft-f-table {ms(got['whole_nft'])}  "
                  f"empty-nft-baseline {ms(got['empty_nft'])}  "
                  f"(populated in {got['populate_s']:.1f}s)", flush=True)
    finally:
        sh("ip", "netns", "del", netns, check=False)
    got = throughput(max(scales), args.rounds, args.seconds)
    print(f"\nthroughput client -> router netns -> server, table of S={got['scale']} "
          f"({got['chains']} chains) vs none; median of {args.rounds} rounds x "
          f"{args.seconds:g}s; policy enforced in the table: {got['enforced']}")
    for key, unit, scale_by, label in (("tcp", "Gbit/s", 1e9, "TCP"),
                                       ("udp", "kpkt/s", 1e3, "UDP 64B")):
        base = statistics.median(got[f"{key}0"]) / scale_by
        with_table = statistics.median(got[f"{key}1"]) / scale_by
        print(f"{label:8s} no-table-baseline {base:9.2f} {unit}   netpol {with_table:9.2f} "
              f"{unit}   ratio {with_table / base:5.3f}")


if __name__ == "__main__":
    asyncio.run(main())
