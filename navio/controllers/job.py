"""Jobs: run pods to completion, retrying failures, as kube-controller-manager's "job"
(pkg/controller/job, v1.32) does; plus "ttl-after-finished", which deletes finished Jobs.

Guarantees:
- Up to `parallelism` active pods, never more than the completions still missing; pods are
  created from the template with the `batch.kubernetes.io/job-tracking` finalizer, an
  ownerReference to the Job, in slow-start batches (1, 2, 4, ...), each with a
  `SuccessfulCreate` event. Indexed Jobs give each pod the
  `batch.kubernetes.io/job-completion-index` annotation and label, hostname
  `<job>-<index>` and a JOB_COMPLETION_INDEX variable; the lowest missing indexes go first.
- Finished pods are counted exactly once: recorded in `status.uncountedTerminatedPods`,
  their finalizer removed, then moved to `succeeded`/`failed` (or `completedIndexes`).
  A pod counts as failed when Failed, or when deleted before succeeding
  (podReplacementPolicy TerminatingOrFailed).
- Replacements for failed pods wait 10 s · 2^(failures since the last success − 1), capped
  at 10 min (options `job-pod-failure-backoff` / `job-pod-failure-max-backoff`).
- More failures than `backoffLimit` (or restarts past it with restartPolicy OnFailure) or
  exceeding `activeDeadlineSeconds` adds FailureTarget (BackoffLimitExceeded "Job has reached
  the specified backoff limit" / DeadlineExceeded "Job was active longer than specified
  deadline"), deletes the active pods, and once none is left terminating adds Failed and a
  Warning event. Enough successes add SuccessCriteriaMet (CompletionsReached "Reached
  expected number of succeeded pods"), then Complete with `completionTime` and a
  `Completed` "Job completed" event. `suspend` deletes active pods (Suspended condition).
- Pod events are batched for 1 s per Job (`job-sync-batch-period`), as upstream.
- A finished Job with `ttlSecondsAfterFinished` is deleted (foreground, preconditioned on
  its resourceVersion) once that long has passed since it finished.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from navio.api import errors
from navio.client import JOBS, NAMESPACE_INDEX, NORMAL, PODS, WARNING, namespace_index
from navio.controllers.base import Controller, ControllerContext, owner_key
from navio.controllers.controller_utils import (SLOW_START_INITIAL_BATCH_SIZE, Expectations,
                                                add_index, is_pod_active, is_pod_ready,
                                                pod_from_template, slow_start_batch)
from navio.controllers.manager import register

__all__ = ["JobController", "TTLAfterFinishedController", "TRACKING_FINALIZER",
           "COMPLETION_INDEX", "format_indexes", "parse_indexes", "backoff_delay",
           "is_finished", "finish_time"]

log = logging.getLogger(__name__)

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
_MAX_PER_SYNC = 500
_MAX_UNCOUNTED = 500
Obj = dict[str, Any]
Now = Callable[[], datetime]


def _ts(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _cond(obj: Obj, ctype: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or ()
                 if c.get("type") == ctype and c.get("status") == "True"), None)


def is_finished(job: Obj) -> bool:
    return _cond(job, "Complete") is not None or _cond(job, "Failed") is not None


def finish_time(job: Obj) -> datetime | None:
    cond = _cond(job, "Complete") or _cond(job, "Failed")
    return _parse((cond or {}).get("lastTransitionTime")) if cond else None


def format_indexes(indexes: set[int]) -> str:
    """orderedIntervals.String: "0-2,4,6-7"."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            out.update(i for i in range(int(lo), int(hi or lo) + 1) if i < completions)
    return out


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """backoffRecord.getRemainingTime's backoff: base · 2^(failures−1), capped."""
    return 0.0 if failures <= 0 else min(base * 2 ** (failures - 1), cap)


def _index(pod: Obj) -> int | None:
    meta = pod.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None and str(value).isdigit() else None


def _finished_at(pod: Obj, now: datetime) -> datetime:
    """getFinishedTime: the latest container finish, else the pod's last condition change."""
    status = pod.get("status") or {}
    times = [_parse(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for c in status.get("containerStatuses") or ()]
    times += [_parse(c.get("lastTransitionTime")) for c in status.get("conditions") or ()
              if c.get("type") == "Ready"]
    good = [t for t in times if t is not None]
    return max(good) if good else now


def _removal_rank(pod: Obj) -> tuple[Any, ...]:
    """controller.ActivePods order: pods earlier in their life are deleted first."""
    status = pod.get("status") or {}
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status.get("phase")), 0)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = _parse(pod["metadata"].get("creationTimestamp")) or datetime.min.replace(
        tzinfo=timezone.utc)
    return (bool((pod.get("spec") or {}).get("nodeName")), phase, is_pod_ready(pod), -restarts,
            -created.timestamp())


def _condition(ctype: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    return {"type": ctype, "status": status, "lastProbeTime": _ts(now),
            "lastTransitionTime": _ts(now), "reason": reason, "message": message}


class _Ctx:
    """What one sync learned about a Job (syncJobCtx)."""

    def __init__(self, job: Obj, pods: list[Obj], expected_rm: set[str]) -> None:
        self.job, self.pods, self.expected_rm = job, pods, expected_rm
        self.active_pods = [p for p in pods if is_pod_active(p)]
        self.ready = sum(1 for p in self.active_pods if is_pod_ready(p))
        self.terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp")
                               and (p.get("status") or {}).get("phase")
                               not in ("Succeeded", "Failed"))
        self.finished: Obj | None = None
        self.succeeded = 0
        self.failed = 0
        self.succeeded_indexes: set[int] = set()


@register("job")
class JobController(Controller):
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
            self.queue.add_after(_key(new), self.batch)
        if is_finished(new):
            self._orphans(new)
        ads, start = (new.get("spec") or {}).get("activeDeadlineSeconds"), \
            _parse((new.get("status") or {}).get("startTime"))
        if ads is not None and start is not None and \
                ads != (old.get("spec") or {}).get("activeDeadlineSeconds"):
            left = start + timedelta(seconds=int(ads)) - self.now()
            self.queue.add_after(_key(new), left.total_seconds())

    def _job_deleted(self, job: Obj) -> None:
        self.enqueue(job)
        self._orphans(job)

    def _orphans(self, job: Obj) -> None:
        uid = job["metadata"].get("uid")
        for pod in self.pods.by_index(NAMESPACE_INDEX, job["metadata"]["namespace"]):
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ()) and any(
                    r.get("uid") == uid for r in pod["metadata"].get("ownerReferences") or ()):
                self.queue.add("pod:" + _key(pod))

    def _owner(self, pod: Obj) -> str | None:
        key = owner_key(pod, "Job")
        job = self.jobs.get(key) if key else None
        ref = next((r for r in pod["metadata"].get("ownerReferences") or ()
                    if r.get("controller")), None)
        if job is None or ref is None or ref.get("uid") != job["metadata"].get("uid"):
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ()):
                self.queue.add("pod:" + _key(pod))
            return None
        return key

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner(pod)
        if key is not None:
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, _key(pod))
            else:
                self.expectations.creation_observed(key)
            self.queue.add_after(key, self.batch)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._owner(new)
        if key is None:
            return
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get(
                "deletionTimestamp"):
            self.expectations.deletion_observed(key, _key(new))
        if TRACKING_FINALIZER not in (new["metadata"].get("finalizers") or ()):
            self._expected_rm.get(key, set()).discard(new["metadata"].get("uid"))
        self.queue.add_after(key, self.batch)

    def _pod_deleted(self, pod: Obj) -> None:
        key = owner_key(pod, "Job")
        if key is None:
            return
        if not pod["metadata"].get("deletionTimestamp"):
            self.expectations.deletion_observed(key, _key(pod))
        self._expected_rm.get(key, set()).discard(pod["metadata"].get("uid"))
        self.queue.add_after(key, self.batch)

    # ---- sync ---------------------------------------------------------------------------

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
        c = _Ctx(job, pods, set(self._expected_rm.get(key, set())))
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        new_ok, new_failed = self._new_finished(c, uncounted)
        c.succeeded = int(status.get("succeeded") or 0) + len(new_ok) + \
            len(uncounted.get("succeeded") or ())
        c.failed = int(status.get("failed") or 0) + len(new_failed) + \
            len(uncounted.get("failed") or ())
        suspended = bool(spec.get("suspend"))
        now = self.now()
        if not status.get("startTime") and not suspended:
            status["startTime"] = _ts(now)
        backoff = self._next_backoff(key, new_ok, new_failed, now)
        c.finished = copy.deepcopy(_cond(job, "SuccessCriteriaMet"))
        target = _cond(job, "FailureTarget")
        if c.finished is None and target is not None:
            c.finished = _condition("Failed", "True", target.get("reason", ""),
                                    target.get("message", ""), now)
        if c.finished is None:
            if c.failed > int(spec.get("backoffLimit", 6)) or self._past_restarts(job, pods):
                c.finished = _condition("FailureTarget", "True", "BackoffLimitExceeded",
                                        "Job has reached the specified backoff limit", now)
            elif self._past_deadline(job, now):
                c.finished = _condition("FailureTarget", "True", "DeadlineExceeded",
                                        "Job was active longer than specified deadline", now)
            elif spec.get("activeDeadlineSeconds") is not None and not suspended:
                start = _parse(status["startTime"]) or now
                left = start + timedelta(seconds=int(spec["activeDeadlineSeconds"])) - now
                self.queue.add_after(key, left.total_seconds())
        if indexed:
            prev = parse_indexes(status.get("completedIndexes"), int(completions))
            c.succeeded_indexes = prev | {i for p in pods if (i := _index(p)) is not None
                                          and i < int(completions)
                                          and (p.get("status") or {}).get("phase") == "Succeeded"}
            c.succeeded = len(c.succeeded_indexes)
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
                c.finished = _condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                        "Reached expected number of succeeded pods", now)
            elif managed:
                suspend_changed = self._suspend_condition(job, suspended, now)
        changed = suspend_changed or active != status.get("active", 0) or \
            c.ready != status.get("ready") or c.terminating != status.get("terminating")
        status.update(active=active, ready=c.ready, terminating=c.terminating)
        await self._track(key, c, changed, backoff)

    def _new_finished(self, c: _Ctx, uncounted: Obj) -> tuple[list[Obj], list[Obj]]:
        counted = set(uncounted.get("succeeded") or ()) | set(uncounted.get("failed") or ())
        ok, failed = [], []
        completions = c.job["spec"].get("completions")
        for p in c.pods:
            uid = p["metadata"].get("uid")
            if TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ()) or \
                    uid in counted or uid in c.expected_rm:
                continue
            if c.job["spec"].get("completionMode") == "Indexed":
                ix = _index(p)
                if ix is None or ix >= int(completions):
                    continue
            if (p.get("status") or {}).get("phase") == "Succeeded":
                ok.append(p)
            elif self._pod_failed(p, c.job):
                failed.append(p)
        return ok, failed

    @staticmethod
    def _pod_failed(pod: Obj, job: Obj) -> bool:
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            return True
        if job["spec"].get("podReplacementPolicy") == "Failed":
            return False
        return bool(pod["metadata"].get("deletionTimestamp")) and phase != "Succeeded"

    def _next_backoff(self, key: str, ok: list[Obj], failed: list[Obj], now: datetime
                      ) -> tuple[int, datetime | None]:
        """newBackoffRecord: failures since the last success and the latest failure time."""
        count, last = self._backoff.get(key, (0, None))
        if ok:
            last_ok = max(_finished_at(p, now) for p in ok)
            after = [t for p in failed if (t := _finished_at(p, now)) > last_ok]
            return len(after), (max(after) if after else None)
        if not failed:
            return count, last
        latest = max(_finished_at(p, now) for p in failed)
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
        start = _parse((job.get("status") or {}).get("startTime"))
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
        new = _condition("Suspended", *want, now)
        if cur is None:
            conds.append(new)
        else:
            cur.clear()
            cur.update(new)
        self.recorder.event(job, NORMAL, "Suspended" if suspended else "Resumed", want[2])
        if not suspended:
            job["status"]["startTime"] = _ts(now)
        return True

    # ---- pods ---------------------------------------------------------------------------

    async def _manage(self, key: str, job: Obj, c: _Ctx, backoff: tuple[int, datetime | None],
                      now: datetime) -> int:
        """manageJob: create or delete pods towards the wanted active count."""
        spec = job["spec"]
        active = len(c.active_pods)
        if spec.get("suspend"):
            self.expectations.expect_deletions(key, [_key(p) for p in c.active_pods])
            removed = await self._delete_pods(job, c.active_pods, keep_finalizers=False, key=key)
            c.terminating += removed
            return active - removed
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = active if c.succeeded > 0 else parallelism
        else:
            want = max(min(int(completions) - c.succeeded, parallelism), 0)
        indexed = spec.get("completionMode") == "Indexed"
        surplus = self._surplus(c, indexed, max(active - want, 0))
        if surplus:
            self.expectations.expect_deletions(key, [_key(p) for p in surplus])
            removed = await self._delete_pods(job, surplus, keep_finalizers=False, key=key)
            c.terminating += removed
            return active - removed
        terminating = c.terminating if spec.get("podReplacementPolicy") == "Failed" else 0
        diff = min(want - terminating - active, _MAX_PER_SYNC)
        if diff <= 0:
            return active
        failures, last = backoff
        if failures and last is not None:
            wait = backoff_delay(failures, self.backoff_base, self.backoff_cap) - \
                (now - last).total_seconds()
            if wait > 0:
                self.queue.add_after(key, max(wait, self.batch))
                return active
        indexes: list[int | None] = [None] * diff
        if indexed:
            busy = {i for p in c.active_pods if (i := _index(p)) is not None}
            free = [i for i in range(int(completions)) if i not in busy
                    and i not in c.succeeded_indexes]
            indexes = list(free[:diff])
        self.expectations.expect_creations(key, len(indexes))
        pending = iter(indexes)
        created, err = await slow_start_batch(
            len(indexes), SLOW_START_INITIAL_BATCH_SIZE,
            lambda: self._create_pod(job, next(pending)))
        for _ in range(len(indexes) - created):
            self.expectations.creation_observed(key)      # never coming
        if err is not None:
            raise err
        return active + created

    @staticmethod
    def _surplus(c: _Ctx, indexed: bool, at_least: int) -> list[Obj]:
        """activePodsForRemoval: duplicate or out-of-range indexes first, then by rank."""
        remove: list[Obj] = []
        left = c.active_pods
        if indexed:
            completions = int(c.job["spec"]["completions"])
            seen: dict[int, Obj] = {}
            left = []
            for p in sorted(c.active_pods, key=_removal_rank, reverse=True):
                ix = _index(p)
                if ix is None or ix >= completions or ix in seen:
                    remove.append(p)
                else:
                    seen[ix] = p
                    left.append(p)
        if len(remove) < at_least:
            remove += sorted(left, key=_removal_rank)[:at_least - len(remove)]
        return remove[:_MAX_PER_SYNC]

    async def _create_pod(self, job: Obj, index: int | None) -> None:
        name = job["metadata"]["name"]
        pod = pod_from_template(job["spec"].get("template") or {}, job)
        meta, spec = pod["metadata"], pod["spec"]
        meta["namespace"] = job["metadata"]["namespace"]
        finalizers = meta.setdefault("finalizers", [])
        if TRACKING_FINALIZER not in finalizers:
            finalizers.append(TRACKING_FINALIZER)
        if index is not None:
            meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
            meta["labels"][COMPLETION_INDEX] = str(index)
            meta["generateName"] = f"{name}-{index}-"
            spec["hostname"] = f"{name}-{index}"
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

    async def _delete_pods(self, job: Obj, pods: list[Obj], *, keep_finalizers: bool,
                           key: str | None = None) -> int:
        async def one(pod: Obj) -> bool:
            name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
            try:
                if not keep_finalizers:
                    await self._remove_finalizer(pod)
                await self.client.delete(PODS, name, ns)
            except errors.NotFound:
                if key is not None:
                    self.expectations.deletion_observed(key, _key(pod))
                return True
            except errors.ApiError as exc:
                if key is not None:
                    self.expectations.deletion_observed(key, _key(pod))
                self.recorder.event(job, WARNING, "FailedDelete", f"Error deleting: {exc}")
                return False
            self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")
            return True
        return sum(await asyncio.gather(*(one(p) for p in pods)))

    async def _remove_finalizer(self, pod: Obj) -> None:
        fins = pod["metadata"].get("finalizers") or []
        if TRACKING_FINALIZER in fins:
            patch = [{"op": "test", "path": "/metadata/finalizers", "value": fins},
                     {"op": "replace", "path": "/metadata/finalizers",
                      "value": [f for f in fins if f != TRACKING_FINALIZER]}]
            try:
                await self.client.patch(PODS, pod["metadata"]["name"], patch,
                                        pod["metadata"]["namespace"], patch_type="json")
            except errors.ApiError:
                fresh = await self.client.get(PODS, pod["metadata"]["name"],
                                              pod["metadata"]["namespace"])
                fins = fresh["metadata"].get("finalizers") or []
                if TRACKING_FINALIZER in fins:
                    await self.client.patch(PODS, pod["metadata"]["name"], {"metadata": {
                        "finalizers": [f for f in fins if f != TRACKING_FINALIZER],
                        "resourceVersion": fresh["metadata"]["resourceVersion"]}},
                        pod["metadata"]["namespace"])

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

    # ---- status (trackJobStatusAndRemoveFinalizers) --------------------------------------

    async def _track(self, key: str, c: _Ctx, needs_flush: bool,
                     backoff: tuple[int, datetime | None]) -> None:
        job, status = c.job, c.job["status"]
        uncounted = status["uncountedTerminatedPods"]
        indexed = job["spec"].get("completionMode") == "Indexed"
        with_fin = {p["metadata"]["uid"] for p in c.pods
                    if TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())
                    and p["metadata"]["uid"] not in c.expected_rm}
        needs_flush |= _clean_uncounted(status, with_fin)
        to_release: list[Obj] = []
        for p in c.pods:
            uid = p["metadata"]["uid"]
            if uid not in with_fin:
                continue
            failed = self._pod_failed(p, job)
            phase = (p.get("status") or {}).get("phase")
            if not (job["metadata"].get("deletionTimestamp") or c.finished is not None
                    or phase == "Succeeded" or failed):
                continue
            to_release.append(p)
            if phase == "Succeeded" and uid not in (uncounted.get("failed") or ()):
                if not indexed and uid not in (uncounted.get("succeeded") or ()):
                    uncounted.setdefault("succeeded", []).append(uid)
                    needs_flush = True
            elif failed or (c.finished is not None and c.finished["type"] != "SuccessCriteriaMet"):
                ix = _index(p)
                if uid not in (uncounted.get("failed") or ()) and (
                        not indexed or (ix is not None and ix < int(job["spec"]["completions"]))):
                    uncounted.setdefault("failed", []).append(uid)
                    needs_flush = True
            if len(to_release) >= _MAX_UNCOUNTED:
                break
        if indexed:
            text = format_indexes(c.succeeded_indexes)
            needs_flush |= text != status.get("completedIndexes", "")
            status["completedIndexes"] = text
            status["succeeded"] = len(c.succeeded_indexes)
        conds = status.setdefault("conditions", [])
        now = self.now()
        if c.finished is not None and c.finished["type"] == "FailureTarget":
            conds.append(c.finished)
            needs_flush = True
            c.finished = _condition("Failed", "True", c.finished["reason"],
                                    c.finished["message"], now)
        if c.finished is not None and c.finished["type"] == "SuccessCriteriaMet":
            if _cond(job, "SuccessCriteriaMet") is None:
                conds.append(c.finished)
                needs_flush = True
            c.finished = _condition("Complete", "True", c.finished["reason"],
                                    c.finished["message"], now)
        if needs_flush:
            await self._flush(c)
            self._backoff[key] = backoff
            needs_flush = False
        if to_release:
            self._expected_rm.setdefault(key, set()).update(p["metadata"]["uid"]
                                                            for p in to_release)
            results = await asyncio.gather(*(self._remove_finalizer(p) for p in to_release),
                                           return_exceptions=True)
            for p, res in zip(to_release, results):
                if not isinstance(res, Exception) or isinstance(res, errors.NotFound):
                    with_fin.discard(p["metadata"]["uid"])
                else:
                    self._expected_rm[key].discard(p["metadata"]["uid"])
            needs_flush |= _clean_uncounted(c.job["status"], with_fin)
            errs = [r for r in results if isinstance(r, Exception)
                    and not isinstance(r, errors.NotFound)]
            if errs:
                if needs_flush:
                    await self._flush(c)
                raise errs[0]
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

    def _enact_finished(self, c: _Ctx) -> bool:
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

    async def _flush(self, c: _Ctx) -> None:
        stored = await self.client.update_status(JOBS, c.job)
        c.job["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]


def _clean_uncounted(status: Obj, with_fin: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: released pods move into the counters."""
    unc = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        keep = [u for u in unc.get(field) or () if u in with_fin]
        if len(keep) != len(unc.get(field) or ()):
            status[counter] = int(status.get(counter) or 0) + len(unc[field]) - len(keep)
            changed = True
        unc[field] = keep
        if not keep:
            unc.pop(field, None)
    return changed


def _key(obj: Obj) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


@register("ttl-after-finished")
class TTLAfterFinishedController(Controller):
    """pkg/controller/ttlafterfinished: delete finished Jobs `ttlSecondsAfterFinished` later."""

    name = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.now: Now = ctx.options.get("job-now") or (lambda: datetime.now(timezone.utc))
        self.jobs = ctx.informers.get(JOBS)
        self.jobs.add_handler(on_add=self._maybe, on_update=lambda o, n: self._maybe(n))

    def _maybe(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and \
                not job["metadata"].get("deletionTimestamp") and is_finished(job):
            self.enqueue(job)

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp") or not is_finished(job):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        done = finish_time(job)
        if ttl is None or done is None:
            return
        left = (done + timedelta(seconds=int(ttl)) - self.now()).total_seconds()
        if left > 0:
            self.queue.add_after(key, left)
            return
        ns, _, name = key.partition("/")
        try:
            await self.client.delete(JOBS, name, ns, propagation_policy="Foreground",
                                     preconditions={"resourceVersion":
                                                    job["metadata"]["resourceVersion"]})
            log.info("finished job deleted after ttl", extra={"job": key})
        except (errors.NotFound, errors.Conflict):
            pass
