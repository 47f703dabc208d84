"""The event recorder: Event shape, aggregation by count, combining, rate limiting, no raising."""

from __future__ import annotations

import copy
from typing import Any

from navio.api import errors
from navio.client.clock import FakeClock
from navio.client.events import NORMAL, WARNING, EventRecorder

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"}}


class FakeEventClient:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: list[BaseException] = []

    async def create(self, resource: Any, body: dict[str, Any], namespace: str | None = None,
                     **_: Any) -> dict[str, Any]:
        self.calls.append(("create", copy.deepcopy(body)))
        if self.fail:
            raise self.fail.pop(0)
        self.events[body["metadata"]["name"]] = copy.deepcopy(body)
        return copy.deepcopy(body)

    async def patch(self, resource: Any, name: str, body: Any, namespace: str | None = None,
                    **kw: Any) -> dict[str, Any]:
        self.calls.append(("patch", (name, namespace, body, kw.get("patch_type"))))
        if self.fail:
            raise self.fail.pop(0)
        if name not in self.events:
            raise errors.NotFound("gone")
        self.events[name].update(body)
        return copy.deepcopy(self.events[name])


def _recorder(client: FakeEventClient, clock: FakeClock | None = None) -> EventRecorder:
    return EventRecorder(client, "navio-test", host="node-1",  # type: ignore[arg-type]
                         clock=clock or FakeClock())


async def test_an_event_is_created_with_kubernetes_fields():
    client = FakeEventClient()
    rec = _recorder(client)
    rec.event(POD, NORMAL, "Scheduled", "assigned shop/web to node-1")
    assert await rec.flush(5.0)
    (ev,) = client.events.values()
    assert ev["metadata"]["namespace"] == "shop"
    assert ev["metadata"]["name"].startswith("web.")
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "namespace": "shop",
                                    "name": "web", "uid": "u-1", "resourceVersion": "7"}
    assert (ev["reason"], ev["type"], ev["count"]) == ("Scheduled", "Normal", 1)
    assert ev["source"] == {"component": "navio-test", "host": "node-1"}
    assert ev["reportingComponent"] == "navio-test" and ev["reportingInstance"] == "node-1"
    assert ev["firstTimestamp"] == ev["lastTimestamp"]
    await rec.stop()


async def test_repeats_increment_count_with_a_patch():
    client = FakeEventClient()
    rec = _recorder(client)
    for _ in range(3):
        rec.event(POD, WARNING, "BackOff", "back-off restarting failed container")
    assert await rec.flush(5.0)
    assert [c[0] for c in client.calls] == ["create", "patch", "patch"]
    (ev,) = client.events.values()
    assert ev["count"] == 3
    name, ns, body, patch_type = client.calls[-1][1]
    assert ns == "shop" and patch_type == "strategic" and set(body) == {
        "count", "lastTimestamp", "message"}
    await rec.stop()


async def test_different_messages_are_separate_events_until_ten_then_combined():
    client = FakeEventClient()
    rec = _recorder(client)
    for i in range(12):
        rec.event(POD, WARNING, "FailedMount", f"volume {i} not ready")
    assert await rec.flush(5.0)
    creates = [c[1] for c in client.calls if c[0] == "create"]
    assert len(creates) == 10
    assert creates[-1]["message"].startswith("(combined from similar events): volume 9")
    patches = [c[1] for c in client.calls if c[0] == "patch"]
    assert len(patches) == 2 and patches[-1][2]["count"] == 3
    await rec.stop()


async def test_events_about_one_object_are_rate_limited():
    client = FakeEventClient()
    clock = FakeClock()
    rec = _recorder(client, clock)
    for i in range(30):
        rec.event(POD, NORMAL, f"Reason{i}", "m")
    assert await rec.flush(5.0)
    assert len(client.calls) == 25 and rec.dropped == 5
    other = {**POD, "metadata": {**POD["metadata"], "name": "db", "uid": "u-2"}}
    rec.event(other, NORMAL, "Started", "m")          # another object has its own bucket
    clock.step(300.0)                                # one token back for web
    rec.event(POD, NORMAL, "Again", "m")
    assert await rec.flush(5.0)
    assert len(client.calls) == 27
    await rec.stop()


async def test_a_vanished_event_is_created_again():
    client = FakeEventClient()
    rec = _recorder(client)
    rec.event(POD, NORMAL, "Pulled", "pulled image")
    assert await rec.flush(5.0)
    client.events.clear()
    rec.event(POD, NORMAL, "Pulled", "pulled image")
    assert await rec.flush(5.0)
    assert [c[0] for c in client.calls] == ["create", "patch", "create"]
    assert list(client.events.values())[0]["count"] == 1
    await rec.stop()


async def test_failures_never_reach_the_caller():
    client = FakeEventClient()
    clock = FakeClock()
    rec = _recorder(client, clock)
    client.fail = [errors.Forbidden("namespace terminating")]
    rec.event(POD, NORMAL, "A", "m")
    rec.event({"not": "an object"}, NORMAL, "B", "m")
    rec.event(POD, "Bogus", "C", "m")
    assert await rec.flush(5.0)
    assert rec.dropped == 2                          # no name; the bogus type
    assert len(client.calls) == 1
    await rec.stop()
    await rec.stop()


async def test_connection_errors_are_retried_a_few_times():
    client = FakeEventClient()
    rec = _recorder(client)                          # FakeClock sleeps return when stepped
    rec._clock = type("Instant", (), {"now": lambda self: 0.0,
                                      "sleep": staticmethod(_no_sleep)})()
    client.fail = [ConnectionError("refused"), ConnectionError("refused")]
    rec.event(POD, NORMAL, "A", "m")
    assert await rec.flush(5.0)
    assert [c[0] for c in client.calls] == ["create"] * 3
    assert len(client.events) == 1
    await rec.stop()


async def _no_sleep(seconds: float) -> None:
    return None
