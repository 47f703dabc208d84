"""navio's scheduler: informers in, bindings out, kube-scheduler's behaviour throughout.

Wiring (scheduler.go, eventhandlers.go): one informer on pods (not Succeeded/Failed) feeds
both halves — unassigned pods whose `spec.schedulerName` is ours go to the queue, assigned
pods (anyone's) to the cache; informers on nodes feed the cache; PriorityClasses resolve
priorities, Namespaces feed namespaceSelectors, PodDisruptionBudgets guide preemption,
Services/ReplicaSets/StatefulSets/ReplicationControllers give default spreading, PodGroups
drive gang scheduling. Cluster events move unschedulable pods back to the queue.

Guarantees:
- Only the API is used (navio.client); nothing is read from storage.
- With leader election, caches are kept warm on every replica but only the leader schedules;
  losing the lease stops the loop (bindings already sent complete) and the replica stands by
  to campaign again.
- `run(config)` returns only when cancelled, after stopping intake (informers), letting
  outstanding bindings finish for up to 5 s and flushing events.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

from navio.api.selectors import LabelSelector
from navio.client import (
    NAMESPACE_INDEX,
    NAMESPACES,
    NODES,
    PDBS,
    PODS,
    PRIORITYCLASSES,
    REPLICASETS,
    SERVICES,
    STATEFULSETS,
    Client,
    EventRecorder,
    Informer,
    LeaderElectionConfig,
    LeaderElector,
    ResourceRef,
    default_identity,
    namespace_index,
)
from navio.client.volumes import PVCS, PVS, STORAGECLASSES
from navio.scheduler.algorithm import Algorithm
from navio.scheduler.binder import Binder
from navio.scheduler.cache import Cache
from navio.scheduler.config import SchedulerConfig
from navio.scheduler.defaultselector import DefaultSelector
from navio.scheduler.events import Reporter
from navio.scheduler.framework import (
    ALL_EVENTS,
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    EVENT_POD_ADD,
    EVENT_POD_DELETE,
    EVENT_POD_GROUP,
    EVENT_POD_UPDATE,
)
from navio.scheduler.gang import GANG_PLUGIN, POD_GROUPS, PodGroups
from navio.scheduler.nominator import Nominator
from navio.scheduler.metrics import SchedulerMetrics
from navio.scheduler.plugins import default_profile
from navio.scheduler.plugins.volume_binding import (
    EVENT_PV_CHANGE,
    EVENT_PVC_CHANGE,
    EVENT_STORAGE_CLASS_CHANGE,
    VolumeBinding,
    VolumeListers,
)
from navio.scheduler.podinfo import PodInfo, pod_info
from navio.scheduler.preemption import Preemptor
from navio.scheduler.queue import SchedulingQueue
from navio.scheduler.schedule_one import ScheduleOne

__all__ = ["Scheduler", "run"]

log = logging.getLogger(__name__)

RCS = ResourceRef("", "v1", "replicationcontrollers", True, "ReplicationController")
_POD_FIELDS = "status.phase!=Succeeded,status.phase!=Failed"
_SYNC_TIMEOUT = 60.0
_DRAIN = 5.0


def _node_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A node update that may make pods schedulable (allocatable, labels, taints, cordon)."""
    return ((old.get("status") or {}).get("allocatable") != (new.get("status") or {})
            .get("allocatable")
            or (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {})
            .get("labels")
            or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")
            or bool((old.get("spec") or {}).get("unschedulable"))
            != bool((new.get("spec") or {}).get("unschedulable")))


class Scheduler:
    def __init__(self, config: SchedulerConfig, client: Client, event_client: Client) -> None:
        self.config = config
        self.client = client
        self.informers: dict[str, Informer] = {
            "pods": Informer(client, PODS, field_selector=_POD_FIELDS),
            "nodes": Informer(client, NODES),
            "priorityclasses": Informer(client, PRIORITYCLASSES),
            "namespaces": Informer(client, NAMESPACES),
            "pdbs": Informer(client, PDBS),
            "services": Informer(client, SERVICES),
            "replicasets": Informer(client, REPLICASETS),
            "statefulsets": Informer(client, STATEFULSETS),
            "rcs": Informer(client, RCS),
            "podgroups": Informer(client, POD_GROUPS),
            "pvcs": Informer(client, PVCS),
            "pvs": Informer(client, PVS),
            "storageclasses": Informer(client, STORAGECLASSES),
        }
        self.informers["services"].add_index(NAMESPACE_INDEX, namespace_index)
        self.cache = Cache(use_arrays=config.batch)
        self.nominator = Nominator()
        rng = random.Random(config.seed)
        i = self.informers
        self.volume_binding = VolumeBinding(VolumeListers(
            i["pvcs"].get, i["pvs"].get, i["pvs"].list, i["storageclasses"].get))
        profile = default_profile(
            self.cache, config.weights, ns_labels=self._ns_labels,
            namespaces_matching=self._namespaces_matching,
            default_selector=DefaultSelector(i["services"], i["rcs"], i["replicasets"],
                                             i["statefulsets"]),
            hard_pod_affinity_weight=config.hard_pod_affinity_weight,
            volume_binding=self.volume_binding)
        self.algorithm = Algorithm(self.cache, profile, self.nominator,
                                   percentage_of_nodes_to_score=config
                                   .percentage_of_nodes_to_score, rng=rng, batch=config.batch)
        events = profile.plugin_events()
        events[GANG_PLUGIN] = ALL_EVENTS
        self.queue = SchedulingQueue(initial_backoff=config.pod_initial_backoff,
                                     max_backoff=config.pod_max_backoff,
                                     max_in_unschedulable=config.pod_max_in_unschedulable,
                                     plugin_events=events)
        self.recorder = EventRecorder(event_client, config.scheduler_name)
        self.reporter = Reporter(client, self.recorder, config.scheduler_name)
        self.binder = Binder(client, concurrency=config.bind_concurrency,
                             max_pending=config.max_pending_binds, pre_bind=self._pre_bind)
        self.pod_groups = PodGroups(client, i["podgroups"])
        preemptor = Preemptor(self.algorithm, i["pdbs"].list,
                              min_candidate_nodes_percentage=config
                              .min_candidate_nodes_percentage,
                              min_candidate_nodes_absolute=config.min_candidate_nodes_absolute,
                              rng=rng)
        self.schedule_one = ScheduleOne(self.cache, self.queue, self.algorithm, preemptor,
                                        self.nominator, self.binder, self.reporter,
                                        self.pod_groups,
                                        metrics=SchedulerMetrics(config.scheduler_name,
                                                                 self.queue.counts))
        self.leading = asyncio.Event()
        self._wire()

    # ---- lookups for plugins ---------------------------------------------------------------

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        ns = self.informers["namespaces"].get(namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    def _namespaces_matching(self, selector: LabelSelector) -> list[str]:
        return [ns["metadata"]["name"] for ns in self.informers["namespaces"].list()
                if selector.matches((ns.get("metadata") or {}).get("labels") or {})]

    def priority_of(self, pod: Mapping[str, Any]) -> int:
        """Priority admission: spec.priority, else the PriorityClass's value, else the global
        default class's value, else 0."""
        spec = pod.get("spec") or {}
        if spec.get("priority") is not None:
            return int(spec["priority"])
        classes = self.informers["priorityclasses"]
        name = spec.get("priorityClassName")
        if name:
            pc = classes.get(name)
            if pc is not None:
                return int(pc.get("value") or 0)
            return 0
        for pc in classes.list():
            if pc.get("globalDefault"):
                return int(pc.get("value") or 0)
        return 0

    async def _pre_bind(self, pi: PodInfo, node: str) -> None:
        node_obj = self.informers["nodes"].get(node) or {"metadata": {"name": node}}
        await self.volume_binding.pre_bind(self.client, pi.pod, node_obj)

    # ---- event handlers ---------------------------------------------------------------------

    def _wire(self) -> None:
        i = self.informers
        i["pods"].add_handler(self._pod_add, self._pod_update, self._pod_delete)
        i["nodes"].add_handler(self._node_add, self._node_update, self._node_delete)
        i["podgroups"].add_handler(
            lambda o: self.queue.move_all(EVENT_POD_GROUP),
            lambda o, n: self.queue.move_all(EVENT_POD_GROUP),
            lambda o: self.queue.move_all(EVENT_POD_GROUP))
        for name, event in (("pvcs", EVENT_PVC_CHANGE), ("pvs", EVENT_PV_CHANGE),
                            ("storageclasses", EVENT_STORAGE_CLASS_CHANGE)):
            i[name].add_handler(lambda o, e=event: self.queue.move_all(e),
                                lambda o, n, e=event: self.queue.move_all(e),
                                lambda o, e=event: self.queue.move_all(e))

    def _info(self, pod: dict[str, Any]) -> PodInfo:
        return pod_info(pod, self.priority_of)

    def _ours(self, pi: PodInfo) -> bool:
        return pi.scheduler_name == self.config.scheduler_name

    def _affine_waiters(self, pi: PodInfo, event: str) -> list[str]:
        """Unschedulable pods with a required affinity term the assigned pod `pi` matches
        (getUnschedulablePodsWithMatchingAffinityTerm)."""
        return [q.key for q in self.queue.waiting_for(event)
                if any(t.matches(pi.namespace, pi.labels, self._ns_labels(pi.namespace))
                       for t in q.pod.required_affinity_terms)]

    def _assigned_pod_event(self, pi: PodInfo, event: str) -> None:
        waiters = self._affine_waiters(pi, event)
        if waiters:
            self.queue.move_all(event, only=waiters)

    def _pod_add(self, pod: dict[str, Any]) -> None:
        pi = self._info(pod)
        if pi.node_name:
            self.cache.add_pod(pi)
            self.queue.delete(pi.key)
            self._assigned_pod_event(pi, EVENT_POD_ADD)
        elif self._ours(pi) and not pi.terminating:
            self.queue.add(pi)
            if pi.nominated_node_name:
                self.nominator.add(pi, pi.nominated_node_name)

    def _pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == \
                (new.get("metadata") or {}).get("resourceVersion"):
            return
        pi = self._info(new)
        if pi.node_name:
            was_assigned = bool((old.get("spec") or {}).get("nodeName"))
            self.cache.add_pod(pi)
            if not was_assigned:
                self.nominator.delete(pi.key)
                if self.queue.where(pi.key) not in (None, "inFlight"):
                    self.queue.delete(pi.key)      # bound by someone else
                self._assigned_pod_event(pi, EVENT_POD_ADD)
            else:
                self._assigned_pod_event(pi, EVENT_POD_UPDATE)
            return
        if not self._ours(pi) or self.cache.is_assumed(pi.key):
            return
        if pi.terminating:
            self.queue.delete(pi.key)
            self.nominator.delete(pi.key)
            return
        self.queue.update(pi)
        if pi.nominated_node_name:
            self.nominator.add(pi, pi.nominated_node_name)

    def _pod_delete(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self.nominator.delete(key)
        if key in self.cache.pods:
            removed = self.cache.remove_pod(key)
            self.queue.move_all(EVENT_POD_DELETE)
            if removed is not None and removed.gang:
                self.pod_groups.record(removed.namespace, removed.gang, bound=len(
                    self.cache.gang_members(removed.namespace, removed.gang)))
        self.queue.delete(key)

    def _node_add(self, node: dict[str, Any]) -> None:
        self.cache.set_node(node)
        self.queue.move_all(EVENT_NODE_ADD)

    def _node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.cache.set_node(new)
        if _node_changed(old, new):
            self.queue.move_all(EVENT_NODE_UPDATE)

    def _node_delete(self, node: dict[str, Any]) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name") or "")

    # ---- running -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        """The scheduling loop: pop, schedule, hand to the binder; yield after every pod."""
        log.info("scheduling loop started", extra={"scheduler": self.config.scheduler_name})
        self.leading.set()
        try:
            while True:
                await self.binder.wait_capacity()
                q = await self.queue.pop()
                if q is None:
                    return
                try:
                    self.schedule_one(q)
                except Exception:
                    log.exception("scheduling cycle failed", extra={"pod": q.key})
                    self.queue.requeue_backoff(q)
                await asyncio.sleep(0)
        finally:
            self.leading.clear()

    async def start_informers(self) -> None:
        for inf in self.informers.values():
            inf.start()
        for name in ("pods", "nodes", "priorityclasses", "namespaces"):
            while not await self.informers[name].wait_synced(_SYNC_TIMEOUT):
                log.warning("informer not synced yet", extra={"resource": name})

    async def run(self) -> None:
        """Sync caches, then schedule (as leader, when elected) until cancelled."""
        tasks = [asyncio.create_task(self.queue.run_flushers(), name="queue flushers"),
                 asyncio.create_task(self.pod_groups.run_status_writer(),
                                     name="podgroup status")]
        try:
            await self.start_informers()
            log.info("scheduler caches synced", extra={"nodes": self.cache.num_nodes,
                                                       "pending": len(self.queue)})
            if not self.config.leader_elect:
                await self._loop()
                return
            c = self.config
            elector = LeaderElector(self.client, LeaderElectionConfig(
                name=c.leader_elect_resource_name,
                namespace=c.leader_elect_resource_namespace,
                identity=c.leader_elect_identity or default_identity(),
                lease_duration=c.leader_elect_lease_duration,
                renew_deadline=c.leader_elect_renew_deadline,
                retry_period=c.leader_elect_retry_period))
            while True:
                await elector.run(self._loop)
                log.warning("leader election lost; standing by",
                            extra={"scheduler": c.scheduler_name})
        finally:
            for t in tasks:
                t.cancel()
            for inf in self.informers.values():
                await inf.stop()
            await asyncio.shield(self._drain())

    async def _drain(self) -> None:
        await self.binder.drain(_DRAIN)
        await self.reporter.drain(_DRAIN)
        await self.recorder.stop(_DRAIN)


async def run(config: SchedulerConfig) -> None:
    """Run navio's scheduler until cancelled (the `navio scheduler` entry point)."""
    async with Client.from_kubeconfig(config.kubeconfig, component="scheduler",
                                      qps=config.kube_api_qps,
                                      burst=config.kube_api_burst) as client, \
            Client.from_kubeconfig(config.kubeconfig, component="scheduler-events",
                                   qps=config.event_qps, burst=config.event_burst) as events:
        await Scheduler(config, client, events).run()
