"""navio's scheduler: assigns pending pods to nodes as kube-scheduler does.

    run(config)          the entry point (`navio scheduler`, and inside `navio server`)
    SchedulerConfig      its configuration (config.py)
    Scheduler            informers, queue, cache, plugins, binder wired together
    POD_GROUPS           the PodGroup kind (scheduling.navio.dev/v1alpha1) for gangs

Layout: queue.py (active/backoff/unschedulable/gated), nominator.py; cache.py + nodeinfo.py +
nodearrays.py (nodes and pods, assumed bindings, numpy columns); podinfo.py + resources.py
(per-pod facts, requests); framework.py + protocol.py (Status, CycleState, plugin contracts);
algorithm.py (one cycle); plugins/ (one module per plugin) with nodeselector.py, taints.py,
topology.py, defaultselector.py; preemption.py; gang.py; binder.py; events.py;
schedule_one.py (a popped pod's fate); scheduler.py (informers, handlers, leader election).
"""

from navio.scheduler.config import DEFAULT_SCHEDULER_NAME, SchedulerConfig
from navio.scheduler.gang import GANG_LABEL, POD_GROUPS
from navio.scheduler.scheduler import Scheduler, run

__all__ = ["run", "SchedulerConfig", "Scheduler", "DEFAULT_SCHEDULER_NAME", "POD_GROUPS",
           "GANG_LABEL"]
