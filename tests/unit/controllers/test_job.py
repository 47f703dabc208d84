"""The Job controller's pure helpers and one reconcile at a time against an in-memory API
(issue 6): parallelism, tracking finalizers, counting, completion and the backoff limit."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timezone
from typing import Any

import pytest

from navio.api import errors
from navio.client import JOBS, PODS
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.job import (TRACKING_FINALIZER, JobController, backoff_delay,
                                   format_indexes, parse_indexes)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


class FakeClient:
    """Just enough of navio.client.Client: a store of objects and a log of writes."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str, str], Obj] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    def _key(self, resource: Any, name: str, ns: str | None) -> tuple[str, str, str]:
        return (resource.plural, ns or "", name)

    async def create(self, resource: Any, body: Obj, namespace: str | None = None) -> Obj:
        body = copy.deepcopy(body)
        meta = body["metadata"]
        ns = namespace or meta.get("namespace")
        n = next(self._ids)
        meta.setdefault("name", f"{meta.get('generateName', 'x-')}{n:05d}")
        meta.update(uid=f"uid-{meta['name']}", resourceVersion=str(n), namespace=ns)
        self.store[self._key(resource, meta["name"], ns)] = body
        self.calls.append(("create", resource.plural, meta["name"]))
        return body

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> Obj:
        try:
            return copy.deepcopy(self.store[self._key(resource, name, namespace)])
        except KeyError:
            raise errors.NotFound(f"{name} not found") from None

    async def update(self, resource: Any, body: Obj, namespace: str | None = None) -> Obj:
        meta = body["metadata"]
        self.store[self._key(resource, meta["name"], namespace or meta.get("namespace"))] = body
        self.calls.append(("update", resource.plural, meta["name"]))
        return body

    async def update_status(self, resource: Any, body: Obj, namespace: str | None = None) -> Obj:
        self.calls.append(("status", resource.plural, body["metadata"]["name"]))
        self.store[self._key(resource, body["metadata"]["name"],
                             namespace or body["metadata"].get("namespace"))] = \
            copy.deepcopy(body)
        return body

    async def patch(self, resource: Any, name: str, body: Any, namespace: str | None = None,
                    **_: Any) -> Obj:
        self.calls.append(("patch", resource.plural, name))
        return {"metadata": {"name": name}}

    async def delete(self, resource: Any, name: str, namespace: str | None = None,
                     **_: Any) -> Obj:
        self.calls.append(("delete", resource.plural, name))
        self.store.pop(self._key(resource, name, namespace), None)
        return {}

    def writes(self, verb: str, plural: str = "pods") -> list[str]:
        return [n for v, p, n in self.calls if v == verb and p == plural]


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


def controller(client: FakeClient, jobs: list[Obj], pods: list[Obj]
               ) -> tuple[JobController, FakeRecorder]:
    recorder = FakeRecorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctx = ControllerContext(client, informers, recorder,  # type: ignore[arg-type]
                            {"job-now": lambda: NOW, "job-pod-failure-backoff": 0.0})
    ctl = JobController(ctx)
    informers.get(JOBS)._replace(copy.deepcopy(jobs), "1")
    informers.get(PODS)._replace(copy.deepcopy(pods), "1")
    return ctl, recorder


def job(**spec: Any) -> Obj:
    base = {"parallelism": 1, "completions": 1, "backoffLimit": 6,
            "completionMode": "NonIndexed", "podReplacementPolicy": "TerminatingOrFailed",
            "template": {"metadata": {"labels": {"app": "j"}},
                         "spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid",
                         "resourceVersion": "5", "generation": 1},
            "spec": base}


def pod(name: str, phase: str = "Running", *, finalizer: bool = True, **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "finalizers": [TRACKING_FINALIZER] if finalizer else [],
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": "j", "uid": "job-uid",
                                              "controller": True}], **meta},
            "status": {"phase": phase}}


@pytest.mark.parametrize("indexes,text", [
    (set(), ""), ({0}, "0"), ({0, 1, 2}, "0-2"), ({0, 2, 3, 4, 7}, "0,2-4,7"),
], ids=["no index", "a single index", "a run", "runs and singles"])
def test_completed_indexes_format_and_parse_back(indexes: set[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text, 10) == indexes


def test_parse_indexes_drops_indexes_beyond_completions() -> None:
    assert parse_indexes("0-5", 3) == {0, 1, 2}


@pytest.mark.parametrize("failures,delay", [(0, 0.0), (1, 10.0), (2, 20.0), (4, 80.0),
                                            (20, 600.0)],
                         ids=["no failure waits nothing", "the first failure waits the base",
                              "the delay doubles", "and doubles again", "up to the cap"])
def test_backoff_delay_doubles_from_ten_seconds_to_ten_minutes(failures: int,
                                                                delay: float) -> None:
    assert backoff_delay(failures, 10.0, 600.0) == delay


async def test_a_new_job_gets_parallelism_pods_with_the_tracking_finalizer() -> None:
    client = FakeClient()
    ctl, recorder = controller(client, [job(parallelism=2, completions=5)], [])
    await ctl.reconcile("ns/j")
    created = [o for (p, _, n), o in client.store.items() if p == "pods"]
    assert len(created) == 2
    for p in created:
        assert TRACKING_FINALIZER in p["metadata"]["finalizers"]
        assert p["metadata"]["ownerReferences"][0]["uid"] == "job-uid"
        assert p["metadata"]["generateName"] == "j-"
    assert [r for _, r, _ in recorder.events] == ["SuccessfulCreate"] * 2
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["active"] == 2 and status["startTime"] == "2024-05-01T12:00:00Z"


async def test_an_indexed_job_labels_pods_with_their_completion_index() -> None:
    client = FakeClient()
    ctl, _ = controller(client, [job(parallelism=3, completions=3, completionMode="Indexed")],
                        [])
    await ctl.reconcile("ns/j")
    pods = [o for (p, _, _), o in client.store.items() if p == "pods"]
    got = sorted((p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
                  p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                  p["spec"]["hostname"]) for p in pods)
    assert got == [("0", "0", "j-0"), ("1", "1", "j-1"), ("2", "2", "j-2")]


async def test_succeeded_pods_are_counted_once_and_the_job_completes() -> None:
    client = FakeClient()
    ctl, recorder = controller(client, [job(parallelism=2, completions=2)],
                               [pod("a", "Succeeded"), pod("b", "Succeeded")])
    await ctl.reconcile("ns/j")
    assert sorted(client.writes("patch")) == ["a", "b"], "finalizers removed"
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["succeeded"] == 2 and status["active"] == 0
    types = [(c["type"], c.get("reason")) for c in status["conditions"]]
    assert types == [("SuccessCriteriaMet", "CompletionsReached"),
                     ("Complete", "CompletionsReached")]
    assert status["completionTime"] == "2024-05-01T12:00:00Z"
    assert ("Normal", "Completed", "Job completed") in recorder.events
    assert not client.writes("create")


async def test_failures_beyond_the_backoff_limit_fail_the_job_once_pods_are_gone() -> None:
    """FailureTarget at once; Failed only when no deleted pod is still terminating."""
    client = FakeClient()
    pods = [pod("f1", "Failed"), pod("f2", "Failed"), pod("run", "Running", finalizer=False)]
    ctl, recorder = controller(client, [job(backoffLimit=1, parallelism=1, completions=3)], pods)
    await ctl.reconcile("ns/j")
    assert client.writes("delete") == ["run"]
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["failed"] == 2 and status["terminating"] == 1
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget"]
    ctl.jobs._replace([client.store[("jobs", "ns", "j")]], "2")
    ctl.pods._replace([], "2")
    await ctl.reconcile("ns/j")
    status = client.store[("jobs", "ns", "j")]["status"]
    assert [c["type"] for c in status["conditions"]] == ["FailureTarget", "Failed"]
    assert status["conditions"][1]["reason"] == "BackoffLimitExceeded"
    assert ("Warning", "BackoffLimitExceeded",
            "Job has reached the specified backoff limit") in recorder.events


async def test_a_failed_pod_is_replaced_while_under_the_backoff_limit() -> None:
    client = FakeClient()
    ctl, _ = controller(client, [job(backoffLimit=3)], [pod("f1", "Failed")])
    await ctl.reconcile("ns/j")
    assert len(client.writes("create")) == 1
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["failed"] == 1 and status["active"] == 1
    assert not status.get("conditions")
