"""A PyTorchJob's status as Kubeflow's training operator keeps it (pkg/util/status.go,
pkg/core): conditions, per-replica counts, back-off and deadline checks.

Conditions are Created, Running, Restarting, Succeeded, Failed and Suspended, each with
reason `PyTorchJob<Type>` (Resumed when a suspension ends). Setting Running removes
Restarting and the reverse; Succeeded or Failed turn Running to False; a condition whose
status and reason are unchanged is left alone (its lastTransitionTime kept).
`kubectl get pytorchjobs` shows the type of the last condition as STATE.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

__all__ = ["set_condition", "has_condition", "is_finished", "is_succeeded", "is_failed",
           "is_suspended", "is_running", "count_replicas", "past_backoff_limit",
           "past_active_deadline", "is_retryable_exit_code", "timestamp", "parse_time",
           "REASON"]

Obj = dict[str, Any]
KIND = "PyTorchJob"


def REASON(what: str) -> str:
    """commonutil.NewReason: the kind followed by what happened (PyTorchJobRunning)."""
    return f"{KIND}{what}"


def timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def has_condition(status: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in status.get("conditions") or ())


def is_succeeded(status: Obj) -> bool:
    return has_condition(status, "Succeeded")


def is_failed(status: Obj) -> bool:
    return has_condition(status, "Failed")


def is_finished(status: Obj) -> bool:
    return is_succeeded(status) or is_failed(status)


def is_suspended(status: Obj) -> bool:
    return has_condition(status, "Suspended")


def is_running(status: Obj) -> bool:
    return has_condition(status, "Running")


def set_condition(status: Obj, ctype: str, cstatus: str, reason: str, message: str,
                  now: datetime) -> None:
    """UpdateJobConditions: set `ctype`, keeping kubeflow's exclusions between types."""
    conditions = status.get("conditions") or []
    current = next((c for c in conditions if c.get("type") == ctype), None)
    if current is not None and current.get("status") == cstatus and \
            current.get("reason") == reason:
        return
    stamp = timestamp(now)
    new = {"type": ctype, "status": cstatus, "reason": reason, "message": message,
           "lastUpdateTime": stamp, "lastTransitionTime": stamp}
    if current is not None and current.get("status") == cstatus:
        new["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
    kept = []
    for c in conditions:
        if c.get("type") == ctype or (ctype, c.get("type")) in (("Restarting", "Running"),
                                                                ("Running", "Restarting")):
            continue
        if ctype in ("Succeeded", "Failed") and c.get("type") == "Running":
            c = {**c, "status": "False"}
        kept.append(c)
    status["conditions"] = kept + [new]


def count_replicas(pods: Iterable[Obj]) -> Obj:
    """updateJobReplicaStatuses: active, succeeded and failed pods of one replica type; a
    pod being deleted counts as failed (it may never reach the Failed phase)."""
    counts = {"active": 0, "succeeded": 0, "failed": 0}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if phase == "Running":
            counts["failed" if deleting else "active"] += 1
        elif phase == "Succeeded":
            counts["succeeded"] += 1
        elif phase == "Failed":
            counts["failed"] += 1
    return counts


def past_backoff_limit(job: Obj, pods_by_type: dict[str, list[Obj]]) -> bool:
    """core.PastBackoffLimit: container restarts of running pods of OnFailure/Always
    replicas reached runPolicy.backoffLimit (any restart when the limit is 0)."""
    limit = (job["spec"].get("runPolicy") or {}).get("backoffLimit")
    if limit is None:
        return False
    restarts = 0
    for rtype, rspec in job["spec"]["pytorchReplicaSpecs"].items():
        if rspec.get("restartPolicy") not in ("OnFailure", "Always"):
            continue
        for pod in pods_by_type.get(rtype, ()):
            st = pod.get("status") or {}
            if st.get("phase") != "Running":
                continue
            restarts += sum(int(c.get("restartCount") or 0)
                            for c in (st.get("initContainerStatuses") or [])
                            + (st.get("containerStatuses") or []))
    return restarts > 0 if int(limit) == 0 else restarts >= int(limit)


def past_active_deadline(job: Obj, status: Obj, now: datetime) -> timedelta | None:
    """How long past runPolicy.activeDeadlineSeconds the job is (None: not past, or no
    deadline); negative values are never returned."""
    deadline = (job["spec"].get("runPolicy") or {}).get("activeDeadlineSeconds")
    start = parse_time(status.get("startTime"))
    if deadline is None or start is None:
        return None
    over = now - start - timedelta(seconds=int(deadline))
    return over if over >= timedelta(0) else None


def is_retryable_exit_code(code: int) -> bool:
    """trainutil.IsRetryableExitCode: 128+ (killed by a signal) is retried under ExitCode;
    1–127 are the program's own permanent failures."""
    return code >= 128
