"""Node lifecycle decisions (issue 6): zone states, condition taints, tolerations, the
per-zone tainting rate, taint-based eviction timing, and health from Leases — driven with a
fake clock and an in-memory API."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from navio.api import errors
from navio.client import LEASES, NODES, PODS, FakeClock
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.nodelifecycle import (NOT_READY, UNREACHABLE, NodeLifecycleController,
                                             compute_zone_state, condition_taints,
                                             duration_option, matching_tolerations,
                                             min_toleration_seconds, tolerates)
from navio.controllers.nodelifecycle.zones import ZoneTainter

Obj = dict[str, Any]


@pytest.mark.parametrize("ready,state", [
    ([], "Normal"),
    ([True, True, False], "Normal"),
    ([False], "FullDisruption"),
    ([False, False, False, True], "PartialDisruption"),
    ([False, False, True, True], "Normal"),
    ([False, False, False, True, True, True], "Normal"),
], ids=["an empty zone is normal", "one not-ready node is normal",
        "no ready node is a full disruption", "three of four not ready is partial",
        "two not-ready nodes are never partial", "half is below the 0.55 threshold"])
def test_zone_state(ready: list[bool], state: str) -> None:
    assert compute_zone_state(ready, 0.55)[1] == state


def node(name: str = "n1", *, conditions: list[Obj] | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1",
                         "labels": labels or {}, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": conditions or []}}


@pytest.mark.parametrize("conditions,unschedulable,keys", [
    ([{"type": "Ready", "status": "True"}], False, []),
    ([{"type": "Ready", "status": "False"}], False, [NOT_READY]),
    ([{"type": "Ready", "status": "Unknown"}], False, [UNREACHABLE]),
    ([{"type": "MemoryPressure", "status": "True"}, {"type": "PIDPressure", "status": "True"}],
     False, ["node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure"]),
    ([], True, ["node.kubernetes.io/unschedulable"]),
], ids=["a ready node needs none", "Ready=False is not-ready", "Ready=Unknown is unreachable",
        "pressure conditions", "a cordoned node is unschedulable"])
def test_condition_taints_are_no_schedule(conditions: list[Obj], unschedulable: bool,
                                          keys: list[str]) -> None:
    taints = condition_taints(node(conditions=conditions, unschedulable=unschedulable))
    assert [t["key"] for t in taints] == keys
    assert all(t["effect"] == "NoSchedule" for t in taints)


TAINT = {"key": UNREACHABLE, "effect": "NoExecute"}


@pytest.mark.parametrize("toleration,ok", [
    ({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, True),
    ({"operator": "Exists"}, True),
    ({"key": UNREACHABLE, "operator": "Exists"}, True),
    ({"key": UNREACHABLE, "operator": "Equal", "value": "x", "effect": "NoExecute"}, False),
    ({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, False),
    ({"key": NOT_READY, "operator": "Exists"}, False),
], ids=["key and effect", "a bare Exists tolerates everything", "any effect",
        "Equal compares values", "another effect", "another key"])
def test_tolerates(toleration: Obj, ok: bool) -> None:
    assert tolerates(toleration, TAINT) is ok


@pytest.mark.parametrize("tolerations,seconds", [
    ([{"operator": "Exists", "tolerationSeconds": 30}], 30.0),
    ([{"operator": "Exists"}], -1.0),
    ([{"operator": "Exists", "tolerationSeconds": -5}], 0.0),
], ids=["bounded", "forever", "negative is now"])
def test_min_toleration_seconds(tolerations: list[Obj], seconds: float) -> None:
    ok, used = matching_tolerations([TAINT], tolerations)
    assert ok and min_toleration_seconds(used) == seconds


def test_untolerated_taints_match_nothing() -> None:
    assert matching_tolerations([TAINT], [{"key": "other", "operator": "Exists"}]) == (False, [])


@pytest.mark.parametrize("value,seconds", [(40, 40.0), ("40s", 40.0), ("1m30s", 90.0),
                                           ("500ms", 0.5), (0.2, 0.2)],
                         ids=["a number", "Go seconds", "minutes and seconds",
                              "milliseconds", "a fraction"])
def test_duration_options(value: Any, seconds: float) -> None:
    assert duration_option({"x": value}, "x", 1.0) == seconds


def test_duration_options_reject_garbage() -> None:
    with pytest.raises(ValueError):
        duration_option({"x": "forty"}, "x", 1.0)


def test_tainting_is_rate_limited_per_zone() -> None:
    clock = FakeClock()
    tainter = ZoneTainter(0.1, clock)
    tainter.queue.update({"a": "", "b": ""})
    assert tainter.take() == "a"
    assert tainter.take() is None
    clock.step(10)
    assert tainter.take() == "b"
    tainter.queue["c"] = ""
    tainter.swap(0)
    clock.step(100)
    assert tainter.take() is None, "a zero rate stops tainting"


class FakeClient:
    def __init__(self, objects: list[tuple[Any, Obj]]) -> None:
        self.store = {(r.plural, o["metadata"].get("namespace", ""), o["metadata"]["name"]):
                      copy.deepcopy(o) for r, o in objects}
        self.calls: list[tuple[str, str, Any]] = []

    async def get(self, resource: Any, name: str, ns: Any = None) -> Obj:
        try:
            return copy.deepcopy(self.store[(resource.plural, ns or "", name)])
        except KeyError:
            raise errors.NotFound(name) from None

    async def update(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.calls.append(("update", resource.plural, copy.deepcopy(body)))
        self.store[(resource.plural, body["metadata"].get("namespace", ""),
                    body["metadata"]["name"])] = copy.deepcopy(body)
        return body

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.calls.append(("status", resource.plural, copy.deepcopy(body)))
        return await self.update(resource, body)

    async def patch_subresource(self, resource: Any, name: str, sub: str, body: Any,
                                ns: Any = None, **_: Any) -> Obj:
        self.calls.append(("patch-" + sub, name, body))
        return {}

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.calls.append(("delete", resource.plural, name))
        return {}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


def pod(name: str, node_name: str, tolerations: list[Obj]) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"nodeName": node_name, "tolerations": tolerations},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def make(objects: list[tuple[Any, Obj]], clock: FakeClock, **options: Any
         ) -> tuple[NodeLifecycleController, FakeClient, Recorder]:
    client, recorder = FakeClient(objects), Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = NodeLifecycleController(ControllerContext(
        client, informers, recorder, {"clock": clock, **options}))  # type: ignore[arg-type]
    for resource, ns in ((NODES, None), (LEASES, "kube-node-lease"), (PODS, None)):
        informers.get(resource, ns)._replace([copy.deepcopy(o) for r, o in objects
                                              if r is resource], "1")
    return ctl, client, recorder


async def settle(clock: FakeClock) -> None:
    """Let tasks woken by the fake clock run."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_pods_are_evicted_at_once_or_when_their_toleration_expires() -> None:
    clock = FakeClock()
    tainted = node(taints=[{"key": UNREACHABLE, "effect": "NoExecute"}])
    short = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": 30}]
    forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    objects = [(NODES, tainted), (PODS, pod("bare", "n1", [])),
               (PODS, pod("short", "n1", short)), (PODS, pod("forever", "n1", forever))]
    ctl, client, recorder = make(objects, clock)
    runner = asyncio.create_task(ctl.evictor.run())
    try:
        await settle(clock)
        deleted = [c[2] for c in client.calls if c[0] == "delete"]
        assert deleted == ["bare"]
        clock.step(29)
        await settle(clock)
        assert [c[2] for c in client.calls if c[0] == "delete"] == ["bare"]
        clock.step(1)
        await settle(clock)
        assert sorted(c[2] for c in client.calls if c[0] == "delete") == ["bare", "short"]
        conditions = [c[2]["status"]["conditions"][0] for c in client.calls
                      if c[0] == "patch-status"]
        assert all(c["reason"] == "DeletionByTaintManager" for c in conditions)
        assert ("TaintManagerEviction", "Marking for deletion Pod ns/short") in recorder.events
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_removing_the_taint_cancels_a_pending_eviction() -> None:
    clock = FakeClock()
    short = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": 30}]
    tainted = node(taints=[{"key": UNREACHABLE, "effect": "NoExecute"}])
    ctl, client, recorder = make([(NODES, tainted), (PODS, pod("short", "n1", short))], clock)
    runner = asyncio.create_task(ctl.evictor.run())
    try:
        await settle(clock)
        untainted = node()
        untainted["metadata"]["resourceVersion"] = "2"
        ctl.nodes._replace([untainted], "2")        # the taint is removed
        await settle(clock)
        clock.step(60)
        await settle(clock)
        assert not [c for c in client.calls if c[0] == "delete"]
        assert ("TaintManagerEviction", "Cancelling deletion of Pod ns/short") in recorder.events
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def lease(name: str, renew: datetime) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


async def test_a_silent_node_becomes_unknown_then_unreachable_tainted() -> None:
    clock = FakeClock()
    stamp = "2024-01-01T00:00:00Z"
    ready = [{"type": "Ready", "status": "True", "lastHeartbeatTime": stamp,
              "lastTransitionTime": stamp},
             {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": stamp,
              "lastTransitionTime": stamp}]
    zone = {"topology.kubernetes.io/zone": "z"}
    objects = [(NODES, node("lost", conditions=ready, labels=zone)),
               (NODES, node("alive", conditions=copy.deepcopy(ready), labels=zone)),
               (LEASES, lease("lost", datetime.now(timezone.utc))),
               (PODS, pod("p", "lost", []))]
    ctl, client, recorder = make(objects, clock, **{"node-monitor-grace-period": 40})
    await ctl.monitor_node_health()
    assert not [c for c in client.calls if c[0] == "status"], "fresh nodes stay as they are"
    clock.step(41)
    # "alive" keeps renewing: a newer heartbeat arrives.
    fresh = node("alive", conditions=copy.deepcopy(ready), labels=zone)
    fresh["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:00:41Z"
    ctl.nodes._replace([copy.deepcopy(client.store[("nodes", "", "lost")]), fresh], "2")
    await ctl.monitor_node_health()
    updates = [c[2] for c in client.calls if c[0] == "status"]
    assert [u["metadata"]["name"] for u in updates] == ["lost"]
    conds = {c["type"]: c for c in updates[0]["status"]["conditions"]}
    assert conds["Ready"]["status"] == "Unknown"
    assert conds["Ready"]["reason"] == "NodeStatusUnknown"
    assert conds["Ready"]["message"] == "Kubelet stopped posting node status."
    assert conds["MemoryPressure"]["status"] == "Unknown"
    assert ("NodeNotReady", "Node lost status is now: NodeNotReady") in recorder.events
    marked = [c for c in client.calls if c[0] == "patch-status" and c[1] == "p"]
    assert marked and marked[0][2]["status"]["conditions"][0]["status"] == "False"
    ctl.nodes._replace([copy.deepcopy(client.store[("nodes", "", "lost")]), fresh], "3")
    await ctl.monitor_node_health()
    await ctl.tainting_pass()
    taints = client.store[("nodes", "", "lost")]["spec"]["taints"]
    assert [(t["key"], t["effect"]) for t in taints] == [(UNREACHABLE, "NoExecute")]
    assert taints[0]["timeAdded"]


async def test_no_node_is_tainted_when_every_zone_is_down() -> None:
    clock = FakeClock()
    unknown = [{"type": "Ready", "status": "Unknown", "lastHeartbeatTime": "x",
                "lastTransitionTime": "x"}]
    ctl, client, _ = make([(NODES, node("only", conditions=unknown))], clock)
    await ctl.monitor_node_health()
    await ctl.monitor_node_health()
    clock.step(100)
    await ctl.tainting_pass()
    assert not [c for c in client.calls if c[0] == "update"]
    assert ctl._zones == {"": "FullDisruption"}

