"""Server-side tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), as kube-apiserver
prints them.

`kubectl get` asks the server for a `meta.k8s.io/v1` Table and prints its cells verbatim, so
every column, cell and age here follows kubernetes/pkg/printers/internalversion/printers.go
(v1.32) and, for kinds without a printer there (LimitRange, bindings, anything unknown), the
default table convertor of k8s.io/apiserver/pkg/registry/rest/table.go: NAME and CREATED AT
(type `date`, the creation timestamp in RFC 3339 UTC).

Guarantees:

- Rows always carry the wide cells, and priority-1 columns are always declared, as the
  server generates with `Wide: true`; kubectl shows them only with `-o wide`.
- Each row has `object` (kubectl reads NAMESPACE and LABELS from it): a
  `PartialObjectMetadata` by default, the full object for `includeObject=Object`, `null` for
  `None`. Pods that finished also carry the `Completed` row condition.
- Ages come from an injected `now`; nothing here reads the clock. The list-level `metadata`
  (resourceVersion, continue) is left for the caller to fill in.

One module per area: `pods`, `core`, `events`, `volumes`, `apps`, `batch`, `cluster`; the shared
formats are in `cells`, the column descriptions in `descriptions`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from navio.api.errors import BadRequest
from navio.api.tables import (admissionregistration, apps, batch, certificates, cluster, core,
                              events, networking, pods, rbac, storage, volumes)
from navio.api.tables.cells import Printer, column, get, human_duration, name_column, parse_time
from navio.api.tables.descriptions import DOC

__all__ = ["table_columns", "table_cells", "build_table", "human_duration", "has_printer",
           "register_printer", "unregister_printer", "INCLUDE_OBJECT_VALUES"]

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")


def _created_at(obj: Mapping[str, Any], now: datetime) -> str:
    t = parse_time(get(obj, "metadata", "creationTimestamp"))
    if t is None:
        return "0001-01-01T00:00:00Z"  # Go's zero time, formatted
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_DEFAULT = Printer(
    (name_column(), column("Created At", "date", DOC["ObjectMeta.creationTimestamp"])),
    lambda obj, now: [get(obj, "metadata", "name", default=""), _created_at(obj, now)])

_PRINTERS: dict[tuple[str, str], Printer] = {
    **pods.PRINTERS, **core.PRINTERS, **events.PRINTERS, **volumes.PRINTERS,
    **apps.PRINTERS, **batch.PRINTERS, **cluster.PRINTERS, **rbac.PRINTERS,
    **certificates.PRINTERS, **storage.PRINTERS, **networking.PRINTERS,
    **admissionregistration.PRINTERS,
}


# Printers of kinds added at run time, per version (a CRD's versions each have their
# additionalPrinterColumns).
_VERSIONED: dict[tuple[str, str, str], Printer] = {}


def register_printer(group: str, kind: str, version: str, printer: Printer) -> None:
    """Columns for a kind version added at run time (custom resources' printer columns)."""
    _VERSIONED[(group, kind, version)] = printer


def unregister_printer(group: str, kind: str) -> None:
    for key in [k for k in _VERSIONED if k[:2] == (group, kind)]:
        del _VERSIONED[key]


def _printer(group: str, kind: str, version: str = "") -> Printer:
    if _VERSIONED and (p := _VERSIONED.get((group, kind, version))) is not None:
        return p
    return _PRINTERS.get((group, kind), _DEFAULT)


def has_printer(group: str, kind: str) -> bool:
    """Whether the kind has its own columns (False: the default NAME / CREATED AT table)."""
    return (group, kind) in _PRINTERS


def table_columns(group: str, kind: str) -> list[dict[str, Any]]:
    """The columnDefinitions of the kind's table (fresh dicts, safe to modify)."""
    return [dict(c) for c in _printer(group, kind).columns]


def table_cells(group: str, kind: str, obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """One row's cells for `obj`, matching `table_columns(group, kind)` one to one."""
    return _printer(group, kind).cells(obj, now)


def _row_object(obj: Mapping[str, Any], include_object: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": copy.deepcopy(obj.get("metadata") or {})}


def build_table(group: str, kind: str, objs: Iterable[Mapping[str, Any]], now: datetime, *,
                include_object: str = "Metadata", with_columns: bool = True,
                version: str = "") -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objs`.

    `include_object` is the request's includeObject ("" means Metadata); any other value is
    a 400, worded as kube-apiserver words it. `with_columns=False` (TableOptions.NoHeaders, as
    on watch events after the first) sends `columnDefinitions: null`."""
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT_VALUES:
        quoted = include_object.replace("\\", "\\\\").replace('"', '\\"')
        raise BadRequest(f'unrecognized includeObject value: "{quoted}"')
    printer = _printer(group, kind, version)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        if printer.conditions is not None and (conditions := printer.conditions(obj)):
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [dict(c) for c in printer.columns] if with_columns else None,
        "rows": rows,
    }
