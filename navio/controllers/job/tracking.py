"""Counting finished pods exactly once and finishing the Job
(trackJobStatusAndRemoveFinalizers, v1.32).

Guarantees:
- A finished pod with the tracking finalizer is first recorded in
  `status.uncountedTerminatedPods` (flushed), then its finalizer is removed, then it moves
  into `succeeded` / `failed`; Indexed Jobs record `completedIndexes` (and, with
  backoffLimitPerIndex, `failedIndexes`) instead of succeeded UIDs.
- Failures a podFailurePolicy Ignore rule matches lose their finalizer without counting.
  A failed pod of a retried index keeps its finalizer until its replacement exists.
- FailureTarget and SuccessCriteriaMet are written before finalizers go; Failed / Complete
  (with `completionTime`) only once nothing is uncounted and no pod is terminating, with
  a Warning event (the failure reason) or `Completed` "Job completed".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from navio.api import errors
from navio.client import JOBS, NORMAL, WARNING
from navio.controllers.job.context import SyncContext
from navio.controllers.job.indexes import (completion_index, format_indexes,
                                           has_backoff_limit_per_index, is_indexed)
from navio.controllers.job.pod_failure_policy import is_pod_failed, match_pod_failure_policy
from navio.controllers.job.pods import TRACKING_FINALIZER, JobPods
from navio.controllers.job.status import Now, Obj, new_condition, true_condition

__all__ = ["JobStatusTracker", "MAX_UNCOUNTED", "clean_uncounted"]

log = logging.getLogger(__name__)

MAX_UNCOUNTED = 500


class JobStatusTracker(JobPods):
    """The part of JobController that keeps status counters, removes finalizers and
    finishes the Job."""

    now: Now
    _backoff: dict[str, tuple[int, datetime | None]]
    _expected_rm: dict[str, set[str]]

    async def _track(self, key: str, c: SyncContext, needs_flush: bool,
                     backoff: tuple[int, datetime | None]) -> None:
        job, status = c.job, c.job["status"]
        uncounted = status["uncountedTerminatedPods"]
        indexed = is_indexed(job)
        completions = int(job["spec"]["completions"]) if indexed else 0
        policy = job["spec"].get("podFailurePolicy")
        with_fin = {p["metadata"]["uid"] for p in c.pods
                    if TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())
                    and p["metadata"]["uid"] not in c.expected_rm}
        needs_flush |= clean_uncounted(status, with_fin)
        to_release: list[Obj] = []
        new_indexes: set[int] = set()
        for p in sorted(c.pods, key=lambda p: completion_index(p) or 0) if indexed else c.pods:
            uid = p["metadata"]["uid"]
            if uid not in with_fin:
                continue
            failed = is_pod_failed(p, job)
            if not self._can_release(c, p, failed):
                continue
            to_release.append(p)
            phase = (p.get("status") or {}).get("phase")
            if phase == "Succeeded" and uid not in (uncounted.get("failed") or ()):
                ix = completion_index(p)
                if indexed:
                    if ix is not None and ix < completions and \
                            ix not in c.prev_succeeded_indexes:
                        new_indexes.add(ix)
                        needs_flush = True
                elif uid not in (uncounted.get("succeeded") or ()):
                    uncounted.setdefault("succeeded", []).append(uid)
                    needs_flush = True
            elif failed or (c.finished is not None and c.finished["type"] != "SuccessCriteriaMet"):
                ix = completion_index(p)
                if uid not in (uncounted.get("failed") or ()) and (
                        not indexed or (ix is not None and ix < completions)) and \
                        match_pod_failure_policy(policy, p)[1]:
                    uncounted.setdefault("failed", []).append(uid)
                    needs_flush = True
            if len(new_indexes) + len(uncounted.get("succeeded") or ()) + \
                    len(uncounted.get("failed") or ()) >= MAX_UNCOUNTED:
                break
        if indexed:
            c.succeeded_indexes = c.prev_succeeded_indexes | new_indexes | c.succeeded_indexes
            text = format_indexes(c.succeeded_indexes)
            needs_flush |= text != status.get("completedIndexes", "")
            status["completedIndexes"] = text
            status["succeeded"] = len(c.succeeded_indexes)
            if c.failed_indexes is not None:
                failed_text = format_indexes(c.failed_indexes)
                needs_flush |= failed_text != status.get("failedIndexes")
                status["failedIndexes"] = failed_text
        conds = status.setdefault("conditions", [])
        now = self.now()
        if c.finished is not None and c.finished["type"] == "FailureTarget":
            conds.append(c.finished)
            needs_flush = True
            c.finished = new_condition("Failed", "True", c.finished["reason"],
                                       c.finished["message"], now)
        if c.finished is not None and c.finished["type"] == "SuccessCriteriaMet":
            if true_condition(job, "SuccessCriteriaMet") is None:
                conds.append(c.finished)
                needs_flush = True
            c.finished = new_condition("Complete", "True", c.finished["reason"],
                                       c.finished["message"], now)
        if needs_flush:
            await self._flush(c)
            self._backoff[key] = backoff
            needs_flush = False
        if to_release:
            needs_flush = await self._release(key, c, to_release, with_fin)
        finished = self._enact_finished(c)
        if finished or needs_flush:
            await self._flush(c)
        if finished:
            assert c.finished is not None
            if c.finished["type"] == "Complete":
                self.recorder.event(c.job, NORMAL, "Completed", "Job completed")
            else:
                self.recorder.event(c.job, WARNING, c.finished["reason"], c.finished["message"])
            log.info("job finished", extra={"job": key, "condition": c.finished["type"]})

    @staticmethod
    def _can_release(c: SyncContext, pod: Obj, failed: bool) -> bool:
        """canRemoveFinalizer."""
        if c.job["metadata"].get("deletionTimestamp") or c.finished is not None or \
                (pod.get("status") or {}).get("phase") == "Succeeded":
            return True
        if not failed:
            return False
        if has_backoff_limit_per_index(c.job):
            ix = completion_index(pod)
            kept = c.delayed.get(ix) if ix is not None else None
            if kept is not None and kept["metadata"].get("uid") == pod["metadata"].get("uid"):
                return False
        return True

    async def _release(self, key: str, c: SyncContext, pods: list[Obj],
                       with_fin: set[str]) -> bool:
        """Remove the finalizers of `pods`; fold released pods into the counters. Returns
        whether the status changed."""
        self._expected_rm.setdefault(key, set()).update(p["metadata"]["uid"] for p in pods)
        results = await asyncio.gather(*(self._remove_finalizer(p) for p in pods),
                                       return_exceptions=True)
        for p, res in zip(pods, results):
            if not isinstance(res, Exception) or isinstance(res, errors.NotFound):
                with_fin.discard(p["metadata"]["uid"])
            else:
                self._expected_rm[key].discard(p["metadata"]["uid"])
        changed = clean_uncounted(c.job["status"], with_fin)
        errs = [r for r in results if isinstance(r, Exception)
                and not isinstance(r, errors.NotFound)]
        if errs:
            if changed:
                await self._flush(c)
            raise errs[0]
        return changed

    @staticmethod
    def _enact_finished(c: SyncContext) -> bool:
        if c.finished is None:
            return False
        unc = c.job["status"].get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed") or c.terminating > 0:
            return False
        conds = c.job["status"].setdefault("conditions", [])
        cur = next((x for x in conds if x.get("type") == c.finished["type"]), None)
        if cur is None:
            conds.append(c.finished)
        else:
            cur.clear()
            cur.update(c.finished)
        if c.finished["type"] == "Complete":
            c.job["status"]["completionTime"] = c.finished["lastTransitionTime"]
        return True

    async def _flush(self, c: SyncContext) -> None:
        stored = await self.client.update_status(JOBS, c.job)
        c.job["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]


def clean_uncounted(status: Obj, with_fin: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: released pods move into the counters."""
    unc = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for field in ("succeeded", "failed"):
        keep = [u for u in unc.get(field) or () if u in with_fin]
        if len(keep) != len(unc.get(field) or ()):
            status[field] = int(status.get(field) or 0) + len(unc[field]) - len(keep)
            changed = True
        unc[field] = keep
        if not keep:
            unc.pop(field, None)
    return changed
