"""`navio scheduler`: the scheduler, alone (for HA or scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from navio.cli.flags import duration, run_component, true_false
from navio.cli.secureserving import add_serving_flags, with_secure_serving

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--leader-elect", type=true_false, default=True, metavar="true|false")
    p.add_argument("--leader-elect-lease-duration", type=duration, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=duration, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=duration, default=2.0)
    p.add_argument("--scheduler-name", default="default-scheduler")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0)
    p.add_argument("--kube-api-qps", type=float, default=5000.0)
    p.add_argument("--kube-api-burst", type=int, default=5000)
    p.add_argument("--v", dest="verbosity", type=int, default=0)
    add_serving_flags(p, 10259)
    p.set_defaults(run=_run)


def _run(args: Any) -> int:
    from navio.scheduler import SchedulerConfig, run
    config = SchedulerConfig(
        kubeconfig=args.kubeconfig, scheduler_name=args.scheduler_name,
        leader_elect=args.leader_elect,
        leader_elect_lease_duration=args.leader_elect_lease_duration,
        leader_elect_renew_deadline=args.leader_elect_renew_deadline,
        leader_elect_retry_period=args.leader_elect_retry_period,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        kube_api_qps=args.kube_api_qps, kube_api_burst=args.kube_api_burst)
    return run_component(args, with_secure_serving(args, run(config), "scheduler"))
