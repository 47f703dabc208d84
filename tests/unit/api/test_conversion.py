"""Stored-form conversion: events.k8s.io/v1 Events are kept as core/v1 Events."""

from __future__ import annotations

from navio.api import conversion
from navio.api.registry import default_registry

NEW = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
       "metadata": {"name": "e", "namespace": "n"}, "eventTime": "2026-01-01T00:00:00.000000Z",
       "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
       "reportingController": "c", "reportingInstance": "i", "action": "A", "reason": "R",
       "regarding": {"kind": "Pod", "name": "p"}, "related": {"kind": "Node", "name": "x"},
       "note": "hello", "type": "Normal", "deprecatedSource": {"component": "c"},
       "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
       "deprecatedLastTimestamp": "2026-01-01T00:00:01Z", "deprecatedCount": 4}


def test_events_to_core_and_back() -> None:
    core = conversion.to_storage("events.k8s.io", "Event", NEW)
    assert core == {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": "e", "namespace": "n"},
                    "eventTime": "2026-01-01T00:00:00.000000Z",
                    "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
                    "reportingComponent": "c", "reportingInstance": "i", "action": "A",
                    "reason": "R", "involvedObject": {"kind": "Pod", "name": "p"},
                    "related": {"kind": "Node", "name": "x"}, "message": "hello",
                    "type": "Normal", "source": {"component": "c"},
                    "firstTimestamp": "2026-01-01T00:00:00Z",
                    "lastTimestamp": "2026-01-01T00:00:01Z", "count": 4}
    assert conversion.from_storage("events.k8s.io", "Event", core) == NEW


def test_other_kinds_pass_through() -> None:
    obj = {"apiVersion": "v1", "kind": "Event", "message": "m"}
    assert conversion.to_storage("", "Event", obj) is obj
    assert conversion.from_storage("", "Event", obj) is obj
    assert not conversion.converts("", "ConfigMap")


def test_both_event_kinds_share_one_storage_prefix() -> None:
    reg = default_registry()
    core = reg.resource("", "v1", "events")
    new = reg.resource("events.k8s.io", "v1", "events")
    assert core is not None and new is not None
    assert core.storage_prefix() == new.storage_prefix() == "/registry/core/events/"
    assert new.storage_key("n", "e") == core.storage_key("n", "e")
    assert conversion.converts(new.group, new.kind)
