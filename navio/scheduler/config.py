"""SchedulerConfig: everything `navio scheduler` can be told, validated once.

Field names follow kube-scheduler's flags and KubeSchedulerConfiguration (v1) where one exists:
`--kubeconfig`, `--leader-elect` (+ lease-duration 15 s, renew-deadline 10 s, retry-period
2 s, lock `kube-system/kube-scheduler`), `percentageOfNodesToScore` (0 = adaptive),
`podInitialBackoffSeconds` 1, `podMaxBackoffSeconds` 10, the default profile's plugin weights,
DefaultPreemption's minCandidateNodesPercentage 10 / minCandidateNodesAbsolute 100 and
InterPodAffinity's hardPodAffinityWeight 1. Durations are seconds (the CLI parses Go-style
durations such as `15s`).

Deliberate difference: kube-scheduler's client defaults to 50 qps; navio's scheduler binds at
up to `kube_api_qps` (default 5000, as scheduler_perf runs kube-scheduler) because binding
throughput is the point, while Events go through their own client at 50 qps / burst 100 so
that a burst of failures never slows binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from navio.scheduler.plugins import DEFAULT_WEIGHTS

__all__ = ["SchedulerConfig", "DEFAULT_SCHEDULER_NAME"]

DEFAULT_SCHEDULER_NAME = "default-scheduler"


@dataclass(frozen=True)
class SchedulerConfig:
    kubeconfig: Path
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    leader_elect: bool = True
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    leader_elect_resource_name: str = "kube-scheduler"
    leader_elect_resource_namespace: str = "kube-system"
    leader_elect_identity: str = ""                 # "" = <hostname>_<uuid>
    percentage_of_nodes_to_score: int = 0
    weights: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        dict(DEFAULT_WEIGHTS)))
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0
    pod_max_in_unschedulable: float = 300.0
    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100
    hard_pod_affinity_weight: int = 1
    bind_concurrency: int = 128                     # binding requests in flight at once
    max_pending_binds: int = 4096                   # the loop waits beyond this many
    kube_api_qps: float = 5000.0
    kube_api_burst: int = 5000
    event_qps: float = 50.0
    event_burst: int = 100
    batch: bool = True                              # vectorise over nodes when numpy exists
    seed: int | None = None                         # tie-breaking randomness (tests)

    def __post_init__(self) -> None:
        if not self.scheduler_name:
            raise ValueError("scheduler_name must not be empty")
        if not 0 <= self.percentage_of_nodes_to_score <= 100:
            raise ValueError("percentageOfNodesToScore must be in [0, 100]")
        if self.pod_initial_backoff <= 0 or self.pod_max_backoff < self.pod_initial_backoff:
            raise ValueError("need 0 < podInitialBackoffSeconds <= podMaxBackoffSeconds")
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"weights for unknown score plugins: {sorted(unknown)}")
        if any(w < 0 or w > 100 for w in self.weights.values()):
            raise ValueError("plugin weights must be in [0, 100]")
        if not 0 <= self.min_candidate_nodes_percentage <= 100:
            raise ValueError("minCandidateNodesPercentage must be in [0, 100]")
        if self.min_candidate_nodes_absolute < 0:
            raise ValueError("minCandidateNodesAbsolute must be >= 0")
        if not 0 <= self.hard_pod_affinity_weight <= 100:
            raise ValueError("hardPodAffinityWeight must be in [0, 100]")
        if self.bind_concurrency < 1 or self.max_pending_binds < self.bind_concurrency:
            raise ValueError("need 1 <= bind_concurrency <= max_pending_binds")
        if self.leader_elect and not (self.leader_elect_lease_duration
                                      > self.leader_elect_renew_deadline
                                      > 1.2 * self.leader_elect_retry_period > 0):
            raise ValueError("need lease duration > renew deadline > 1.2 x retry period > 0")
        object.__setattr__(self, "kubeconfig", Path(self.kubeconfig))
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
