"""Mirroring custom Endpoints into EndpointSlices (issue 6): what is mirrored, how slices
are shaped and labelled, and when they are rewritten, as kube v1.32's
endpointslicemirroring controller does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.controllers.endpointslicemirroring import (CONTROLLER_NAME, desired_endpoints,
                                                      plan_mirrored_slices, should_mirror)

Obj = dict[str, Any]


def endpoints(subsets: list[Obj], labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "db", "namespace": "ns", "uid": "ep-uid",
                         "labels": labels or {}, "annotations": annotations or {}},
            "subsets": subsets}


SUBSET = {"addresses": [{"ip": "10.1.0.1", "hostname": "a", "nodeName": "n1"},
                        {"ip": "10.1.0.2"}],
          "notReadyAddresses": [{"ip": "10.1.0.3"}],
          "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}


@pytest.mark.parametrize("obj,want", [
    (endpoints([]), True),
    (endpoints([], labels={"endpointslice.kubernetes.io/skip-mirror": "true"}), False),
    (endpoints([], annotations={"control-plane.alpha.kubernetes.io/leader": "{}"}), False),
    (None, False),
], ids=["plain endpoints", "opted out", "a leader election lock", "gone"])
def test_which_endpoints_are_mirrored(obj: Obj | None, want: bool) -> None:
    assert should_mirror(obj) is want


def test_a_subset_becomes_one_slice_with_ready_and_not_ready_endpoints() -> None:
    ep = endpoints([SUBSET], labels={"team": "data"},
                   annotations={"note": "x", "endpoints.kubernetes.io/last-change-trigger-time":
                                "t", "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    create, update, delete = plan_mirrored_slices(ep, [], 1000)
    assert not update and not delete and len(create) == 1
    s = create[0]
    assert s["metadata"]["generateName"] == "db-"
    assert s["metadata"]["labels"] == {"team": "data", "kubernetes.io/service-name": "db",
                                       "endpointslice.kubernetes.io/managed-by": CONTROLLER_NAME}
    assert s["metadata"]["annotations"] == {"note": "x"}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints",
                                                 "name": "db", "uid": "ep-uid",
                                                 "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]
    assert s["endpoints"] == [
        {"addresses": ["10.1.0.1"], "conditions": {"ready": True}, "hostname": "a",
         "nodeName": "n1"},
        {"addresses": ["10.1.0.2"], "conditions": {"ready": True}},
        {"addresses": ["10.1.0.3"], "conditions": {"ready": False}}]


def test_subsets_group_by_ports_and_address_family_and_bad_ips_are_skipped() -> None:
    other = {"addresses": [{"ip": "fd00::1"}, {"ip": "not-an-ip"}],
             "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}
    same_ports = {"addresses": [{"ip": "10.1.0.9"}],
                  "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}
    desired, invalid, skipped = desired_endpoints(endpoints([SUBSET, other, same_ports]), 1000)
    assert sorted(k[0] for k in desired) == ["IPv4", "IPv6"]
    assert invalid == 1 and skipped == 1
    ipv4 = next(eps for (kind, _), (_, eps) in desired.items() if kind == "IPv4")
    assert len(ipv4) == 4


def test_at_most_max_per_subset_addresses_are_mirrored() -> None:
    _, invalid, skipped = desired_endpoints(endpoints([SUBSET]), 2)
    assert (invalid, skipped) == (0, 1)


def test_an_unchanged_slice_is_left_alone_and_a_changed_one_rewritten_in_place() -> None:
    ep = endpoints([SUBSET])
    made = plan_mirrored_slices(ep, [], 1000)[0][0]
    made["metadata"].update(name="db-abcde", resourceVersion="7")
    del made["metadata"]["generateName"]
    assert plan_mirrored_slices(ep, [made], 1000) == ([], [], [])
    changed = copy.deepcopy(ep)
    changed["subsets"][0]["addresses"].pop()
    create, update, delete = plan_mirrored_slices(changed, [made], 1000)
    assert not create and not delete
    assert update[0]["metadata"]["name"] == "db-abcde" and len(update[0]["endpoints"]) == 2
    relabelled = endpoints([SUBSET], labels={"tier": "1"})
    assert plan_mirrored_slices(relabelled, [made], 1000)[1][0]["metadata"]["labels"]["tier"] \
        == "1"


def test_a_slice_of_ports_no_longer_wanted_is_recycled_for_new_ports() -> None:
    ep = endpoints([SUBSET])
    made = plan_mirrored_slices(ep, [], 1000)[0][0]
    made["metadata"]["name"] = "db-old"
    moved = copy.deepcopy(ep)
    moved["subsets"][0]["ports"] = [{"name": "sql", "port": 6432, "protocol": "TCP"}]
    create, update, delete = plan_mirrored_slices(moved, [made], 1000)
    assert (create, delete) == ([], [])
    assert update[0]["metadata"]["name"] == "db-old" and update[0]["ports"][0]["port"] == 6432
    assert plan_mirrored_slices(endpoints([]), [made], 1000) == ([], [], [made])
