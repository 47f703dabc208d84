"""Parse a request path into what it names, as kube-apiserver's RequestInfoFactory does.

`/apis/apps/v1/namespaces/ns/deployments/d/scale` → group apps, version v1, namespace ns,
resource deployments, name d, subresource scale; plus the Kubernetes verb derived from the
HTTP method and the `watch` parameter. Non-resource paths (`/version`, `/api`) are marked so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["RequestInfo", "parse_request"]

# `namespaces/<ns>/<x>` names a sub-resource of the namespace itself for these x.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    is_resource: bool
    path: str
    verb: str
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    # The rest of the path after a `proxy` subresource (`pods/x/proxy/<rest>`).
    rest: str = ""
    # True for the `/api/v1/watch/...` legacy form.
    legacy_watch: bool = False


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get",
                 "HEAD": "get", "DELETE": "delete"}


def parse_request(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    verb = _METHOD_VERBS.get(method, method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(False, path, verb)
    if parts[0] == "api":
        if len(parts) < 2:
            return RequestInfo(False, path, verb)
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return RequestInfo(False, path, verb)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return RequestInfo(False, path, verb, group=group, version=version)

    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
        verb = "watch"

    namespace = ""
    if rest and rest[0] == "namespaces":
        if len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
    if not rest:
        return RequestInfo(False, path, verb, group=group, version=version)

    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    tail = "/".join(rest[3:]) if len(rest) > 3 else ""
    if resource == "namespaces" and name:
        # /api/v1/namespaces/<name>[/status|finalize]: the namespace object itself.
        namespace = name

    if not legacy_watch:
        if verb == "get" and not name:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        elif verb == "delete" and not name:
            verb = "deletecollection"
    return RequestInfo(True, path, verb, group=group, version=version, namespace=namespace,
                       resource=resource, name=name, subresource=subresource, rest=tail,
                       legacy_watch=legacy_watch)
