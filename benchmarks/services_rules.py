"""Rule-update latency of the nftables proxy at 1,000 services × 10 endpoints.

Everything runs in a throwaway network namespace (created and deleted here; needs root and
nft), so the host's rules are never touched. Measured, each the median of `--runs` runs:
- full sync: build the service map, render it and load it with one `nft -f` transaction;
- one-endpoint delta: one endpoint of one service stops being ready — recompute that service,
  render the delta and apply it (what the proxier does after an EndpointSlice change);
beside baselines measured in the same run: `nft -f` of an empty table (add + delete: the cost
of one nft process and one transaction), a single `flush chain` in a one-chain table, and the
same flush in the loaded 1,000-service table — nft reads the table's chains and sets from the
kernel before it runs any command that names them, so that is the floor for any delta.

    python3 benchmarks/services_rules.py [--services 1000] [--endpoints 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navio.proxy.model import build_service, build_service_map  # noqa: E402
from navio.proxy.nftables import (RuleOptions, delta_transaction,  # noqa: E402
                                  full_transaction, render_service)
from navio.proxy.nftables_backend import NftRunner  # noqa: E402

OPTS = RuleOptions(cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16")


def world(n_services: int, n_endpoints: int) -> tuple[list[dict], list[dict]]:
    services, slices = [], []
    for i in range(n_services):
        name = f"svc-{i}"
        cluster_ip = f"10.43.{i // 250}.{i % 250 + 1}"
        services.append({"metadata": {"namespace": "bench", "name": name},
                         "spec": {"type": "NodePort", "clusterIP": cluster_ip,
                                  "ports": [{"name": "http", "port": 80,
                                             "nodePort": 30000 + i}]}})
        eps = [{"addresses": [f"10.42.{(i * n_endpoints + j) // 250 % 256}."
                              f"{(i * n_endpoints + j) % 250 + 1}"],
                "conditions": {"ready": True}, "nodeName": f"n{j % 3}"}
               for j in range(n_endpoints)]
        slices.append({"metadata": {"namespace": "bench", "name": f"{name}-x",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "endpoints": eps,
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    return services, slices


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (it creates a network namespace and loads nftables rules)")
    netns = f"navio-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        runner = NftRunner(netns, timeout=300)
        services, slices = world(args.services, args.endpoints)
        node = "n0"

        await runner.apply("add table ip warmup\ndelete table ip warmup\n")   # warm up
        empty, flush = [], []
        await runner.apply("add table ip base\nadd chain ip base c\n")
        for _ in range(args.runs):
            t0 = time.perf_counter()
            await runner.apply("add table ip base2\ndelete table ip base2\n")
            empty.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await runner.apply("flush chain ip base c\n")
            flush.append(time.perf_counter() - t0)

        full, full_render, delta, delta_render, loaded_flush, lines = [], [], [], [], [], 0
        for run in range(args.runs):
            t0 = time.perf_counter()
            m = build_service_map(services, slices, node)
            frags = {k: render_service(v, OPTS) for k, v in m.items()}
            script = full_transaction(frags.values(), OPTS)
            t1 = time.perf_counter()
            await runner.apply(script)
            full.append(time.perf_counter() - t0)
            full_render.append(t1 - t0)
            lines = script.count("\n")

            victim = (run * 37) % args.services
            key = f"bench/svc-{victim}"
            changed = [dict(s) for s in slices[victim:victim + 1]]
            changed[0]["endpoints"] = [dict(e) for e in changed[0]["endpoints"]]
            changed[0]["endpoints"][0]["conditions"] = {"ready": False, "terminating": True}
            t0 = time.perf_counter()
            ports = build_service(services[victim], changed, node)
            new = render_service(ports, OPTS)
            d = delta_transaction([(frags[key], new)])
            t1 = time.perf_counter()
            await runner.apply(d)
            delta.append(time.perf_counter() - t0)
            delta_render.append(t1 - t0)
            t0 = time.perf_counter()
            await runner.apply(f"flush chain ip navio-proxy {next(iter(new.chains))}\n")
            loaded_flush.append(time.perf_counter() - t0)

        chains = sum(len(f.chains) for f in frags.values())
        print(f"services {args.services} x endpoints {args.endpoints}: {chains:,} chains, "
              f"{lines:,} nft commands in a full load; median of {args.runs} runs")
        print(f"full sync        navio {median_ms(full):9.1f} ms  (render "
              f"{median_ms(full_render):.1f} ms)  empty-table-baseline {median_ms(empty):6.1f} ms"
              f"  ratio {median_ms(full) / median_ms(empty):7.1f}")
        print(f"1-endpoint delta navio {median_ms(delta):9.1f} ms  (render "
              f"{median_ms(delta_render):.2f} ms)  single-flush-baseline "
              f"{median_ms(flush):6.1f} ms  ratio {median_ms(delta) / median_ms(flush):7.2f}")
        print(f"1-endpoint delta navio {median_ms(delta):9.1f} ms  flush-in-loaded-table-baseline "
              f"{median_ms(loaded_flush):6.1f} ms  ratio "
              f"{median_ms(delta) / median_ms(loaded_flush):7.2f}")
        print(f"delta transaction: {d.count(chr(10))} nft commands")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    asyncio.run(main())
