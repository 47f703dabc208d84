"""Tables for the small API groups: Leases, EndpointSlices, PodDisruptionBudgets, PriorityClasses,
RuntimeClasses.

Ports of printLease, printEndpointSlice, printPodDisruptionBudget, printPriorityClass and
printRuntimeClass
(printers.go, v1.32). EndpointSlice PORTS and ENDPOINTS list at most three entries and then
`+ N more...`, with `<unset>` for an empty list; a port without a number prints its name or `*`.
PriorityClass's PREEMPTIONPOLICY has priority 0 but is only filled in wide output, which is
what the server always generates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import (
    Printer, age, age_column, column, get, int_or_string, name_column)
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS"]

LEASE_COLUMNS = (name_column(), column("Holder", "string", DOC["LeaseSpec.holderIdentity"]),
                 age_column())


def lease_cells(lease: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(lease, "metadata", "name", default=""),
            get(lease, "spec", "holderIdentity", default=""), age(lease, now)]


ENDPOINT_SLICE_COLUMNS = (
    name_column(),
    column("AddressType", "string", DOC["EndpointSlice.addressType"]),
    column("Ports", "string", DOC["EndpointSlice.ports"]),
    column("Endpoints", "string", DOC["EndpointSlice.endpoints"]),
    age_column(),
)


def _list_with_more(items: list[str], limit: int = 3) -> str:
    """listWithMoreString over the whole list."""
    text = ",".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text or "<unset>"


def endpoint_slice_cells(es: Mapping[str, Any], now: datetime) -> list[Any]:
    ports = []
    for p in es.get("ports") or ():
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addresses = [a for e in es.get("endpoints") or () for a in e.get("addresses") or ()]
    return [get(es, "metadata", "name", default=""), es.get("addressType", ""),
            _list_with_more(ports), _list_with_more(addresses), age(es, now)]


PDB_COLUMNS = (
    name_column(),
    column("Min Available", "string", "The minimum number of pods that must be available."),
    column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    column("Allowed Disruptions", "integer",
           "Calculated number of pods that may be disrupted at this time."),
    age_column(),
)


def pdb_cells(pdb: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = get(pdb, "spec", default={})
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [get(pdb, "metadata", "name", default=""),
            "N/A" if min_available is None else int_or_string(min_available),
            "N/A" if max_unavailable is None else int_or_string(max_unavailable),
            get(pdb, "status", "disruptionsAllowed", default=0), age(pdb, now)]


PRIORITY_CLASS_COLUMNS = (
    name_column(),
    column("Value", "integer", DOC["PriorityClass.value"]),
    column("Global-Default", "boolean", DOC["PriorityClass.globalDefault"]),
    age_column(),
    column("PreemptionPolicy", "string", DOC["PriorityClass.preemptionPolicy"]),
)


def priority_class_cells(pc: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(pc, "metadata", "name", default=""), pc.get("value") or 0,
            bool(pc.get("globalDefault")), age(pc, now), pc.get("preemptionPolicy") or ""]


RUNTIME_CLASS_COLUMNS = (name_column(), column("Handler", "string", DOC["RuntimeClass.handler"]),
                         age_column())


def runtime_class_cells(rc: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(rc, "metadata", "name", default=""), rc.get("handler") or "", age(rc, now)]


PRINTERS = {
    ("coordination.k8s.io", "Lease"): Printer(LEASE_COLUMNS, lease_cells),
    ("discovery.k8s.io", "EndpointSlice"): Printer(ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells),
    ("policy", "PodDisruptionBudget"): Printer(PDB_COLUMNS, pdb_cells),
    ("scheduling.k8s.io", "PriorityClass"): Printer(PRIORITY_CLASS_COLUMNS, priority_class_cells),
    ("node.k8s.io", "RuntimeClass"): Printer(RUNTIME_CLASS_COLUMNS, runtime_class_cells),
}
