"""CronJobs: create a Job at each scheduled time (kube-controller-manager's "cronjob",
pkg/controller/cronjob/cronjob_controllerv2.go and utils.go, v1.32).

Guarantees:
- The Job for scheduled time T is named `<cronjob>-<T in minutes since the epoch>`, so a
  restart never creates it twice; it carries the template's labels and annotations plus
  `batch.kubernetes.io/cronjob-scheduled-timestamp` (T in the CronJob's time zone, RFC 3339)
  and a controller ownerReference. `status.active` lists unfinished Jobs,
  `status.lastScheduleTime` the last T started, `status.lastSuccessfulTime` the latest
  completion.
- Only the most recent missed time is started; more than 100 missed times add a
  `TooManyMissedTimes` warning. A time later than `startingDeadlineSeconds` is skipped with
  `MissSchedule`. `concurrencyPolicy` Forbid skips while a Job is active
  (`JobAlreadyActive`), Replace deletes active Jobs first, Allow runs them side by side.
  `suspend` starts nothing. `timeZone` (IANA) applies to the schedule; an unknown zone
  gives `UnknownTimeZone`, an unparseable schedule `UnparseableSchedule`.
- Finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted
  oldest first (background propagation), each with `SuccessfulDelete`.
- After each sync the CronJob is requeued for its next time plus 100 ms. Time comes from
  the `cronjob-clock` option (an object with `now() -> datetime`), so tests can move it.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Protocol

from navio.api import errors
from navio.client import CRONJOBS, JOBS, NORMAL, WARNING
from navio.controllers.base import Controller, ControllerContext, owner_key
from navio.controllers.cron_schedule import Schedule, ScheduleError, load_location, parse_schedule
from navio.controllers.controller_utils import add_index
from navio.controllers.manager import register

__all__ = ["CronJobController", "WallClock", "most_recent_schedule_time", "next_schedule_delay",
           "job_name", "job_from_template", "SCHEDULED_TIMESTAMP_ANNOTATION"]

log = logging.getLogger(__name__)

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
_NEXT_DELTA = 0.1
_MANY_MISSED = 100
Obj = dict[str, Any]


class WallClock(Protocol):
    def now(self) -> datetime: ...


class _RealWallClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _ts(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def most_recent_schedule_time(cj: Obj, now: datetime, sched: Schedule, with_deadline: bool
                              ) -> tuple[datetime, datetime | None, int]:
    """mostRecentScheduleTime: (earliest time considered, most recent unmet time or None,
    rough count of missed times). Raises ScheduleError for schedules that never fire."""
    status, spec = cj.get("status") or {}, cj.get("spec") or {}
    earliest = _parse(status.get("lastScheduleTime")) or \
        _parse(cj["metadata"].get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=int(deadline)))
    t1 = sched.next(earliest)
    t2 = sched.next(t1) if t1 else None
    if t1 is None or t2 is None:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    if now < t1:
        return earliest, None, 0
    if now < t2:
        return earliest, t1, 0
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    recent: datetime | None = None
    t: datetime | None = sched.next(t1 + timedelta(seconds=(missed - 2) * between))
    while t is not None and t <= now:
        recent = t
        t = sched.next(t)
    return earliest, recent, missed


def next_schedule_delay(cj: Obj, now: datetime, sched: Schedule) -> float:
    """nextScheduleTimeDuration: seconds until the next time to sync, plus 100 ms."""
    try:
        earliest, recent, missed = most_recent_schedule_time(cj, now, sched, False)
        base = recent or (earliest if not missed else now)
    except ScheduleError:
        base = now
    nxt = sched.next(base)
    return (nxt - now).total_seconds() + _NEXT_DELTA if nxt else 3600.0


def job_name(cj: Obj, scheduled: datetime) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Obj, scheduled: datetime) -> Obj:
    """getJobFromTemplate2."""
    tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    where = load_location((cj.get("spec") or {}).get("timeZone"))
    local = scheduled.astimezone(where)
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = local.isoformat().replace("+00:00", "Z") \
        if local.utcoffset() == timedelta(0) else local.isoformat()
    meta = cj["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cj, scheduled), "namespace": meta["namespace"],
                         "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": copy.deepcopy(tmpl.get("spec") or {})}


def _finished(job: Obj) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def _job_ref(job: Obj) -> Obj:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion", "")}


@register("cronjob")
class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.clock: WallClock = ctx.options.get("cronjob-clock") or _RealWallClock()
        self.cronjobs = ctx.informers.get(CRONJOBS)
        self.jobs = ctx.informers.get(JOBS)
        add_index(self.jobs, "cronjob-owner",
                  lambda j: [k] if (k := owner_key(j, "CronJob")) else [])
        self.cronjobs.add_handler(**self.handlers(self.enqueue))
        self.jobs.add_handler(**self.handlers(self._job))

    def _job(self, job: Obj) -> None:
        key = owner_key(job, "CronJob")
        if key is not None:
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        shared = self.cronjobs.get(key)
        if shared is None:
            return
        cj = copy.deepcopy(shared)
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.jobs.by_index("cronjob-owner", key)
                if any(r.get("controller") and r.get("uid") == uid
                       for r in j["metadata"].get("ownerReferences") or ())]
        delay, changed = await self._sync(cj, jobs)
        if not cj["metadata"].get("deletionTimestamp"):
            changed |= await self._cleanup(cj, jobs)
        if changed:
            try:
                await self.client.update_status(CRONJOBS, cj)
            except errors.NotFound:
                return
        if delay is not None:
            self.queue.add_after(key, max(delay, 0.0))

    async def _sync(self, cj: Obj, jobs: list[Obj]) -> tuple[float | None, bool]:
        """syncCronJob: (seconds until the next sync or None, whether status changed)."""
        now = self.clock.now()
        status = cj.setdefault("status", {})
        active: list[Obj] = status.setdefault("active", [])
        changed = False
        children = {j["metadata"]["uid"] for j in jobs}
        for j in jobs:
            found = any(a.get("uid") == j["metadata"]["uid"] for a in active)
            done = _finished(j)
            if not found and not done:
                self.recorder.event(cj, WARNING, "UnexpectedJob",
                                    "Saw a job that the controller did not create or forgot: "
                                    f"{j['metadata']['name']}")
            elif found and done:
                active[:] = [a for a in active if a.get("uid") != j["metadata"]["uid"]]
                self.recorder.event(cj, NORMAL, "SawCompletedJob",
                                    f"Saw completed job: {j['metadata']['name']}, "
                                    f"condition: {done}")
                changed = True
            if done == "Complete":
                completed = _parse((j.get("status") or {}).get("completionTime"))
                last = _parse(status.get("lastSuccessfulTime"))
                if completed and (last is None or completed > last):
                    status["lastSuccessfulTime"] = _ts(completed)
                    changed = True
        for ref in list(active):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref["name"], ref.get("namespace"))
            except errors.NotFound:
                self.recorder.event(cj, NORMAL, "MissingJob",
                                    f"Active job went missing: {ref['name']}")
                active.remove(ref)
                changed = True
        spec = cj.get("spec") or {}
        if cj["metadata"].get("deletionTimestamp"):
            return None, changed
        schedule = spec.get("schedule", "")
        if spec.get("timeZone"):
            try:
                load_location(spec["timeZone"])
            except ScheduleError as exc:
                self.recorder.event(cj, WARNING, "UnknownTimeZone",
                                    f'invalid timeZone: "{spec["timeZone"]}": {exc}')
                return None, changed
            if schedule.startswith(("TZ=", "CRON_TZ=")):
                self.recorder.event(cj, WARNING, "UnsupportedSchedule",
                                    f'CRON_TZ or TZ used in schedule "{schedule}" is not '
                                    "officially supported, see https://kubernetes.io/docs/"
                                    "concepts/workloads/controllers/cron-jobs/ for more details")
            else:
                schedule = f"TZ={spec['timeZone']} {schedule}"
        if spec.get("suspend"):
            return None, changed
        try:
            sched = parse_schedule(schedule)
        except ScheduleError as exc:
            self.recorder.event(cj, WARNING, "UnparseableSchedule",
                                f'unparseable schedule: "{spec.get("schedule", "")}" : {exc}')
            return None, changed
        try:
            _, scheduled, missed = most_recent_schedule_time(cj, now, sched, True)
        except ScheduleError as exc:
            self.recorder.event(cj, WARNING, "InvalidSchedule",
                                f"invalid schedule: {spec.get('schedule', '')} : {exc}")
            return None, changed
        if scheduled is not None and missed > _MANY_MISSED:
            self.recorder.event(cj, WARNING, "TooManyMissedTimes",
                                "too many missed start times. Set or decrease "
                                ".spec.startingDeadlineSeconds or check clock skew")
        if scheduled is None:
            return next_schedule_delay(cj, now, sched), changed
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cj, WARNING, "MissSchedule",
                                "Missed scheduled time to start a job: "
                                f"{format_datetime(scheduled.astimezone(timezone.utc))}")
            return next_schedule_delay(cj, now, sched), changed
        name = job_name(cj, scheduled)
        if any(a.get("name") == name for a in active) or \
                _parse(status.get("lastScheduleTime")) == scheduled:
            return next_schedule_delay(cj, now, sched), changed
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(cj, NORMAL, "JobAlreadyActive",
                                "Not starting job because prior execution is running and "
                                "concurrency policy is Forbid")
            return next_schedule_delay(cj, now, sched), changed
        if policy == "Replace":
            for ref in list(active):
                job = self.jobs.get(f"{ref.get('namespace')}/{ref['name']}")
                if job is None:
                    try:
                        job = await self.client.get(JOBS, ref["name"], ref.get("namespace"))
                    except errors.ApiError as exc:
                        self.recorder.event(cj, WARNING, "FailedGet", f"Get job: {exc}")
                        raise
                await self._delete_job(cj, job)
                changed = True
        body = job_from_template(cj, scheduled)
        try:
            created = await self.client.create(JOBS, body)
            self.recorder.event(cj, NORMAL, "SuccessfulCreate",
                                f"Created job {created['metadata']['name']}")
            log.info("cronjob started job", extra={"cronjob": f"{cj['metadata']['namespace']}/"
                                                              f"{cj['metadata']['name']}",
                                                   "job": name})
        except errors.AlreadyExists:
            created = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            owner: Obj | None = next((r for r in created["metadata"].get("ownerReferences")
                                      or () if r.get("controller")), None)
            if owner is None or owner.get("uid") != cj["metadata"]["uid"] or any(
                    a.get("uid") == created["metadata"]["uid"] for a in active):
                return None, changed
        except errors.ApiError as exc:
            if "being terminated" not in str(exc):
                self.recorder.event(cj, WARNING, "FailedCreate", f"Error creating job: {exc}")
            raise
        active.append(_job_ref(created))
        status["lastScheduleTime"] = _ts(scheduled)
        return next_schedule_delay(cj, now, sched), True

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        meta = job["metadata"]
        try:
            await self.client.delete(JOBS, meta["name"], meta["namespace"],
                                     propagation_policy="Background")
        except errors.NotFound:
            pass
        except errors.ApiError as exc:
            self.recorder.event(cj, WARNING, "FailedDelete", f"Deleted job: {exc}")
            return False
        active = (cj.get("status") or {}).get("active") or []
        active[:] = [a for a in active if a.get("uid") != meta.get("uid")]
        self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}")
        return True

    async def _cleanup(self, cj: Obj, jobs: list[Obj]) -> bool:
        """cleanupFinishedJobs: keep the newest finished Jobs within the history limits."""
        spec = cj.get("spec") or {}
        changed = False
        for kind, field in (("Complete", "successfulJobsHistoryLimit"),
                            ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(field)
            if limit is None:
                continue
            done = [j for j in jobs if _finished(j) == kind]
            done.sort(key=lambda j: (_parse((j.get("status") or {}).get("startTime"))
                                     or datetime.max.replace(tzinfo=timezone.utc),
                                     j["metadata"]["name"]))
            for job in done[:max(len(done) - int(limit), 0)]:
                changed |= await self._delete_job(cj, job)
        return changed
