"""StatefulSet identity, claims and ordering, one reconcile at a time against an in-memory
API (issue 6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api import errors
from navio.client import CONTROLLERREVISIONS, PODS, STATEFULSETS
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.statefulset import (PVCS, StatefulSetController, claims_for, new_pod,
                                           pod_ordinal)

Obj = dict[str, Any]


def sts(replicas: int = 3, policy: str = "OrderedReady", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "sts-uid", "generation": 1,
                         "resourceVersion": "1"},
            "spec": {"replicas": replicas, "serviceName": "web", "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": "web"}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"partition": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c"}],
                                           "volumes": [{"name": "data", "emptyDir": {}}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data",
                                                            "labels": {"kind": "db"}},
                                               "spec": {"accessModes": ["ReadWriteOnce"]}}],
                     **spec},
            "status": {}}


@pytest.mark.parametrize("name,expected", [("web-0", ("web", 0)), ("my-web-12", ("my-web", 12)),
                                           ("web", ("", -1)), ("web-x", ("", -1))],
                         ids=["a simple ordinal", "a dashed parent", "no ordinal",
                              "a non-numeric suffix"])
def test_pod_ordinal(name: str, expected: tuple[str, int]) -> None:
    assert pod_ordinal({"metadata": {"name": name}}) == expected


def test_claims_are_named_per_ordinal_and_labelled_with_the_selector() -> None:
    (claim,) = claims_for(sts(), 2).values()
    assert claim["metadata"]["name"] == "data-web-2"
    assert claim["metadata"]["labels"] == {"kind": "db", "app": "web"}
    assert claim["kind"] == "PersistentVolumeClaim"


def test_a_new_pod_has_a_stable_identity_and_its_claim_mounted() -> None:
    set_ = sts()
    pod = new_pod(set_, set_["spec"]["template"], 1, "web-abc")
    assert pod["metadata"]["name"] == "web-1"
    assert pod["metadata"]["labels"] == {"app": "web",
                                         "statefulset.kubernetes.io/pod-name": "web-1",
                                         "apps.kubernetes.io/pod-index": "1",
                                         "controller-revision-hash": "web-abc"}
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "web"
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {
        "claimName": "data-web-1"}}], "the claim replaces the template's volume of that name"


class FakeClient:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str], Obj] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        body = copy.deepcopy(body)
        name = body["metadata"]["name"]
        if (resource.plural, name) in self.store:
            raise errors.AlreadyExists(name)
        body["metadata"]["uid"] = "uid-" + name
        self.store[(resource.plural, name)] = body
        self.calls.append(("create", resource.plural, name))
        return body

    async def get(self, resource: Any, name: str, ns: Any = None) -> Obj:
        return copy.deepcopy(self.store[(resource.plural, name)])

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.calls.append(("delete", resource.plural, name))
        self.store.pop((resource.plural, name), None)
        return {}

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.store[(resource.plural, body["metadata"]["name"])] = copy.deepcopy(body)
        return body

    def created(self, plural: str = "pods") -> list[str]:
        return [n for v, p, n in self.calls if v == "create" and p == plural]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


async def reconcile(set_: Obj, client: FakeClient, *, ready: set[str] = frozenset()  # type: ignore[assignment]
                    ) -> Recorder:
    """One pass with the cache showing what the client stored; pods in `ready` are Running
    and Ready."""
    recorder = Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = StatefulSetController(ControllerContext(client, informers, recorder, {}))  # type: ignore[arg-type]
    pods = []
    for (plural, name), obj in client.store.items():
        if plural == "pods":
            p = copy.deepcopy(obj)
            p["metadata"].setdefault("namespace", "ns")
            if name in ready:
                p["status"] = {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True",
                     "lastTransitionTime": "2024-05-01T12:00:00Z"}]}
            pods.append(p)
    informers.get(STATEFULSETS)._replace([set_], "1")
    informers.get(PODS)._replace(pods, "1")
    informers.get(CONTROLLERREVISIONS)._replace(
        [o for (p, _), o in client.store.items() if p == "controllerrevisions"], "1")
    informers.get(PVCS)._replace(
        [{**o, "metadata": {**o["metadata"], "namespace": "ns"}}
         for (p, _), o in client.store.items() if p == "persistentvolumeclaims"], "1")
    await ctl.reconcile("ns/web")
    return recorder


async def test_ordered_ready_creates_one_pod_at_a_time_waiting_for_ready() -> None:
    client = FakeClient()
    recorder = await reconcile(sts(), client)
    assert client.created() == ["web-0"]
    assert client.created("persistentvolumeclaims") == ["data-web-0"]
    assert ("SuccessfulCreate", "create Claim data-web-0 Pod web-0 in StatefulSet web success") \
        in recorder.events
    assert ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") \
        in recorder.events
    await reconcile(sts(), client)
    assert client.created() == ["web-0"], "web-1 waits for web-0 to be Ready"
    await reconcile(sts(), client, ready={"web-0"})
    assert client.created() == ["web-0", "web-1"]
    await reconcile(sts(), client, ready={"web-0", "web-1"})
    assert client.created() == ["web-0", "web-1", "web-2"]
    await reconcile(sts(), client, ready={"web-0", "web-1", "web-2"})
    status = client.store[("statefulsets", "web")]["status"]
    assert status["readyReplicas"] == 3 and status["replicas"] == 3
    assert status["currentRevision"] == status["updateRevision"]
    assert status["updateRevision"].startswith("web-")


async def test_parallel_creates_every_pod_at_once() -> None:
    client = FakeClient()
    await reconcile(sts(policy="Parallel"), client)
    assert sorted(client.created()) == ["web-0", "web-1", "web-2"]


async def test_scale_down_removes_the_highest_ordinal_first() -> None:
    client = FakeClient()
    await reconcile(sts(policy="Parallel"), client)
    ready = {"web-0", "web-1", "web-2"}
    await reconcile(sts(replicas=1), client, ready=ready)
    assert [n for v, p, n in client.calls if v == "delete"] == ["web-2"]
    await reconcile(sts(replicas=1), client, ready=ready - {"web-2"})
    assert [n for v, p, n in client.calls if v == "delete"] == ["web-2", "web-1"]


async def test_a_template_change_rolls_from_the_highest_ordinal_down() -> None:
    client = FakeClient()
    await reconcile(sts(replicas=2, policy="Parallel"), client)
    ready = {"web-0", "web-1"}
    await reconcile(sts(replicas=2), client, ready=ready)
    changed = sts(replicas=2)
    changed["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    changed["status"] = client.store[("statefulsets", "web")]["status"]
    await reconcile(changed, client, ready=ready)
    assert [n for v, p, n in client.calls if v == "delete"] == ["web-1"]
    revisions = [o for (p, _), o in client.store.items() if p == "controllerrevisions"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]


async def test_a_failed_pod_is_recreated_with_a_warning() -> None:
    client = FakeClient()
    await reconcile(sts(replicas=1), client)
    client.store[("pods", "web-0")]["status"] = {"phase": "Failed"}
    recorder = await reconcile(sts(replicas=1), client)
    assert ("RecreatingFailedPod", "StatefulSet ns/web is recreating failed Pod web-0") \
        in recorder.events
    assert ("delete", "pods", "web-0") in client.calls
