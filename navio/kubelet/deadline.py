"""A pod's active deadline (spec.activeDeadlineSeconds; kubelet active_deadline.go).

Why: a pod may say how long it may stay active on a node; past that the kubelet kills it and
fails it with reason DeadlineExceeded (sync.py acts on it).

Guarantees: the time counts from the pod's status.startTime (the kubelet's first status for
it), as Kubernetes counts it; no deadline, or no start time yet, means no limit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

__all__ = ["DEADLINE_EXCEEDED", "deadline_left"]

DEADLINE_EXCEEDED = ("DeadlineExceeded",
                     "Pod was active on the node longer than the specified deadline")


def deadline_left(pod: Mapping[str, Any], status: Mapping[str, Any] | None,
                  now: float) -> float | None:
    """Seconds until the pod's active deadline passes (<= 0: it has); None without one.
    `status` is the kubelet's latest status of the pod (else the API's is used)."""
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    start = (status or {}).get("startTime") or (pod.get("status") or {}).get("startTime")
    if not isinstance(deadline, int) or isinstance(deadline, bool) or not start:
        return None
    try:
        started = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return started + deadline - now
