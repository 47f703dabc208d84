"""Pod failure policy: which pod failures fail the Job, fail an index, are ignored or are
counted (pkg/controller/job/pod_failure_policy.go, v1.32).

Why: a Job's `podFailurePolicy` lets users tell retriable failures (a node going away, the
pod's DisruptionTarget condition) from fatal ones (an exit code meaning "bad input") so the
controller neither retries hopeless pods nor burns the backoff limit on disruptions.

Guarantees:
- Rules are tried in order; the first whose `onExitCodes` (a terminated container, not an
  init container first, with a non-zero exit code In / NotIn the values, optionally of one
  container) or `onPodConditions` (a pod condition of that type and status) matches decides.
- `FailJob` returns kube's message ("Container c for pod ns/p failed with exit code 42
  matching FailJob rule at index 0" / "Pod ns/p has condition DisruptionTarget matching
  FailJob rule at index 1"); `Ignore` does not count the failure; `Count` and `FailIndex`
  do; no matching rule counts it.
- With a policy (or podReplacementPolicy Failed) only pods in phase Failed count as failed;
  otherwise a pod deleted before succeeding counts too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IGNORE", "FAIL_JOB", "FAIL_INDEX", "COUNT", "match_pod_failure_policy",
           "is_pod_failed", "only_replace_failed_pods", "fail_job_message"]

IGNORE, FAIL_JOB, FAIL_INDEX, COUNT = "Ignore", "FailJob", "FailIndex", "Count"
Obj = dict[str, Any]


def _terminated(statuses: list[Obj], req: Obj) -> Obj | None:
    """getMatchingContainerFromList: the first terminated, non-zero, matching container."""
    values = [int(v) for v in req.get("values") or ()]
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        if term is None:
            continue
        if req.get("containerName") and req["containerName"] != cs.get("name"):
            continue
        code = int(term.get("exitCode") or 0)
        if code == 0:
            continue
        op = req.get("operator")
        if (op == "In" and code in values) or (op == "NotIn" and code not in values):
            return cs
    return None


def _on_exit_codes(status: Obj, req: Obj) -> Obj | None:
    return _terminated(status.get("containerStatuses") or [], req) or \
        _terminated(status.get("initContainerStatuses") or [], req)


def _on_pod_conditions(status: Obj, patterns: list[Obj]) -> Obj | None:
    for cond in status.get("conditions") or ():
        for pat in patterns:
            if cond.get("type") == pat.get("type") and \
                    cond.get("status") == pat.get("status", "True"):
                return cond  # type: ignore[no-any-return]
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj
                             ) -> tuple[str | None, bool, str | None]:
    """matchPodFailurePolicy: (FailJob message, whether the failure counts, action)."""
    if policy is None:
        return None, True, None
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    for index, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _on_exit_codes(status, rule["onExitCodes"])
            if cs is None:
                continue
            if action == FAIL_JOB:
                code = cs["state"]["terminated"].get("exitCode")
                return (f"Container {cs.get('name')} for pod {where} failed with exit code "
                        f"{code} matching {action} rule at index {index}", True, action)
        elif rule.get("onPodConditions") is not None:
            cond = _on_pod_conditions(status, rule["onPodConditions"])
            if cond is None:
                continue
            if action == FAIL_JOB:
                return (f"Pod {where} has condition {cond.get('type')} matching {action} "
                        f"rule at index {index}", True, action)
        else:
            continue
        if action == IGNORE:
            return None, False, action
        if action in (COUNT, FAIL_INDEX):
            return None, True, action
    return None, True, None


def only_replace_failed_pods(job: Obj) -> bool:
    """Terminating pods are neither failures nor replaced until they reach Failed."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or \
        spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """isPodFailed: Failed, or (without a policy) deleted before succeeding."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase != "Succeeded"


def fail_job_message(job: Obj, pods: list[Obj]) -> str | None:
    """getFailJobMessage: the message of the first failed pod matching a FailJob rule."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if policy is None:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            message, _, _ = match_pod_failure_policy(policy, pod)
            if message is not None:
                return message
    return None
