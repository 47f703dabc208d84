"""The ReplicaSet controller: keeps `spec.replicas` active pods for each ReplicaSet.

Why: every Deployment rolls out through ReplicaSets; this is kube's
pkg/controller/replicaset/replica_set.go on navio's informers and work queue.

Guarantees:
- A ReplicaSet controls the active pods (not terminal, not being deleted) that carry its
  controller ownerReference; matching orphans are adopted and owned pods that stopped matching
  are released before counting (controller_utils.claim).
- It never creates or deletes again while its informer has not yet seen its last writes
  (expectations, 5 min TTL), so a lagging cache cannot make it over-create.
- At most 500 pods are created or deleted per pass (burstReplicas); creates go in slow-start
  batches 1, 2, 4, … and stop at the first failure; the pods deleted first are the least
  valuable (controller_utils.rank_pods_for_deletion).
- status.replicas / fullyLabeledReplicas / readyReplicas / availableReplicas /
  observedGeneration and the ReplicaFailure condition are written when they change;
  availability honours minReadySeconds (the key is requeued when a pod may become available).
- Events as kube writes them: SuccessfulCreate "Created pod: <name>", SuccessfulDelete
  "Deleted pod: <name>", FailedCreate "Error creating: …", FailedDelete "Error deleting: …".
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import LabelSelector, label_selector_from_spec
from navio.client import (NAMESPACE_INDEX, NORMAL, PODS, REPLICASETS, WARNING, object_key,
                          namespace_index)
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import (BURST_REPLICAS, SLOW_START_INITIAL_BATCH_SIZE,
                                                Expectations, add_index, claim,
                                                controller_of, is_pod_active,
                                                is_pod_available, is_pod_ready,
                                                pod_from_template, pods_to_delete,
                                                slow_start_batch)
from navio.controllers.manager import register

__all__ = ["ReplicaSetController", "CONTROLLER_UID_INDEX", "ORPHAN_INDEX", "calculate_status",
           "controller_uid_index", "orphan_index", "namespace_terminating"]

log = logging.getLogger(__name__)

NAME = "replicaset"
CONTROLLER_UID_INDEX = "controllerUID"
ORPHAN_INDEX = "orphanNamespace"
_STATUS_UPDATE_RETRIES = 1

Obj = dict[str, Any]


def controller_uid_index(obj: Obj) -> list[str]:
    cref = controller_of(obj)
    return [cref["uid"]] if cref and cref.get("uid") else []


def orphan_index(obj: Obj) -> list[str]:
    """Objects without a controller, by namespace: the only candidates for adoption."""
    if controller_of(obj) is not None:
        return []
    return namespace_index(obj)


def namespace_terminating(exc: BaseException) -> bool:
    """The create failed because the namespace is being deleted (NamespaceTerminatingCause)."""
    details = getattr(exc, "details", None) or {}
    return any(c.get("reason") == "NamespaceTerminating" for c in details.get("causes") or ())


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def calculate_status(rs: Obj, pods: list[Obj], manage_error: BaseException | None,
                     now: float) -> Obj:
    """The ReplicaSet status for its claimed active `pods` (calculateStatus)."""
    status = copy.deepcopy(rs.get("status") or {})
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in status.get("conditions") or () if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in status.get("conditions") or ()
                    if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append({"type": "ReplicaFailure", "status": "True",
                           "lastTransitionTime": _now_rfc3339(), "reason": reason,
                           "message": str(manage_error)})
    elif manage_error is not None:
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status["replicas"] = len(pods)
    for field, value in (("fullyLabeledReplicas", fully), ("readyReplicas", ready),
                         ("availableReplicas", available)):
        if value:
            status[field] = value
        else:
            status.pop(field, None)    # omitempty, as the Go type marshals it
    return status


class ReplicaSetController(Controller):
    name = NAME

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = int(ctx.options.get("concurrent-replicaset-syncs", 5))
        self.burst = int(ctx.options.get("replicaset-burst-replicas", BURST_REPLICAS))
        self.expectations = Expectations()
        self.replicasets = ctx.informers.get(REPLICASETS)
        self.pods = ctx.informers.get(PODS)
        add_index(self.replicasets, NAMESPACE_INDEX, namespace_index)
        add_index(self.replicasets, CONTROLLER_UID_INDEX, controller_uid_index)
        add_index(self.pods, CONTROLLER_UID_INDEX, controller_uid_index)
        add_index(self.pods, ORPHAN_INDEX, orphan_index)
        self._selectors: dict[str, LabelSelector] = {}
        self.replicasets.add_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                     on_delete=self._rs_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)

    # ---- lookups ----------------------------------------------------------------------

    def selector(self, rs: Obj) -> LabelSelector:
        """The parsed spec.selector (immutable in apps/v1, so cached by uid)."""
        uid = rs["metadata"].get("uid", "")
        sel = self._selectors.get(uid)
        if sel is None:
            sel = label_selector_from_spec((rs.get("spec") or {}).get("selector"))
            self._selectors[uid] = sel
        return sel

    def _resolve(self, namespace: str, cref: Obj) -> Obj | None:
        if cref.get("kind") != "ReplicaSet":
            return None
        rs = self.replicasets.get(f"{namespace}/{cref.get('name')}")
        if rs is None or rs["metadata"].get("uid") != cref.get("uid"):
            return None
        return rs

    def _matching_replicasets(self, pod: Obj) -> list[Obj]:
        ns = pod["metadata"].get("namespace", "")
        labels = pod["metadata"].get("labels") or {}
        out = []
        for rs in self.replicasets.by_index(NAMESPACE_INDEX, ns):
            try:
                if self.selector(rs).matches(labels):
                    out.append(rs)
            except errors.ApiError:
                continue
        return out

    def related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every ReplicaSet with the same controller (getIndirectlyRelatedPods)."""
        cref = controller_of(rs)
        siblings = self.replicasets.by_index(CONTROLLER_UID_INDEX, cref["uid"]) if cref \
            else [rs]
        pods: list[Obj] = []
        for sibling in siblings:
            pods.extend(self.pods.by_index(CONTROLLER_UID_INDEX, sibling["metadata"]["uid"]))
        return pods

    # ---- handlers (only enqueue, and count observations) --------------------------------

    def _rs_added(self, rs: Obj) -> None:
        self.enqueue(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("uid") != new["metadata"].get("uid"):
            self._rs_deleted(old)
        self.enqueue(new)

    def _rs_deleted(self, rs: Obj) -> None:
        key = object_key(rs)
        self.expectations.delete(key)
        self._selectors.pop(rs["metadata"].get("uid", ""), None)
        self.queue.add(key)

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        cref = controller_of(pod)
        if cref is not None:
            rs = self._resolve(pod["metadata"].get("namespace", ""), cref)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._matching_replicasets(pod):
            self.enqueue(rs)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        ns = cur["metadata"].get("namespace", "")
        label_changed = old["metadata"].get("labels") != cur["metadata"].get("labels")
        if cur["metadata"].get("deletionTimestamp"):
            self._pod_deleted(cur)
            if label_changed:
                self._pod_deleted(old)
            return
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            rs = self._resolve(ns, old_ref)
            if rs is not None:
                self.enqueue(rs)
        if cur_ref is not None:
            rs = self._resolve(ns, cur_ref)
            if rs is None:
                return
            self.enqueue(rs)
            min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # One more pass once the pod may count as available (+1 s for clock skew).
                self.queue.add_after(object_key(rs), min_ready + 1.0)
            return
        if label_changed or ref_changed:
            for rs in self._matching_replicasets(cur):
                self.enqueue(rs)

    def _pod_deleted(self, pod: Obj) -> None:
        cref = controller_of(pod)
        if cref is None:
            return
        rs = self._resolve(pod["metadata"].get("namespace", ""), cref)
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    # ---- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Make the pods ReplicaSet `key` controls match spec.replicas; safe to repeat."""
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self.selector(rs)
        except errors.ApiError:
            log.warning("invalid selector", extra={"replicaset": key})
            return
        meta = rs["metadata"]
        candidates = self.pods.by_index(CONTROLLER_UID_INDEX, meta["uid"]) + \
            self.pods.by_index(ORPHAN_INDEX, meta.get("namespace", ""))
        active = [p for p in candidates if is_pod_active(p)]
        pods = await claim(self.client, PODS, REPLICASETS, rs,
                           lambda p: selector.matches(p["metadata"].get("labels")), active)
        manage_error: BaseException | None = None
        if needs_sync and not meta.get("deletionTimestamp"):
            try:
                await self._manage_replicas(key, rs, pods)
            except (errors.ApiError, ConnectionError, ValueError) as exc:
                manage_error = exc
        status = calculate_status(rs, pods, manage_error, time.time())
        updated = await self._update_status(rs, status)
        spec, ustatus = updated.get("spec") or {}, updated.get("status") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        replicas = int(spec.get("replicas", 1))
        if manage_error is None and min_ready > 0 and \
                int(ustatus.get("readyReplicas") or 0) == replicas and \
                int(ustatus.get("availableReplicas") or 0) != replicas:
            self.queue.add_after(key, float(min_ready))
        if manage_error is not None:
            raise manage_error

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - want
        if diff < 0:
            await self._create(key, rs, min(-diff, self.burst))
        elif diff > 0:
            await self._delete(key, rs, pods, min(diff, self.burst))

    async def _create(self, key: str, rs: Obj, count: int) -> None:
        self.expectations.expect_creations(key, count)
        log.info("too few replicas", extra={"replicaset": key, "creating": count})
        template = (rs.get("spec") or {}).get("template") or {}
        namespace = rs["metadata"].get("namespace")

        async def create_one() -> None:
            pod = pod_from_template(template, rs)
            if not pod["metadata"]["labels"]:
                raise ValueError("unable to create pods, no labels")
            try:
                created = await self.client.create(PODS, pod, namespace)
            except errors.ApiError as exc:
                if namespace_terminating(exc):
                    return      # every create fails now; the namespace is going away
                self.recorder.event(rs, WARNING, "FailedCreate", f"Error creating: {exc}")
                raise
            self.recorder.event(rs, NORMAL, "SuccessfulCreate",
                                f"Created pod: {created['metadata']['name']}")

        successes, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE,
                                                  create_one)
        skipped = count - successes
        if skipped > 0:
            log.info("slow-start failure, skipping pod creation",
                     extra={"replicaset": key, "skipped": skipped})
            for _ in range(skipped):
                self.expectations.creation_observed(key)
        if error is not None:
            raise error

    async def _delete(self, key: str, rs: Obj, pods: list[Obj], count: int) -> None:
        victims = pods_to_delete(pods, self.related_pods(rs), count, time.time())
        self.expectations.expect_deletions(key, [object_key(p) for p in victims])
        log.info("too many replicas", extra={"replicaset": key, "deleting": count})

        async def delete_one(pod: Obj) -> None:
            name = pod["metadata"]["name"]
            try:
                await self.client.delete(PODS, name, pod["metadata"].get("namespace"))
            except errors.NotFound:
                self.expectations.deletion_observed(key, object_key(pod))
                return
            except (errors.ApiError, ConnectionError) as exc:
                self.expectations.deletion_observed(key, object_key(pod))
                self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {exc}")
                raise
            self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

        results = await asyncio.gather(*(delete_one(p) for p in victims),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write `status` if it differs (updateReplicaSetStatus: one GET + retry on conflict)."""
        old = rs.get("status") or {}
        generation = rs["metadata"].get("generation", 0)
        same = all(int(old.get(f) or 0) == int(status.get(f) or 0)
                   for f in ("replicas", "fullyLabeledReplicas", "readyReplicas",
                             "availableReplicas"))
        if same and int(old.get("observedGeneration") or 0) == generation and \
                (old.get("conditions") or []) == (status.get("conditions") or []):
            return rs
        status = dict(status, observedGeneration=generation)
        current = rs
        for attempt in range(_STATUS_UPDATE_RETRIES + 1):
            body = dict(current, status=status)
            try:
                return await self.client.update_status(REPLICASETS, body)
            except errors.NotFound:
                return rs
            except errors.Conflict:
                if attempt >= _STATUS_UPDATE_RETRIES:
                    raise
                current = await self.client.get(REPLICASETS, current["metadata"]["name"],
                                                current["metadata"].get("namespace"))
        return rs


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return ReplicaSetController(ctx)

