"""Which pods become endpoints, how ports resolve, how Endpoints subsets are packed and when
the Endpoints object is written (issue 6)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from navio.api import errors
from navio.client import ENDPOINTS, PODS, SERVICES
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.endpoints import (TRIGGER_TIME_ANNOTATION, EndpointsController,
                                         TriggerTimeTracker, find_port, format_trigger_time,
                                         repack_subsets, should_pod_be_in_endpoints)

Obj = dict[str, Any]


def pod(name: str, ip: str | None = "10.0.0.1", *, ready: bool = True, phase: str = "Running",
        deleting: bool = False, ready_at: str = "2024-05-01T12:00:00Z", **spec: Any) -> Obj:
    status: Obj = {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": ready_at}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "w"},
                 "resourceVersion": "1"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    containers = [{"name": "c", "ports": [{"name": "http", "containerPort": 8080},
                                          {"name": "dns", "containerPort": 53,
                                           "protocol": "UDP"}]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": containers, "nodeName": "n1", **spec}, "status": status}


@pytest.mark.parametrize("p,include_terminating,expected", [
    (pod("a"), False, True),
    (pod("a", ip=None), False, False),
    (pod("a", phase="Succeeded"), True, False),
    (pod("a", phase="Failed"), True, False),
    (pod("a", deleting=True), False, False),
    (pod("a", deleting=True), True, True),
    (pod("a", ready=False), False, True),
], ids=["a running pod with an IP", "a pod without IP", "a succeeded pod", "a failed pod",
        "a terminating pod is left out", "unless terminating pods are included",
        "a not-ready pod still counts"])
def test_which_pods_are_endpoints(p: Obj, include_terminating: bool, expected: bool) -> None:
    assert should_pod_be_in_endpoints(p, include_terminating) is expected


@pytest.mark.parametrize("port,number", [
    ({"port": 80, "targetPort": 9090}, 9090),
    ({"port": 80, "targetPort": "http"}, 8080),
    ({"port": 53, "targetPort": "dns", "protocol": "UDP"}, 53),
    ({"port": 53, "targetPort": "dns", "protocol": "TCP"}, None),
    ({"port": 80, "targetPort": "metrics"}, None),
], ids=["a number is used as is", "a name is looked up in the container ports",
        "names match with their protocol", "the protocol must match",
        "an unknown name resolves to nothing"])
def test_find_port(port: Obj, number: int | None) -> None:
    assert find_port(pod("a"), port) == number


def addr(ip: str, name: str) -> Obj:
    return {"ip": ip, "targetRef": {"kind": "Pod", "namespace": "ns", "name": name,
                                    "uid": f"uid-{name}"}}


def test_repack_groups_pods_by_port_set_and_sorts_addresses() -> None:
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    dns = {"name": "dns", "port": 53, "protocol": "UDP"}
    entries = [(addr("10.0.0.9", "b"), http, True), (addr("10.0.0.10", "c"), http, False),
               (addr("10.0.0.2", "a"), http, True), (addr("10.0.0.2", "a"), dns, True),
               (addr("10.0.0.9", "b"), dns, True), (addr("10.0.0.10", "c"), dns, False)]
    assert repack_subsets(entries) == [{
        "addresses": [addr("10.0.0.2", "a"), addr("10.0.0.9", "b")],
        "notReadyAddresses": [addr("10.0.0.10", "c")],
        "ports": [dns, http]}]


def test_repack_keeps_different_port_sets_apart() -> None:
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    other = {"name": "http", "port": 9090, "protocol": "TCP"}
    subsets = repack_subsets([(addr("10.0.0.1", "a"), http, True),
                              (addr("10.0.0.2", "b"), other, True)])
    assert [s["ports"] for s in subsets] == [[http], [other]]


def test_trigger_time_is_creation_first_then_the_earliest_new_change() -> None:
    tracker = TriggerTimeTracker()
    svc = {"metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:00:00Z"}}
    pods = [pod("a", ready_at="2024-05-01T12:00:00Z")]
    assert tracker.compute("ns/s", svc, pods) == datetime(2024, 5, 1, 11, tzinfo=timezone.utc)
    tracker.commit("ns/s")
    assert tracker.compute("ns/s", svc, pods) is None, "nothing changed"
    tracker.commit("ns/s")
    pods = [pod("a", ready_at="2024-05-01T12:05:00Z"), pod("b", ready_at="2024-05-01T12:03:00Z")]
    assert tracker.compute("ns/s", svc, pods) == datetime(2024, 5, 1, 12, 3, tzinfo=timezone.utc)


def test_a_trigger_whose_write_failed_is_reported_again() -> None:
    """A failed write (say, a conflict) must not consume the change: the retry's write would
    otherwise clear the annotation though nothing exported it."""
    tracker = TriggerTimeTracker()
    svc = {"metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:00:00Z"}}
    tracker.compute("ns/s", svc, [])
    tracker.commit("ns/s")
    pods = [pod("a", ready_at="2024-05-01T12:00:00Z")]
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert tracker.compute("ns/s", svc, pods) == when
    assert tracker.compute("ns/s", svc, pods) == when, "not committed: still pending"
    tracker.commit("ns/s")
    assert tracker.compute("ns/s", svc, pods) is None


@pytest.mark.parametrize("when,text", [
    (datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc), "2024-05-01T12:00:00Z"),
    (datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc), "2024-05-01T12:00:00.25Z"),
], ids=["whole seconds have no fraction", "fractions drop trailing zeros"])
def test_trigger_time_format_is_rfc3339_nano(when: datetime, text: str) -> None:
    assert format_trigger_time(when) == text


class _Client:
    def __init__(self) -> None:
        self.written: list[tuple[str, Obj]] = []

    async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.written.append(("create", copy.deepcopy(body)))
        return body

    async def update(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.written.append(("update", copy.deepcopy(body)))
        return body

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.written.append(("delete", {"metadata": {"name": name}}))
        return {}


class _Recorder:
    def event(self, *args: Any) -> None:
        pass


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "w", "namespace": "ns", "uid": "svc-uid",
                         "labels": {"tier": "web"}, "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"selector": {"app": "w"}, "clusterIP": "10.43.0.10",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http",
                                "protocol": "TCP"}], **spec}}


async def reconcile(svc: Obj, pods: list[Obj], current: list[Obj] | None = None) -> _Client:
    client = _Client()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = EndpointsController(ControllerContext(client, informers, _Recorder(), {}))  # type: ignore[arg-type]
    informers.get(SERVICES)._replace([svc], "1")
    informers.get(PODS)._replace(pods, "1")
    informers.get(ENDPOINTS)._replace(current or [], "1")
    await ctl.reconcile("ns/w")
    return client


async def test_endpoints_list_ready_and_not_ready_pods_with_resolved_ports() -> None:
    client = await reconcile(service(), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False),
                                         pod("c", None), pod("d", "10.0.0.4", deleting=True)])
    (verb, body), = client.written
    assert verb == "create"
    assert body["metadata"]["labels"] == {"tier": "web"}
    assert body["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2024-05-01T11:00:00Z"
    (subset,) = body["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"]["name"] == "a"
    assert subset["addresses"][0]["nodeName"] == "n1"


async def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    client = await reconcile(service(publishNotReadyAddresses=True),
                             [pod("b", "10.0.0.2", ready=False),
                              pod("d", "10.0.0.4", deleting=True)])
    (subset,) = client.written[0][1]["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2", "10.0.0.4"]
    assert "notReadyAddresses" not in subset


async def test_a_headless_service_without_ports_gets_port_less_addresses() -> None:
    client = await reconcile(service(clusterIP="None", ports=[]), [pod("a", "10.0.0.1")])
    body = client.written[0][1]
    assert body["subsets"] == [{"addresses": [{
        "ip": "10.0.0.1", "nodeName": "n1",
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}]
    assert body["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


async def test_unchanged_endpoints_are_not_rewritten() -> None:
    first = await reconcile(service(), [pod("a", "10.0.0.1")])
    current = first.written[0][1]
    current["metadata"]["resourceVersion"] = "7"
    again = await reconcile(service(), [pod("a", "10.0.0.1")], [current])
    assert again.written == []


async def test_the_endpoints_of_a_deleted_service_are_deleted() -> None:
    client = _Client()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = EndpointsController(ControllerContext(client, informers, _Recorder(), {}))  # type: ignore[arg-type]
    await ctl.reconcile("ns/gone")
    assert client.written == [("delete", {"metadata": {"name": "gone"}})]


async def test_an_endpoints_write_retried_after_a_conflict_keeps_its_trigger_time() -> None:
    """The flake this fixed: a conflict (stale informer) made the retry clear the annotation."""
    class _Conflicting(_Client):
        async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
            if not self.written:
                self.written.append(("conflict", copy.deepcopy(body)))
                raise errors.Conflict("the object has been modified")
            return await super().create(resource, body, ns)

    client = _Conflicting()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = EndpointsController(ControllerContext(client, informers, _Recorder(), {}))  # type: ignore[arg-type]
    informers.get(SERVICES)._replace([service()], "1")
    informers.get(PODS)._replace([pod("a", "10.0.0.1")], "1")
    informers.get(ENDPOINTS)._replace([], "1")
    with pytest.raises(errors.Conflict):
        await ctl.reconcile("ns/w")
    await ctl.reconcile("ns/w")
    (_, body), = [w for w in client.written if w[0] == "create"]
    assert body["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2024-05-01T11:00:00Z"
