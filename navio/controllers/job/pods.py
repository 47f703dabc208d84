"""The Job controller's pod writes (manageJob): create towards the wanted active count with
back-off, delete surplus and duplicate-index pods, remove tracking finalizers.

Guarantees: see `controller.py`; besides, with `backoffLimitPerIndex` new pods carry the
index's failure counts and an index is retried only after its own back-off; indexes that
failed for good, and (when pods are replaced only once Failed) indexes with a terminating
pod, get no new pod.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from navio.api import errors
from navio.client import NORMAL, PODS, WARNING
from navio.client import Informer
from navio.controllers.base import Controller, owner_key
from navio.controllers.controller_utils import (SLOW_START_INITIAL_BATCH_SIZE, Expectations,
                                                pod_from_template, slow_start_batch)
from navio.controllers.job.context import SyncContext
from navio.controllers.job.indexes import (COMPLETION_INDEX, INDEX_FAILURE_COUNT,
                                           INDEX_IGNORED_FAILURE_COUNT, completion_index,
                                           has_backoff_limit_per_index, index_backoff,
                                           is_indexed, new_failure_counts)
from navio.controllers.job.pod_failure_policy import only_replace_failed_pods
from navio.controllers.job.status import (Obj, backoff_delay, is_finished, object_key,
                                          removal_rank)

__all__ = ["TRACKING_FINALIZER", "MAX_PER_SYNC", "JobPods"]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_PER_SYNC = 500


class JobPods(Controller):
    """The part of JobController that creates, deletes or patches pods."""

    jobs: Informer
    pods: Informer
    expectations: Expectations
    batch: float
    backoff_base: float
    backoff_cap: float

    async def _manage(self, key: str, job: Obj, c: SyncContext,
                      backoff: tuple[int, datetime | None], now: datetime) -> int:
        """manageJob: create or delete pods towards the wanted active count."""
        spec = job["spec"]
        active = len(c.active_pods)
        if spec.get("suspend"):
            self.expectations.expect_deletions(key, [object_key(p) for p in c.active_pods])
            removed = await self._delete_pods(job, c.active_pods, keep_finalizers=False, key=key)
            c.terminating += removed
            return active - removed
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = active if c.succeeded > 0 else parallelism
        else:
            want = max(min(int(completions) - c.succeeded, parallelism), 0)
        surplus = _surplus(c, is_indexed(job), max(active - want, 0))
        if surplus:
            self.expectations.expect_deletions(key, [object_key(p) for p in surplus])
            removed = await self._delete_pods(job, surplus, keep_finalizers=False, key=key)
            c.terminating += removed
            return active - removed
        terminating = c.terminating if only_replace_failed_pods(job) else 0
        diff = min(want - terminating - active, MAX_PER_SYNC)
        if diff <= 0:
            return active
        failures, last = backoff
        if failures and last is not None and not has_backoff_limit_per_index(job):
            wait = backoff_delay(failures, self.backoff_base, self.backoff_cap) - \
                (now - last).total_seconds()
            if wait > 0:
                self.queue.add_after(key, max(wait, self.batch))
                return active
        indexes: list[int | None] = [None] * diff
        if is_indexed(job):
            indexes = list(_pending_indexes(c, diff, int(completions)))
            if has_backoff_limit_per_index(job):
                ready, wait = self._retriable(indexes, c, now)
                if not ready and wait > 0:
                    self.queue.add_after(key, max(wait, self.batch))
                    return active
                indexes = list(ready)
        self.expectations.expect_creations(key, len(indexes))
        pending = iter(indexes)
        created, err = await slow_start_batch(
            len(indexes), SLOW_START_INITIAL_BATCH_SIZE,
            lambda: self._create_pod(job, next(pending), c))
        for _ in range(len(indexes) - created):
            self.expectations.creation_observed(key)      # never coming
        if err is not None:
            raise err
        return active + created

    def _retriable(self, indexes: list[Any], c: SyncContext, now: datetime
                   ) -> tuple[list[int], float]:
        """getPodCreationInfoForIndependentIndexes: indexes past their back-off, else the
        shortest wait."""
        ready: list[int] = []
        waits: list[float] = []
        for ix in indexes:
            left = index_backoff(c.delayed.get(ix), self.backoff_base, self.backoff_cap, now)
            if left <= 0:
                ready.append(ix)
            else:
                waits.append(left)
        return ready, (0.0 if ready else min(waits, default=0.0))

    async def _create_pod(self, job: Obj, index: int | None,
                          c: SyncContext) -> None:
        name = job["metadata"]["name"]
        pod = pod_from_template(job["spec"].get("template") or {}, job)
        meta, spec = pod["metadata"], pod["spec"]
        meta["namespace"] = job["metadata"]["namespace"]
        finalizers = meta.setdefault("finalizers", [])
        if TRACKING_FINALIZER not in finalizers:
            finalizers.append(TRACKING_FINALIZER)
        if index is not None:
            annotations = meta.setdefault("annotations", {})
            annotations[COMPLETION_INDEX] = str(index)
            meta["labels"][COMPLETION_INDEX] = str(index)
            meta["generateName"] = f"{name}-{index}-"
            spec["hostname"] = f"{name}-{index}"
            if has_backoff_limit_per_index(job):
                failures, ignored = new_failure_counts(job, c.delayed.get(index))
                annotations[INDEX_FAILURE_COUNT] = str(failures)
                if ignored > 0:
                    annotations[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for ctr in spec.get("initContainers", []) + spec.get("containers", []):
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in ctr.get("env", [])):
                    ctr["env"] = ctr.get("env", []) + [env]
        try:
            made = await self.client.create(PODS, pod)
        except errors.ApiError as exc:
            if "being terminated" not in str(exc):
                self.recorder.event(job, WARNING, "FailedCreate", f"Error creating: {exc}")
            raise
        self.recorder.event(job, NORMAL, "SuccessfulCreate",
                            f"Created pod: {made['metadata']['name']}")

    async def _delete_pods(self, job: Obj, pods: list[Obj], *,
                           keep_finalizers: bool, key: str | None = None) -> int:
        async def one(pod: Obj) -> bool:
            name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
            try:
                if not keep_finalizers:
                    await self._remove_finalizer(pod)
                await self.client.delete(PODS, name, ns)
            except errors.NotFound:
                if key is not None:
                    self.expectations.deletion_observed(key, object_key(pod))
                return True
            except errors.ApiError as exc:
                if key is not None:
                    self.expectations.deletion_observed(key, object_key(pod))
                self.recorder.event(job, WARNING, "FailedDelete", f"Error deleting: {exc}")
                return False
            self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")
            return True
        return sum(await asyncio.gather(*(one(p) for p in pods)))

    async def _remove_finalizer(self, pod: Obj) -> None:
        fins = pod["metadata"].get("finalizers") or []
        if TRACKING_FINALIZER not in fins:
            return
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
        patch = [{"op": "test", "path": "/metadata/finalizers", "value": fins},
                 {"op": "replace", "path": "/metadata/finalizers",
                  "value": [f for f in fins if f != TRACKING_FINALIZER]}]
        try:
            await self.client.patch(PODS, name, patch, ns, patch_type="json")
        except errors.ApiError:
            fresh = await self.client.get(PODS, name, ns)
            fins = fresh["metadata"].get("finalizers") or []
            if TRACKING_FINALIZER in fins:
                await self.client.patch(PODS, name, {"metadata": {
                    "finalizers": [f for f in fins if f != TRACKING_FINALIZER],
                    "resourceVersion": fresh["metadata"]["resourceVersion"]}}, ns)

    async def _release_orphan(self, pod_key: str) -> None:
        """syncOrphanPod: drop the finalizer of a pod whose Job is gone or finished."""
        pod = self.pods.get(pod_key)
        if pod is None or TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or ()):
            return
        key = owner_key(pod, "Job")
        job = self.jobs.get(key) if key else None
        ref = next((r for r in pod["metadata"].get("ownerReferences") or ()
                    if r.get("controller")), None)
        if ref is not None and (ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1"):
            return
        if job is not None and ref is not None and ref.get("uid") == job["metadata"]["uid"] \
                and not is_finished(job):
            return
        try:
            await self._remove_finalizer(pod)
        except errors.NotFound:
            pass


def _pending_indexes(c: SyncContext, count: int, completions: int) -> list[int]:
    """firstPendingIndexes: the lowest indexes neither succeeded, failed, active nor (when
    only failed pods are replaced) terminating."""
    busy = {i for p in c.active_pods if (i := completion_index(p)) is not None}
    busy |= c.succeeded_indexes | (c.failed_indexes or set())
    if only_replace_failed_pods(c.job):
        busy |= {i for p in c.pods if (i := completion_index(p)) is not None
                 and p["metadata"].get("deletionTimestamp")
                 and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")}
    return [i for i in range(completions) if i not in busy][:count]


def _surplus(c: SyncContext, indexed: bool, at_least: int) -> list[Obj]:
    """activePodsForRemoval: duplicate or out-of-range indexes first, then by rank."""
    remove: list[Obj] = []
    left = c.active_pods
    if indexed:
        completions = int(c.job["spec"]["completions"])
        seen: dict[int, Obj] = {}
        left = []
        for p in sorted(c.active_pods, key=removal_rank, reverse=True):
            ix = completion_index(p)
            if ix is None or ix >= completions or ix in seen:
                remove.append(p)
            else:
                seen[ix] = p
                left.append(p)
    if len(remove) < at_least:
        remove += sorted(left, key=removal_rank)[:at_least - len(remove)]
    return remove[:MAX_PER_SYNC]
