"""Defaults of batch/v1 kinds (pkg/apis/batch/v1/defaults.go, v1.32), and the Job selector
generation of the registry's create step (pkg/registry/batch/job/strategy.go).

SetDefaults_Job applies to Jobs only: a CronJob's jobTemplate keeps the user's job spec and
gets just the pod template defaults, as upstream. A Job without a selector whose
`metadata.uid` is already set also gets its generated selector and labels here (upstream's
PrepareForCreate does it right after defaulting), since validation requires them. JobPodReplacementPolicy is on in v1.32, so
podReplacementPolicy defaults to TerminatingOrFailed, or Failed with a podFailurePolicy.
"""

from __future__ import annotations

from typing import Any

from navio.api.defaults.podspec import default_pod_template

__all__ = ["default_job", "default_cron_job", "generate_job_selector", "KIND_DEFAULTS",
           "JOB_NAME_LABEL", "CONTROLLER_UID_LABEL"]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
_LEGACY_JOB_NAME, _LEGACY_UID = "job-name", "controller-uid"
_MAX_INT32 = 2147483647


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def default_job(job: dict[str, Any]) -> None:
    spec = _spec(job)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    meta = job.get("metadata")
    if labels is not None and isinstance(meta, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in pfp.get("rules") or []:
            for pattern in rule.get("onPodConditions") or []:
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
    default_pod_template(spec.get("template"))
    # navio assigns metadata.uid before defaulting, so the registry's create-time selector
    # generation can happen here; an existing Job always has its selector already.
    if (spec.get("selector") is None and spec.get("manualSelector") is not True
            and (job.get("metadata") or {}).get("uid")):
        generate_job_selector(job)


def default_cron_job(cj: dict[str, Any]) -> None:
    spec = _spec(cj)
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    default_pod_template(((spec.get("jobTemplate") or {}).get("spec") or {}).get("template"))


def generate_job_selector(job: dict[str, Any]) -> None:
    """generateSelector: unless `manualSelector`, label the template with the job's name and
    uid and select the uid label. Labels the user already set are kept; a conflict is then
    reported by validation. Needs `metadata.uid`, so run it after the uid is assigned."""
    spec = _spec(job)
    if spec.get("manualSelector") is True:
        return
    meta = job.get("metadata") or {}
    name, uid = meta.get("name", ""), meta.get("uid", "")
    tmpl = spec.setdefault("template", {})
    tmeta = tmpl.setdefault("metadata", {})
    labels = tmeta.get("labels") if isinstance(tmeta.get("labels"), dict) else {}
    for k in (_LEGACY_JOB_NAME, JOB_NAME_LABEL):
        labels.setdefault(k, name)
    for k in (_LEGACY_UID, CONTROLLER_UID_LABEL):
        labels.setdefault(k, uid)
    tmeta["labels"] = labels
    sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    match = sel.get("matchLabels") if isinstance(sel.get("matchLabels"), dict) else {}
    match.setdefault(CONTROLLER_UID_LABEL, uid)
    sel["matchLabels"] = match
    spec["selector"] = sel


KIND_DEFAULTS = {"Job": default_job, "CronJob": default_cron_job}
