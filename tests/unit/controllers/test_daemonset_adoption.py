"""DaemonSet adoption and release, as kube's ControllerRefManager does them, and pods
counted up to date by template generation (issue 6)."""

from __future__ import annotations

import copy
from typing import Any

from navio.api import errors
from navio.client import DAEMONSETS
from test_daemonset import FakeClient, daemonset, node, reconcile

Obj = dict[str, Any]


class PatchingClient(FakeClient):
    """FakeClient that applies the ownerReference patches adoption and release send."""

    async def patch(self, resource: Any, name: str, body: Any, ns: Any = None,
                    **_: Any) -> Obj:
        self.calls.append(("patch", resource.plural, name))
        obj = self.store[(resource.plural, name)]
        refs = body["metadata"]["ownerReferences"]
        if refs and refs[0].get("$patch") == "delete":
            obj["metadata"]["ownerReferences"] = [
                r for r in obj["metadata"].get("ownerReferences") or ()
                if r.get("uid") != refs[0]["uid"]]
        else:
            obj["metadata"]["ownerReferences"] = refs
        return copy.deepcopy(obj)


def pod_on(name: str, node_name: str, labels: dict[str, str], owned: bool = False,
           **extra: Any) -> Obj:
    refs = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds-uid",
             "controller": True}] if owned else []
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": "uid-" + name,
                         "labels": labels, "ownerReferences": refs,
                         "creationTimestamp": "2024-01-01T00:00:00Z", **extra},
            "spec": {"nodeName": node_name, "containers": [{"name": "c"}]},
            "status": {"phase": "Running"}}


def with_stored_ds(client: PatchingClient, ds: Obj) -> Obj:
    client.store[(DAEMONSETS.plural, "agent")] = copy.deepcopy(ds)   # adoption re-reads it
    return ds


def stored(client: PatchingClient, *pods: Obj) -> list[Obj]:
    for p in pods:
        client.store[("pods", p["metadata"]["name"])] = copy.deepcopy(p)
    return list(pods)


async def test_a_matching_orphan_is_adopted_instead_of_a_new_pod() -> None:
    client = PatchingClient()
    ds = with_stored_ds(client, daemonset())
    orphan = pod_on("stray", "a", {"app": "agent"})
    await reconcile(ds, [node("a"), node("b")], stored(client, orphan), client)
    assert ("patch", "pods", "stray") in client.calls
    adopted = client.store[("pods", "stray")]["metadata"]["ownerReferences"]
    assert adopted == [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                        "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}]
    created = [n for v, p, n in client.calls if v == "create" and p == "pods"]
    assert len(created) == 1, "only node b needs a new pod"
    status = client.store[(DAEMONSETS.plural, "agent")]["status"]
    assert status["currentNumberScheduled"] == 1 and status["desiredNumberScheduled"] == 2


async def test_a_pod_that_stops_matching_is_released_and_replaced() -> None:
    client = PatchingClient()
    ds = with_stored_ds(client, daemonset())
    relabelled = pod_on("debug", "a", {"app": "debugging"}, owned=True)
    await reconcile(ds, [node("a")], stored(client, relabelled), client)
    assert client.store[("pods", "debug")]["metadata"]["ownerReferences"] == []
    assert [n for v, p, n in client.calls if v == "delete"] == [], "released, not deleted"
    assert len([n for v, p, n in client.calls if v == "create" and p == "pods"]) == 1


async def test_pods_of_other_controllers_and_deleting_daemonsets_are_left_alone() -> None:
    client = PatchingClient()
    other = pod_on("theirs", "a", {"app": "agent"})
    other["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "rs", "uid": "rs-uid", "controller": True}]
    ds = with_stored_ds(client, daemonset())
    await reconcile(ds, [node("a")], stored(client, other), client)
    assert ("patch", "pods", "theirs") not in client.calls
    client = PatchingClient()
    going = daemonset()
    going["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    with_stored_ds(client, going)
    await reconcile(going, [node("a")], stored(client, pod_on("stray", "a", {"app": "agent"})),
                    client)
    assert ("patch", "pods", "stray") not in client.calls


async def test_a_pod_of_the_current_template_generation_counts_as_updated() -> None:
    """util.IsPodUpdated accepts pod-template-generation now the API server bumps it."""
    client = PatchingClient()
    ds = with_stored_ds(client, daemonset())
    ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] = "3"
    current = pod_on("cur", "a", {"app": "agent", "pod-template-generation": "3",
                                  "controller-revision-hash": "old"}, owned=True)
    stale = pod_on("old", "b", {"app": "agent", "pod-template-generation": "2",
                                "controller-revision-hash": "old"}, owned=True)
    await reconcile(ds, [node("a"), node("b")], stored(client, current, stale), client)
    deleted = [n for v, p, n in client.calls if v == "delete" and p == "pods"]
    assert deleted == ["old"], "only the pod of an older generation is rolled"
    status = client.store[(DAEMONSETS.plural, "agent")]["status"]
    assert status["updatedNumberScheduled"] == 1


class ConflictOnce(PatchingClient):
    """The first status write loses to a concurrent writer."""

    def __init__(self) -> None:
        super().__init__()
        self.status_writes: list[Obj] = []

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.status_writes.append(copy.deepcopy(body))
        if len(self.status_writes) == 1:
            raise errors.Conflict("the object has been modified")
        return await super().update_status(resource, body, ns)


async def test_a_status_conflict_is_retried_once_on_a_fresh_copy() -> None:
    client = ConflictOnce()
    ds = with_stored_ds(client, daemonset())
    fresh = copy.deepcopy(ds)
    fresh["metadata"]["resourceVersion"] = "2"
    fresh["status"] = {"collisionCount": 1}
    client.store[(DAEMONSETS.plural, "agent")] = fresh
    await reconcile(ds, [node("a")], [], client)
    assert len(client.status_writes) == 2
    second = client.status_writes[1]
    assert second["metadata"]["resourceVersion"] == "2"
    assert second["status"]["collisionCount"] == 1 and second["status"]["desiredNumberScheduled"] == 1
