"""Node lifecycle: node health from Leases and status, condition taints, and evictions.

Why: without a kubelet heartbeat nobody else notices that a node died; this is
kube-controller-manager's node-lifecycle-controller (pkg/controller/nodelifecycle), which
runs the taint-eviction-controller (`tainteviction.py`) and the orphan half of pod GC.

What it guarantees, as v1.32 does:
- Every `node-monitor-period` (5 s) each node's health is probed: a renewed
  `kube-node-lease/<node>` Lease or a new Ready heartbeat refreshes it. A node silent for
  longer than `node-monitor-grace-period` (40 s; `node-startup-grace-period`, 60 s, before its
  first Ready condition) gets Ready, MemoryPressure, DiskPressure and PIDPressure set to
  Unknown ("NodeStatusUnknown", "Kubelet stopped posting node status."), an event
  `NodeNotReady`, and its pods' Ready condition set to False.
- On the next pass a Ready=Unknown node is queued for the `node.kubernetes.io/unreachable`
  NoExecute taint, Ready=False for `node.kubernetes.io/not-ready`; taints are added per zone
  through a token bucket (`node-eviction-rate` 0.1/s, burst 1). A zone with more than two
  not-ready nodes and at least `unhealthy-zone-threshold` (0.55) of them is partially
  disrupted: its rate drops to `secondary-node-eviction-rate` (0.01/s) above
  `large-cluster-size-threshold` (50) nodes and to 0 otherwise. When every zone is fully
  disrupted no node is tainted and existing NoExecute taints are removed. A Ready node has
  both taints removed at once.
- NoSchedule taints follow conditions at once (TaintNodesByCondition): not-ready,
  unreachable, memory/disk/pid-pressure, network-unavailable, and unschedulable.
- NoExecute taints evict pods through `tainteviction.NoExecuteEvictor`; pods of nodes that
  are gone are collected by `podgc.OrphanPodCollector`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import LEASES, NODES, NORMAL, PODS, REAL_CLOCK, WARNING, Clock
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register
from navio.controllers.nodelifecycle import tainteviction
from navio.controllers.nodelifecycle.podgc import OrphanPodCollector
from navio.controllers.nodelifecycle.tainteviction import (NODE_NAME_INDEX, NoExecuteEvictor,
                                                           ensure_node_name_index)
from navio.controllers.nodelifecycle.taints import (CONDITION_TAINT_KEYS, NOT_READY,
                                                    UNREACHABLE, UNSCHEDULABLE,
                                                    condition_taints, has_taint,
                                                    node_condition, same_taint)
from navio.controllers.nodelifecycle.times import duration_option, parse_time, timestamp
from navio.controllers.nodelifecycle.zones import ZoneTainter, compute_zone_state, zone_key

__all__ = ["NodeLifecycleController", "LEASE_NAMESPACE"]

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
_EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
_UNKNOWN_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_UPDATE_RETRIES = 5
_WORKERS = 8


class _Health:
    __slots__ = ("probe", "heartbeat", "renew")

    def __init__(self, probe: float, heartbeat: Any = None) -> None:
        self.probe, self.heartbeat = probe, heartbeat
        self.renew: datetime | None = None



@register("nodelifecycle")
class NodeLifecycleController(Controller):
    """Reconciles NoSchedule condition taints per node key; monitors health in a loop."""

    name = "nodelifecycle"
    workers = _WORKERS

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.clock: Clock = opts.get("clock") or REAL_CLOCK
        self.period = duration_option(opts, "node-monitor-period", 5.0)
        self.grace = duration_option(opts, "node-monitor-grace-period", 40.0)
        self.startup_grace = duration_option(opts, "node-startup-grace-period", 60.0)
        self.eviction_qps = float(opts.get("node-eviction-rate", 0.1))
        self.secondary_qps = float(opts.get("secondary-node-eviction-rate", 0.01))
        self.large_cluster = int(opts.get("large-cluster-size-threshold", 50))
        self.unhealthy = float(opts.get("unhealthy-zone-threshold", 0.55))
        self.nodes = ctx.informers.get(NODES)
        self.leases = ctx.informers.get(LEASES, LEASE_NAMESPACE)
        self.pods = ctx.informers.get(PODS)
        ensure_node_name_index(self.pods)
        self.nodes.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(on_add=lambda p: self._pod_assigned(None, p),
                              on_update=self._pod_assigned)
        self.evictor = NoExecuteEvictor(self.client, ctx.recorder_for(tainteviction.NAME),
                                        self.nodes, self.pods, self.clock)
        self._health: dict[str, _Health] = {}
        self._known: dict[str, dict[str, Any]] = {}
        self._zones: dict[str, str] = {}
        self._tainters: dict[str, ZoneTainter] = {}
        self.podgc = OrphanPodCollector(self.client, self.pods, self.clock,
                                        duration_option(opts, "pod-gc-quarantine", 40.0))

    async def run(self, workers: int | None = None) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(super().run(workers))
            tg.create_task(self.evictor.run())
            tg.create_task(self._every(self.period, self.monitor_node_health))
            tg.create_task(self._every(0.1, self.tainting_pass))

    async def _every(self, period: float, fn: Any) -> None:
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("node lifecycle pass failed",
                            extra={"pass": fn.__name__, "error": str(exc)[:300]})
            await self.clock.sleep(period)

    def _pod_assigned(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        node = (new.get("spec") or {}).get("nodeName")
        if node and (old is None or (old.get("spec") or {}).get("nodeName") != node):
            meta = new["metadata"]
            self.queue.add(f"pod:{meta['namespace']}/{meta['name']}")

    # ---- NoSchedule taints (doNoScheduleTaintingPass) -----------------------------------

    async def reconcile(self, key: str) -> None:
        if key.startswith("pod:"):
            await self._process_pod(key[4:])
            return
        node = self.nodes.get(key)
        if node is None:
            return
        want = condition_taints(node)
        have = [t for t in (node.get("spec") or {}).get("taints") or ()
                if t.get("effect") == "NoSchedule"
                and (t.get("key") in CONDITION_TAINT_KEYS or t.get("key") == UNSCHEDULABLE)]
        add = [t for t in want if not has_taint(node, t["key"], "NoSchedule")]
        remove = [t for t in have if not any(w["key"] == t.get("key") for w in want)]
        if add or remove:
            await self.swap_taints(key, add, remove)

    async def swap_taints(self, name: str, add: list[dict[str, Any]],
                          remove: list[dict[str, Any]]) -> bool:
        """SwapNodeControllerTaint: add and remove taints (matched by key and effect) in
        one update, re-reading the node on conflict. False when the node is gone."""
        node = self.nodes.get(name)
        for attempt in range(_UPDATE_RETRIES):
            if node is None or attempt:
                try:
                    node = await self.client.get(NODES, name)
                except errors.NotFound:
                    return False
            current = list((node.get("spec") or {}).get("taints") or ())
            taints = [t for t in current if not any(same_taint(t, r) for r in remove)]
            for t in add:
                if not any(same_taint(o, t) for o in taints):
                    taints.append({**t, "timeAdded": timestamp()} if t["effect"] == "NoExecute"
                                  else dict(t))
            if taints == current:
                return True
            body = {**node, "spec": {**(node.get("spec") or {}), "taints": taints}}
            try:
                await self.client.update(NODES, body)
                log.info("node taints updated", extra={"node": name,
                                                       "added": [t["key"] for t in add],
                                                       "removed": [t["key"] for t in remove]})
                return True
            except errors.Conflict:
                continue
            except errors.NotFound:
                return False
        raise errors.Conflict(f"node {name}: taints not updated after {_UPDATE_RETRIES} tries")

    # ---- health (monitorNodeHealth) ------------------------------------------------------

    async def monitor_node_health(self) -> None:
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}
        for node in nodes:
            name = node["metadata"]["name"]
            self._addzone_key(node)
            if name not in self._known:
                self._known[name] = node
                self.recorder.event(node, NORMAL, "RegisteredNode",
                                    f"Node {name} event: Registered Node {name} in Controller")
                await self.mark_reachable(node)
        for name in [n for n in self._known if n not in names]:
            gone = self._known.pop(name)
            self._health.pop(name, None)
            self.recorder.event(gone, NORMAL, "RemovingNode",
                                f"Node {name} event: Removing Node {name} from Controller")
        zone_ready: dict[str, list[bool]] = {}
        sem = asyncio.Semaphore(_WORKERS)

        async def one(node: dict[str, Any]) -> None:
            async with sem:
                observed, current = await self._update_health(node)
                if _EXCLUDE_DISRUPTION not in (node["metadata"].get("labels") or {}):
                    zone_ready.setdefault(zone_key(node), []).append(
                        current is not None and current.get("status") == "True")
                if current is None:
                    return
                await self._taint_by_readiness(node, observed.get("status"))
                if current.get("status") != "True" and observed.get("status") == "True":
                    name = node["metadata"]["name"]
                    log.info("node not ready", extra={"node": name})
                    self.recorder.event(node, NORMAL, "NodeNotReady",
                                        f"Node {name} status is now: NodeNotReady")
                    await self.mark_pods_not_ready(name)

        await asyncio.gather(*(one(n) for n in nodes))
        await self._handle_disruption(zone_ready, nodes)
        await self.podgc.collect(names)

    def _addzone_key(self, node: dict[str, Any]) -> None:
        zone = zone_key(node)
        if zone not in self._zones:
            self._zones[zone] = "Initial"
            self._tainters[zone] = ZoneTainter(self.eviction_qps, self.clock)

    def _mono(self, ts: str | None) -> float:
        """A wall-clock timestamp expressed on the monotonic clock."""
        when = parse_time(ts)
        age = (datetime.now(timezone.utc) - when).total_seconds() if when else 0.0
        return self.clock.now() - max(age, 0.0)

    async def _update_health(self, node: dict[str, Any]
                             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """tryUpdateNodeHealth: (Ready as observed, Ready after this pass)."""
        name = node["metadata"]["name"]
        now = self.clock.now()
        current = node_condition(node, "Ready")
        created = node["metadata"].get("creationTimestamp")
        health = self._health.get(name)
        if current is None:
            observed = {"type": "Ready", "status": "Unknown", "lastHeartbeatTime": created}
            grace = self.startup_grace
            if health is None:
                health = _Health(self._mono(created))
        else:
            observed, grace = dict(current), self.grace
            heartbeat = current.get("lastHeartbeatTime")
            if health is None or health.heartbeat is None:
                health = _Health(now, heartbeat)
            elif health.heartbeat != heartbeat:
                health.probe, health.heartbeat = now, heartbeat
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renew = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
        if renew is not None and (health.renew is None or health.renew < renew):
            health.renew, health.probe = renew, now
        self._health[name] = health
        if now <= health.probe + grace:
            return observed, current
        return observed, await self._mark_unknown(name, node)

    async def _mark_unknown(self, name: str, node: dict[str, Any]) -> dict[str, Any] | None:
        for _ in range(_UPDATE_RETRIES):
            new = {**node, "status": dict(node.get("status") or {})}
            conditions = [dict(c) for c in new["status"].get("conditions") or ()]
            stamp = timestamp()
            for ctype in _UNKNOWN_TYPES:
                cond = next((c for c in conditions if c.get("type") == ctype), None)
                if cond is None:
                    conditions.append({"type": ctype, "status": "Unknown",
                                       "reason": "NodeStatusNeverUpdated",
                                       "message": "Kubelet never posted node status.",
                                       "lastHeartbeatTime": node["metadata"].get(
                                           "creationTimestamp"),
                                       "lastTransitionTime": stamp})
                elif cond.get("status") != "Unknown":
                    cond.update(status="Unknown", reason="NodeStatusUnknown",
                                message="Kubelet stopped posting node status.",
                                lastTransitionTime=stamp)
            new["status"]["conditions"] = conditions
            ready = next(c for c in conditions if c["type"] == "Ready")
            if ready == node_condition(node, "Ready"):
                return ready
            try:
                stored = await self.client.update_status(NODES, new)
            except errors.Conflict:
                node = await self.client.get(NODES, name)
                continue
            except errors.NotFound:
                return None
            log.info("node status unknown", extra={"node": name})
            return node_condition(stored, "Ready") or ready
        return node_condition(node, "Ready")

    async def _process_pod(self, key: str) -> None:
        """processPod: a pod newly bound to a node that is not Ready is marked not ready."""
        pod = self.pods.get(key)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        node = self.nodes.get(node_name) if node_name and node_name in self._health else None
        ready = node_condition(node, "Ready") if node else None
        if pod is not None and ready is not None and ready.get("status") != "True":
            await self.mark_pods_not_ready(str(node_name), [pod])

    async def mark_pods_not_ready(self, node_name: str,
                                  pods: list[dict[str, Any]] | None = None) -> None:
        """MarkPodsNotReady: the Ready condition of every pod on the node becomes False."""
        for pod in pods if pods is not None else self.pods.by_index(NODE_NAME_INDEX, node_name):
            conds = (pod.get("status") or {}).get("conditions") or []
            ready = next((c for c in conds if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            new_conds = [dict(c, status="False", lastTransitionTime=timestamp())
                         if c.get("type") == "Ready" else c for c in conds]
            meta = pod["metadata"]
            try:
                await self.client.patch_subresource(
                    PODS, meta["name"], "status", {"status": {"conditions": new_conds}},
                    meta["namespace"], patch_type="strategic")
            except errors.NotFound:
                continue
            self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready")

    # ---- NoExecute taints, rate limited per zone ----------------------------------------

    async def _taint_by_readiness(self, node: dict[str, Any], status: str | None) -> None:
        """processTaintBaseEviction, keyed on the Ready status observed before this pass."""
        name = node["metadata"]["name"]
        tainter = self._tainters[zone_key(node)]
        if status in ("False", "Unknown"):
            taint, opposite = ((NOT_READY, UNREACHABLE) if status == "False"
                               else (UNREACHABLE, NOT_READY))
            if has_taint(node, opposite, "NoExecute"):
                await self.swap_taints(name, [{"key": taint, "effect": "NoExecute"}],
                                       [{"key": opposite, "effect": "NoExecute"}])
            elif not has_taint(node, taint, "NoExecute"):
                tainter.queue.setdefault(name, node["metadata"].get("uid", ""))
        elif status == "True":
            await self.mark_reachable(node)

    async def mark_reachable(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        remove = [{"key": k, "effect": "NoExecute"} for k in (UNREACHABLE, NOT_READY)
                  if has_taint(node, k, "NoExecute")]
        if remove:
            await self.swap_taints(name, [], remove)
        tainter = self._tainters.get(zone_key(node))
        if tainter is not None:
            tainter.queue.pop(name, None)

    async def tainting_pass(self) -> None:
        """doNoExecuteTaintingPass: taint queued nodes as each zone's limiter allows."""
        for tainter in list(self._tainters.values()):
            while (name := tainter.take()) is not None:
                node = self.nodes.get(name)
                ready = node_condition(node, "Ready") if node else None
                if node is None or ready is None or ready.get("status") == "True":
                    continue
                taint, opposite = ((NOT_READY, UNREACHABLE) if ready.get("status") == "False"
                                   else (UNREACHABLE, NOT_READY))
                if not await self.swap_taints(name, [{"key": taint, "effect": "NoExecute"}],
                                              [{"key": opposite, "effect": "NoExecute"}]):
                    continue
                log.info("node tainted for eviction", extra={"node": name, "taint": taint})

    async def _handle_disruption(self, zone_ready: dict[str, list[bool]],
                                 nodes: list[dict[str, Any]]) -> None:
        new_states = {z: compute_zone_state(r, self.unhealthy)[1] for z, r in zone_ready.items()}
        all_full = all(s == "FullDisruption" for s in new_states.values())
        for zone in [z for z in self._zones if z not in zone_ready]:
            del self._zones[zone]
        all_were_full = all(s == "FullDisruption" for s in self._zones.values())
        if all_full and all_were_full:
            return
        if all_full:
            log.info("all nodes not ready: entering master disruption mode")
            for node in nodes:
                await self.mark_reachable(node)
            for zone in self._zones:
                self._tainters[zone].swap(0)
                self._zones[zone] = "FullDisruption"
            return
        if all_were_full:
            log.info("some nodes ready: exiting master disruption mode")
            for health in self._health.values():
                health.probe = self.clock.now()
        for zone, state in new_states.items():
            if self._zones.get(zone) != state or all_were_full:
                size = len(zone_ready[zone])
                if state == "PartialDisruption":
                    qps = self.secondary_qps if size > self.large_cluster else 0.0
                else:
                    qps = self.eviction_qps
                self._tainters[zone].swap(qps)
                if self._zones.get(zone) != state:
                    log.info("zone state changed", extra={"zone": zone, "state": state})
                self._zones[zone] = state
