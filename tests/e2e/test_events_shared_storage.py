"""core/v1 and events.k8s.io/v1 Events are one stored resource, converted on read and write."""

from __future__ import annotations

import json

from cluster import Kubectl, NavioServer
from rawhttp import request, status_of


def _core_event(ns: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": "ConfigMap", "namespace": ns, "name": "cm",
                               "apiVersion": "v1"},
            "reason": "Tested", "message": "written through core/v1", "type": "Normal",
            "source": {"component": "e2e"}, "count": 2,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z",
            "reportingComponent": "e2e", "reportingInstance": "e2e-1"}


def _events_event(ns: str, name: str) -> dict:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "regarding": {"kind": "ConfigMap", "namespace": ns, "name": "cm", "apiVersion": "v1"},
            "reason": "Tested", "note": "written through events.k8s.io/v1", "type": "Warning",
            "action": "Testing", "reportingController": "example.com/e2e",
            "reportingInstance": "e2e-2"}


def test_core_event_read_through_events_api(server: NavioServer, ns: str) -> None:
    code, created = status_of(server, "POST", f"/api/v1/namespaces/{ns}/events",
                              _core_event(ns, "core-made"))
    assert code == 201, created
    code, ev = status_of(server, "GET",
                         f"/apis/events.k8s.io/v1/namespaces/{ns}/events/core-made")
    assert code == 200, ev
    assert ev["apiVersion"] == "events.k8s.io/v1" and ev["kind"] == "Event"
    assert ev["regarding"]["name"] == "cm" and "involvedObject" not in ev
    assert ev["note"] == "written through core/v1" and "message" not in ev
    assert ev["deprecatedSource"] == {"component": "e2e"}
    assert ev["deprecatedCount"] == 2
    assert ev["deprecatedFirstTimestamp"] == "2026-01-01T00:00:00Z"
    assert ev["deprecatedLastTimestamp"] == "2026-01-01T00:00:05Z"
    assert ev["reportingController"] == "e2e" and ev["reportingInstance"] == "e2e-1"
    assert ev["metadata"]["uid"] == created["metadata"]["uid"]
    assert ev["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_events_api_event_read_through_core(server: NavioServer, kubectl: Kubectl,
                                            ns: str) -> None:
    code, created = status_of(server, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                              _events_event(ns, "new-made"))
    assert code == 201, created
    assert created["note"] == "written through events.k8s.io/v1"
    assert created["apiVersion"] == "events.k8s.io/v1"
    code, ev = status_of(server, "GET", f"/api/v1/namespaces/{ns}/events/new-made")
    assert code == 200, ev
    assert ev["apiVersion"] == "v1"
    assert ev["involvedObject"]["name"] == "cm"
    assert ev["message"] == "written through events.k8s.io/v1"
    assert ev["reportingComponent"] == "example.com/e2e"
    assert ev["action"] == "Testing" and ev["type"] == "Warning"
    # One object: both lists hold it, and deleting through one API removes it from the other.
    core_names = {e["metadata"]["name"] for e in
                  kubectl.json("get", "events", "-n", ns, "-o", "json")["items"]}
    assert "new-made" in core_names
    new_names = {e["metadata"]["name"] for e in kubectl.json(
        "get", "events.v1.events.k8s.io", "-n", ns, "-o", "json")["items"]}
    assert "new-made" in new_names
    code, _ = status_of(server, "DELETE", f"/api/v1/namespaces/{ns}/events/new-made")
    assert code == 200
    code, _ = status_of(server, "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events/new-made")
    assert code == 404


def test_update_through_one_api_is_seen_by_the_other(server: NavioServer, ns: str) -> None:
    code, created = status_of(server, "POST", f"/api/v1/namespaces/{ns}/events",
                              _core_event(ns, "patched"))
    assert code == 201, created
    code, ev = status_of(server, "PATCH",
                         f"/apis/events.k8s.io/v1/namespaces/{ns}/events/patched",
                         {"note": "changed through events.k8s.io"},
                         {"Content-Type": "application/merge-patch+json"})
    assert code == 200, ev
    assert ev["note"] == "changed through events.k8s.io"
    code, core = status_of(server, "GET", f"/api/v1/namespaces/{ns}/events/patched")
    assert core["message"] == "changed through events.k8s.io"
    assert core["count"] == 2 and core["source"] == {"component": "e2e"}
    assert int(core["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_watch_through_events_api_sees_core_writes(server: NavioServer, ns: str) -> None:
    code, listed = status_of(server, "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    assert code == 200
    rv = listed["metadata"]["resourceVersion"]
    code, _ = status_of(server, "POST", f"/api/v1/namespaces/{ns}/events",
                        _core_event(ns, "watched"))
    assert code == 201
    code, _, body = request(server, "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
                            f"?watch=1&resourceVersion={rv}&timeoutSeconds=2")
    assert code == 200
    events = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == \
        [("ADDED", "watched")]
    assert events[0]["object"]["note"] == "written through core/v1"
