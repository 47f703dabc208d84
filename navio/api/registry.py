"""The kind registry: what the schema does not say about each served resource.

The type schema (`navio.api.schema`) knows every kind's fields; this registry adds what makes a
kind a REST resource: its plural and singular, scope, short names, categories, subresources and
verbs. Defaulting, validation and table columns live in their own modules, keyed by
(group, kind), so that the generic REST handlers serve every kind through one path; CRDs will add
entries here at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from navio.api import schema

__all__ = ["Kind", "Registry", "BUILTIN", "STANDARD_VERBS", "default_registry",
           "version_priority"]

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update",
                  "watch")
_CREATE_ONLY = ("create",)


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    verbs: tuple[str, ...]
    # The kind the subresource reads and writes when it differs from its parent's.
    group: str | None = None
    version: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    singular: str = ""
    # Stored objects are kept (no GET/LIST) for virtual kinds such as reviews.
    virtual: bool = False
    definition: str | None = field(default=None, compare=False)
    # The group whose storage this kind shares (events.k8s.io Events are core Events kept in
    # core/v1 form; `navio.api.conversion` converts); None: its own.
    storage_group: str | None = field(default=None, compare=False)
    # A custom kind's behaviour (`navio.api.crd.CustomResource`): storage conversion, pruning,
    # defaulting, validation, printer columns; None for built-in kinds.
    custom: Any = field(default=None, compare=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_name(self) -> str:
        """`pods`, `deployments.apps`: the qualified resource Kubernetes prints in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def schema_name(self) -> str | None:
        return self.definition or schema.definition_name(self.group, self.version, self.kind)

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def storage_prefix(self, namespace: str | None = None) -> str:
        """The registry key prefix of this resource (and namespace), ending in '/'."""
        group = (self.group if self.storage_group is None else self.storage_group) or "core"
        base = f"/registry/{group}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        group = (self.group if self.storage_group is None else self.storage_group) or "core"
        if self.namespaced:
            return f"/registry/{group}/{self.plural}/{namespace}/{name}"
        return f"/registry/{group}/{self.plural}/{name}"


def _sub(name: str, verbs: tuple[str, ...] = ("get", "patch", "update"), **gvk: str) -> Subresource:
    return Subresource(name, verbs, **gvk)


_STATUS = _sub("status")
_SCALE = _sub("scale", group="autoscaling", version="v1", kind="Scale")
_ALL = ("all",)


def _k(group: str, version: str, kind: str, plural: str, namespaced: bool = True,
       **kw: object) -> Kind:
    singular = kind.lower()
    return Kind(group, version, kind, plural, namespaced, singular=singular, **kw)  # type: ignore[arg-type]


BUILTIN: tuple[Kind, ...] = (
    # core/v1
    _k("", "v1", "Namespace", "namespaces", False, short_names=("ns",),
       subresources=(_STATUS, _sub("finalize", ("update",))),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _k("", "v1", "Pod", "pods", short_names=("po",), categories=_ALL, subresources=(
        _STATUS,
        _sub("binding", _CREATE_ONLY, group="", version="v1", kind="Binding"),
        _sub("eviction", _CREATE_ONLY, group="policy", version="v1", kind="Eviction"),
        _sub("ephemeralcontainers"),
        _sub("log", ("get",)),
        _sub("exec", ("create", "get"), group="", version="v1", kind="PodExecOptions"),
        _sub("attach", ("create", "get"), group="", version="v1", kind="PodAttachOptions"),
        _sub("portforward", ("create", "get"), group="", version="v1",
             kind="PodPortForwardOptions"),
        _sub("proxy", ("create", "delete", "get", "patch", "update"), group="", version="v1",
             kind="PodProxyOptions"),
    )),
    _k("", "v1", "Binding", "bindings", verbs=_CREATE_ONLY, virtual=True),
    _k("", "v1", "Node", "nodes", False, short_names=("no",), subresources=(
        _STATUS, _sub("proxy", ("create", "delete", "get", "patch", "update"), group="",
                      version="v1", kind="NodeProxyOptions"))),
    _k("", "v1", "Service", "services", short_names=("svc",), categories=_ALL,
       subresources=(_STATUS, _sub("proxy", ("create", "delete", "get", "patch", "update"),
                                   group="", version="v1", kind="ServiceProxyOptions")),
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _k("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    _k("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _k("", "v1", "Secret", "secrets"),
    _k("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
       subresources=(_sub("token", _CREATE_ONLY, group="authentication.k8s.io", version="v1",
                          kind="TokenRequest"),)),
    _k("", "v1", "Event", "events", short_names=("ev",)),
    _k("", "v1", "PersistentVolume", "persistentvolumes", False, short_names=("pv",),
       subresources=(_STATUS,)),
    _k("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
       subresources=(_STATUS,)),
    _k("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
       categories=_ALL, subresources=(_STATUS, _SCALE)),
    _k("", "v1", "PodTemplate", "podtemplates"),
    _k("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    _k("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",),
       subresources=(_STATUS,)),
    # apps/v1
    _k("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=_ALL,
       subresources=(_STATUS, _SCALE)),
    _k("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=_ALL,
       subresources=(_STATUS, _SCALE)),
    _k("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=_ALL,
       subresources=(_STATUS,)),
    _k("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=_ALL,
       subresources=(_STATUS, _SCALE)),
    _k("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _k("batch", "v1", "Job", "jobs", categories=_ALL, subresources=(_STATUS,)),
    _k("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=_ALL,
       subresources=(_STATUS,)),
    # coordination, events, discovery
    _k("coordination.k8s.io", "v1", "Lease", "leases"),
    _k("events.k8s.io", "v1", "Event", "events", short_names=("ev",), storage_group=""),
    _k("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # networking.k8s.io/v1
    _k("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    # policy, scheduling
    _k("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",),
       subresources=(_STATUS,)),
    _k("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False,
       short_names=("pc",)),
    _k("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    # rbac.authorization.k8s.io/v1
    _k("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _k("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _k("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _k("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    # authorization.k8s.io/v1: reviews, answered and never stored
    _k("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
       False, verbs=_CREATE_ONLY, virtual=True),
    _k("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
       False, verbs=_CREATE_ONLY, virtual=True),
    _k("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
       verbs=_CREATE_ONLY, virtual=True),
    _k("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
       verbs=_CREATE_ONLY, virtual=True),
    # authentication, certificates
    _k("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False,
       verbs=_CREATE_ONLY, virtual=True),
    _k("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
       verbs=_CREATE_ONLY, virtual=True),
    _k("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
       False, short_names=("csr",), subresources=(_STATUS, _sub("approval"))),
    # storage.k8s.io/v1
    _k("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _k("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _k("storage.k8s.io", "v1", "CSINode", "csinodes", False),
    _k("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False,
       subresources=(_STATUS,)),
    # admissionregistration.k8s.io/v1: dynamic admission (apiserver/webhooks.py)
    _k("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
       "mutatingwebhookconfigurations", False, categories=("api-extensions",)),
    _k("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
       "validatingwebhookconfigurations", False, categories=("api-extensions",)),
    _k("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
       "validatingadmissionpolicies", False, categories=("api-extensions",),
       subresources=(_STATUS,)),
    _k("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
       "validatingadmissionpolicybindings", False, categories=("api-extensions",)),
    # apiextensions.k8s.io/v1: the kinds CRDs add are registered at run time (navio's own,
    # such as the scheduler's PodGroup, too: navio/apiserver/builtincrds.py).
    _k("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
       False, short_names=("crd", "crds"), categories=("api-extensions",),
       subresources=(_STATUS,)),
)

# The order groups are listed in discovery (the first version listed is preferred).
_GROUP_ORDER = ("", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
                "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy",
                "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
                "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
                "discovery.k8s.io")


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of kube's version priority (apimachinery's CompareKubeAwareVersionStrings):
    GA before beta before alpha, higher numbers first, then other names alphabetically."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), "")


class Registry:
    """Served kinds, looked up by (group, version, plural) as URLs name them."""

    def __init__(self, kinds: tuple[Kind, ...] | list[Kind] = BUILTIN) -> None:
        self._by_resource: dict[tuple[str, str, str], Kind] = {}
        self._by_kind: dict[tuple[str, str, str], Kind] = {}
        for k in kinds:
            self.add(k)

    def add(self, kind: Kind) -> None:
        self._by_resource[(kind.group, kind.version, kind.plural)] = kind
        self._by_kind[(kind.group, kind.version, kind.kind)] = kind

    def remove(self, kind: Kind) -> None:
        self._by_resource.pop((kind.group, kind.version, kind.plural), None)
        self._by_kind.pop((kind.group, kind.version, kind.kind), None)

    def resource(self, group: str, version: str, plural: str) -> Kind | None:
        return self._by_resource.get((group, version, plural))

    def kind(self, group: str, version: str, kind: str) -> Kind | None:
        return self._by_kind.get((group, version, kind))

    def kinds(self) -> list[Kind]:
        return list(self._by_resource.values())

    def groups(self) -> list[tuple[str, list[str]]]:
        """Served (group, [versions, preferred first]), in discovery order."""
        versions: dict[str, list[str]] = {}
        for k in self._by_resource.values():
            vs = versions.setdefault(k.group, [])
            if k.version not in vs:
                vs.append(k.version)
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        return sorted(((g, sorted(vs, key=version_priority)) for g, vs in versions.items()),
                      key=lambda gv: (order.get(gv[0], len(order)), gv[0]))

    def in_group_version(self, group: str, version: str) -> list[Kind]:
        return [k for k in self._by_resource.values()
                if k.group == group and k.version == version]


def default_registry() -> Registry:
    return Registry(BUILTIN)
