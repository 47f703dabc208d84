"""`navio apiserver`: the API server alone, for a control plane of several (HA).

Several `navio apiserver --datastore etcd://…` processes on one etcd serve the same state,
watches included: each one's watch caches are fed by etcd's watch, so an object written
through one is seen through every other. They share the cluster's PKI (copy `DATA/pki` from the
first to the others before their first start, as kubeadm copies control-plane certificates);
controller managers and schedulers run beside them as `navio controller-manager` and
`navio scheduler`, with leader election.
"""

from __future__ import annotations

import argparse
from typing import Any

from navio.cli.server import ServerConfig, _config_from_args, add_apiserver_flags, run_server

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("apiserver", help="run the API server only (several may share one "
                       "etcd: --datastore etcd://host:2379)")
    add_apiserver_flags(p)
    # The whole-cluster flags of `navio server` that do not apply here.
    p.set_defaults(run=_run, cluster_cidr="10.42.0.0/16", cluster_dns="", node_netns=None,
                   resolv_conf=None, kubelet_port=10250, proxy_mode="none", agent=False,
                   single_process=False, runtime="auto",
                   disable="controller-manager,scheduler,agent")


def _run(args: argparse.Namespace) -> int:
    try:
        config: ServerConfig = _config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"navio apiserver: {exc}") from None
    return run_server(config)
