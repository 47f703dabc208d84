"""`navio dns`: the cluster DNS server as its own component.

Every agent of `navio server` already answers cluster DNS on the DNS Service address (see
nodeservices.py); this command runs the same server elsewhere — on a node without an agent,
or with an identity of its own (user `system:kube-dns`; it lists and watches Services,
EndpointSlices and Namespaces).

    navio dns --kubeconfig K [--bind-address 10.43.0.10,...] [--port 53]
              [--cluster-domain cluster.local] [--upstream IP[:PORT],...] [--resolv-conf F]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from navio.cli.flags import run_component

__all__ = ["add_parser"]


def _list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _run(args: argparse.Namespace) -> int:
    from navio.dns import DnsConfig
    from navio.dns.server import run
    bind = _list(args.bind_address)
    try:
        config = DnsConfig(kubeconfig=args.kubeconfig, bind_addresses=bind, port=args.port,
                           zone=args.cluster_domain,
                           cluster_dns=_list(args.cluster_dns) or bind,
                           upstreams=_list(args.upstream), resolv_conf=args.resolv_conf,
                           service_cidrs=_list(args.service_cidr),
                           pod_cidrs=_list(args.cluster_cidr))
    except ValueError as exc:
        raise SystemExit(f"navio dns: {exc}") from None
    return run_component(args, run(config))


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dns", help="run the cluster DNS server")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--bind-address", default="10.43.0.10",
                   help="comma-separated addresses to answer on (UDP and TCP)")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--cluster-dns", default="",
                   help="the DNS Service addresses (default: the bind addresses)")
    p.add_argument("--upstream", default="",
                   help="comma-separated resolvers for other names (default: --resolv-conf's)")
    p.add_argument("--resolv-conf", type=Path, default=Path("/etc/resolv.conf"))
    p.add_argument("--service-cluster-ip-range", dest="service_cidr", default="10.43.0.0/16")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--v", dest="verbosity", type=int, default=0)
    p.set_defaults(run=_run)
