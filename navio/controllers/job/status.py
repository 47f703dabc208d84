"""Job status vocabulary: conditions, times, finished checks and retry back-off.

Why: the Job and TTL-after-finished controllers and the CronJob controller all ask "is this
Job finished, and since when"; the Job controller writes conditions exactly as kube's
newCondition does (lastProbeTime = lastTransitionTime = now, seconds precision).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from navio.controllers.controller_utils import is_pod_ready

__all__ = ["Obj", "Now", "timestamp", "parse_time", "true_condition", "new_condition",
           "is_finished", "finish_time", "backoff_delay", "finished_at", "removal_rank",
           "object_key"]

Obj = dict[str, Any]
Now = Callable[[], datetime]


def timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def true_condition(obj: Obj, ctype: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or ()
                 if c.get("type") == ctype and c.get("status") == "True"), None)


def new_condition(ctype: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    return {"type": ctype, "status": status, "lastProbeTime": timestamp(now),
            "lastTransitionTime": timestamp(now), "reason": reason, "message": message}


def is_finished(job: Obj) -> bool:
    return true_condition(job, "Complete") is not None or \
        true_condition(job, "Failed") is not None


def finish_time(job: Obj) -> datetime | None:
    cond = true_condition(job, "Complete") or true_condition(job, "Failed")
    return parse_time((cond or {}).get("lastTransitionTime")) if cond else None


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """backoffRecord.getRemainingTime's backoff: base · 2^(failures−1), capped."""
    return 0.0 if failures <= 0 else min(base * 2 ** (failures - 1), cap)


def finished_at(pod: Obj, now: datetime) -> datetime:
    """getFinishedTime: the latest container finish, else the pod's last condition change."""
    status = pod.get("status") or {}
    times = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for c in status.get("containerStatuses") or ()]
    times += [parse_time(c.get("lastTransitionTime")) for c in status.get("conditions") or ()
              if c.get("type") == "Ready"]
    good = [t for t in times if t is not None]
    return max(good) if good else now


def removal_rank(pod: Obj) -> tuple[Any, ...]:
    """controller.ActivePods order: pods earlier in their life are deleted first."""
    status = pod.get("status") or {}
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status.get("phase")), 0)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = parse_time(pod["metadata"].get("creationTimestamp")) or datetime.min.replace(
        tzinfo=timezone.utc)
    return (bool((pod.get("spec") or {}).get("nodeName")), phase, is_pod_ready(pod), -restarts,
            -created.timestamp())


def object_key(obj: Obj) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
