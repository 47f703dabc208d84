"""DaemonSet placement and one reconcile against an in-memory API (issue 6): which nodes get
a pod, the pods' tolerations and node affinity, and removal with the node."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from navio.api import errors
from navio.client import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.daemonset import (DaemonSetController, daemon_tolerations,
                                         node_affinity_for, node_should_run, target_node)

Obj = dict[str, Any]


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None
         ) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels or {}, "resourceVersion": "1"},
            "spec": {"taints": taints or []}}


def daemonset(**pod_spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 1,
                         "resourceVersion": "1",
                         "annotations": {"deprecated.daemonset.template.generation": "1"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c"}], **pod_spec}}},
            "status": {}}


@pytest.mark.parametrize("n,ds,expected", [
    (node("a"), daemonset(), (True, True)),
    (node("a", {"role": "edge"}), daemonset(nodeSelector={"role": "edge"}), (True, True)),
    (node("a"), daemonset(nodeSelector={"role": "edge"}), (False, False)),
    (node("a", taints=[{"key": "k", "effect": "NoSchedule"}]), daemonset(), (False, True)),
    (node("a", taints=[{"key": "k", "effect": "NoExecute"}]), daemonset(), (False, False)),
    (node("a", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
     daemonset(), (True, True)),
    (node("a", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
     daemonset(), (True, True)),
    (node("a"), daemonset(nodeName="b"), (False, False)),
    (node("a", {"zone": "x"}), daemonset(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["y"]}]}]}}}),
     (False, False)),
], ids=["any node by default", "a matching nodeSelector", "a mismatching nodeSelector",
        "an untolerated NoSchedule taint keeps running pods", "an untolerated NoExecute taint",
        "cordoned nodes are tolerated", "unreachable nodes are tolerated",
        "a template nodeName pins another node", "required node affinity must match"])
def test_which_nodes_run_a_daemon_pod(n: Obj, ds: Obj, expected: tuple[bool, bool]) -> None:
    assert node_should_run(n, ds) == expected


def test_daemon_pods_get_the_upstream_tolerations() -> None:
    keys = {(t["key"], t["effect"]) for t in daemon_tolerations({})}
    assert keys == {("node.kubernetes.io/not-ready", "NoExecute"),
                    ("node.kubernetes.io/unreachable", "NoExecute"),
                    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                    ("node.kubernetes.io/unschedulable", "NoSchedule")}
    host = {t["key"] for t in daemon_tolerations({"hostNetwork": True})}
    assert "node.kubernetes.io/network-unavailable" in host
    mine = daemon_tolerations({"tolerations": [{"key": "node.kubernetes.io/not-ready",
                                                "operator": "Exists", "effect": "NoExecute",
                                                "tolerationSeconds": 5}]})
    ready = [t for t in mine if t["key"] == "node.kubernetes.io/not-ready"]
    assert ready == [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                      "effect": "NoExecute"}], "a matching toleration is replaced, forever"


def test_node_affinity_replaces_required_terms_and_names_the_target() -> None:
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}}
    out = node_affinity_for(affinity, "n7")
    assert out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                "values": ["n7"]}]}]}
    assert out["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert target_node({"spec": {"affinity": out}}) == "n7"
    assert target_node({"spec": {"nodeName": "n2", "affinity": out}}) == "n2"


class FakeClient:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str], Obj] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        body = copy.deepcopy(body)
        meta = body["metadata"]
        meta.setdefault("name", f"{meta.get('generateName', 'x-')}{next(self._ids)}")
        if (resource.plural, meta["name"]) in self.store:
            raise errors.AlreadyExists(meta["name"])
        meta["uid"] = "uid-" + meta["name"]
        self.store[(resource.plural, meta["name"])] = body
        self.calls.append(("create", resource.plural, meta["name"]))
        return body

    async def get(self, resource: Any, name: str, ns: Any = None) -> Obj:
        return copy.deepcopy(self.store[(resource.plural, name)])

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.calls.append(("delete", resource.plural, name))
        return {}

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.store[(resource.plural, body["metadata"]["name"])] = copy.deepcopy(body)
        return body


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


async def reconcile(ds: Obj, nodes: list[Obj], pods: list[Obj], client: FakeClient
                    ) -> Recorder:
    recorder = Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = DaemonSetController(ControllerContext(client, informers, recorder, {}))  # type: ignore[arg-type]
    informers.get(DAEMONSETS)._replace([ds], "1")
    informers.get(NODES)._replace(nodes, "1")
    informers.get(PODS)._replace(pods, "1")
    informers.get(CONTROLLERREVISIONS)._replace(
        [o for (p, _), o in client.store.items() if p == "controllerrevisions"], "1")
    await ctl.reconcile("ns/agent")
    return recorder


async def test_each_eligible_node_gets_one_pod_pinned_by_affinity() -> None:
    client = FakeClient()
    nodes = [node("a"), node("b"), node("c", taints=[{"key": "k", "effect": "NoSchedule"}])]
    recorder = await reconcile(daemonset(), nodes, [], client)
    pods = [o for (p, _), o in client.store.items() if p == "pods"]
    assert sorted(target_node(p) or "" for p in pods) == ["a", "b"]
    revs = [o for (p, _), o in client.store.items() if p == "controllerrevisions"]
    assert len(revs) == 1
    hash_ = revs[0]["metadata"]["labels"]["controller-revision-hash"]
    assert revs[0]["metadata"]["name"] == f"agent-{hash_}"
    for p in pods:
        assert not p["spec"].get("nodeName")
        assert p["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_,
                                           "pod-template-generation": "1"}
        assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert [r for r, _ in recorder.events] == ["SuccessfulCreate"] * 2
    status = client.store[("daemonsets", "agent")]["status"]
    # Status counts what the cache shows; the new pods arrive with the next watch events.
    assert status["desiredNumberScheduled"] == 2 and status["numberUnavailable"] == 2


async def test_pods_of_vanished_or_ineligible_nodes_are_deleted() -> None:
    client = FakeClient()
    await reconcile(daemonset(), [node("a"), node("b")], [], client)
    pods = [copy.deepcopy(o) for (p, _), o in client.store.items() if p == "pods"]
    for p in pods:
        p["apiVersion"], p["kind"] = "v1", "Pod"
        p["metadata"].update(namespace="ns", resourceVersion="2",
                             creationTimestamp="2024-05-01T12:00:00Z")
    client.calls.clear()
    await reconcile(daemonset(), [node("a", taints=[{"key": "k", "effect": "NoExecute"}])],
                    pods, client)
    deleted = {target_node(client.store[("pods", n)]) for v, _, n in client.calls
               if v == "delete"}
    assert deleted == {"a", "b"}
    assert not [c for c in client.calls if c[0] == "create" and c[1] == "pods"]


async def test_a_failed_daemon_pod_is_killed_with_a_warning() -> None:
    client = FakeClient()
    await reconcile(daemonset(), [node("a")], [], client)
    (p,) = [copy.deepcopy(o) for (k, _), o in client.store.items() if k == "pods"]
    p["apiVersion"], p["kind"] = "v1", "Pod"
    p["metadata"].update(namespace="ns", resourceVersion="2")
    p["status"] = {"phase": "Failed"}
    recorder = await reconcile(daemonset(), [node("a")], [p], client)
    assert ("FailedDaemonPod", f"Found failed daemon pod ns/{p['metadata']['name']} on node a, "
            "will try to kill it") in recorder.events


def ready_pod(name: str, node_name: str, hash_: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "resourceVersion": "3", "creationTimestamp": "2024-05-01T12:00:00Z",
                         "labels": {"app": "agent", "controller-revision-hash": hash_},
                         "ownerReferences": [{"kind": "DaemonSet", "name": "agent",
                                              "uid": "ds-uid", "controller": True}]},
            "spec": {"affinity": node_affinity_for(None, node_name)},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True",
                 "lastTransitionTime": "2024-05-01T12:00:00Z"}]}}


@pytest.mark.parametrize("surge,unavailable,creates,deletes", [
    (0, 1, 0, 1), (0, 2, 0, 2), (1, 0, 1, 0), (2, 0, 2, 0),
], ids=["maxUnavailable 1 replaces one old pod at a time",
        "maxUnavailable 2 replaces two", "maxSurge 1 starts one new pod beside an old one",
        "maxSurge 2 starts two"])
async def test_rolling_update_respects_max_unavailable_and_max_surge(
        surge: int, unavailable: int, creates: int, deletes: int) -> None:
    client = FakeClient()
    ds = daemonset()
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxSurge": surge,
                                                     "maxUnavailable": unavailable}
    pods = [ready_pod(f"old-{n}", n, "oldhash") for n in ("a", "b", "c")]
    await reconcile(ds, [node("a"), node("b"), node("c")], pods, client)
    assert len([c for c in client.calls if c[:2] == ("create", "pods")]) == creates
    assert len([c for c in client.calls if c[0] == "delete"]) == deletes


async def test_with_surge_the_old_pod_goes_once_the_new_one_is_available() -> None:
    client = FakeClient()
    ds = daemonset()
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": 0}
    await reconcile(ds, [node("a")], [], client)
    (rev,) = [o for (p, _), o in client.store.items() if p == "controllerrevisions"]
    new_hash = rev["metadata"]["labels"]["controller-revision-hash"]
    client.calls.clear()
    pods = [ready_pod("old-a", "a", "oldhash"), ready_pod("new-a", "a", new_hash)]
    await reconcile(ds, [node("a")], pods, client)
    assert [n for v, _, n in client.calls if v == "delete"] == ["old-a"]
