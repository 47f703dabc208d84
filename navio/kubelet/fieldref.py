"""The downward API: a pod's own fields and its containers' resources as strings.

Why: env vars (`valueFrom.fieldRef` / `resourceFieldRef`) and downwardAPI / projected volumes
both expose pod facts, and must format them identically to the kubelet
(pkg/fieldpath/fieldpath.go ExtractFieldPathAsString, pkg/api/v1/resource
ExtractContainerResourceValue).

Guarantees: pure functions; an unsupported path raises `FieldRefError` with the kubelet's
wording; resource values are rounded up to whole divisor units; a limit that is not set is
the node's allocatable amount (MergeContainerResourceLimits).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from navio.api.quantity import QuantityError, milli_value, value

__all__ = ["FieldRefError", "format_map", "go_quote", "pod_field", "resource_field"]

_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


class FieldRefError(ValueError):
    """The field or resource reference cannot be resolved."""


def go_quote(s: str) -> str:
    """Go's %q of a string (strconv.Quote) for the characters that occur in labels/annotations."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_map(m: Mapping[str, str]) -> str:
    """fieldpath.FormatMap: `key="value"` lines, sorted by key, no trailing newline."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def pod_field(pod: Mapping[str, Any], path: str, *, host_ips: Sequence[str] = (),
              pod_ips: Sequence[str] = ()) -> str:
    """The string value of `path` (a fieldRef.fieldPath) for `pod`. `host_ips`/`pod_ips` are
    what the kubelet knows at the time (the pod object's status may lag behind)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = _SUBSCRIPT.match(path)
    if m:
        source = meta.get(m.group(1).split(".")[1]) or {}
        return str(source.get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.host": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "metadata.labels":
        return format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return format_map(meta.get("annotations") or {})
    if path == "status.hostIP":
        return host_ips[0] if host_ips else ""
    if path == "status.hostIPs":
        return ",".join(host_ips)
    if path == "status.podIP":
        return pod_ips[0] if pod_ips else ""
    if path == "status.podIPs":
        return ",".join(pod_ips)
    raise FieldRefError(f"unsupported fieldPath: {path}")


def _container(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    spec = pod.get("spec") or {}
    for c in (*(spec.get("containers") or ()), *(spec.get("initContainers") or ())):
        if c.get("name") == name:
            return c
    return None


def resource_field(pod: Mapping[str, Any], container_name: str, resource: str,
                   divisor: str | None, allocatable: Mapping[str, str]) -> str:
    """resourceFieldRef's value: e.g. `limits.memory` with divisor `1Mi` → "64"."""
    container = _container(pod, container_name)
    if container is None:
        raise FieldRefError(f"container {container_name} not found")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise FieldRefError(f"unsupported container resource: {resource}")
    resources = container.get("resources") or {}
    amount = (resources.get(kind) or {}).get(name)
    if amount is None and kind == "limits":
        amount = allocatable.get(name)
    if amount is None and kind == "requests":
        amount = (resources.get("limits") or {}).get(name)
    try:
        if name == "cpu":
            per = milli_value(divisor or "1") or 1
            return str(math.ceil(milli_value(str(amount or "0")) / per))
        per = value(divisor or "1") or 1
        return str(math.ceil(value(str(amount or "0")) / per))
    except (QuantityError, ValueError) as exc:
        raise FieldRefError(f"invalid quantity for {resource}: {exc}") from None
