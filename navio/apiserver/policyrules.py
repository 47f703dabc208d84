"""Builders for the bootstrap policy's PolicyRules (kube's rbacv1helpers.NewRule).

`rule("get", "list").groups("").resources("pods")` reads like the Go it mirrors and yields
the plain dict the API stores.
"""

from __future__ import annotations

from typing import Any

__all__ = ["rule", "READ", "READ_WRITE", "events_rule", "LEGACY", "APPS", "BATCH",
           "EXTENSIONS", "POLICY", "NETWORKING", "AUTOSCALING", "AUTHN", "AUTHZ", "RBAC",
           "CERTS", "COORDINATION", "DISCOVERY", "STORAGE", "EVENTS", "SCHEDULING"]

READ = ("get", "list", "watch")
READ_WRITE = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
LEGACY, APPS, BATCH, EXTENSIONS, POLICY = "", "apps", "batch", "extensions", "policy"
NETWORKING, AUTOSCALING = "networking.k8s.io", "autoscaling"
AUTHN, AUTHZ, RBAC = "authentication.k8s.io", "authorization.k8s.io", "rbac.authorization.k8s.io"
CERTS, COORDINATION = "certificates.k8s.io", "coordination.k8s.io"
DISCOVERY, STORAGE, EVENTS = "discovery.k8s.io", "storage.k8s.io", "events.k8s.io"
SCHEDULING = "scheduling.k8s.io"


class _Rule(dict[str, Any]):
    def groups(self, *g: str) -> "_Rule":
        self["apiGroups"] = sorted(set(g))
        return self

    def resources(self, *r: str) -> "_Rule":
        self["resources"] = sorted(set(r))
        return self

    def names(self, *n: str) -> "_Rule":
        self["resourceNames"] = sorted(set(n))
        return self

    def urls(self, *u: str) -> "_Rule":
        self["nonResourceURLs"] = sorted(set(u))
        return self


def rule(*verbs: str) -> _Rule:
    return _Rule(verbs=sorted(set(verbs)))


def events_rule() -> _Rule:
    return rule("create", "update", "patch").groups(LEGACY, EVENTS).resources("events")
