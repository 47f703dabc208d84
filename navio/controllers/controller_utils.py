"""What the workload controllers share: pod predicates and ranking, expectations, slow-start
batches, pods from templates, and adoption/release of objects through ownerReferences.

Why: kube's pkg/controller/controller_utils.go and controller_ref_manager.go hold the same
pieces for every controller; ReplicaSet and Deployment need identical answers to "is this pod
active/ready/available", "which pod goes first" and "is my cache caught up with my writes".

Guarantees:
- `rank_pods_for_deletion` orders pods exactly as `ActivePodsWithRanks.Less` does (with the
  PodDeletionCost and LogarithmicScaleDown gates on, as in kube 1.32): unassigned, then
  pending < unknown < running, not ready, lower deletion cost, more colocated siblings, more
  recently ready (log2 buckets), more restarts, newer (log2 buckets), then by uid.
- `Expectations` never lets a controller act again on a key until it has seen the watch events
  for the creates and deletes it made, or five minutes passed (ControllerExpectations with
  UID-tracked deletions).
- `slow_start_batch` starts with one call and doubles after each fully successful batch; it
  stops at the first failing batch and reports how many calls succeeded.
- `claim` adopts matching orphans and releases non-matching owned objects with the same
  strategic-merge patches as kube's ControllerRefManager (the object's uid in the patch makes
  it apply to that incarnation only); adoption first re-reads the owner from the API server.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

from navio.api import errors
from navio.client import REAL_CLOCK, Clock, Client, ResourceRef

__all__ = [
    "BURST_REPLICAS", "SLOW_START_INITIAL_BATCH_SIZE", "EXPECTATIONS_TTL",
    "parse_time", "is_pod_active", "is_pod_ready", "is_pod_available", "pod_ready_time",
    "max_container_restarts", "rank_pods_for_deletion", "pods_to_delete",
    "Expectations", "slow_start_batch", "controller_ref", "controller_of", "pod_from_template",
    "claim", "ref", "add_index",
]

log = logging.getLogger(__name__)

BURST_REPLICAS = 500                 # --concurrent-... burstReplicas of the RS controller
SLOW_START_INITIAL_BATCH_SIZE = 1
EXPECTATIONS_TTL = 300.0             # ExpectationsTimeout: 5 minutes
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}

Obj = dict[str, Any]


def ref(obj: Obj) -> str:
    """`ns/name` of an object, as logs name it (klog.KObj)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def add_index(informer: Any, name: str, fn: Callable[[Obj], list[str]]) -> None:
    """Add an index to a shared informer unless another controller already did."""
    try:
        informer.add_index(name, fn)
    except ValueError:
        pass


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp; None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ---- pod predicates (pkg/api/v1/pod/util.go, controller_utils.go) ----------------------

def is_pod_active(pod: Obj) -> bool:
    """Not terminal and not being deleted (controller.IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and \
        not (pod.get("metadata") or {}).get("deletionTimestamp")


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_ready_time(pod: Obj) -> float | None:
    """When the pod last became ready; None if not ready or unknown."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least `min_ready_seconds` (podutil.IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds < now


def max_container_restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    counts = [int(c.get("restartCount") or 0)
              for c in (status.get("containerStatuses") or []) +
              (status.get("initContainerStatuses") or [])]
    return max(counts, default=0)


# ---- ranking (ActivePodsWithRanks) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Ranked:
    pod: Obj
    node: str
    phase: int
    ready: bool
    cost: int
    rank: int
    ready_time: float | None
    restarts: int
    created: float | None
    uid: str


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log_rank_diff(t1: float, t2: float, now: float) -> int:
    # Go compares int64(log2(nanoseconds)) of both ages.
    def bucket(t: float) -> int:
        d = (now - t) * 1e9
        return int(math.log2(d)) if d > 0 else -1
    return bucket(t1) - bucket(t2)


def _less(a: _Ranked, b: _Ranked, now: float) -> bool:
    if a.node != b.node and (not a.node or not b.node):
        return not a.node
    if a.phase != b.phase:
        return a.phase < b.phase
    if a.ready != b.ready:
        return not a.ready
    if a.cost != b.cost:
        return a.cost < b.cost
    if a.rank != b.rank:
        return a.rank > b.rank
    if a.ready and b.ready and a.ready_time != b.ready_time:
        if a.ready_time is None or b.ready_time is None:
            return _after_or_zero(a.ready_time, b.ready_time)
        diff = _log_rank_diff(a.ready_time, b.ready_time, now)
        return a.uid < b.uid if diff == 0 else diff < 0
    if a.restarts != b.restarts:
        return a.restarts > b.restarts
    if a.created != b.created:
        if a.created is None or b.created is None:
            return _after_or_zero(a.created, b.created)
        diff = _log_rank_diff(a.created, b.created, now)
        return a.uid < b.uid if diff == 0 else diff < 0
    return False


def rank_pods_for_deletion(pods: list[Obj], related: list[Obj], now: float) -> list[Obj]:
    """`pods` sorted most deletable first; a pod's rank is the number of active `related`
    pods on its node (getPodsRankedByRelatedPodsOnSameNode)."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = []
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName") or ""
        meta = p.get("metadata") or {}
        ranked.append(_Ranked(
            p, node, _PHASE_ORDINAL.get((p.get("status") or {}).get("phase") or "", 0),
            is_pod_ready(p), _deletion_cost(p), on_node.get(node, 0), pod_ready_time(p),
            max_container_restarts(p), parse_time(meta.get("creationTimestamp")),
            str(meta.get("uid") or "")))

    def cmp(a: _Ranked, b: _Ranked) -> int:
        return -1 if _less(a, b, now) else (1 if _less(b, a, now) else 0)
    return [r.pod for r in sorted(ranked, key=functools.cmp_to_key(cmp))]


def pods_to_delete(pods: list[Obj], related: list[Obj], diff: int, now: float) -> list[Obj]:
    """The `diff` pods to delete (getPodsToDelete): all of them without sorting if needed."""
    if diff < len(pods):
        pods = rank_pods_for_deletion(pods, related, now)
    return pods[:diff]


# ---- expectations (ControllerExpectations + UIDTrackingControllerExpectations) ------------

@dataclass(slots=True)
class _Expectation:
    add: int
    delete: int
    timestamp: float
    uids: set[str] = field(default_factory=set)


class Expectations:
    def __init__(self, clock: Clock = REAL_CLOCK, ttl: float = EXPECTATIONS_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may act on `key`: nothing pending, or pending too long."""
        exp = self._items.get(key)
        if exp is None:
            return True
        if exp.add <= 0 and exp.delete <= 0:
            return True
        return self._clock.now() - exp.timestamp > self._ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._items[key] = _Expectation(n, 0, self._clock.now())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._items[key] = _Expectation(0, len(pod_keys), self._clock.now(), set(pod_keys))

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and pod_key in exp.uids:
            exp.uids.discard(pod_key)
            exp.delete -= 1

    def delete(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (exp.add, exp.delete) if exp else (0, 0)


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]
                           ) -> tuple[int, BaseException | None]:
    """Call `fn` `count` times in doubling batches; (successes, first error or None)."""
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in failures:
            if isinstance(r, asyncio.CancelledError):
                raise r
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# ---- ownership ------------------------------------------------------------------------------

def controller_ref(owner: Obj) -> Obj:
    """metav1.NewControllerRef: controller and blockOwnerDeletion both true."""
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: Obj) -> Obj | None:
    for r in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if r.get("controller"):
            return r  # type: ignore[no-any-return]
    return None


def pod_from_template(template: Obj, parent: Obj) -> Obj:
    """GetPodFromTemplate: labels, annotations and finalizers of the template, name prefix
    `<parent>-`, the parent as controller."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{parent['metadata']['name']}-",
                 "labels": dict(tmeta.get("labels") or {}),
                 "ownerReferences": [controller_ref(parent)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def claim(client: Client, resource: ResourceRef, owner_resource: ResourceRef, owner: Obj,
                matches: Callable[[Obj], bool], candidates: list[Obj]) -> list[Obj]:
    """The candidates `owner` controls after adopting matching orphans and releasing owned
    objects that stopped matching (ControllerRefManager.ClaimObject). `candidates` should be
    the objects the owner controls plus the orphans of its namespace."""
    meta = owner["metadata"]
    uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
    checked: list[bool] = []
    claimed: list[Obj] = []
    for obj in candidates:
        cref = controller_of(obj)
        ometa = obj.get("metadata") or {}
        if cref is not None:
            if cref.get("uid") != uid:
                continue
            if matches(obj):
                claimed.append(obj)
            elif not deleting:
                await _release(client, resource, owner, obj)
            continue
        if deleting or not matches(obj) or ometa.get("deletionTimestamp"):
            continue
        if not checked:
            await _recheck_owner(client, owner_resource, owner)
            checked.append(True)
        adopted = await _adopt(client, resource, owner, obj)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _recheck_owner(client: Client, owner_resource: ResourceRef, owner: Obj) -> None:
    """RecheckDeletionTimestamp: adopt only for an owner that still exists and is not going."""
    meta = owner["metadata"]
    fresh = await client.get(owner_resource, meta["name"], meta.get("namespace"))
    fmeta = fresh.get("metadata") or {}
    if fmeta.get("uid") != meta["uid"]:
        raise errors.Conflict(f"original {owner['kind']} {ref(owner)} is gone: got uid "
                              f"{fmeta.get('uid')}, wanted {meta['uid']}")
    if fmeta.get("deletionTimestamp"):
        raise errors.Conflict(f"{ref(owner)} has just been deleted at "
                              f"{fmeta['deletionTimestamp']}")


async def _adopt(client: Client, resource: ResourceRef, owner: Obj, obj: Obj) -> Obj | None:
    ometa = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [controller_ref(owner)], "uid": ometa["uid"]}}
    try:
        adopted = await client.patch(resource, ometa["name"], patch, ometa.get("namespace"),
                                     patch_type="strategic")
    except errors.NotFound:
        return None
    log.info("object adopted", extra={"object": ref(obj), "owner": ref(owner)})
    return adopted


async def _release(client: Client, resource: ResourceRef, owner: Obj, obj: Obj) -> None:
    ometa = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete",
                                               "uid": owner["metadata"]["uid"]}],
                          "uid": ometa["uid"]}}
    try:
        await client.patch(resource, ometa["name"], patch, ometa.get("namespace"),
                           patch_type="strategic")
    except (errors.NotFound, errors.Invalid):
        return
    log.info("object released", extra={"object": ref(obj), "owner": ref(owner)})
