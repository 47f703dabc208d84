"""Tables for batch/v1: Jobs (STATUS COMPLETIONS DURATION AGE) and CronJobs.

Ports of printJob and printCronJob (printers.go, v1.32). A Job's STATUS is the first of
Complete, Failed, Terminating (being deleted), Suspended, FailureTarget, else Running;
COMPLETIONS is `succeeded/completions`, or `succeeded/1` (`... of N` when parallel) for a job
without a completion count; DURATION runs from startTime to completionTime, or to now while the
job runs, and is empty before it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.selectors import format_label_selector
from navio.api.tables.cells import (
    Printer, age, age_column, bool_ptr, column, containers_and_images, get, human_duration,
    name_column, parse_time, since)
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS"]

_CONTAINERS = column("Containers", "string", "Names of each container in the template.",
                     priority=1)
_IMAGES = column("Images", "string", "Images referenced by each container in the template.",
                 priority=1)
_SELECTOR = column("Selector", "string", DOC["JobSpec.selector"], priority=1)

JOB_COLUMNS = (
    name_column(),
    column("Status", "string", "Status of the job."),
    column("Completions", "string", DOC["JobStatus.succeeded"]),
    column("Duration", "string", "Time required to complete the job."),
    age_column(),
    _CONTAINERS, _IMAGES, _SELECTOR,
)


def _has_condition(status: Mapping[str, Any], type_: str) -> bool:
    """hasJobCondition: the first condition of the type decides."""
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return bool(c.get("status") == "True")
    return False


def _job_status(job: Mapping[str, Any]) -> str:
    status = get(job, "status", default={})
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if get(job, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _has_condition(status, "Suspended"):
        return "Suspended"
    if _has_condition(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_cells(job: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = get(job, "spec", default={}), get(job, "status", default={})
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start = parse_time(status.get("startTime"))
    end = parse_time(status.get("completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = since(start, now)
    else:
        duration = human_duration(end - start)
    names, images = containers_and_images(get(spec, "template", "spec", "containers"))
    return [get(job, "metadata", "name", default=""), _job_status(job), completions, duration,
            age(job, now), names, images, format_label_selector(spec.get("selector"))]


CRON_JOB_COLUMNS = (
    name_column(),
    column("Schedule", "string", DOC["CronJobSpec.schedule"]),
    column("Timezone", "string", DOC["CronJobSpec.timeZone"]),
    column("Suspend", "boolean", DOC["CronJobSpec.suspend"]),
    column("Active", "integer", DOC["CronJobStatus.active"]),
    column("Last Schedule", "string", DOC["CronJobStatus.lastScheduleTime"]),
    age_column(),
    _CONTAINERS, _IMAGES, _SELECTOR,
)


def cron_job_cells(cj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = get(cj, "spec", default={}), get(cj, "status", default={})
    last = status.get("lastScheduleTime")
    job_spec = get(spec, "jobTemplate", "spec", default={})
    names, images = containers_and_images(get(job_spec, "template", "spec", "containers"))
    # SUSPEND is declared boolean yet printed as the string printBoolPtr gives.
    return [get(cj, "metadata", "name", default=""), spec.get("schedule", ""),
            spec.get("timeZone") or "<none>", bool_ptr(spec.get("suspend")),
            len(status.get("active") or []), since(last, now) if last else "<none>",
            age(cj, now), names, images, format_label_selector(job_spec.get("selector"))]


PRINTERS = {
    ("batch", "Job"): Printer(JOB_COLUMNS, job_cells),
    ("batch", "CronJob"): Printer(CRON_JOB_COLUMNS, cron_job_cells),
}
