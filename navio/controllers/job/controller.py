"""Jobs: run pods to completion, retrying failures, as kube-controller-manager's "job"
(pkg/controller/job, v1.32) does.

Guarantees:
- Up to `parallelism` active pods, never more than the completions still missing; pods are
  created from the template with the `batch.kubernetes.io/job-tracking` finalizer, an
  ownerReference to the Job, in slow-start batches (1, 2, 4, ...), each with a
  `SuccessfulCreate` event (`pods.py`). Indexed Jobs give each pod the
  `batch.kubernetes.io/job-completion-index` annotation and label, hostname
  `<job>-<index>` and a JOB_COMPLETION_INDEX variable; the lowest missing indexes go first.
- Finished pods are counted exactly once (`tracking.py`): recorded in
  `status.uncountedTerminatedPods`, their finalizer removed, then moved to
  `succeeded`/`failed` (or `completedIndexes` / `failedIndexes`). A pod counts as failed
  when Failed, or when deleted before succeeding unless a podFailurePolicy or
  podReplacementPolicy Failed says to wait for the Failed phase.
- Replacements for failed pods wait 10 s · 2^(failures since the last success − 1), capped
  at 10 min (options `job-pod-failure-backoff` / `job-pod-failure-max-backoff`); with
  `backoffLimitPerIndex` the same back-off applies per index.
- The Job fails, through an interim FailureTarget condition and deletion of its active
  pods, with reason PodFailurePolicy (a FailJob rule matched), BackoffLimitExceeded
  ("Job has reached the specified backoff limit"), DeadlineExceeded ("Job was active longer
  than specified deadline"), MaxFailedIndexesExceeded ("Job has exceeded the specified
  maximal number of failed indexes") or FailedIndexes ("Job has failed indexes"); Failed
  follows once no pod is left terminating, with a Warning event. It succeeds through
  SuccessCriteriaMet — CompletionsReached ("Reached expected number of succeeded pods"), or
  SuccessPolicy ("Matched rules at index N", active pods deleted) — then Complete with
  `completionTime` and a `Completed` "Job completed" event. `suspend` deletes active pods.
- Pod events are batched for 1 s per Job (`job-sync-batch-period`), as upstream.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, timezone

from navio.client import JOBS, NAMESPACE_INDEX, NORMAL, PODS, namespace_index
from navio.controllers.base import ControllerContext, owner_key
from navio.controllers.controller_utils import Expectations, add_index
from navio.controllers.job.context import SyncContext
from navio.controllers.job.indexes import (completion_index, delayed_deletion_per_index,
                                           failed_indexes, has_backoff_limit_per_index,
                                           is_indexed, parse_indexes)
from navio.controllers.job.pod_failure_policy import (fail_job_message, is_pod_failed,
                                                      match_pod_failure_policy)
from navio.controllers.job.pods import TRACKING_FINALIZER
from navio.controllers.job.status import (Now, Obj, finished_at, is_finished, new_condition,
                                          object_key, parse_time, timestamp, true_condition)
from navio.controllers.job.success_policy import match_success_policy
from navio.controllers.job.tracking import JobStatusTracker
from navio.controllers.manager import register

__all__ = ["JobController"]

log = logging.getLogger(__name__)


@register("job")
class JobController(JobStatusTracker):
    name = "job"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.now: Now = opts.get("job-now") or (lambda: datetime.now(timezone.utc))
        self.batch = float(opts.get("job-sync-batch-period", 1.0))
        self.backoff_base = float(opts.get("job-pod-failure-backoff", 10.0))
        self.backoff_cap = float(opts.get("job-pod-failure-max-backoff", 600.0))
        self.jobs = ctx.informers.get(JOBS)
        self.pods = ctx.informers.get(PODS)
        add_index(self.pods, NAMESPACE_INDEX, namespace_index)
        self.expectations = Expectations()
        self._expected_rm: dict[str, set[str]] = {}
        self._backoff: dict[str, tuple[int, datetime | None]] = {}
        self.jobs.add_handler(on_add=self.enqueue, on_update=self._job_updated,
                              on_delete=self._job_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)

    # ---- events -------------------------------------------------------------------------

    def _job_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("generation") != new["metadata"].get("generation"):
            self.enqueue(new)
        else:
            self.queue.add_after(object_key(new), self.batch)
        if is_finished(new):
            self._orphans(new)
        ads = (new.get("spec") or {}).get("activeDeadlineSeconds")
        start = parse_time((new.get("status") or {}).get("startTime"))
        if ads is not None and start is not None and \
                ads != (old.get("spec") or {}).get("activeDeadlineSeconds"):
            left = start + timedelta(seconds=int(ads)) - self.now()
            self.queue.add_after(object_key(new), left.total_seconds())

    def _job_deleted(self, job: Obj) -> None:
        self.enqueue(job)
        self._orphans(job)

    def _orphans(self, job: Obj) -> None:
        uid = job["metadata"].get("uid")
        for pod in self.pods.by_index(NAMESPACE_INDEX, job["metadata"]["namespace"]):
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ()) and any(
                    r.get("uid") == uid for r in pod["metadata"].get("ownerReferences") or ()):
                self.queue.add("pod:" + object_key(pod))

    def _owner(self, pod: Obj) -> str | None:
        key = owner_key(pod, "Job")
        job = self.jobs.get(key) if key else None
        ref = next((r for r in pod["metadata"].get("ownerReferences") or ()
                    if r.get("controller")), None)
        if job is None or ref is None or ref.get("uid") != job["metadata"].get("uid"):
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ()):
                self.queue.add("pod:" + object_key(pod))
            return None
        return key

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner(pod)
        if key is not None:
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, object_key(pod))
            else:
                self.expectations.creation_observed(key)
            self.queue.add_after(key, self.batch)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._owner(new)
        if key is None:
            return
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get(
                "deletionTimestamp"):
            self.expectations.deletion_observed(key, object_key(new))
        if TRACKING_FINALIZER not in (new["metadata"].get("finalizers") or ()):
            self._expected_rm.get(key, set()).discard(new["metadata"].get("uid"))
        self.queue.add_after(key, self.batch)

    def _pod_deleted(self, pod: Obj) -> None:
        key = owner_key(pod, "Job")
        if key is None:
            return
        if not pod["metadata"].get("deletionTimestamp"):
            self.expectations.deletion_observed(key, object_key(pod))
        self._expected_rm.get(key, set()).discard(pod["metadata"].get("uid"))
        self.queue.add_after(key, self.batch)

    # ---- sync (syncJob) -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        if key.startswith("pod:"):
            await self._release_orphan(key[4:])
            return
        shared = self.jobs.get(key)
        if shared is None:
            self.expectations.delete(key)
            for d in (self._expected_rm, self._backoff):
                d.pop(key, None)
            return
        if is_finished(shared):
            self._backoff.pop(key, None)
            return
        job = copy.deepcopy(shared)
        spec, status = job["spec"], job.setdefault("status", {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        satisfied = self.expectations.satisfied(key)
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, job["metadata"]["namespace"])
                if any(r.get("controller") and r.get("uid") == uid
                       for r in p["metadata"].get("ownerReferences") or ())]
        c = SyncContext(job, pods, set(self._expected_rm.get(key, set())))
        completions = spec.get("completions")
        new_ok, new_failed = self._new_finished(c, uncounted)
        policy = spec.get("podFailurePolicy")
        c.succeeded = int(status.get("succeeded") or 0) + len(new_ok) + \
            len(uncounted.get("succeeded") or ())
        c.failed = int(status.get("failed") or 0) + len(uncounted.get("failed") or ()) + \
            sum(1 for p in new_failed if match_pod_failure_policy(policy, p)[1])
        suspended = bool(spec.get("suspend"))
        now = self.now()
        if not status.get("startTime") and not suspended:
            status["startTime"] = timestamp(now)
        backoff = self._next_backoff(key, new_ok, new_failed, now)
        c.finished = copy.deepcopy(true_condition(job, "SuccessCriteriaMet"))
        if c.finished is None:
            target = true_condition(job, "FailureTarget")
            if target is not None:
                c.finished = new_condition("Failed", "True", target.get("reason", ""),
                                           target.get("message", ""), now)
            elif (message := fail_job_message(job, pods)) is not None:
                c.finished = new_condition("FailureTarget", "True", "PodFailurePolicy",
                                           message, now)
        if c.finished is None:
            if c.failed > int(spec.get("backoffLimit", 6)) or self._past_restarts(job, pods):
                c.finished = new_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                           "Job has reached the specified backoff limit", now)
            elif self._past_deadline(job, now):
                c.finished = new_condition("FailureTarget", "True", "DeadlineExceeded",
                                           "Job was active longer than specified deadline",
                                           now)
            elif spec.get("activeDeadlineSeconds") is not None and not suspended:
                start = parse_time(status["startTime"]) or now
                left = start + timedelta(seconds=int(spec["activeDeadlineSeconds"])) - now
                self.queue.add_after(key, left.total_seconds())
        if is_indexed(job):
            self._indexes(c, int(completions), now)
        active = len(c.active_pods)
        suspend_changed = False
        if c.finished is not None:
            deleted = await self._delete_pods(job, c.active_pods, keep_finalizers=True)
            if deleted != active or not satisfied:
                c.finished = None             # wait for pods and caches to catch up
            active -= deleted
            c.terminating += deleted
        else:
            managed = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                active = await self._manage(key, job, c, backoff, now)
                managed = True
            if completions is None:
                complete = c.succeeded > 0 and active == 0
            else:
                complete = c.succeeded >= int(completions) and active == 0
            if complete:
                c.finished = new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                           "Reached expected number of succeeded pods", now)
            elif managed:
                suspend_changed = self._suspend_condition(job, suspended, now)
        changed = suspend_changed or active != status.get("active", 0) or \
            c.ready != status.get("ready") or c.terminating != status.get("terminating")
        status.update(active=active, ready=c.ready, terminating=c.terminating)
        await self._track(key, c, changed, backoff)

    def _indexes(self, c: SyncContext, completions: int, now: datetime) -> None:
        """The index bookkeeping of Indexed Jobs, and the conditions it can lead to."""
        job = c.job
        c.prev_succeeded_indexes = parse_indexes(job["status"].get("completedIndexes"),
                                                 completions)
        c.succeeded_indexes = c.prev_succeeded_indexes | {
            i for p in c.pods if (i := completion_index(p)) is not None and i < completions
            and (p.get("status") or {}).get("phase") == "Succeeded"
            and TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())}
        c.succeeded = len(c.succeeded_indexes)
        if has_backoff_limit_per_index(job):
            c.failed_indexes = failed_indexes(job, c.pods)
            most = job["spec"].get("maxFailedIndexes")
            if c.finished is None:
                if most is not None and len(c.failed_indexes) > int(most):
                    c.finished = new_condition(
                        "FailureTarget", "True", "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes", now)
                elif c.failed_indexes and \
                        len(c.failed_indexes) + len(c.succeeded_indexes) >= completions:
                    c.finished = new_condition("FailureTarget", "True", "FailedIndexes",
                                               "Job has failed indexes", now)
            c.delayed = delayed_deletion_per_index(job, c.pods, c.active_pods,
                                                   c.succeeded_indexes, c.failed_indexes, now)
        if c.finished is None:
            message, met = match_success_policy(job["spec"].get("successPolicy"), completions,
                                                c.succeeded_indexes)
            if met:
                c.finished = new_condition("SuccessCriteriaMet", "True", "SuccessPolicy",
                                           message, now)

    def _new_finished(self, c: SyncContext, uncounted: Obj) -> tuple[list[Obj], list[Obj]]:
        """getNewFinishedPods: finished pods with a finalizer, not counted yet."""
        counted = set(uncounted.get("succeeded") or ()) | set(uncounted.get("failed") or ())
        ok, failed = [], []
        completions = c.job["spec"].get("completions")
        for p in c.pods:
            uid = p["metadata"].get("uid")
            if TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ()) or \
                    uid in counted or uid in c.expected_rm:
                continue
            if is_indexed(c.job):
                ix = completion_index(p)
                if ix is None or ix >= int(completions):
                    continue
            if (p.get("status") or {}).get("phase") == "Succeeded":
                ok.append(p)
            elif is_pod_failed(p, c.job):
                failed.append(p)
        return ok, failed

    def _next_backoff(self, key: str, ok: list[Obj], failed: list[Obj], now: datetime
                      ) -> tuple[int, datetime | None]:
        """newBackoffRecord: failures since the last success and the latest failure time."""
        count, last = self._backoff.get(key, (0, None))
        if ok:
            last_ok = max(finished_at(p, now) for p in ok)
            after = [t for p in failed if (t := finished_at(p, now)) > last_ok]
            return len(after), (max(after) if after else None)
        if not failed:
            return count, last
        latest = max(finished_at(p, now) for p in failed)
        return count + len(failed), max(latest, last) if last else latest

    @staticmethod
    def _past_restarts(job: Obj, pods: list[Obj]) -> bool:
        """pastBackoffLimitOnFailure."""
        spec = job["spec"]
        if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
            return False
        restarts = sum(int(s.get("restartCount") or 0) for p in pods
                       if (p.get("status") or {}).get("phase") in ("Running", "Pending")
                       for s in (p["status"].get("initContainerStatuses") or [])
                       + (p["status"].get("containerStatuses") or []))
        limit = int(spec.get("backoffLimit", 6))
        return restarts > 0 if limit == 0 else restarts >= limit

    @staticmethod
    def _past_deadline(job: Obj, now: datetime) -> bool:
        ads = job["spec"].get("activeDeadlineSeconds")
        start = parse_time((job.get("status") or {}).get("startTime"))
        if ads is None or start is None or job["spec"].get("suspend"):
            return False
        return (now - start).total_seconds() >= int(ads)

    def _suspend_condition(self, job: Obj, suspended: bool, now: datetime) -> bool:
        conds = job["status"].setdefault("conditions", [])
        cur = next((x for x in conds if x.get("type") == "Suspended"), None)
        want = ("True", "JobSuspended", "Job suspended") if suspended else \
            ("False", "JobResumed", "Job resumed")
        if cur is None and not suspended:
            return False
        if cur is not None and (cur.get("status"), cur.get("reason"), cur.get("message")) == want:
            return False
        new = new_condition("Suspended", *want, now)
        if cur is None:
            conds.append(new)
        else:
            cur.clear()
            cur.update(new)
        self.recorder.event(job, NORMAL, "Suspended" if suspended else "Resumed", want[2])
        if not suspended:
            job["status"]["startTime"] = timestamp(now)
        return True
