"""DaemonSets (issue 6): the controller (`controller.py`), pod placement (`placement.py`)
and rolling updates (`rollout.py`). Public names stay importable from
`navio.controllers.daemonset`."""

from navio.controllers.daemonset.controller import DaemonSetController
from navio.controllers.daemonset.placement import (daemon_tolerations, node_affinity_for,
                                                   node_should_run, required_affinity_matches,
                                                   target_node)
from navio.controllers.daemonset.rollout import GENERATION_ANNOTATION, TEMPLATE_GENERATION_LABEL

__all__ = ["DaemonSetController", "node_should_run", "daemon_tolerations", "target_node",
           "node_affinity_for", "required_affinity_matches", "TEMPLATE_GENERATION_LABEL",
           "GENERATION_ANNOTATION"]
