"""Binder, Reporter and the PodGroup status, against a fake API client."""

from __future__ import annotations

import asyncio
from typing import Any

from sched_fakes import info, pod

from navio.api import errors
from navio.scheduler.binder import BindCancelled, Binder
from navio.scheduler.events import NOTE_LENGTH_LIMIT, Reporter, truncate_message
from navio.scheduler.gang import (
    PHASE_PENDING,
    PHASE_SCHEDULED,
    PHASE_UNSCHEDULABLE,
    GangOutcome,
    PodGroups,
)


class FakeClient:
    def __init__(self, fail: BaseException | None = None, block: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail
        self.block = block

    async def create_subresource(self, resource, name, sub, body, namespace=None):
        self.calls.append((f"{sub} {namespace}/{name}", body))
        if self.block:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail
        return {}

    async def patch(self, resource, name, body, namespace=None, **kw):
        self.calls.append((f"patch {resource.plural}/{kw.get('subresource')} {name}", body))
        return {}

    async def delete(self, resource, name, namespace=None, **kw):
        self.calls.append((f"delete {namespace}/{name}", kw))
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj, type, reason, message):
        self.events.append((type, reason, message))


async def test_a_binding_names_the_pod_uid_and_reports_once():
    client = FakeClient()
    binder = Binder(client)  # type: ignore[arg-type]
    done: list[Any] = []
    binder.bind(info(pod("p")), "n1", lambda pi, node, err: done.append((pi.name, node, err)))
    await binder.drain(5)
    assert done == [("p", "n1", None)]
    path, body = client.calls[0]
    assert path == "binding default/p"
    assert body["metadata"]["uid"] == "uid-default-p"
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}


async def test_a_failed_binding_reports_the_error():
    binder = Binder(FakeClient(fail=errors.Conflict("nope")))  # type: ignore[arg-type]
    done: list[Any] = []
    binder.bind(info(pod("p")), "n1", lambda pi, node, err: done.append(err))
    await binder.drain(5)
    assert isinstance(done[0], errors.Conflict)


async def test_stopping_the_binder_reports_unfinished_bindings_as_cancelled():
    binder = Binder(FakeClient(block=True))  # type: ignore[arg-type]
    done: list[Any] = []
    binder.bind(info(pod("p")), "n1", lambda pi, node, err: done.append(err))
    await asyncio.sleep(0)
    await binder.drain(0.01)
    assert isinstance(done[0], BindCancelled)


async def test_failed_scheduling_patches_the_condition_only_when_it_changes():
    client, recorder = FakeClient(), FakeRecorder()
    reporter = Reporter(client, recorder, "default-scheduler")  # type: ignore[arg-type]
    p = pod("p")
    reporter.failed(info(p), "0/1 nodes are available: 1 Insufficient cpu.")
    await reporter.drain(5)
    assert recorder.events == [("Warning", "FailedScheduling",
                                "0/1 nodes are available: 1 Insufficient cpu.")]
    [(path, body)] = client.calls
    assert path == "patch pods/status p"
    [cond] = body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False",
                                                              "Unschedulable")
    p["status"] = {"conditions": [cond]}
    reporter.failed(info(p), "0/1 nodes are available: 1 Insufficient cpu.")
    await reporter.drain(5)
    assert len(client.calls) == 1           # same condition: no second write
    assert len(recorder.events) == 2        # but the event is recorded again (aggregated)


async def test_nomination_is_written_with_the_failure():
    client = FakeClient()
    reporter = Reporter(client, FakeRecorder(), "default-scheduler")  # type: ignore[arg-type]
    reporter.failed(info(pod("p")), "msg", nominated="n1")
    await reporter.drain(5)
    assert client.calls[0][1]["status"]["nominatedNodeName"] == "n1"


async def test_preempting_a_victim_marks_it_then_deletes_it():
    client, recorder = FakeClient(), FakeRecorder()
    reporter = Reporter(client, recorder, "default-scheduler")  # type: ignore[arg-type]
    reporter.preempt(info(pod("victim")), info(pod("hi")), "n1")
    await reporter.drain(5)
    assert [c[0] for c in client.calls] == ["patch pods/status victim", "delete default/victim"]
    cond = client.calls[0][1]["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("DisruptionTarget", "PreemptionByScheduler")
    assert recorder.events == [("Normal", "Preempted",
                                "Preempted by pod uid-default-hi on node n1")]


def test_long_messages_are_truncated_like_note_length_limit():
    assert len(truncate_message("x" * 5000)) == NOTE_LENGTH_LIMIT
    assert truncate_message("x" * 5000).endswith(" ...")


class _Groups:
    def __init__(self, pg):
        self.pg = pg

    def get(self, key):
        return self.pg


def test_pod_group_status_follows_the_outcome_and_bound_members():
    pg = {"metadata": {"name": "g", "namespace": "default"}, "spec": {"minMember": 2}}
    groups = PodGroups(client=None, informer=_Groups(pg))  # type: ignore[arg-type]
    key = ("default", "g")
    assert groups._desired(key, pg)["phase"] == PHASE_PENDING
    groups.record("default", "g", GangOutcome(PHASE_UNSCHEDULABLE, "why", "Unschedulable"))
    status = groups._desired(key, pg)
    assert status["phase"] == PHASE_UNSCHEDULABLE
    assert status["conditions"][0]["message"] == "why"
    groups.record("default", "g", bound=2)
    status = groups._desired(key, pg)
    assert (status["phase"], status["scheduled"]) == (PHASE_SCHEDULED, 2)
    assert status["conditions"][0]["status"] == "True"
