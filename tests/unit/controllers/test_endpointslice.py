"""EndpointSlice contents and how the reconciler spreads endpoints over slices (issue 6)."""

from __future__ import annotations

from typing import Any

import pytest

from navio.controllers.endpointslice import (CONTROLLER_NAME, MANAGED_BY_LABEL,
                                             SERVICE_NAME_LABEL, _ep_key, endpoint_ports,
                                             plan_slices, pod_to_endpoint)

Obj = dict[str, Any]


def service(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid",
                         "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.1",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http",
                                "protocol": "TCP"}], **spec}}


def pod(name: str, ip: str = "10.0.0.1", *, ready: bool = True, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": "n1", "hostname": name, "subdomain": "web",
                     "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


NODE = {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}}


@pytest.mark.parametrize("p,publish,conditions", [
    (pod("a"), False, {"ready": True, "serving": True, "terminating": False}),
    (pod("a", ready=False), False, {"ready": False, "serving": False, "terminating": False}),
    (pod("a", deleting=True), False, {"ready": False, "serving": True, "terminating": True}),
    (pod("a", ready=False), True, {"ready": True, "serving": False, "terminating": False}),
], ids=["a ready pod", "a not-ready pod", "a terminating pod still serves but is not ready",
        "publishNotReadyAddresses makes every endpoint ready"])
def test_endpoint_conditions(p: Obj, publish: bool, conditions: Obj) -> None:
    ep = pod_to_endpoint(p, NODE, service(publishNotReadyAddresses=publish), "IPv4")
    assert ep["conditions"] == conditions


def test_an_endpoint_names_its_pod_node_zone_and_hostname() -> None:
    ep = pod_to_endpoint(pod("a"), NODE, service(), "IPv4")
    assert ep == {"addresses": ["10.0.0.1"],
                  "conditions": {"ready": True, "serving": True, "terminating": False},
                  "hostname": "a", "nodeName": "n1", "zone": "z1",
                  "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}
    assert pod_to_endpoint(pod("a"), NODE, service(), "IPv6")["addresses"] == []


def test_ports_resolve_by_name_and_unknown_names_are_dropped() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http"},
                         {"name": "metrics", "port": 9100, "targetPort": "metrics"}])
    assert endpoint_ports(svc, pod("a")) == [{"name": "http", "port": 8080, "protocol": "TCP"}]


PORTS = [{"name": "http", "port": 8080, "protocol": "TCP"}]


def desired(n: int, start: int = 0) -> dict[bytes, tuple[list[Obj], dict[Any, Obj]]]:
    from navio.controllers.endpointslice import _ports_key
    eps = {}
    for i in range(start, start + n):
        ep = pod_to_endpoint(pod(f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}"), NODE, service(),
                             "IPv4")
        eps[_ep_key(ep)] = ep
    return {_ports_key(PORTS): (PORTS, eps)}


def existing(name: str, endpoints: list[Obj], ports: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns",
                         "labels": {"tier": "front", SERVICE_NAME_LABEL: "web",
                                    MANAGED_BY_LABEL: CONTROLLER_NAME},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "uid": "svc-uid", "controller": True}]},
            "addressType": "IPv4", "ports": PORTS if ports is None else ports,
            "endpoints": endpoints}


def test_new_endpoints_go_into_slices_of_at_most_the_maximum() -> None:
    create, update, delete = plan_slices(service(), desired(250), [], "IPv4", 100)
    assert [len(s["endpoints"]) for s in create] == [100, 100, 50]
    assert not update and not delete
    meta = create[0]["metadata"]
    assert meta["generateName"] == "web-"
    assert meta["labels"] == {"tier": "front", SERVICE_NAME_LABEL: "web",
                              MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert meta["ownerReferences"][0]["kind"] == "Service"
    assert meta["ownerReferences"][0]["blockOwnerDeletion"] is True


def test_an_unchanged_slice_is_left_alone() -> None:
    want = desired(3)
    current = existing("web-abc", list(next(iter(want.values()))[1].values()))
    assert plan_slices(service(), want, [current], "IPv4", 100) == ([], [], [])


def test_a_changed_endpoint_updates_its_slice_in_place() -> None:
    want = desired(2)
    eps = [dict(e) for e in next(iter(want.values()))[1].values()]
    eps[0] = {**eps[0], "conditions": {"ready": False, "serving": False, "terminating": False}}
    create, update, delete = plan_slices(service(), want, [existing("web-abc", eps)], "IPv4",
                                         100)
    assert not create and not delete
    assert [s["metadata"]["name"] for s in update] == ["web-abc"]
    assert all(e["conditions"]["ready"] for e in update[0]["endpoints"])


def test_new_endpoints_fill_an_existing_slice_before_a_new_one_is_made() -> None:
    want = desired(3)
    eps = list(next(iter(want.values()))[1].values())
    create, update, _ = plan_slices(service(), want, [existing("web-abc", eps[:1])], "IPv4",
                                    100)
    assert not create
    assert len(update[0]["endpoints"]) == 3


def test_a_service_without_endpoints_keeps_one_placeholder_slice() -> None:
    create, update, delete = plan_slices(service(), {}, [], "IPv4", 100)
    assert len(create) == 1 and create[0]["endpoints"] == [] and create[0]["ports"] == []
    placeholder = existing("web-ph", [], ports=[])
    assert plan_slices(service(), {}, [placeholder], "IPv4", 100) == ([], [], [])


def test_a_slice_that_would_be_deleted_is_reused_for_a_create() -> None:
    stale = existing("web-old", [], ports=[{"name": "old", "port": 1, "protocol": "TCP"}])
    stale["endpoints"] = [{"addresses": ["10.9.9.9"], "targetRef": {"name": "gone"}}]
    create, update, delete = plan_slices(service(), desired(1), [stale], "IPv4", 100)
    assert not create and not delete
    assert update[0]["metadata"]["name"] == "web-old"
    assert update[0]["ports"] == PORTS


def test_slices_of_another_owner_are_deleted() -> None:
    foreign = existing("web-x", [])
    foreign["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    _, _, delete = plan_slices(service(), desired(1), [foreign], "IPv4", 100)
    assert [s["metadata"]["name"] for s in delete] == ["web-x"]
