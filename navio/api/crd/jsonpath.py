"""The JSONPath subset CRDs use: `additionalPrinterColumns[].jsonPath` and the scale
subresource's `specReplicasPath`/`statusReplicasPath`/`labelSelectorPath`.

kube evaluates printer columns with client-go's JSONPath (`{.spec.replicas}`); CRD validation
only admits simple paths there (`.a.b`, `.a[0]`, `.a[-1:]`, `.a[*].b`, `.a[?(@.t=="x")].v`). `find`
returns every match in document order; a missing field yields no match, never an error.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse", "find", "is_simple_path", "JSONPathError"]


class JSONPathError(ValueError):
    pass


_STEP = re.compile(r"""\.(?P<name>[A-Za-z0-9_\-$]+)
                      |\[(?P<index>-?\d+|\*)\]
                      |\[(?P<slice>-?\d*:-?\d*(?::-?\d+)?)\]
                      |\[\?\(@\.(?P<fkey>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*
                         (?P<fval>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false)\)\]
                      |\['(?P<qname>[^']+)'\]""", re.X)

Step = tuple[str, Any]


def parse(path: str) -> list[Step]:
    """Steps of `path` (`{...}` braces are accepted and removed)."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    if p.startswith("$"):
        p = p[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(p):
        m = _STEP.match(p, pos)
        if m is None:
            raise JSONPathError(f"unrecognized character in action: {p[pos:]!r}")
        if m.group("name") is not None:
            steps.append(("field", m.group("name")))
        elif m.group("qname") is not None:
            steps.append(("field", m.group("qname")))
        elif m.group("slice") is not None:
            bounds = [int(b) if b else None for b in m.group("slice").split(":")]
            if len(bounds) == 3 and bounds[2] == 0:
                raise JSONPathError("step must be >= 0")
            steps.append(("slice", slice(*bounds)))
        elif m.group("index") is not None:
            idx = m.group("index")
            steps.append(("all", None) if idx == "*" else ("index", int(idx)))
        else:
            raw = m.group("fval")
            value: Any
            if raw[0] in "\"'":
                value = raw[1:-1]
            elif raw in ("true", "false"):
                value = raw == "true"
            else:
                value = float(raw) if "." in raw else int(raw)
            steps.append(("filter", (m.group("fkey").split("."), m.group("op"), value)))
        pos = m.end()
    return steps


def find(obj: Any, path: str | list[Step]) -> list[Any]:
    steps = parse(path) if isinstance(path, str) else path
    cur = [obj]
    for kind, arg in steps:
        nxt: list[Any] = []
        for v in cur:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "slice":
                if isinstance(v, list):
                    nxt.extend(v[arg])
            elif kind == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            else:
                keys, op, want = arg
                for item in v if isinstance(v, list) else ():
                    got: Any = item
                    for k in keys:
                        got = got.get(k) if isinstance(got, dict) else None
                    if (got == want) == (op == "=="):
                        nxt.append(item)
        cur = nxt
    return cur


def is_simple_path(path: str) -> bool:
    """A path of field steps only (`.spec.replicas`), as the scale subresource requires."""
    try:
        steps = parse(path)
    except JSONPathError:
        return False
    return bool(steps) and path.startswith(".") and all(k == "field" for k, _ in steps)
