"""The building blocks every table printer shares: columns, ages, and common cell formats.

Mirrors the helpers of kubernetes/pkg/printers/internalversion/printers.go
(`translateTimestampSince`, `layoutContainerCells`, `formatResourceName`, `printBoolPtr`) and
k8s.io/apimachinery/pkg/util/duration/duration.go (`HumanDuration`), so that ages and cells
read exactly as kubectl shows them against a real cluster. Pure functions; the clock is always
passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from navio.api.tables.descriptions import DOC

__all__ = [
    "Printer", "column", "name_column", "age_column", "human_duration", "parse_time",
    "since", "age", "containers_and_images", "get", "bool_ptr", "int_or_string",
    "format_resource_name",
]

Cells = Callable[[Mapping[str, Any], datetime], list[Any]]
Conditions = Callable[[Mapping[str, Any]], list[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class Printer:
    """How one kind prints: its column definitions and the function producing a row's cells
    (always the wide set: kube-apiserver generates tables with `Wide: true` and kubectl hides
    the priority-1 columns itself)."""

    columns: tuple[dict[str, Any], ...]
    cells: Cells
    conditions: Conditions | None = field(default=None)


def column(name: str, type_: str, description: str, *, priority: int = 0,
           format_: str = "") -> dict[str, Any]:
    """A metav1.TableColumnDefinition as JSON."""
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


def name_column(priority: int = 0) -> dict[str, Any]:
    return column("Name", "string", DOC["ObjectMeta.name"], priority=priority, format_="name")


def age_column() -> dict[str, Any]:
    return column("Age", "string", DOC["ObjectMeta.creationTimestamp"])


_NS_PER_SECOND = 1_000_000_000


def human_duration(d: timedelta | float | int) -> str:
    """duration.HumanDuration: `5s`, `3m20s`, `2d3h`, `5y`; ~2-3 significant figures.

    `d` is a timedelta or a number of seconds. Up to 2 s in the future reads as `0s` (clock
    skew); further in the future is `<invalid>`."""
    if isinstance(d, timedelta):
        ns = ((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds) * 1000
    else:
        ns = round(d * _NS_PER_SECOND)
    seconds = abs(ns) // _NS_PER_SECOND * (1 if ns >= 0 else -1)  # Go truncates toward zero
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = ns // (60 * _NS_PER_SECOND)
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = ns // (3600 * _NS_PER_SECOND)
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = hours // 24 % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 `metav1.Time` / `MicroTime` string as an aware datetime; None when absent
    (Go's zero time) or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    # fromisoformat takes at most microseconds; Kubernetes may send nanoseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: the human age of a timestamp, `<unknown>` if unset."""
    t = value if isinstance(value, datetime) else parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration(_aware(now) - t)


def age(obj: Mapping[str, Any], now: datetime) -> str:
    """The AGE cell: time since metadata.creationTimestamp."""
    return since(get(obj, "metadata", "creationTimestamp"), now)


def get(obj: Any, *path: str, default: Any = None) -> Any:
    """obj[p0][p1]...; `default` when any step is missing, null or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def containers_and_images(containers: Sequence[Mapping[str, Any]] | None) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma-separated."""
    containers = containers or ()
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def bool_ptr(value: Any) -> str:
    """printBoolPtr: `True`, `False`, or `<unset>` for nil."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def int_or_string(value: Any) -> str:
    """intstr.IntOrString.String()."""
    return str(value)


def format_resource_name(api_version: str, kind: str, name: str) -> str:
    """formatResourceName with kind: `statefulset.apps/web`, `pod/web` (group-qualified,
    lowercased); a bare name if the kind is unknown."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    if not kind and not group:
        return name
    group_kind = f"{kind}.{group}" if group else kind
    return f"{group_kind.lower()}/{name}"
