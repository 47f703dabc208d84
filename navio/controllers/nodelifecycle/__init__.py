"""The node lifecycle controller and the taint eviction it runs (issue 6); see
`controller.py`. Public names stay importable from `navio.controllers.nodelifecycle`."""

from navio.controllers.nodelifecycle.controller import LEASE_NAMESPACE, NodeLifecycleController
from navio.controllers.nodelifecycle.tainteviction import (NODE_NAME_INDEX, NoExecuteEvictor,
                                                           ensure_node_name_index)
from navio.controllers.nodelifecycle.taints import (NOT_READY, UNREACHABLE, UNSCHEDULABLE,
                                                    condition_taints, matching_tolerations,
                                                    min_toleration_seconds, tolerates)
from navio.controllers.nodelifecycle.times import duration_option, parse_time, timestamp
from navio.controllers.nodelifecycle.zones import compute_zone_state

__all__ = ["NodeLifecycleController", "NoExecuteEvictor", "compute_zone_state",
           "condition_taints", "matching_tolerations", "tolerates", "min_toleration_seconds",
           "duration_option", "ensure_node_name_index", "UNREACHABLE", "NOT_READY",
           "UNSCHEDULABLE", "NODE_NAME_INDEX", "LEASE_NAMESPACE", "parse_time", "timestamp"]
