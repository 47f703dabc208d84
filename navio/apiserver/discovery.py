"""API discovery documents, legacy and aggregated, built from the kind registry.

kubectl resolves short names, singular names and categories (`kubectl get all`) client-side
from these, so every field here matters. Aggregated discovery (apidiscovery.k8s.io/v2) is
what kubectl 1.32 asks first; the legacy documents serve older clients and `kubectl
api-resources`' fallback.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from navio.api.registry import Kind, Registry

__all__ = ["AGGREGATED_CONTENT_TYPE", "wants_aggregated", "api_versions", "api_group_list",
           "api_group", "resource_list", "aggregated"]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated discovery version the client accepts (v2 or v2beta1), if any."""
    for part in (accept or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == \
                "APIGroupDiscoveryList" and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None


def _storage_version_hash(kind: Kind) -> str:
    digest = hashlib.sha256(f"{kind.group}/{kind.version}/{kind.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    for name, versions in registry.groups():
        if name == group and group:
            gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
                    "preferredVersion": gvs[0]}
    return None


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g, _ in registry.groups() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")}
                       for g in groups if g]}


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    kinds = sorted(registry.in_group_version(group, version), key=lambda k: k.plural)
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for k in kinds:
        entry: dict[str, Any] = {"name": k.plural, "singularName": k.singular,
                                 "namespaced": k.namespaced, "kind": k.kind,
                                 "verbs": list(k.verbs)}
        if k.short_names:
            entry["shortNames"] = list(k.short_names)
        if k.categories:
            entry["categories"] = list(k.categories)
        if not k.virtual:
            entry["storageVersionHash"] = _storage_version_hash(k)
        resources.append(entry)
        for sub in k.subresources:
            s: dict[str, Any] = {"name": f"{k.plural}/{sub.name}", "singularName": "",
                                 "namespaced": k.namespaced, "kind": sub.kind or k.kind,
                                 "verbs": list(sub.verbs)}
            if sub.group is not None and (sub.group, sub.version) != (k.group, k.version):
                s["group"], s["version"] = sub.group, sub.version
            resources.append(s)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def _aggregated_resource(k: Kind) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": k.plural,
        "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
        "scope": "Namespaced" if k.namespaced else "Cluster",
        "singularResource": k.singular,
        "verbs": list(k.verbs),
    }
    if k.short_names:
        entry["shortNames"] = list(k.short_names)
    if k.categories:
        entry["categories"] = list(k.categories)
    subs = []
    for sub in k.subresources:
        subs.append({"subresource": sub.name,
                     "responseKind": {"group": sub.group if sub.group is not None else k.group,
                                      "version": sub.version or k.version,
                                      "kind": sub.kind or k.kind},
                     "verbs": list(sub.verbs)})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, *, legacy: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for `/api` (legacy=True) or `/apis`."""
    items = []
    for group, versions in registry.groups():
        if (group == "") != legacy:
            continue
        vs = []
        for v in versions:
            kinds = sorted(registry.in_group_version(group, v), key=lambda k: k.plural)
            vs.append({"version": v, "resources": [_aggregated_resource(k) for k in kinds],
                       "freshness": "Current"})
        item: dict[str, Any] = {"metadata": {"name": group, "creationTimestamp": None},
                                "versions": vs}
        items.append(item)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}
