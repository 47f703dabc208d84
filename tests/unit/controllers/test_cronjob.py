"""Cron schedules and the CronJob controller's decisions (issue 6): next activation times as
robfig/cron computes them, missed schedules, naming, and concurrency policies."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from navio.api import errors
from navio.client import CRONJOBS, JOBS
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.cron_schedule import ScheduleError, parse_schedule
from navio.controllers.cronjob import (SCHEDULED_TIMESTAMP_ANNOTATION, CronJobController,
                                       job_from_template, job_name, most_recent_schedule_time,
                                       next_schedule_delay)

Obj = dict[str, Any]
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("spec,after,want", [
    ("*/15 * * * *", "2024-05-01T12:07:30", "2024-05-01T12:15:00"),
    ("*/1 * * * *", "2024-05-01T12:07:00", "2024-05-01T12:08:00"),
    ("@hourly", "2024-05-01T12:07:00", "2024-05-01T13:00:00"),
    ("@daily", "2024-05-01T12:07:00", "2024-05-02T00:00:00"),
    ("@monthly", "2024-12-15T00:00:00", "2025-01-01T00:00:00"),
    ("0 9 * * mon", "2024-05-01T12:00:00", "2024-05-06T09:00:00"),
    ("0 0 1 * 1", "2024-05-01T12:00:00", "2024-05-06T00:00:00"),
    ("0 0 13 * *", "2024-05-01T12:00:00", "2024-05-13T00:00:00"),
    ("30 2 29 feb *", "2024-03-01T00:00:00", "2028-02-29T02:30:00"),
    ("5/20 * * * *", "2024-05-01T12:06:00", "2024-05-01T12:25:00"),
    ("@every 90s", "2024-05-01T12:00:00", "2024-05-01T12:01:30"),
    ("TZ=Europe/Paris 0 9 * * *", "2024-05-01T12:00:00", "2024-05-02T07:00:00"),
], ids=["every fifteen minutes", "every minute is strictly after", "hourly", "daily",
        "monthly across a year", "a named weekday", "day of month OR weekday when both are set",
        "day of month alone", "a leap day", "N/step runs from N to the end",
        "@every adds a constant delay", "a TZ prefix schedules in that zone"])
def test_next_activation(spec: str, after: str, want: str) -> None:
    assert parse_schedule(spec).next(at(after)) == at(want)


def test_a_schedule_that_never_fires_has_no_next_time() -> None:
    assert parse_schedule("0 0 30 2 *").next(at("2024-01-01T00:00:00")) is None


@pytest.mark.parametrize("spec", ["* * *", "61 * * * *", "@sometimes", ""],
                         ids=["too few fields", "minute out of range", "unknown descriptor",
                              "empty"])
def test_unparseable_schedules_raise_robfigs_error(spec: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(spec)


def cronjob(**spec: Any) -> Obj:
    base: Obj = {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"app": "c"}},
                                 "spec": {"template": {"spec": {"containers": []}}}}}
    status = spec.pop("status", {})
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "ns", "uid": "cj-uid",
                         "resourceVersion": "3", "creationTimestamp": "2024-05-01T12:00:10Z"},
            "spec": base, "status": status}


@pytest.mark.parametrize("now,status,deadline,want,missed", [
    ("2024-05-01T12:00:30", {}, None, None, 0),
    ("2024-05-01T12:01:05", {}, None, "2024-05-01T12:01:00", 0),
    ("2024-05-01T12:05:30", {}, None, "2024-05-01T12:05:00", 5),
    ("2024-05-01T12:05:30", {"lastScheduleTime": "2024-05-01T12:05:00Z"}, None, None, 0),
    ("2024-05-01T14:00:30", {}, 90, "2024-05-01T14:00:00", 0),
], ids=["nothing is due before the first time", "the first time is due",
        "only the most recent of several missed times", "a time already started is not due",
        "a starting deadline ignores older times"])
def test_most_recent_schedule_time(now: str, status: Obj, deadline: int | None,
                                   want: str | None, missed: int) -> None:
    cj = cronjob(status=status, **({"startingDeadlineSeconds": deadline} if deadline else {}))
    _, recent, count = most_recent_schedule_time(cj, at(now), parse_schedule("*/1 * * * *"), True)
    assert recent == (at(want) if want else None)
    assert count == missed


def test_the_next_sync_is_the_next_time_plus_a_hundred_milliseconds() -> None:
    cj = cronjob(status={"lastScheduleTime": "2024-05-01T12:05:00Z"})
    delay = next_schedule_delay(cj, at("2024-05-01T12:05:20"), parse_schedule("*/1 * * * *"))
    assert delay == pytest.approx(40.1)


def test_jobs_are_named_by_the_scheduled_minute_and_stamped_in_the_time_zone() -> None:
    cj = cronjob(timeZone="Europe/Paris")
    when = at("2024-05-01T12:05:00")
    assert job_name(cj, when) == f"cj-{int(when.timestamp()) // 60}"
    job = job_from_template(cj, when)
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == \
        "2024-05-01T14:05:00+02:00"
    assert job["metadata"]["labels"] == {"app": "c"}
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": "batch/v1", "kind": "CronJob", "name": "cj", "uid": "cj-uid",
        "controller": True, "blockOwnerDeletion": True}


class _Client:
    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.deleted: list[str] = []
        self.status: Obj | None = None

    async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        body = copy.deepcopy(body)
        body["metadata"]["uid"] = "uid-" + body["metadata"]["name"]
        self.created.append(body)
        return body

    async def get(self, resource: Any, name: str, ns: Any = None) -> Obj:
        raise errors.NotFound(name)

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.deleted.append(name)
        return {}

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.status = body["status"]
        return body


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


def running_job(name: str) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "ownerReferences": [{"kind": "CronJob", "name": "cj", "uid": "cj-uid",
                                              "controller": True}]},
            "status": {"startTime": "2024-05-01T12:00:00Z"}}


async def sync(cj: Obj, jobs: list[Obj], now: str) -> tuple[_Client, _Recorder]:
    client, recorder = _Client(), _Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = CronJobController(ControllerContext(client, informers, recorder,  # type: ignore[arg-type]
                                              {"cronjob-clock": _Clock(at(now))}))
    informers.get(CRONJOBS)._replace([cj], "1")
    informers.get(JOBS)._replace(jobs, "1")
    await ctl.reconcile("ns/cj")
    return client, recorder


async def test_a_due_cronjob_creates_its_job_and_records_it_as_active() -> None:
    client, recorder = await sync(cronjob(), [], "2024-05-01T12:01:05")
    assert [j["metadata"]["name"] for j in client.created] == ["cj-28576081"]
    assert client.status is not None
    assert client.status["lastScheduleTime"] == "2024-05-01T12:01:00Z"
    assert [a["name"] for a in client.status["active"]] == ["cj-28576081"]
    assert ("SuccessfulCreate", "Created job cj-28576081") in recorder.events


async def test_forbid_skips_while_a_job_is_active() -> None:
    cj = cronjob(concurrencyPolicy="Forbid",
                 status={"active": [{"name": "old", "namespace": "ns", "uid": "uid-old"}],
                         "lastScheduleTime": "2024-05-01T12:00:00Z"})
    client, recorder = await sync(cj, [running_job("old")], "2024-05-01T12:01:05")
    assert not client.created
    assert ("JobAlreadyActive", "Not starting job because prior execution is running and "
            "concurrency policy is Forbid") in recorder.events


async def test_replace_deletes_the_active_job_before_starting_the_next() -> None:
    cj = cronjob(concurrencyPolicy="Replace",
                 status={"active": [{"name": "old", "namespace": "ns", "uid": "uid-old"}],
                         "lastScheduleTime": "2024-05-01T12:00:00Z"})
    client, recorder = await sync(cj, [running_job("old")], "2024-05-01T12:01:05")
    assert client.deleted == ["old"] and len(client.created) == 1
    assert ("SuccessfulDelete", "Deleted job old") in recorder.events
    assert client.status is not None
    assert [a["name"] for a in client.status["active"]] == ["cj-28576081"]


async def test_a_suspended_cronjob_starts_nothing() -> None:
    client, _ = await sync(cronjob(suspend=True), [], "2024-05-01T12:01:05")
    assert not client.created


async def test_a_time_older_than_the_starting_deadline_is_not_started() -> None:
    cj = cronjob(startingDeadlineSeconds=10, status={"lastScheduleTime": "2024-05-01T12:00:00Z"})
    client, _ = await sync(cj, [], "2024-05-01T12:01:30")
    assert not client.created


async def test_finished_jobs_beyond_the_history_limit_are_deleted_oldest_first() -> None:
    done = []
    for i in range(3):
        j = running_job(f"done-{i}")
        j["status"] = {"startTime": f"2024-05-01T11:0{i}:00Z",
                       "completionTime": f"2024-05-01T11:0{i}:30Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}
        done.append(j)
    cj = cronjob(successfulJobsHistoryLimit=1,
                 status={"lastScheduleTime": "2024-05-01T12:01:00Z"})
    client, _ = await sync(cj, done, "2024-05-01T12:01:30")
    assert client.deleted == ["done-0", "done-1"]
    assert client.status is not None
    assert client.status["lastSuccessfulTime"] == "2024-05-01T11:02:30Z"


def test_delays_are_relative_to_the_injected_clock() -> None:
    cj = cronjob()
    now = at("2024-05-01T12:00:10") + timedelta(seconds=30)
    assert next_schedule_delay(cj, now, parse_schedule("*/1 * * * *")) == pytest.approx(20.1)
