"""`navio controller-manager`: the controllers, alone (for HA or scale)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from navio.cli.flags import duration, run_component, true_false
from navio.cli.secureserving import add_serving_flags, with_secure_serving
from navio.controllers.manager import ControllerManagerConfig, run

__all__ = ["add_parser", "config_from_args"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("controller-manager", help="run the controllers")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--leader-elect", type=true_false, default=True, metavar="true|false")
    p.add_argument("--leader-elect-lease-duration", type=duration, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=duration, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=duration, default=2.0)
    p.add_argument("--kube-api-qps", type=float, default=200.0)
    p.add_argument("--kube-api-burst", type=int, default=400)
    p.add_argument("--controllers", default="*",
                   help="comma-separated controllers to run; '*' is all, '-name' disables")
    p.add_argument("--node-monitor-period", type=duration, default=5.0,
                   help="how often node health is checked (kube's default 5s)")
    p.add_argument("--node-monitor-grace-period", type=duration, default=40.0)
    p.add_argument("--node-startup-grace-period", type=duration, default=60.0)
    p.add_argument("--node-eviction-rate", type=float, default=0.1,
                   help="nodes per second whose pods are evicted (NoExecute taints) in a "
                        "healthy zone")
    p.add_argument("--pod-eviction-timeout", type=duration, default=300.0)
    p.add_argument("--secondary-node-eviction-rate", type=float, default=0.01)
    p.add_argument("--large-cluster-size-threshold", type=int, default=50)
    p.add_argument("--unhealthy-zone-threshold", type=float, default=0.55)
    p.add_argument("--concurrent-replicaset-syncs", type=int, default=5)
    p.add_argument("--concurrent-deployment-syncs", type=int, default=5)
    p.add_argument("--cluster-signing-cert-file", type=Path,
                   help="CA certificate the CSR signer issues certificates with")
    p.add_argument("--cluster-signing-key-file", type=Path,
                   help="the CA's private key (a file, 0600)")
    p.add_argument("--cluster-signing-duration", type=duration, default=7 * 24 * 3600.0,
                   help="longest certificate the CSR signer issues (default 168h)")
    p.add_argument("--root-ca-file", type=Path,
                   help="CA bundle published as ConfigMap kube-root-ca.crt in every namespace "
                        "(default: the kubeconfig's CA)")
    p.add_argument("--allocate-node-cidrs", type=true_false, default=True,
                   metavar="true|false",
                   help="give every Node a pod CIDR from --cluster-cidr (node IPAM)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="the pod network of the whole cluster, cut into per-node ranges")
    p.add_argument("--node-cidr-mask-size", type=int, default=24,
                   help="prefix length of each node's pod CIDR")
    p.add_argument("--v", dest="verbosity", type=int, default=0)
    add_serving_flags(p, 10257)
    p.set_defaults(run=lambda args: run_component(args, with_secure_serving(
        args, run(config_from_args(args)), "controller-manager")))


def config_from_args(args: argparse.Namespace) -> ControllerManagerConfig:
    return ControllerManagerConfig(
        kubeconfig=args.kubeconfig, leader_elect=args.leader_elect,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        qps=args.kube_api_qps, burst=args.kube_api_burst,
        controllers=tuple(c.strip() for c in args.controllers.split(",") if c.strip())
        + (() if args.allocate_node_cidrs else ("-nodeipam",)),
        options={"node-monitor-period": args.node_monitor_period,
                 "node-monitor-grace-period": args.node_monitor_grace_period,
                 "node-startup-grace-period": args.node_startup_grace_period,
                 "node-eviction-rate": args.node_eviction_rate,
                 "pod-eviction-timeout": args.pod_eviction_timeout,
                 "secondary-node-eviction-rate": args.secondary_node_eviction_rate,
                 "large-cluster-size-threshold": args.large_cluster_size_threshold,
                 "unhealthy-zone-threshold": args.unhealthy_zone_threshold,
                 "concurrent-replicaset-syncs": args.concurrent_replicaset_syncs,
                 "concurrent-deployment-syncs": args.concurrent_deployment_syncs,
                 "cluster-signing-cert-file": args.cluster_signing_cert_file,
                 "cluster-signing-key-file": args.cluster_signing_key_file,
                 "cluster-signing-duration": args.cluster_signing_duration,
                 "root-ca-file": args.root_ca_file,
                 "cluster-cidr": args.cluster_cidr,
                 "node-cidr-mask-size": args.node_cidr_mask_size})
