"""LimitRanger admission: a namespace's LimitRanges applied to every new pod.

Defaults first (containers without requests or limits get the ranges' defaults, noted in the
`kubernetes.io/limit-ranger` annotation), then the bounds: a pod outside them is refused
with 403 and kube's words (`pods "x" is forbidden: maximum cpu usage per Container is 1, but
limit is 2`). Runs before ResourceQuota, so quota charges the defaulted requests.
The rules are `navio.api.limitrange`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.api import errors, limitrange

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["limit_ranger", "namespace_objects"]


def namespace_objects(resources: "Resources", plural: str, namespace: str,
                      group: str = "", version: str = "v1") -> list[dict[str, Any]]:
    kind = resources.registry.resource(group, version, plural)
    if kind is None:
        return []
    return [o for _, o in resources.cache(kind).list()
            if (o.get("metadata") or {}).get("namespace") == namespace]


async def limit_ranger(resources: "Resources", request: "Request") -> None:
    kind = request.kind
    if (kind.group, kind.kind) != ("", "Pod") or request.operation != "CREATE" or \
            request.subresource:
        return
    pod = request.obj
    meta = pod.get("metadata") or {}
    ranges = sorted(namespace_objects(resources, "limitranges", meta.get("namespace", "")),
                    key=lambda o: o["metadata"].get("name", ""))
    if not ranges:
        return
    limitrange.apply_defaults(pod, ranges)
    problems = list(dict.fromkeys(limitrange.violations(pod, ranges)))
    if problems:
        text = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise errors.Forbidden(f'pods "{meta.get("name", "")}" is forbidden: {text}',
                               details={"name": meta.get("name", ""), "kind": "pods"})
