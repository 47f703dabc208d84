"""Table output of custom objects: `additionalPrinterColumns`, as kube's CRD table convertor
(apiextensions-apiserver/pkg/registry/customresource/tableconvertor) prints them.

Columns: Name, then the version's printer columns (JSONPath, type, format, description,
priority); a version without any gets the default `Age` column (type date over
`.metadata.creationTimestamp`). A cell is `null` when its path finds nothing or the value does
not fit the column's type; string columns print any value as text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from navio.api.crd import jsonpath
from navio.api.tables.cells import Printer, column, human_duration, name_column, parse_time
from navio.api.tables.descriptions import DOC

__all__ = ["printer_for", "DEFAULT_COLUMNS"]

DEFAULT_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                    "description": DOC["ObjectMeta.creationTimestamp"]},)


def _cell(type_: str, value: Any, now: dt.datetime) -> Any:
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if type_ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        # metatable.ConvertToHumanReadableDateType: the age, as kubectl shows it.
        if not isinstance(value, str):
            return None
        t = parse_time(value)
        if t is None:
            return "<invalid>"
        return human_duration(now - t)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value) if value is not None else None


def printer_for(columns: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> Printer:
    cols = tuple(columns) or DEFAULT_COLUMNS
    parsed = []
    for c in cols:
        try:
            parsed.append(jsonpath.parse(c.get("jsonPath", "")))
        except jsonpath.JSONPathError:
            parsed.append([])
    defs = (name_column(),) + tuple(
        column(c.get("name", ""), c.get("type", "string"),
               c.get("description") or
               f"Custom resource definition column (in JSONPath format): {c.get('jsonPath')}",
               priority=int(c.get("priority") or 0), format_=c.get("format") or "")
        for c in cols)

    def cells(obj: Mapping[str, Any], now: dt.datetime) -> list[Any]:
        row: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for c, steps in zip(cols, parsed):
            found = jsonpath.find(obj, steps) if steps else []
            row.append(_cell(c.get("type", "string"), found[0], now) if found else None)
        return row

    return Printer(defs, cells)
