"""batch/v1 kinds: Job and CronJob (pkg/apis/batch/validation, v1.32).

Job validation expects the registry's create step to have generated the selector and
template labels (`navio.api.defaults.prepare_for_create` does), as upstream's
validateGeneratedSelector requires `metadata.uid` and the `batch.kubernetes.io/job-name` /
`controller-uid` labels. On update the pod template is immutable except, for a suspended Job
that never started, its scheduling directives (node selector, affinity, tolerations, labels,
annotations, scheduling gates). Time zone names are checked for form only (no tz database).
"""

from __future__ import annotations

import copy
from typing import Any

from navio.api.errors import go_quote
from navio.api.validation import names
from navio.api.validation.cron import parse_error
from navio.api.validation.field import (Cause, child, duplicate, index, invalid, not_supported,
                                        required, too_long_max_length, too_many, OMIT)
from navio.api.validation.gorepr import go_json, go_label_selector, go_map
from navio.api.validation.meta import (selector_matches, selector_valid, validate_immutable,
                                       validate_label_selector, validate_nonnegative,
                                       validate_object_meta, validate_object_meta_update)
from navio.api.validation.podspec import validate_pod_template_spec

__all__ = ["validate_job", "validate_job_update", "validate_cron_job", "validate_cron_job_update"]

_JOB_NAME = "batch.kubernetes.io/job-name"
_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
_LEGACY_JOB_NAME, _LEGACY_UID = "job-name", "controller-uid"
_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]


def _has_label(meta: dict[str, Any], k: str, want: str) -> list[Cause]:
    labels = meta.get("labels") or {}
    p = f"spec.template.metadata.labels[{k}]"
    if k not in labels:
        return [required(p, f"must be '{want}'")]
    if labels[k] != want:
        return [invalid(p, go_map(labels), f"must be '{want}'")]
    return []


def _generated_selector(job: dict[str, Any], prefixed: bool) -> list[Cause]:
    spec, meta = job.get("spec") or {}, job.get("metadata") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    errs: list[Cause] = []
    uid, name = meta.get("uid", ""), meta.get("name", "")
    if not uid:
        errs.append(required("metadata.uid"))
    tmeta = (spec.get("template") or {}).get("metadata") or {}
    errs += _has_label(tmeta, _LEGACY_UID, uid) + _has_label(tmeta, _LEGACY_JOB_NAME, name)
    expected = {_LEGACY_UID: uid, _LEGACY_JOB_NAME: name}
    if prefixed:
        errs += _has_label(tmeta, _CONTROLLER_UID, uid) + _has_label(tmeta, _JOB_NAME, name)
        expected.update({_CONTROLLER_UID: uid, _JOB_NAME: name})
    sel = spec["selector"]
    if selector_valid(sel) and not selector_matches(sel, expected):
        errs.append(invalid("spec.selector", go_label_selector(sel),
                            "`selector` not auto-generated"))
    return errs


def _pod_failure_policy(spec: dict[str, Any], path: str) -> list[Cause]:
    rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
    errs: list[Cause] = []
    if len(rules) > 20:
        errs.append(too_many(child(path, "rules"), len(rules), 20))
    pod = (spec.get("template") or {}).get("spec") or {}
    containers = {c.get("name") for k in ("containers", "initContainers") for c in pod.get(k) or []}
    for i, rule in enumerate(rules):
        rp = index(child(path, "rules"), i)
        action = rule.get("action", "")
        if not action:
            errs.append(required(child(rp, "action"), "valid values: " + go_q_list(_ACTIONS)))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.append(invalid(child(rp, "action"), action,
                                    "requires the backoffLimitPerIndex to be set"))
        elif action not in _ACTIONS:
            errs.append(not_supported(child(rp, "action"), action, _ACTIONS))
        oec, opc = rule.get("onExitCodes"), rule.get("onPodConditions") or []
        if oec is not None:
            ep = child(rp, "onExitCodes")
            op = oec.get("operator", "")
            if not op:
                errs.append(required(child(ep, "operator"),
                                     "valid values: " + go_q_list(["In", "NotIn"])))
            elif op not in ("In", "NotIn"):
                errs.append(not_supported(child(ep, "operator"), op, ["In", "NotIn"]))
            if oec.get("containerName") is not None and oec["containerName"] not in containers:
                errs.append(invalid(child(ep, "containerName"), oec["containerName"],
                                    "must be one of the container or initContainer names in the "
                                    "pod template"))
            values = oec.get("values") or []
            if not values:
                errs.append(invalid(child(ep, "values"), go_json(values),
                                    "at least one value is required"))
            elif len(values) > 255:
                errs.append(too_many(child(ep, "values"), len(values), 255))
            seen: set[int] = set()
            for j, v in enumerate(values):
                if op == "In" and v == 0:
                    errs.append(invalid(index(child(ep, "values"), j), v,
                                        "must not be 0 for the In operator"))
                if v in seen:
                    errs.append(duplicate(index(child(ep, "values"), j), v))
                seen.add(v)
            if values != sorted(values):
                errs.append(invalid(child(ep, "values"), go_json(values), "must be ordered"))
        for j, pat in enumerate(opc):
            pp = index(child(rp, "onPodConditions"), j)
            errs += [invalid(child(pp, "type"), pat.get("type", ""), m)
                     for m in names.is_qualified_name(pat.get("type", ""))]
            st = pat.get("status", "")
            if not st:
                errs.append(required(child(pp, "status"),
                                     "valid values: " + go_q_list(["False", "True", "Unknown"])))
            elif st not in ("False", "True", "Unknown"):
                errs.append(not_supported(child(pp, "status"), st, ["False", "True", "Unknown"]))
        if oec is not None and opc:
            errs.append(invalid(rp, OMIT,
                                "specifying both OnExitCodes and OnPodConditions is not supported"))
        if oec is None and not opc:
            errs.append(invalid(rp, OMIT,
                                "specifying one of OnExitCodes and OnPodConditions is required"))
    return errs


def go_q_list(values: list[str]) -> str:
    # fmt's %q of a []string: ["a" "b"].
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def _job_spec(spec: dict[str, Any], path: str) -> list[Cause]:
    """validateJobSpec (shared by Jobs and CronJob job templates)."""
    errs: list[Cause] = []
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
              "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):
        if spec.get(f) is not None:
            errs += validate_nonnegative(spec[f], child(path, f))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.append(required(child(path, "backoffLimitPerIndex"),
                             "when maxFailedIndexes is specified"))
    mb = spec.get("managedBy")
    if mb is not None:
        head, sep, tail = mb.partition("/")
        if not mb:
            errs.append(required(child(path, "managedBy")))
        elif not sep or not head or not tail:
            errs.append(invalid(child(path, "managedBy"), mb,
                                'must be a domain-prefixed path (such as "acme.io/foo")'))
        else:
            errs += [invalid(child(path, "managedBy"), head,
                             m) for m in names.is_dns1123_subdomain(head)]
        if len(mb) > 63:
            errs.append(too_long_max_length(child(path, "managedBy"), 63))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(child(path, "completionMode"), mode,
                                      ["NonIndexed", "Indexed"]))
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(required(child(path, "completions"), "when completion mode is Indexed"))
            par = spec.get("parallelism")
            if par is not None and par > 100000:
                errs.append(invalid(child(path, "parallelism"), par,
                                    "must be less than or equal to 100000 when completion mode "
                                    "is Indexed"))
    if mode in (None, "NonIndexed"):
        for f in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(f) is not None:
                errs.append(invalid(child(path, f), spec[f], "requires indexed completion mode"))
    if spec.get("podFailurePolicy") is not None:
        errs += _pod_failure_policy(spec, child(path, "podFailurePolicy"))
    if spec.get("successPolicy") is not None and mode != "Indexed":
        errs.append(invalid(child(path, "successPolicy"), go_json(spec["successPolicy"]),
                            "requires indexed completion mode"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if spec.get("podFailurePolicy") is not None:
            if prp != "Failed":
                errs.append(not_supported(child(path, "podReplacementPolicy"), prp, ["Failed"]))
        elif prp not in ("Failed", "TerminatingOrFailed"):
            errs.append(not_supported(child(path, "podReplacementPolicy"), prp,
                                      ["Failed", "TerminatingOrFailed"]))
    tmpl = spec.get("template") or {}
    errs += validate_pod_template_spec(tmpl, child(path, "template"))
    rp = (tmpl.get("spec") or {}).get("restartPolicy", "")
    rpath = child(path, "template", "spec", "restartPolicy")
    if rp in ("Always", ""):
        errs.append(required(rpath, 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(not_supported(rpath, rp, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and rp != "Never":
        errs.append(invalid(rpath, rp,
                            'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def _validate_job_spec(spec: dict[str, Any]) -> list[Cause]:
    errs = _job_spec(spec, "spec")
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(sel, "spec.selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    # A nil selector matches nothing; an empty one everything (LabelSelectorAsSelector).
    if selector_valid(sel) and not selector_matches(sel, labels):
        errs.append(invalid("spec.template.metadata.labels", go_map(labels),
                            "`selector` does not match template `labels`"))
    return errs


def validate_job(job: dict[str, Any], prefixed_labels: bool = True) -> list[Cause]:
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    errs = validate_object_meta(meta, True, names.name_is_dns_subdomain)
    errs += _generated_selector(job, prefixed_labels)
    errs += _validate_job_spec(spec)
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        host = f"{meta.get('name', '')}-{completions - 1}"
        if names.is_dns1123_label(host):
            errs.append(invalid("metadata.name", meta.get("name", ""),
                                f"will not able to create pod with invalid DNS label: {host}"))
    return errs


_SCHEDULING = ("nodeSelector", "tolerations", "schedulingGates")


def validate_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    errs += _validate_job_spec(spec)
    changed = spec.get("completions") != ospec.get("completions")
    if spec.get("completionMode") == "Indexed" and changed:
        if spec.get("completions") is not None and spec["completions"] != spec.get("parallelism"):
            errs.append(invalid("spec.completions", spec["completions"],
                                "can only be modified in tandem with spec.parallelism"))
    elif spec.get("completionMode") != "Indexed":
        errs += validate_immutable(spec.get("completions"), ospec.get("completions"),
                                   "spec.completions")
    errs += validate_immutable(spec.get("selector"), ospec.get("selector"), "spec.selector",
                               go_label_selector(spec.get("selector")))
    tmpl, otmpl = spec.get("template") or {}, copy.deepcopy(ospec.get("template") or {})
    if ospec.get("suspend") is True and not (old.get("status") or {}).get("startTime"):
        ts, ots = tmpl.get("spec") or {}, otmpl.setdefault("spec", {})
        for f in _SCHEDULING:
            ots[f] = copy.deepcopy(ts.get(f))
        aff = copy.deepcopy(ots.get("affinity")) or {}
        aff["nodeAffinity"] = copy.deepcopy((ts.get("affinity") or {}).get("nodeAffinity"))
        ots["affinity"] = aff if any(aff.values()) or ts.get("affinity") is not None else None
        otmpl.setdefault("metadata", {})
        for f in ("labels", "annotations"):
            otmpl["metadata"][f] = copy.deepcopy((tmpl.get("metadata") or {}).get(f))
    errs += validate_immutable(tmpl, otmpl, "spec.template", go_json(tmpl))
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
              "successPolicy"):
        errs += validate_immutable(spec.get(f), ospec.get(f), child("spec", f))
    return errs


def _cron_spec(spec: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    errs: list[Cause] = []
    sched = spec.get("schedule", "")
    if not sched:
        errs.append(required("spec.schedule"))
    else:
        err = parse_error(sched)
        if err:
            errs.append(invalid("spec.schedule", sched, err))
        allow_tz = old is not None and "TZ" in old.get("schedule", "")
        if allow_tz and "TZ" in sched and spec.get("timeZone") is not None:
            errs.append(invalid("spec.schedule", sched, "cannot use both timeZone field and TZ or "
                                                        "CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in sched:
            errs.append(invalid("spec.schedule", sched, "cannot use TZ or CRON_TZ in schedule, use "
                                                        "timeZone field instead"))
    if spec.get("startingDeadlineSeconds") is not None:
        errs += validate_nonnegative(spec["startingDeadlineSeconds"],
                                     "spec.startingDeadlineSeconds")
    tz = spec.get("timeZone")
    if tz is not None and (old is None or old.get("timeZone") != tz):
        errs += _time_zone(tz)
    cp = spec.get("concurrencyPolicy", "")
    if not cp:
        errs.append(required("spec.concurrencyPolicy"))
    elif cp not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", cp, ["Allow", "Forbid", "Replace"]))
    jt = (spec.get("jobTemplate") or {}).get("spec") or {}
    errs += _job_spec(jt, "spec.jobTemplate.spec")
    if jt.get("selector") is not None:
        errs.append(invalid("spec.jobTemplate.spec.selector", go_label_selector(jt["selector"]),
                            "`selector` will be auto-generated"))
    if jt.get("manualSelector") is True:
        errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    for f in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(f) is not None:
            errs += validate_nonnegative(spec[f], child("spec", f))
    return errs


def _time_zone(tz: str) -> list[Cause]:
    import re
    if tz == "":
        return [invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if (part in (".", "..") or part.startswith("-")
                or not re.fullmatch(r"[A-Za-z.\-_0-9+]{1,14}", part)):
            return [invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    if tz.lower() == "local":
        return [invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in "
                                             "https://www.iana.org/time-zones")]
    return []


def validate_cron_job(cj: dict[str, Any]) -> list[Cause]:
    meta = cj.get("metadata") or {}
    errs = validate_object_meta(meta, True, names.name_is_dns_subdomain)
    errs += _cron_spec(cj.get("spec") or {}, None)
    if len(meta.get("name", "")) > 52:
        errs.append(invalid("metadata.name", meta.get("name", ""),
                            "must be no more than 52 characters"))
    return errs


def validate_cron_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _cron_spec(new.get("spec") or {}, old.get("spec") or {})
