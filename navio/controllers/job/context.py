"""What one sync of a Job learned about it (kube's syncJobCtx)."""

from __future__ import annotations

from navio.controllers.controller_utils import is_pod_active, is_pod_ready
from navio.controllers.job.status import Obj

__all__ = ["SyncContext"]


class SyncContext:
    """The Job (a private copy), its pods, and the counts and indexes derived from them;
    `finished` is the condition the sync is heading for, if any."""

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
        self.prev_succeeded_indexes: set[int] = set()
        self.succeeded_indexes: set[int] = set()
        # With backoffLimitPerIndex: indexes failed for good, and per retried index the
        # failed pod whose finalizer stays until its replacement exists.
        self.failed_indexes: set[int] | None = None
        self.delayed: dict[int, Obj] = {}
