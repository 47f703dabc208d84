"""Completion indexes of Indexed Jobs: their text form, which succeeded, which failed for
good, and the per-index failure counts pods carry (indexed_job_utils.go, v1.32).

Guarantees:
- `format_indexes` is orderedIntervals.String ("0-2,4,6-7"); `parse_indexes` reads it back,
  dropping indexes at or beyond `completions`.
- With `backoffLimitPerIndex`, every pod records in `batch.kubernetes.io/job-index-failure-
  count` (and `...-ignored-failure-count`) how often its index failed before it; an index
  fails for good when a pod of it fails having used up the limit, or matches a FailIndex
  rule. The last failed pod of a retried index keeps its tracking finalizer until its
  replacement exists (it carries the counts over), and per-index back-off is
  base · 2^(failures−1) from that pod's finish.
"""

from __future__ import annotations

from datetime import datetime

from navio.controllers.job.pod_failure_policy import (FAIL_INDEX, is_pod_failed,
                                                      match_pod_failure_policy)
from navio.controllers.job.status import Obj, backoff_delay, finished_at

__all__ = ["COMPLETION_INDEX", "INDEX_FAILURE_COUNT", "INDEX_IGNORED_FAILURE_COUNT",
           "format_indexes", "parse_indexes", "completion_index", "is_indexed",
           "has_backoff_limit_per_index", "failure_count", "ignored_failure_count",
           "failed_indexes", "delayed_deletion_per_index", "new_failure_counts",
           "index_backoff"]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"


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


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def has_backoff_limit_per_index(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return is_indexed(job) and spec.get("backoffLimitPerIndex") is not None


def _annotation_int(pod: Obj, key: str) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    return int(value) if value is not None and str(value).isdigit() else 0


def completion_index(pod: Obj) -> int | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None and str(value).isdigit() else None


def failure_count(pod: Obj) -> int:
    return _annotation_int(pod, INDEX_FAILURE_COUNT)


def ignored_failure_count(pod: Obj) -> int:
    return _annotation_int(pod, INDEX_IGNORED_FAILURE_COUNT)


def _valid_index(pod: Obj, completions: int) -> int | None:
    ix = completion_index(pod)
    return ix if ix is not None and ix < completions else None


def _index_failed(job: Obj, pod: Obj) -> bool:
    """isIndexFailed."""
    if not is_pod_failed(pod, job):
        return False
    policy = job["spec"].get("podFailurePolicy")
    counted = True
    if policy is not None:
        _, counted, action = match_pod_failure_policy(policy, pod)
        if action == FAIL_INDEX:
            return True
    return counted and failure_count(pod) >= int(job["spec"]["backoffLimitPerIndex"])


def failed_indexes(job: Obj, pods: list[Obj]) -> set[int]:
    """calculateFailedIndexes: those in status.failedIndexes plus newly failed ones."""
    completions = int(job["spec"]["completions"])
    out = parse_indexes((job.get("status") or {}).get("failedIndexes"), completions)
    for pod in pods:
        ix = _valid_index(pod, completions)
        if ix is not None and ix not in out and _index_failed(job, pod):
            out.add(ix)
    return out


def delayed_deletion_per_index(job: Obj, pods: list[Obj], active: list[Obj],
                               succeeded: set[int], failed: set[int],
                               now: datetime) -> dict[int, Obj]:
    """getPodsWithDelayedDeletionPerIndex: per retried index, its latest failed pod."""
    completions = int(job["spec"]["completions"])
    busy = {ix for p in active if (ix := completion_index(p)) is not None}
    out: dict[int, Obj] = {}
    for pod in pods:
        ix = _valid_index(pod, completions)
        if ix is None or not is_pod_failed(pod, job) or ix in succeeded or ix in failed \
                or ix in busy:
            continue
        last = out.get(ix)
        if last is None or (
                failure_count(last) + ignored_failure_count(last)
                <= failure_count(pod) + ignored_failure_count(pod)
                and finished_at(pod, now) >= finished_at(last, now)):
            out[ix] = pod
    return out


def new_failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """getNewIndexFailureCounts: (failures, ignored failures) of the index's next pod."""
    if replaced is None:
        return 0, 0
    failures, ignored = failure_count(replaced), ignored_failure_count(replaced)
    policy = job["spec"].get("podFailurePolicy")
    counted = True if policy is None else match_pod_failure_policy(policy, replaced)[1]
    return (failures + 1, ignored) if counted else (failures, ignored + 1)


def index_backoff(pod: Obj | None, base: float, cap: float, now: datetime) -> float:
    """getRemainingTimePerIndex: seconds until index of failed `pod` may be retried."""
    if pod is None:
        return 0.0
    delay = backoff_delay(failure_count(pod) + ignored_failure_count(pod) + 1, base, cap)
    return max(delay - (now - finished_at(pod, now)).total_seconds(), 0.0)

