"""`navio proxy`: the Service proxy as its own component, and its routing state for humans.

    navio proxy run --kubeconfig K [--hostname-override N] [--proxy-mode M] [--netns NS] ...
        kube-proxy's job on this node (every agent already runs one; this is for a proxy with
        its own identity, user `system:kube-proxy`).
    navio proxy rules [--root-dir DIR | --state-file F] [--live [--netns NS]]
        what the proxy of this node programs: every service port, its cluster IP, NodePort,
        affinity, traffic policies and targets (`*` = on this node), as the running proxy last
        wrote it after a sync; `--live` adds the kernel's own listing of the proxy's table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from navio.cli.flags import duration, run_component, true_false
from navio.cli.nodeservices import proxy_state_file
from navio.kubelet.config import default_node_name, default_root_dir

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from navio.proxy import ProxyConfig, run
    try:
        config = ProxyConfig(
            kubeconfig=args.kubeconfig, node_name=args.node_name, netns=args.netns,
            mode=args.mode, cluster_cidr=args.cluster_cidr or None,
            service_cidr=args.service_cidr or None, min_sync_period=args.min_sync_period,
            sync_period=args.sync_period, masquerade_all=args.masquerade_all,
            nodeport_addresses=tuple(a for a in args.nodeport_addresses.split(",") if a),
            bind_address=args.bind_address, state_file=args.state_file)
    except ValueError as exc:
        raise SystemExit(f"navio proxy: {exc}") from None
    if config.state_file is not None:
        config.state_file.parent.mkdir(parents=True, exist_ok=True)
    return run_component(args, run(config))


def _rules(args: argparse.Namespace) -> int:
    state = args.state_file or proxy_state_file(args.root_dir)
    out = []
    try:
        out.append(Path(state).read_text())
    except FileNotFoundError:
        if not args.live:
            print(f"navio proxy rules: no proxy state at {state} (is the agent running with "
                  "a proxy? use --root-dir or --state-file)", file=sys.stderr)
            return 1
    except OSError as exc:
        print(f"navio proxy rules: cannot read {state}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.live:
        from navio.proxy import live_rules
        try:
            out.append(asyncio.run(live_rules(args.netns)))
        except Exception as exc:      # no table, or neither nft nor iptables
            print(f"navio proxy rules: no live table: {exc}", file=sys.stderr)
            if not out:
                return 1
    sys.stdout.write("\n".join(out))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("proxy", help="the Service proxy: run it, or show its rules")
    psub = p.add_subparsers(dest="proxy_command", required=True, metavar="SUBCOMMAND")

    r = psub.add_parser("run", help="run the Service proxy (kube-proxy) for this node")
    r.add_argument("--kubeconfig", type=Path, required=True)
    r.add_argument("--hostname-override", dest="node_name", default=default_node_name())
    r.add_argument("--proxy-mode", dest="mode", default="auto",
                   choices=("auto", "nftables", "iptables", "userspace"))
    r.add_argument("--netns", help="program this network namespace (name or path)")
    r.add_argument("--cluster-cidr", default="10.42.0.0/16")
    r.add_argument("--service-cluster-ip-range", dest="service_cidr", default="10.43.0.0/16")
    r.add_argument("--min-sync-period", type=duration, default=0.1)
    r.add_argument("--sync-period", type=duration, default=30.0)
    r.add_argument("--masquerade-all", type=true_false, default=False)
    r.add_argument("--nodeport-addresses", default="", help="comma-separated node IPs")
    r.add_argument("--bind-address", default="0.0.0.0", help="userspace mode: listen here")
    r.add_argument("--state-file", type=Path, help="write the routing state here after "
                                                   "each sync (for `navio proxy rules`)")
    r.add_argument("--v", dest="verbosity", type=int, default=0)
    r.set_defaults(run=_run)

    s = psub.add_parser("rules", help="show the routing state of this node's proxy")
    s.add_argument("--root-dir", type=Path, default=default_root_dir(),
                   help="the agent's --root-dir (default: %(default)s); for `navio server`: "
                        "<data-dir>/agent")
    s.add_argument("--state-file", type=Path, help="read this state file instead")
    s.add_argument("--live", action="store_true",
                   help="also list the kernel's rules (nftables table or iptables chains)")
    s.add_argument("--netns", help="with --live: the node network namespace")
    s.set_defaults(run=_rules)
