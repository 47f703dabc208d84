"""Conversion between an API version's form of an object and the form it is stored in.

Most kinds are stored as they are served. Kubernetes stores some resources once for several
API groups: core/v1 Events and events.k8s.io/v1 Events are one `events` resource, kept in the
core/v1 form, and each group reads and writes it through a conversion
(pkg/apis/events/v1/conversion.go). `to_storage` and `from_storage` do that for the kinds the
registry gives a `storage_group`; every other kind passes through untouched (the same dict).

events.k8s.io/v1 ↔ core/v1 Event renames: regarding ↔ involvedObject, note ↔ message,
deprecatedSource ↔ source, deprecatedFirstTimestamp ↔ firstTimestamp, deprecatedLastTimestamp ↔
lastTimestamp, deprecatedCount ↔ count, reportingController ↔ reportingComponent; metadata,
eventTime, series, action, reason, related, type and reportingInstance keep their names. A
field absent on one side stays absent on the other, so a round trip returns the object as
written.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["to_storage", "from_storage", "converts"]

_EVENTS_TO_CORE = {"regarding": "involvedObject", "note": "message",
                   "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
                   "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count",
                   "reportingController": "reportingComponent"}
_CORE_TO_EVENTS = {v: k for k, v in _EVENTS_TO_CORE.items()}


def _renamed(obj: dict[str, Any], names: dict[str, str], api_version: str,
             kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        out[names.get(k, k)] = v
    return out


def _events_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    return _renamed(obj, _EVENTS_TO_CORE, "v1", "Event")


def _core_to_events(obj: dict[str, Any]) -> dict[str, Any]:
    return _renamed(obj, _CORE_TO_EVENTS, "events.k8s.io/v1", "Event")


Converter = Callable[[dict[str, Any]], dict[str, Any]]

# (group, kind) -> (to the stored form, from the stored form)
_CONVERSIONS: dict[tuple[str, str], tuple[Converter, Converter]] = {
    ("events.k8s.io", "Event"): (_events_to_core, _core_to_events),
}


def converts(group: str, kind: str) -> bool:
    """Whether this kind's stored form differs from its served form."""
    return (group, kind) in _CONVERSIONS


def to_storage(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as stored (a new dict for converted kinds, `obj` itself otherwise)."""
    conv = _CONVERSIONS.get((group, kind))
    return conv[0](obj) if conv else obj


def from_storage(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored object as this kind serves it (`obj` itself when nothing converts)."""
    conv = _CONVERSIONS.get((group, kind))
    return conv[1](obj) if conv else obj
