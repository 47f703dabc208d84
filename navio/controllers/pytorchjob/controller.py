"""PyTorchJobs (kubeflow.org/v1): distributed training run as Kubeflow's training operator
runs it, gang-scheduled by navio's scheduler.

Guarantees (as the operator's ReconcileJobs, with gang scheduling on):
- A new job gets the Created condition. While it is not finished, its PodGroup exists (minMember
  all replicas, or schedulingPolicy.minAvailable), and every replica has its pod and headless
  Service (spec.py); pods beyond a replica count are deleted. The scheduler binds the pods
  all together or none; while the PodGroup is Unschedulable, the job gets a Warning event
  carrying the PodGroup's reason (kubectl describe pytorchjob says why it waits). A gang
  that stays Unschedulable longer than schedulingPolicy.scheduleTimeoutSeconds while some of
  its members are bound (one was lost and cannot come back) releases them: they are deleted,
  re-created, and the whole gang is placed again, so no job holds capacity it cannot use.
- A Failed pod of an OnFailure/Always replica, or of an ExitCode replica whose exit code is
  retryable (128+), is deleted and re-created, and the job is Restarting; a non-retryable
  ExitCode failure, or any failed pod of a Never replica, fails the job. Restarts inside pods
  (OnFailure, Always) are the kubelet's; their sum over running pods is held against
  runPolicy.backoffLimit. activeDeadlineSeconds counts from status.startTime.
- Status: replicaStatuses {active, succeeded, failed, selector} per type, startTime,
  completionTime, lastReconcileTime, and the conditions of status.py. With a Master, the job
  succeeds when the master succeeds; without one, when every worker has.
- A finished job keeps or deletes its pods and Services per runPolicy.cleanPodPolicy
  (None, Running, All), always deletes its PodGroup, and is deleted itself
  ttlSecondsAfterFinished after completion. `runPolicy.suspend` deletes everything the job
  runs (Suspended condition); resuming restarts it with a new startTime.
- A job whose spec fails the operator's validation gets a Warning event with the reasons
  and nothing else happens until it is fixed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client import NAMESPACE_INDEX, NORMAL, PODS, SERVICES, WARNING, namespace_index
from navio.controllers.base import Controller, ControllerContext, owner_key
from navio.controllers.controller_utils import add_index
from navio.controllers.manager import register
from navio.controllers.pytorchjob.spec import (CONTAINER_NAME, MASTER, PODGROUPS,
                                               PYTORCHJOBS, REPLICA_INDEX_LABEL,
                                               REPLICA_TYPE_LABEL, WORKER, Obj, pod_for,
                                               pod_group_for, replica_labels, service_for,
                                               validate, with_defaults)
from navio.controllers.pytorchjob.status import (REASON, count_replicas, is_finished,
                                                 is_retryable_exit_code, is_running,
                                                 is_succeeded, is_suspended, parse_time,
                                                 past_active_deadline, past_backoff_limit,
                                                 set_condition, timestamp)

__all__ = ["PyTorchJobController"]

log = logging.getLogger(__name__)
_OWNER_INDEX = "pytorchjob-owner"


def _index(obj: Obj) -> int | None:
    try:
        return int((obj["metadata"].get("labels") or {}).get(REPLICA_INDEX_LABEL, ""))
    except ValueError:
        return None


def _exit_code(pod: Obj) -> int | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        term = (cs.get("state") or {}).get("terminated")
        if cs.get("name") == CONTAINER_NAME and term:
            return int(term.get("exitCode", 0))
    return None


@register("pytorchjob")
class PyTorchJobController(Controller):
    name = "pytorchjob"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.now = ctx.options.get("pytorchjob-now") or (lambda: datetime.now(timezone.utc))
        self.jobs = ctx.informers.get(PYTORCHJOBS)
        self.pods = ctx.informers.get(PODS)
        self.services = ctx.informers.get(SERVICES)
        self.groups = ctx.informers.get(PODGROUPS)
        add_index(self.pods, NAMESPACE_INDEX, namespace_index)
        for inf in (self.pods, self.services):
            add_index(inf, _OWNER_INDEX,
                      lambda o: [k] if (k := owner_key(o, PYTORCHJOBS.kind)) else [])
        self.jobs.add_handler(**self.handlers(self.enqueue))
        for inf in (self.pods, self.services, self.groups):
            inf.add_handler(**self.handlers(self._owned))
        self._told: dict[str, str] = {}           # last Warning sent per job (no repeats)

    def _owned(self, obj: Obj) -> None:
        key = owner_key(obj, PYTORCHJOBS.kind)
        if key is not None:
            self.queue.add(key)

    def _warn_once(self, job: Obj, key: str, reason: str, message: str) -> None:
        if self._told.get(key) != message:
            self._told[key] = message
            self.recorder.event(job, WARNING, reason, message)

    def _children(self, informer: Any, job: Obj, key: str) -> list[Obj]:
        uid = job["metadata"].get("uid")
        return [o for o in informer.by_index(_OWNER_INDEX, key)
                if any(r.get("controller") and r.get("uid") == uid
                       for r in o["metadata"].get("ownerReferences") or ())]

    async def reconcile(self, key: str) -> None:
        shared = self.jobs.get(key)
        if shared is None:
            self._told.pop(key, None)
            return                      # the garbage collector deletes what it owned
        if shared["metadata"].get("deletionTimestamp"):
            return
        job = with_defaults(shared)
        problems = validate(job)
        if problems:
            self._warn_once(shared, key, "InvalidSpec", "; ".join(problems))
            return
        status: Obj = copy.deepcopy(shared.get("status") or {})
        before = copy.deepcopy(status)
        now = self.now()
        name = job["metadata"]["name"]
        if not status.get("conditions"):
            set_condition(status, "Created", "True", REASON("Created"),
                          f"PyTorchJob {name} is created.", now)
        pods = self._children(self.pods, job, key)
        services = self._children(self.services, job, key)
        requeue = await self._sync(job, status, pods, services, now)
        if status != before:
            status["lastReconcileTime"] = timestamp(now)
            body = copy.deepcopy(shared)
            body["status"] = status
            try:
                await self.client.update_status(PYTORCHJOBS, body)
            except errors.NotFound:
                return
        if requeue is not None:
            self.queue.add_after(key, max(requeue, 0.5))

    async def _sync(self, job: Obj, status: Obj, pods: list[Obj], services: list[Obj],
                    now: datetime) -> float | None:
        """One pass of ReconcileJobs; returns seconds until a time-based re-check."""
        name = job["metadata"]["name"]
        run = job["spec"].get("runPolicy") or {}
        if is_finished(status):
            await self._clean_up(job, status, pods)
            if is_succeeded(status):
                for rs in (status.get("replicaStatuses") or {}).values():
                    rs["succeeded"] = rs.get("succeeded", 0) + rs.pop("active", 0)
            return await self._expire(job, status, now)
        if run.get("suspend"):
            await self._delete_all(job, pods, services)
            for rs in (status.get("replicaStatuses") or {}).values():
                rs.pop("active", None)
            msg = f"PyTorchJob {name} is suspended."
            if is_running(status):
                set_condition(status, "Running", "False", REASON("Suspended"), msg, now)
            if not is_suspended(status):
                set_condition(status, "Suspended", "True", REASON("Suspended"), msg, now)
                self.recorder.event(job, NORMAL, REASON("Suspended"), msg)
            return None
        if is_suspended(status):
            msg = f"PyTorchJob {name} is resumed."
            set_condition(status, "Suspended", "False", REASON("Resumed"), msg, now)
            status["startTime"] = timestamp(now)
            self.recorder.event(job, NORMAL, REASON("Resumed"), msg)
        status.setdefault("startTime", timestamp(now))

        by_type = {rtype: [p for p in pods if (p["metadata"].get("labels") or {})
                           .get(REPLICA_TYPE_LABEL) == rtype.lower()]
                   for rtype in job["spec"]["pytorchReplicaSpecs"]}
        failure = None
        if past_backoff_limit(job, by_type):
            failure = f"Job {name} has failed because it has reached the specified backoff limit"
        elif past_active_deadline(job, status, now) is not None:
            failure = (f"Job {name} has failed because it was active longer than specified "
                       f"deadline")
        if failure is not None:
            status.setdefault("completionTime", timestamp(now))
            await self._delete_all(job, pods, services)
            self.recorder.event(job, NORMAL, REASON("Failed"), failure)
            set_condition(status, "Failed", "True", REASON("Failed"), failure, now)
            return await self._expire(job, status, now)

        gang_wait = await self._ensure_pod_group(job, pods, now)
        replica_statuses: Obj = {}
        restarted = False
        for rtype in sorted(job["spec"]["pytorchReplicaSpecs"]):
            replica_statuses[rtype], again = await self._sync_replicas(job, status, rtype,
                                                                       by_type[rtype], now)
            restarted |= again
            await self._sync_services(job, rtype, services)
        status["replicaStatuses"] = replica_statuses
        self._update_conditions(job, status, now, restarted)
        if is_finished(status):
            return 0.0                      # clean up on the next pass, as the operator
        deadline = run.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        waits = [w for w in (gang_wait, None if deadline is None or start is None else
                             (start - now).total_seconds() + int(deadline)) if w is not None]
        return min(waits) if waits else None

    async def _sync_replicas(self, job: Obj, status: Obj, rtype: str, pods: list[Obj],
                             now: datetime) -> tuple[Obj, bool]:
        """ReconcilePods for one replica type: create the missing, delete the surplus and
        the failed that should be retried; count what is left. Also says whether a replica
        was restarted."""
        spec = job["spec"]["pytorchReplicaSpecs"][rtype]
        want = int(spec.get("replicas") or 0)
        name = job["metadata"]["name"]
        by_index: dict[int, list[Obj]] = {}
        for pod in pods:
            idx = _index(pod)
            if idx is not None:
                by_index.setdefault(idx, []).append(pod)
        # All missing members at once: a gang is placed only when every member exists.
        await asyncio.gather(*(self._create(PODS, job, pod_for(job, rtype, idx))
                               for idx in range(want) if idx not in by_index))
        policy = spec.get("restartPolicy")
        restarted = False
        for idx, same in sorted(by_index.items()):
            pod = same[0]
            if idx >= want:
                await self._delete(PODS, pod)
                continue
            if (pod.get("status") or {}).get("phase") != "Failed" or \
                    pod["metadata"].get("deletionTimestamp"):
                continue
            code = _exit_code(pod)
            if code is not None:
                self.recorder.event(job, NORMAL, "ExitedWithCode",
                                    f"Pod: {pod['metadata']['namespace']}."
                                    f"{pod['metadata']['name']} exited with code {code}")
            if policy in ("OnFailure", "Always") or (
                    policy == "ExitCode" and code is not None and is_retryable_exit_code(code)):
                await self._delete(PODS, pod)
                restarted = True
                msg = f"job {name} is restarting because {rtype} replica(s) failed."
                self.recorder.event(job, WARNING, REASON("Restarting"), msg)
                set_condition(status, "Restarting", "True", REASON("Restarting"), msg, now)
            elif policy == "ExitCode":
                msg = f'job "{name}" is failing because "{rtype}" replica(s) failed.'
                self.recorder.event(job, WARNING, REASON("Failed"), msg)
                set_condition(status, "Failed", "True", REASON("Failed"), msg, now)
            else:                               # Never: a failed replica fails the job
                failed = sum(1 for i, p in by_index.items() if i < want and
                             (p[0].get("status") or {}).get("phase") == "Failed")
                msg = f"PyTorchJob {name} is failed because {failed} {rtype} replica(s) failed."
                if not is_finished(status):
                    self.recorder.event(job, NORMAL, REASON("Failed"), msg)
                status.setdefault("completionTime", timestamp(now))
                set_condition(status, "Failed", "True", REASON("Failed"), msg, now)
        counts = count_replicas(same[0] for idx, same in by_index.items() if idx < want)
        selector = ",".join(f"{k}={v}" for k, v in
                            sorted(replica_labels(name, rtype).items()))
        return {**{k: v for k, v in counts.items() if v}, "selector": selector}, restarted

    async def _sync_services(self, job: Obj, rtype: str, services: list[Obj]) -> None:
        want = int(job["spec"]["pytorchReplicaSpecs"][rtype].get("replicas") or 0)
        have = {_index(s): s for s in services
                if (s["metadata"].get("labels") or {}).get(REPLICA_TYPE_LABEL) == rtype.lower()}
        await asyncio.gather(*(self._create(SERVICES, job, service_for(job, rtype, idx))
                               for idx in range(want) if idx not in have))
        for idx, svc in have.items():
            if idx is None or idx >= want:
                await self._delete(SERVICES, svc)

    def _update_conditions(self, job: Obj, status: Obj, now: datetime, restarted: bool
                           ) -> None:
        """UpdateJobStatus of the PyTorch controller."""
        name = job["metadata"]["name"]
        replicas = job["spec"]["pytorchReplicaSpecs"]
        if is_finished(status):
            return                          # a replica's failure failed it in this pass
        # A restart decided in this pass outlives the Running set below (the operator re-adds
        # it), so a restarting job does not look merely "running".
        restarting = next((c for c in status.get("conditions") or ()
                           if c.get("type") == "Restarting"), None) if restarted else None
        for rtype, spec in sorted(replicas.items()):
            rs = status["replicaStatuses"].get(rtype) or {}
            expected = int(spec.get("replicas") or 0) - rs.get("succeeded", 0)
            running = rs.get("active", 0)
            lead = MASTER if MASTER in replicas else WORKER
            if rtype == lead:
                if expected == 0:
                    msg = f"PyTorchJob {name} is successfully completed."
                    if not is_succeeded(status):
                        self.recorder.event(job, NORMAL, REASON("Succeeded"), msg)
                    status.setdefault("completionTime", timestamp(now))
                    set_condition(status, "Succeeded", "True", REASON("Succeeded"), msg, now)
                    return
                if running > 0:
                    set_condition(status, "Running", "True", REASON("Running"),
                                  f"PyTorchJob {name} is running.", now)
        if restarting is not None:
            set_condition(status, "Restarting", "True", restarting["reason"],
                          restarting["message"], now)

    async def _ensure_pod_group(self, job: Obj, pods: list[Obj], now: datetime
                                ) -> float | None:
        """Keep the job's PodGroup; say why it waits; and when it has waited longer than its
        scheduleTimeoutSeconds while some members are bound (a member lost and unable to
        come back), delete those members so the capacity they hold is released and the
        whole gang is placed again. Returns seconds until that timeout, if one runs."""
        want = pod_group_for(job)
        key = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
        current = self.groups.get(key)
        if current is None:
            await self._create(PODGROUPS, job, want)
            return None
        if current.get("spec") != want["spec"]:
            body = copy.deepcopy(current)
            body["spec"] = want["spec"]
            try:
                await self.client.update(PODGROUPS, body, job["metadata"]["namespace"])
            except (errors.NotFound, errors.Conflict):
                self.queue.add_after(key, 1.0)
        st = current.get("status") or {}
        if st.get("phase") != "Unschedulable":
            return None
        cond = next((c for c in st.get("conditions") or () if c.get("type") == "Scheduled"), {})
        self._warn_once(job, key, "PodGroupUnschedulable",
                        cond.get("message") or "the pod group cannot be scheduled yet")
        timeout = want["spec"].get("scheduleTimeoutSeconds")
        since = parse_time(cond.get("lastTransitionTime"))
        held = [p for p in pods if p["spec"].get("nodeName") and
                (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and
                not p["metadata"].get("deletionTimestamp")]
        if timeout is None or since is None or not held:
            return None
        left = (since - now).total_seconds() + int(timeout)
        if left > 0:
            return left
        self.recorder.event(job, WARNING, "GangScheduleTimeout",
                            f"pod group {key} could not be scheduled within {timeout}s: "
                            f"releasing the {len(held)} pod(s) it held")
        for pod in held:
            await self._delete(PODS, pod)
        return None

    async def _clean_up(self, job: Obj, status: Obj, pods: list[Obj]) -> None:
        """CleanUpResources: pods and Services per cleanPodPolicy, and the PodGroup."""
        policy = (job["spec"].get("runPolicy") or {}).get("cleanPodPolicy") or "None"
        if policy != "None":
            for pod in pods:
                if policy == "Running" and (pod.get("status") or {}).get("phase") not in (
                        "Running", "Pending"):
                    continue
                await self._delete(PODS, pod)
                await self._delete_named(SERVICES, pod["metadata"]["namespace"],
                                         pod["metadata"]["name"])
        await self._delete_named(PODGROUPS, job["metadata"]["namespace"],
                                 job["metadata"]["name"])

    async def _delete_all(self, job: Obj, pods: list[Obj], services: list[Obj]) -> None:
        for obj in pods:
            await self._delete(PODS, obj)
        for obj in services:
            await self._delete(SERVICES, obj)
        await self._delete_named(PODGROUPS, job["metadata"]["namespace"],
                                 job["metadata"]["name"])

    async def _expire(self, job: Obj, status: Obj, now: datetime) -> float | None:
        """CleanupJob: delete a finished job ttlSecondsAfterFinished after completion."""
        ttl = (job["spec"].get("runPolicy") or {}).get("ttlSecondsAfterFinished")
        done = parse_time(status.get("completionTime"))
        if ttl is None or done is None:
            return None
        left = (done - now).total_seconds() + int(ttl)
        if left > 0:
            return left
        await self._delete_named(PYTORCHJOBS, job["metadata"]["namespace"],
                                 job["metadata"]["name"], propagation="Foreground")
        return None

    async def _create(self, resource: Any, job: Obj, body: Obj) -> None:
        try:
            await self.client.create(resource, body, job["metadata"]["namespace"])
        except errors.AlreadyExists:
            return
        if resource is not PODGROUPS:
            self.recorder.event(job, NORMAL, f"SuccessfulCreate{resource.kind}",
                                f"Created {resource.kind.lower()}: {body['metadata']['name']}")

    async def _delete(self, resource: Any, obj: Obj) -> None:
        if obj["metadata"].get("deletionTimestamp"):
            return
        await self._delete_named(resource, obj["metadata"]["namespace"],
                                 obj["metadata"]["name"])

    async def _delete_named(self, resource: Any, namespace: str, name: str,
                            propagation: str | None = None) -> None:
        try:
            await self.client.delete(resource, name, namespace, propagation_policy=propagation)
        except errors.NotFound:
            pass

