"""`navio sim`: N simulated nodes in one process (kwok's way), for scale tests.

    navio sim --kubeconfig FILE --nodes N [--pods-per-node 110] [--startup-delay S]
              [--fail 5%] [--fail-after S] [--control-port P]

Identity and RBAC: the sim writes Nodes (create, get, nodes/status patch), Leases in
kube-node-lease (create, get, update), and pods (list, watch, pods/status patch, delete) for
every simulated node, so it needs a cluster-wide identity, not `system:node:<name>` (the Node
authorizer would confine each to its own node). Tests and benchmarks use the admin
kubeconfig; elsewhere bind a ClusterRole with exactly those verbs.

`--fail P%` fails that share of the nodes `--fail-after` seconds (default 0) after they all
registered; SIGUSR1 fails that share again (1 node without --fail), SIGUSR2 recovers all,
and the loopback control endpoint (navio/sim/control.py) does either on request.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from navio.cli.flags import duration, run_component

__all__ = ["add_parser"]

log = logging.getLogger("navio.sim")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim", help="run simulated nodes (kwok-style) for scale tests")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--nodes", type=int, required=True, help="how many nodes to simulate")
    p.add_argument("--pods-per-node", type=int, default=110,
                   help="each node's pods capacity (default 110, kube's max-pods)")
    p.add_argument("--node-cpu", default="32", help="each node's cpu capacity")
    p.add_argument("--node-memory", default="256Gi", help="each node's memory capacity")
    p.add_argument("--node-prefix", default="sim-node", help="node names are PREFIX-<i>")
    p.add_argument("--startup-delay", type=duration, default=0.0,
                   help="from seeing a pod bound to reporting it Running (default 0)")
    p.add_argument("--fail", default="",
                   help="fail this share of the nodes (5%%, 0.05 or a count) after --fail-after")
    p.add_argument("--fail-after", type=duration, default=0.0)
    p.add_argument("--cluster-cidr", default="10.128.0.0/10",
                   help="the sim's own pod network, cut into one block per node "
                        "(outside the cluster's IPAM range, so both never clash)")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--node-lease-duration", type=int, default=40,
                   help="Lease duration in seconds; renewed every quarter of it (10 s)")
    p.add_argument("--node-status-report-frequency", type=duration, default=300.0)
    p.add_argument("--control-port", type=int, default=0,
                   help="loopback port of the control endpoint (0: pick one; -1: none)")
    p.add_argument("--kube-api-qps", type=float, default=2000.0)
    p.add_argument("--kube-api-burst", type=int, default=4000)
    p.add_argument("--workers", type=int, default=32, help="concurrent pod status writes")
    p.add_argument("--seed", type=int, default=None, help="seed of the random failures")
    p.add_argument("--v", dest="verbosity", type=int, default=0)
    p.set_defaults(run=_run)


def _run(args: Any) -> int:
    from navio.sim.simulator import parse_fraction
    if args.nodes < 1:
        raise SystemExit("navio sim: --nodes must be at least 1")
    try:
        fail_count = parse_fraction(args.fail, args.nodes) if args.fail else 0
    except ValueError as exc:
        raise SystemExit(f"navio sim: --fail: {exc}") from None
    return run_component(args, _main(args, fail_count))


async def _main(args: Any, fail_count: int) -> None:
    from navio.client import Client
    from navio.sim.control import serve_control
    from navio.sim.nodes import NodeShape
    from navio.sim.simulator import Simulator
    try:
        shape = NodeShape(prefix=args.node_prefix, cluster_cidr=args.cluster_cidr,
                          node_cidr_mask_size=args.node_cidr_mask_size,
                          pods_per_node=args.pods_per_node, cpu=args.node_cpu,
                          memory=args.node_memory, lease_seconds=args.node_lease_duration)
    except ValueError as exc:
        raise SystemExit(f"navio sim: {exc}") from None
    client = Client.from_kubeconfig(args.kubeconfig, component="sim", qps=args.kube_api_qps,
                                    burst=args.kube_api_burst)
    try:
        sim = Simulator(client, args.nodes, shape=shape, startup_delay=args.startup_delay,
                        lease_interval=args.node_lease_duration / 4.0,
                        status_interval=args.node_status_report_frequency,
                        workers=args.workers, seed=args.seed)
    except ValueError as exc:
        await client.close()
        raise SystemExit(f"navio sim: {exc}") from None
    runner = None
    if args.control_port >= 0:
        runner, port = await serve_control(sim, args.control_port)
        print(f"navio sim: control endpoint http://127.0.0.1:{port}", flush=True)
    loop = asyncio.get_running_loop()
    share = fail_count or 1
    loop.add_signal_handler(signal.SIGUSR1, lambda: sim.fail_random(share))
    loop.add_signal_handler(signal.SIGUSR2, sim.recover)

    async def announce() -> None:
        await sim.registered.wait()
        print(f"navio sim: {args.nodes} nodes registered", flush=True)
        if fail_count:
            await asyncio.sleep(args.fail_after)
            names = sim.fail_random(fail_count)
            print(f"navio sim: failed {len(names)} nodes", flush=True)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sim.run())
            tg.create_task(announce())
    finally:
        if runner is not None:
            await runner.cleanup()
        await client.close()
