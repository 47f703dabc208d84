"""Node lifecycle: node health from Leases and status, condition taints, and evictions.

Why: without a kubelet heartbeat nobody else notices that a node died; this is
kube-controller-manager's node-lifecycle-controller (pkg/controller/nodelifecycle) with the
taint-eviction-controller (pkg/controller/tainteviction) and the orphan half of pod GC.

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
- Pods on a node with NoExecute taints they do not tolerate are deleted at once; pods that
  tolerate them for `tolerationSeconds` are deleted when the shortest expires (counted from
  when this controller saw the taint), each with a DisruptionTarget condition and a
  `TaintManagerEviction` event. Removing the taint cancels pending deletions.
- Pods bound to a node that has been gone for `pod-gc-quarantine` (40 s) are marked Failed
  with DisruptionTarget "DeletionByPodGC" and deleted without grace, as podgc does.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import (LEASES, NODES, NORMAL, PODS, REAL_CLOCK, WARNING, Clock, Informer,
                          TokenBucket, WorkQueue)
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import add_index
from navio.controllers.manager import register

__all__ = ["NodeLifecycleController", "compute_zone_state", "condition_taints",
           "matching_tolerations", "tolerates", "min_toleration_seconds", "duration_option",
           "ensure_node_name_index", "UNREACHABLE", "NOT_READY"]

log = logging.getLogger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NODE_NAME_INDEX = "spec.nodeName"
LEASE_NAMESPACE = "kube-node-lease"
_EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
_ZONE_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone")
_CONDITION_TAINTS = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_CONDITION_TAINT_KEYS = {k for m in _CONDITION_TAINTS.values() for k in m.values()}
_UNKNOWN_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_UPDATE_RETRIES = 5
_WORKERS = 8


def compute_zone_state(ready: list[bool], threshold: float) -> tuple[int, str]:
    """ComputeZoneState: (not-ready count, Normal | PartialDisruption | FullDisruption)."""
    not_ready = sum(1 for r in ready if not r)
    if not_ready and not_ready == len(ready):
        return not_ready, "FullDisruption"
    if not_ready > 2 and not_ready / len(ready) >= threshold:
        return not_ready, "PartialDisruption"
    return not_ready, "Normal"


def condition_taints(node: dict[str, Any]) -> list[dict[str, str]]:
    """The NoSchedule taints a node's conditions and `spec.unschedulable` call for."""
    out = []
    for cond in (node.get("status") or {}).get("conditions") or ():
        key = _CONDITION_TAINTS.get(cond.get("type"), {}).get(cond.get("status"))
        if key:
            out.append({"key": key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        out.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return out


def _zone(node: dict[str, Any]) -> str:
    """nodetopology.GetZoneKey: "region:\\x00:zone", or "" without either label."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = (labels.get(k, "") for k in _ZONE_LABELS)
    return f"{region}:\x00:{zone}" if region or zone else ""


def _condition(node: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return cond
    return None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Taint.MatchTaint: the same key and effect."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def _has_taint(node: dict[str, Any], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect
               for t in (node.get("spec") or {}).get("taints") or ())


def timestamp(when: datetime | None = None) -> str:
    """RFC 3339 at seconds precision in UTC, as metav1.Time serializes."""
    return (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def duration_option(options: dict[str, Any], name: str, default: float) -> float:
    """A flag value in seconds: a number, or a Go duration such as `40s` or `1m30s`."""
    value = options.get(name, default)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration for {name}: {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def ensure_node_name_index(pods: Informer) -> None:
    """Index pods by `spec.nodeName` (controller.PodNodeNameKeyIndex), once per informer."""
    add_index(pods, NODE_NAME_INDEX,
              lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else [])


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def matching_tolerations(taints: list[dict[str, Any]], tolerations: list[dict[str, Any]]
                         ) -> tuple[bool, list[dict[str, Any]]]:
    """GetMatchingTolerations: whether every taint is tolerated, and the tolerations used."""
    used = []
    for taint in taints:
        tol = next((t for t in tolerations if tolerates(t, taint)), None)
        if tol is None:
            return False, []
        used.append(tol)
    return True, used


def min_toleration_seconds(used: list[dict[str, Any]]) -> float:
    """getMinTolerationTime: the shortest tolerationSeconds, 0 when none, -1 if forever."""
    if not used:
        return 0.0
    seconds = [int(t["tolerationSeconds"]) for t in used
               if t.get("tolerationSeconds") is not None]
    if not seconds:
        return -1.0
    return float(max(min(seconds), 0))


class _Health:
    __slots__ = ("probe", "heartbeat", "renew")

    def __init__(self, probe: float, heartbeat: Any = None) -> None:
        self.probe, self.heartbeat = probe, heartbeat
        self.renew: datetime | None = None


class NoExecuteEvictor:
    """tainteviction.Controller: deletes pods from nodes whose NoExecute taints they do not
    tolerate, or tolerate only for `tolerationSeconds`. Handlers enqueue node and pod keys;
    one worker processes them; each pending deletion is a timer task, cancelled when the
    taint goes or the pod leaves."""

    def __init__(self, client: Any, recorder: Any, nodes: Informer, pods: Informer,
                 clock: Clock) -> None:
        self.client, self.recorder, self.nodes, self.pods = client, recorder, nodes, pods
        self.clock = clock
        self.queue = WorkQueue(clock=clock, name="noexec_taint")
        self.tainted: dict[str, list[dict[str, Any]]] = {}
        # pod key -> (created, timer task); None once fired, so it is not fired twice.
        self.work: dict[str, tuple[float, asyncio.Task[None]] | None] = {}
        nodes.add_handler(on_add=lambda n: self._node_changed(None, n),
                          on_update=self._node_changed,
                          on_delete=lambda n: self._node_changed(n, None))
        pods.add_handler(on_add=lambda p: self._pod_changed(None, p),
                         on_update=self._pod_changed,
                         on_delete=lambda p: self._pod_changed(p, None))

    @staticmethod
    def _no_execute(node: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [t for t in ((node or {}).get("spec") or {}).get("taints") or ()
                if t.get("effect") == "NoExecute"]

    def _node_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if old is not None and new is not None and \
                self._no_execute(old) == self._no_execute(new):
            return
        self.queue.add(("node", (new or old or {})["metadata"]["name"]))

    def _pod_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        def facts(p: dict[str, Any]) -> tuple[Any, Any]:
            spec = p.get("spec") or {}
            return spec.get("nodeName"), spec.get("tolerations")
        if old is not None and new is not None and facts(old) == facts(new):
            return
        pod = new or old or {}
        meta = pod["metadata"]
        self.queue.add(("pod", f"{meta['namespace']}/{meta['name']}",
                        (pod.get("spec") or {}).get("nodeName") or ""))

    async def run(self) -> None:
        try:
            while (got := await self.queue.get()) is not None:
                item: tuple[str, ...] = got  # type: ignore[assignment]
                try:
                    if item[0] == "node":
                        self._handle_node(item[1])
                    else:
                        self._handle_pod(item[1], item[2])
                except Exception:
                    log.exception("taint eviction pass failed", extra={"key": str(item[1])})
                finally:
                    self.queue.done(got)
        finally:
            self.queue.shut_down()
            for entry in self.work.values():
                if entry is not None:
                    entry[1].cancel()

    def _handle_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            self.tainted.pop(name, None)
            return
        taints = self._no_execute(node)
        if taints:
            self.tainted[name] = taints
        else:
            self.tainted.pop(name, None)
        now = self.clock.now()
        for pod in self.pods.by_index(NODE_NAME_INDEX, name):
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if not taints:
                self.cancel(key)
            else:
                self._process(key, (pod.get("spec") or {}).get("tolerations") or [], taints,
                              now)

    def _handle_pod(self, key: str, node_name: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self.cancel(key)
            return
        if (pod.get("spec") or {}).get("nodeName") != node_name or not node_name:
            return
        taints = self.tainted.get(node_name)
        if taints:
            self._process(key, (pod.get("spec") or {}).get("tolerations") or [], taints,
                          self.clock.now())

    def _process(self, key: str, tolerations: list[dict[str, Any]],
                 taints: list[dict[str, Any]], now: float) -> None:
        """processPodOnNode."""
        ok, used = matching_tolerations(taints, tolerations)
        if not ok:
            self.cancel(key)
            self._add_work(key, now, now)
            return
        seconds = min_toleration_seconds(used)
        if seconds < 0:
            self.cancel(key)
            return
        entry = self.work.get(key)
        if entry is not None:
            if entry[0] + seconds <= now + seconds:
                return                   # the earlier deadline stands
            self.cancel(key)
        self._add_work(key, now, now + seconds)

    def _add_work(self, key: str, created: float, fire_at: float) -> None:
        if key in self.work:
            return
        delay = max(fire_at - self.clock.now(), 0.0)
        self.work[key] = (created, asyncio.create_task(self._fire(key, delay),
                                                       name=f"taint eviction {key}"))

    def cancel(self, key: str) -> None:
        """cancelWorkWithEvent: drop a pending deletion, with an event if one was pending."""
        entry = self.work.pop(key, None)
        if entry is None:
            return
        entry[1].cancel()
        ns, _, name = key.partition("/")
        self.recorder.event(_pod_ref(ns, name), NORMAL, "TaintManagerEviction",
                            f"Cancelling deletion of Pod {key}")

    async def _fire(self, key: str, delay: float) -> None:
        await self.clock.sleep(delay)
        ns, _, name = key.partition("/")
        self.recorder.event(_pod_ref(ns, name), NORMAL, "TaintManagerEviction",
                            f"Marking for deletion Pod {key}")
        log.info("evicting pod for NoExecute taint", extra={"pod": key})
        for attempt in range(_UPDATE_RETRIES):
            try:
                await self._delete(ns, name)
                self.work[key] = None
                return
            except asyncio.CancelledError:
                raise
            except errors.NotFound:
                self.work.pop(key, None)
                return
            except Exception as exc:
                log.warning("taint eviction failed", extra={"pod": key, "error": str(exc)[:200],
                                                            "attempt": attempt})
                await self.clock.sleep(0.01)
        self.work.pop(key, None)

    async def _delete(self, ns: str, name: str) -> None:
        """addConditionAndDeletePod: a DisruptionTarget condition, then DELETE."""
        pod = await self.client.get(PODS, name, ns)
        conds = (pod.get("status") or {}).get("conditions") or []
        cond = {"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint"}
        old = next((c for c in conds if c.get("type") == "DisruptionTarget"), None)
        if old is None or any(old.get(k) != v for k, v in cond.items()):
            cond["lastTransitionTime"] = timestamp()
            await self.client.patch_subresource(PODS, name, "status",
                                                {"status": {"conditions": [cond]}}, ns,
                                                patch_type="strategic")
        await self.client.delete(PODS, name, ns)


def _pod_ref(ns: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}}


class _ZoneTainter:
    """scheduler.RateLimitedTimedQueue: unique node names, drained through a token bucket."""

    def __init__(self, qps: float, clock: Clock) -> None:
        self.clock = clock
        self.queue: dict[str, str] = {}
        self.qps = -1.0
        self.bucket: TokenBucket | None = None
        self.swap(qps)

    def swap(self, qps: float) -> None:
        if qps == self.qps:
            return
        was_waiting = self.bucket is not None and not self.bucket.try_take()
        self.qps = qps
        self.bucket = TokenBucket(qps, 1, clock=self.clock) if qps > 0 else None
        if was_waiting and self.bucket is not None:
            self.bucket.try_take()       # carry a spent token over, as SwapLimiter does

    def take(self) -> str | None:
        if not self.queue or self.bucket is None or not self.bucket.try_take():
            return None
        name = next(iter(self.queue))
        del self.queue[name]
        return name


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
        self.quarantine = duration_option(opts, "pod-gc-quarantine", 40.0)
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
        self.evictor = NoExecuteEvictor(self.client, self.recorder, self.nodes, self.pods,
                                        self.clock)
        self._health: dict[str, _Health] = {}
        self._known: dict[str, dict[str, Any]] = {}
        self._zones: dict[str, str] = {}
        self._tainters: dict[str, _ZoneTainter] = {}
        self._missing: dict[str, float] = {}

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
                and (t.get("key") in _CONDITION_TAINT_KEYS or t.get("key") == UNSCHEDULABLE)]
        add = [t for t in want if not _has_taint(node, t["key"], "NoSchedule")]
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
            taints = [t for t in current if not any(_same(t, r) for r in remove)]
            for t in add:
                if not any(_same(o, t) for o in taints):
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
            self._add_zone(node)
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
                    zone_ready.setdefault(_zone(node), []).append(
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
        await self._gc_orphaned_pods(names)

    def _add_zone(self, node: dict[str, Any]) -> None:
        zone = _zone(node)
        if zone not in self._zones:
            self._zones[zone] = "Initial"
            self._tainters[zone] = _ZoneTainter(self.eviction_qps, self.clock)

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
        current = _condition(node, "Ready")
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
            if ready == _condition(node, "Ready"):
                return ready
            try:
                stored = await self.client.update_status(NODES, new)
            except errors.Conflict:
                node = await self.client.get(NODES, name)
                continue
            except errors.NotFound:
                return None
            log.info("node status unknown", extra={"node": name})
            return _condition(stored, "Ready") or ready
        return _condition(node, "Ready")

    async def _process_pod(self, key: str) -> None:
        """processPod: a pod newly bound to a node that is not Ready is marked not ready."""
        pod = self.pods.get(key)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        node = self.nodes.get(node_name) if node_name and node_name in self._health else None
        ready = _condition(node, "Ready") if node else None
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
        tainter = self._tainters[_zone(node)]
        if status in ("False", "Unknown"):
            taint, opposite = ((NOT_READY, UNREACHABLE) if status == "False"
                               else (UNREACHABLE, NOT_READY))
            if _has_taint(node, opposite, "NoExecute"):
                await self.swap_taints(name, [{"key": taint, "effect": "NoExecute"}],
                                       [{"key": opposite, "effect": "NoExecute"}])
            elif not _has_taint(node, taint, "NoExecute"):
                tainter.queue.setdefault(name, node["metadata"].get("uid", ""))
        elif status == "True":
            await self.mark_reachable(node)

    async def mark_reachable(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        remove = [{"key": k, "effect": "NoExecute"} for k in (UNREACHABLE, NOT_READY)
                  if _has_taint(node, k, "NoExecute")]
        if remove:
            await self.swap_taints(name, [], remove)
        tainter = self._tainters.get(_zone(node))
        if tainter is not None:
            tainter.queue.pop(name, None)

    async def tainting_pass(self) -> None:
        """doNoExecuteTaintingPass: taint queued nodes as each zone's limiter allows."""
        for tainter in list(self._tainters.values()):
            while (name := tainter.take()) is not None:
                node = self.nodes.get(name)
                ready = _condition(node, "Ready") if node else None
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

    # ---- pods of deleted nodes (podgc gcOrphaned) ----------------------------------------

    async def _gc_orphaned_pods(self, names: set[str]) -> None:
        now = self.clock.now()
        orphans: dict[str, list[dict[str, Any]]] = {}
        for pod in self.pods.list():
            node = (pod.get("spec") or {}).get("nodeName")
            if node and node not in names:
                orphans.setdefault(node, []).append(pod)
        self._missing = {n: self._missing.get(n, now) for n in orphans}
        for node, pods in orphans.items():
            if now - self._missing[node] < self.quarantine:
                continue
            try:
                await self.client.get(NODES, node)
                continue                  # the cache is behind: the node exists
            except errors.NotFound:
                pass
            for pod in pods:
                await self._force_delete(pod)

    async def _force_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        status: dict[str, Any] = {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": timestamp()}]}
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            status["phase"] = "Failed"
        try:
            await self.client.patch_subresource(PODS, meta["name"], "status",
                                                {"status": status}, meta["namespace"],
                                                patch_type="strategic")
            await self.client.delete(PODS, meta["name"], meta["namespace"],
                                     grace_period_seconds=0)
            log.info("orphaned pod deleted", extra={"pod": f"{meta['namespace']}/{meta['name']}",
                                                    "node": pod["spec"]["nodeName"]})
        except errors.NotFound:
            pass

