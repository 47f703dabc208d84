"""LimitRange: the defaults a pod's containers get and the bounds they must keep.

As kube's LimitRanger admission plugin (plugin/pkg/admission/limitranger): for each
`type: Container` item, a container without a limit (request) of a resource gets the item's
`default` (`defaultRequest`), and the pod is annotated with what was set; then every item's
`min`, `max` and `maxLimitRequestRatio` are checked per Container and per Pod, with kube's
messages. The LimitRange's own defaulting (default <- max, defaultRequest <- default <- min)
is applied again here so objects stored before it still work. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from navio.api.quantity import format_quantity
from navio.api.resourcequota import parse

__all__ = ["apply_defaults", "violations", "LIMIT_RANGER_ANNOTATION"]

LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"


def _defaults(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    default = dict(item.get("default") or {})
    request = dict(item.get("defaultRequest") or {})
    for k, v in (item.get("max") or {}).items():
        default.setdefault(k, v)
    for k, v in default.items():
        request.setdefault(k, v)
    for k, v in (item.get("min") or {}).items():
        request.setdefault(k, v)
    return default, request


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or ()) + list(spec.get("containers") or ())


def apply_defaults(pod: dict[str, Any], ranges: list[dict[str, Any]]) -> bool:
    """Set default requests and limits on `pod`'s containers; True when something was set."""
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or ():
            if item.get("type") != "Container":
                continue
            default, request = _defaults(item)
            for c in _containers(spec):
                res = c.setdefault("resources", {})
                set_req = [k for k in request if k not in (res.get("requests") or {})
                           and k not in (res.get("limits") or {})]
                set_lim = [k for k in default if k not in (res.get("limits") or {})]
                for k in set_req:
                    res.setdefault("requests", {})[k] = request[k]
                for k in set_lim:
                    res.setdefault("limits", {})[k] = default[k]
                # A container with a limit but no request requests its limit (kube).
                for k, v in (res.get("limits") or {}).items():
                    res.setdefault("requests", {}).setdefault(k, v)
                if set_req:
                    notes.append(f"{', '.join(sorted(set_req))} request for "
                                 f"{'init container' if c in (spec.get('initContainers') or ()) else 'container'} {c.get('name', '')}")
                if set_lim:
                    notes.append(f"{', '.join(sorted(set_lim))} limit for "
                                 f"{'init container' if c in (spec.get('initContainers') or ()) else 'container'} {c.get('name', '')}")
    if notes:
        ann = pod.setdefault("metadata", {}).setdefault("annotations", {})
        ann[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
    return bool(notes)


def _check(kind: str, res: str, req: Decimal | None, lim: Decimal | None,
           item: dict[str, Any]) -> list[str]:
    """minConstraint, maxConstraint and limitRequestRatioConstraint: each its first error."""
    out = []
    lo = (item.get("min") or {}).get(res)
    hi = (item.get("max") or {}).get(res)
    ratio = (item.get("maxLimitRequestRatio") or {}).get(res)
    if lo is not None:
        if req is None:
            out.append(f"minimum {res} usage per {kind} is {lo}.  No request is specified")
        elif req < parse(lo):
            out.append(f"minimum {res} usage per {kind} is {lo}, but request is {_orig(req)}")
        elif lim is not None and lim < parse(lo):
            out.append(f"minimum {res} usage per {kind} is {lo}, but limit is {_orig(lim)}")
    if hi is not None:
        if lim is None:
            out.append(f"maximum {res} usage per {kind} is {hi}.  No limit is specified")
        elif lim > parse(hi):
            out.append(f"maximum {res} usage per {kind} is {hi}, but limit is {_orig(lim)}")
        elif req is not None and req > parse(hi):
            out.append(f"maximum {res} usage per {kind} is {hi}, but request is {_orig(req)}")
    if ratio is not None:
        prefix = f"{res} max limit to request ratio per {kind} is {ratio}, but"
        if req is None or req == 0:
            out.append(f"{prefix} no request is specified or request is 0")
        elif lim is None or lim == 0:
            out.append(f"{prefix} no limit is specified or limit is 0")
        elif lim / req > parse(ratio):
            out.append(f"{prefix} provided ratio is {float(lim / req):f}")
    return out


def _orig(v: Decimal) -> str:
    return format_quantity(v)


def violations(pod: dict[str, Any], ranges: list[dict[str, Any]]) -> list[str]:
    """kube's messages for every bound of `ranges` the pod breaks."""
    spec = pod.get("spec") or {}
    out: list[str] = []
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or ():
            kind = item.get("type")
            names: set[str] = set()
            for f in ("min", "max", "maxLimitRequestRatio"):
                names.update((item.get(f) or {}).keys())
            if kind == "Container":
                for c in _containers(spec):
                    res = c.get("resources") or {}
                    for r in sorted(names):
                        req = (res.get("requests") or {}).get(r)
                        lim = (res.get("limits") or {}).get(r)
                        out += _check("Container", r, parse(req) if req is not None else None,
                                      parse(lim) if lim is not None else None, item)
            elif kind == "Pod":
                for r in sorted(names):
                    reqs = [((c.get("resources") or {}).get("requests") or {}).get(r)
                            for c in spec.get("containers") or ()]
                    lims = [((c.get("resources") or {}).get("limits") or {}).get(r)
                            for c in spec.get("containers") or ()]
                    req = sum((parse(x) for x in reqs if x is not None), Decimal(0)) \
                        if any(x is not None for x in reqs) else None
                    lim = sum((parse(x) for x in lims if x is not None), Decimal(0)) \
                        if lims and all(x is not None for x in lims) else None
                    out += _check("Pod", r, req, lim, item)
    return out
