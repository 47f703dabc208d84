"""The event table: LAST SEEN TYPE REASON OBJECT MESSAGE (+ SUBOBJECT SOURCE FIRST SEEN COUNT
NAME), for both core/v1 and events.k8s.io/v1 Events.

A port of printEvent (printers.go, v1.32). Kubernetes stores both API versions as one internal
Event, so an events.k8s.io/v1 object is first read into the core/v1 shape (`regarding` →
`involvedObject`, `note` → `message`, `deprecated*` → the old fields) and printed the same way.
Quirks kept: LAST SEEN falls back to FIRST SEEN, which falls back to `eventTime`; a series
overrides both count and last-seen; a singleton event without a count shows 1; the OBJECT cell
is `kind/name` with the kind lowercased.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, column, get, name_column, since
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS", "event_cells", "as_core_event"]

COLUMNS = (
    column("Last Seen", "string", DOC["Event.lastTimestamp"]),
    column("Type", "string", DOC["Event.type"]),
    column("Reason", "string", DOC["Event.reason"]),
    column("Object", "string", DOC["Event.involvedObject"]),
    column("Subobject", "string", DOC["ObjectReference.fieldPath"], priority=1),
    column("Source", "string", DOC["Event.source"], priority=1),
    column("Message", "string", DOC["Event.message"]),
    column("First Seen", "string", DOC["Event.firstTimestamp"], priority=1),
    column("Count", "string", DOC["Event.count"], priority=1),
    name_column(priority=1),
)


def as_core_event(ev: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in core/v1 shape (the fields printEvent reads)."""
    return {
        "metadata": ev.get("metadata") or {},
        "involvedObject": ev.get("regarding") or {},
        "reason": ev.get("reason", ""),
        "message": ev.get("note", ""),
        "source": ev.get("deprecatedSource") or {},
        "firstTimestamp": ev.get("deprecatedFirstTimestamp"),
        "lastTimestamp": ev.get("deprecatedLastTimestamp"),
        "count": ev.get("deprecatedCount") or 0,
        "type": ev.get("type", ""),
        "eventTime": ev.get("eventTime"),
        "series": ev.get("series"),
        "reportingComponent": ev.get("reportingController", ""),
        "reportingInstance": ev.get("reportingInstance", ""),
    }


def _source(ev: Mapping[str, Any]) -> str:
    """formatEventSource: `component, host`, falling back to the reporting controller and
    instance of the newer API."""
    component = get(ev, "source", "component") or ev.get("reportingComponent") or ""
    instance = get(ev, "source", "host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def event_cells(ev: Mapping[str, Any], now: datetime) -> list[Any]:
    first = since(ev.get("firstTimestamp") or ev.get("eventTime"), now)
    last = since(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    series = ev.get("series")
    if series is not None:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    ref = ev.get("involvedObject") or {}
    kind = (ref.get("kind") or "").lower()
    target = f"{kind}/{ref['name']}" if ref.get("name") else kind
    return [last, ev.get("type", ""), ev.get("reason", ""), target, ref.get("fieldPath", ""),
            _source(ev), (ev.get("message") or "").strip(), first, count,
            get(ev, "metadata", "name", default="")]


PRINTERS = {
    ("", "Event"): Printer(COLUMNS, event_cells),
    ("events.k8s.io", "Event"): Printer(COLUMNS, lambda ev, now: event_cells(as_core_event(ev),
                                                                             now)),
}
