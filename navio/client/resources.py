"""Which REST resource a client call addresses, and how its URL is spelled.

A `ResourceRef` is the client's half of the kind registry: group, version, plural, scope and
kind, nothing else, so that a component can name a resource without loading the server's
registry or schema. URLs follow Kubernetes exactly (`/api/v1/...` for the core group,
`/apis/<group>/<version>/...` otherwise; namespaced resources under `namespaces/<ns>/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from navio.api.registry import Kind

__all__ = [
    "ResourceRef", "object_key", "split_key",
    "PODS", "NODES", "NAMESPACES", "SERVICES", "ENDPOINTS", "ENDPOINTSLICES", "CONFIGMAPS",
    "SECRETS", "EVENTS", "LEASES", "DEPLOYMENTS", "REPLICASETS", "DAEMONSETS", "STATEFULSETS",
    "JOBS", "CRONJOBS", "SERVICEACCOUNTS", "PRIORITYCLASSES", "PDBS", "CONTROLLERREVISIONS",
]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @classmethod
    def from_kind(cls, kind: "Kind") -> "ResourceRef":
        """The reference for a registry `Kind` (CRDs, or kinds without a constant here)."""
        return cls(kind.group, kind.version, kind.plural, kind.namespaced, kind.kind)

    @property
    def api_version(self) -> str:
        """`v1`, `apps/v1`: what objects of this resource carry in `apiVersion`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_name(self) -> str:
        """`pods`, `deployments.apps`: how Kubernetes names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, or of one object (and its subresource).

        A namespaced resource without `namespace` addresses all namespaces (list and watch
        only); a cluster-scoped resource ignores `namespace`."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            if not name:
                raise ValueError(f"{self.resource_name}: resource name may not be empty")
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        elif subresource:
            raise ValueError("a subresource needs an object name")
        return "/".join(parts)


def object_key(obj: dict[str, Any]) -> str:
    """The cache key of an object: `namespace/name`, or `name` when cluster-scoped.

    Same as client-go's MetaNamespaceKeyFunc (tools/cache/store.go)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "")
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str | None, str]:
    """(namespace, name) from a key made by `object_key`; namespace None when cluster-scoped."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


PODS = ResourceRef("", "v1", "pods", True, "Pod")
NODES = ResourceRef("", "v1", "nodes", False, "Node")
NAMESPACES = ResourceRef("", "v1", "namespaces", False, "Namespace")
SERVICES = ResourceRef("", "v1", "services", True, "Service")
ENDPOINTS = ResourceRef("", "v1", "endpoints", True, "Endpoints")
CONFIGMAPS = ResourceRef("", "v1", "configmaps", True, "ConfigMap")
SECRETS = ResourceRef("", "v1", "secrets", True, "Secret")
EVENTS = ResourceRef("", "v1", "events", True, "Event")
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", True, "ServiceAccount")
ENDPOINTSLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", True, "Lease")
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments", True, "Deployment")
REPLICASETS = ResourceRef("apps", "v1", "replicasets", True, "ReplicaSet")
DAEMONSETS = ResourceRef("apps", "v1", "daemonsets", True, "DaemonSet")
STATEFULSETS = ResourceRef("apps", "v1", "statefulsets", True, "StatefulSet")
CONTROLLERREVISIONS = ResourceRef("apps", "v1", "controllerrevisions", True,
                                  "ControllerRevision")
JOBS = ResourceRef("batch", "v1", "jobs", True, "Job")
CRONJOBS = ResourceRef("batch", "v1", "cronjobs", True, "CronJob")
PRIORITYCLASSES = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses", False,
                              "PriorityClass")
PDBS = ResourceRef("policy", "v1", "poddisruptionbudgets", True, "PodDisruptionBudget")
