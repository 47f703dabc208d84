"""The default RBAC policy every cluster starts with (kube's bootstrappolicy, v1.32), reconciled
at each server start.

Roles and bindings carry `kubernetes.io/bootstrapping: rbac-defaults` and the annotation
`rbac.authorization.kubernetes.io/autoupdate: "true"`. Reconciliation, as kube's
storage_rbac PostStartHook: a missing object is created; an existing one whose annotation is
not "false" gets the rules (or aggregationRule) and subjects it lacks added, and keeps what an
administrator added. Aggregated roles (admin, edit, view) get their rules computed here too,
so they are usable before the aggregation controller first runs.

navio specifics, each a superset of kube's: the scheduler's role also covers navio's
PodGroups; `system:kube-dns` is bound to the user `system:kube-dns` too; the
`system:controller:*` bindings also name the controller manager's single identity
(`controllerpolicy`); node bootstrap roles are bound to `system:bootstrappers` as kubeadm does.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from navio.api import errors
from navio.api.rbacaggregation import aggregated_rules
from navio.apiserver.authz.node import NODE_RULES_DATA
from navio.apiserver.controllerpolicy import controller_bindings, controller_roles
from navio.apiserver.policyrules import (APPS, AUTHN, AUTHZ, AUTOSCALING, BATCH, CERTS,
                                         COORDINATION, DISCOVERY, EXTENSIONS, LEGACY,
                                         NETWORKING, POLICY, RBAC, READ, SCHEDULING, STORAGE,
                                         events_rule, rule)

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["cluster_roles", "cluster_role_bindings", "namespace_roles", "reconcile_policy",
           "AUTOUPDATE", "BOOTSTRAP_LABEL"]

log = logging.getLogger(__name__)

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AGG = "rbac.authorization.k8s.io/aggregate-to-"
_WRITE = ("create", "delete", "deletecollection", "patch", "update")
_NAVIO_SCHED = "scheduling.navio.dev"


def _role(name: str, rules: list[Any], labels: dict[str, str] | None = None,
          aggregate: str = "") -> dict[str, Any]:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": dict(labels or {})},
                            "rules": rules}
    if aggregate:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{_AGG}{aggregate}": "true"}}]}
    return role


def _view_rules() -> list[Any]:
    return [
        rule(*READ).groups(LEGACY).resources(
            "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
            "services", "services/status", "endpoints", "persistentvolumeclaims",
            "persistentvolumeclaims/status", "configmaps"),
        rule(*READ).groups(LEGACY).resources(
            "limitranges", "resourcequotas", "bindings", "events", "pods/status",
            "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
            "pods/log"),
        rule(*READ).groups(LEGACY).resources("namespaces"),
        rule(*READ).groups(DISCOVERY).resources("endpointslices"),
        rule(*READ).groups(APPS).resources(
            "controllerrevisions", "statefulsets", "statefulsets/scale", "statefulsets/status",
            "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
            "deployments/status", "replicasets", "replicasets/scale", "replicasets/status"),
        rule(*READ).groups(AUTOSCALING).resources("horizontalpodautoscalers",
                                                  "horizontalpodautoscalers/status"),
        rule(*READ).groups(BATCH).resources("jobs", "cronjobs", "cronjobs/status",
                                            "jobs/status"),
        rule(*READ).groups(EXTENSIONS).resources(
            "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
            "deployments/status", "ingresses", "ingresses/status", "replicasets",
            "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
            "networkpolicies"),
        rule(*READ).groups(POLICY).resources("poddisruptionbudgets",
                                             "poddisruptionbudgets/status"),
        rule(*READ).groups(NETWORKING).resources("ingresses", "ingresses/status",
                                                 "networkpolicies"),
    ] + [rule(*READ).groups(_NAVIO_SCHED).resources("podgroups", "podgroups/status")]


def _edit_rules() -> list[Any]:
    return [
        rule(*READ).groups(LEGACY).resources("pods/attach", "pods/exec", "pods/portforward",
                                             "pods/proxy", "secrets", "services/proxy"),
        rule("impersonate").groups(LEGACY).resources("serviceaccounts"),
        rule(*_WRITE).groups(LEGACY).resources("pods", "pods/attach", "pods/exec",
                                               "pods/portforward", "pods/proxy"),
        rule("create").groups(LEGACY).resources("pods/eviction"),
        rule(*_WRITE).groups(LEGACY).resources(
            "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
            "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
            "services/proxy"),
        rule("create").groups(LEGACY).resources("serviceaccounts/token"),
        rule(*_WRITE).groups(APPS).resources(
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
            "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
        rule(*_WRITE).groups(AUTOSCALING).resources("horizontalpodautoscalers"),
        rule(*_WRITE).groups(BATCH).resources("cronjobs", "jobs"),
        rule(*_WRITE).groups(EXTENSIONS).resources(
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
            "ingresses", "networkpolicies", "replicasets", "replicasets/scale",
            "replicationcontrollers/scale"),
        rule(*_WRITE).groups(POLICY).resources("poddisruptionbudgets"),
        rule(*_WRITE).groups(NETWORKING).resources("ingresses", "networkpolicies"),
        rule(*READ, *_WRITE).groups(COORDINATION).resources("leases"),
        rule(*_WRITE).groups(_NAVIO_SCHED).resources("podgroups"),
    ]


def _scheduler_rules() -> list[Any]:
    return [
        events_rule(),
        rule("create").groups(COORDINATION).resources("leases"),
        rule("get", "update").groups(COORDINATION).resources("leases").names("kube-scheduler"),
        rule(*READ).groups(LEGACY).resources("nodes"),
        rule("delete", "get", "list", "watch").groups(LEGACY).resources("pods"),
        rule("create").groups(LEGACY).resources("bindings", "pods/binding"),
        rule("patch", "update").groups(LEGACY).resources("pods/status"),
        rule(*READ).groups(LEGACY).resources("replicationcontrollers", "services"),
        rule(*READ).groups(APPS, EXTENSIONS).resources("replicasets"),
        rule(*READ).groups(APPS).resources("statefulsets"),
        rule(*READ).groups(POLICY).resources("poddisruptionbudgets"),
        rule(*READ).groups(LEGACY).resources("persistentvolumeclaims", "persistentvolumes"),
        rule("create").groups(AUTHN).resources("tokenreviews"),
        rule("create").groups(AUTHZ).resources("subjectaccessreviews"),
        rule(*READ).groups(STORAGE).resources("csinodes"),
        rule(*READ).groups(LEGACY).resources("namespaces"),
        rule(*READ).groups(STORAGE).resources("csidrivers"),
        rule(*READ).groups(STORAGE).resources("csistoragecapacities"),
        rule(*READ).groups(SCHEDULING).resources("priorityclasses"),
        rule(*READ, "patch", "update").groups(_NAVIO_SCHED).resources("podgroups"),
        rule("patch", "update").groups(_NAVIO_SCHED).resources("podgroups/status"),
    ]


def cluster_roles() -> list[dict[str, Any]]:
    health = ("/healthz", "/livez", "/readyz", "/version", "/version/")
    roles = [
        _role("cluster-admin", [rule("*").groups("*").resources("*"), rule("*").urls("*")]),
        _role("system:discovery", [rule("get").urls(
            "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *health)]),
        _role("system:monitoring", [rule("get").urls(
            "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*",
            "/readyz/*", "/healthz/*")]),
        _role("system:basic-user", [
            rule("create").groups(AUTHZ).resources("selfsubjectaccessreviews",
                                                   "selfsubjectrulesreviews"),
            rule("create").groups(AUTHN).resources("selfsubjectreviews")]),
        _role("system:public-info-viewer", [rule("get").urls(*health)]),
        _role("admin", [], aggregate="admin"),
        _role("edit", [], {f"{_AGG}admin": "true"}, aggregate="edit"),
        _role("view", [], {f"{_AGG}edit": "true"}, aggregate="view"),
        _role("system:aggregate-to-admin", [
            rule("create").groups(AUTHZ).resources("localsubjectaccessreviews"),
            rule(*READ, *_WRITE).groups(RBAC).resources("rolebindings", "roles")],
            {f"{_AGG}admin": "true"}),
        _role("system:aggregate-to-edit", _edit_rules(), {f"{_AGG}edit": "true"}),
        _role("system:aggregate-to-view", _view_rules(), {f"{_AGG}view": "true"}),
        _role("system:heapster", [
            rule(*READ).groups(LEGACY).resources("events", "pods", "nodes", "namespaces"),
            rule(*READ).groups(EXTENSIONS, APPS).resources("deployments")]),
        _role("system:node", copy.deepcopy(NODE_RULES_DATA)),
        _role("system:node-problem-detector", [
            rule("get").groups(LEGACY).resources("nodes"),
            rule("patch").groups(LEGACY).resources("nodes/status"), events_rule()]),
        _role("system:kubelet-api-admin", [
            rule(*READ).groups(LEGACY).resources("nodes"),
            rule("proxy").groups(LEGACY).resources("nodes"),
            rule("*").groups(LEGACY).resources("nodes/proxy", "nodes/metrics", "nodes/stats",
                                               "nodes/log")]),
        _role("system:node-bootstrapper", [
            rule("create", "get", "list", "watch").groups(CERTS)
            .resources("certificatesigningrequests")]),
        _role("system:auth-delegator", [
            rule("create").groups(AUTHN).resources("tokenreviews"),
            rule("create").groups(AUTHZ).resources("subjectaccessreviews")]),
        _role("system:kube-aggregator", [rule(*READ).groups(LEGACY).resources("services",
                                                                             "endpoints")]),
        _role("system:kube-controller-manager", [
            events_rule(),
            rule("create").groups(COORDINATION).resources("leases"),
            rule("get", "update").groups(COORDINATION).resources("leases")
            .names("kube-controller-manager"),
            rule("create").groups(LEGACY).resources("secrets", "serviceaccounts"),
            rule("delete").groups(LEGACY).resources("secrets"),
            rule("get").groups(LEGACY).resources("configmaps", "namespaces", "secrets",
                                                 "serviceaccounts"),
            rule("update").groups(LEGACY).resources("secrets", "serviceaccounts"),
            rule("create").groups(AUTHN).resources("tokenreviews"),
            rule("create").groups(AUTHZ).resources("subjectaccessreviews"),
            rule("list", "watch").groups("*").resources("*"),
            rule("create").groups(LEGACY).resources("serviceaccounts/token")]),
        _role("system:kube-dns", [rule("list", "watch").groups(LEGACY)
                                  .resources("endpoints", "services"),
                                  rule("list", "watch").groups(DISCOVERY)
                                  .resources("endpointslices")]),
        _role("system:persistent-volume-provisioner", [
            rule("get", "list", "watch", "create", "delete").groups(LEGACY)
            .resources("persistentvolumes"),
            rule("get", "list", "watch", "update").groups(LEGACY)
            .resources("persistentvolumeclaims"),
            rule(*READ).groups(STORAGE).resources("storageclasses"),
            rule("watch").groups(LEGACY).resources("events"), events_rule()]),
        _role("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
            rule("create").groups(CERTS).resources("certificatesigningrequests/nodeclient")]),
        _role("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
            rule("create").groups(CERTS)
            .resources("certificatesigningrequests/selfnodeclient")]),
        _role("system:volume-scheduler", [
            rule(*READ, "patch", "update").groups(LEGACY).resources("persistentvolumes"),
            rule(*READ).groups(STORAGE).resources("storageclasses"),
            rule(*READ, "patch", "update").groups(LEGACY).resources("persistentvolumeclaims")]),
        _role("system:certificates.k8s.io:legacy-unknown-approver", [
            rule("approve").groups(CERTS).resources("signers")
            .names("kubernetes.io/legacy-unknown")]),
        _role("system:certificates.k8s.io:kubelet-serving-approver", [
            rule("approve").groups(CERTS).resources("signers")
            .names("kubernetes.io/kubelet-serving")]),
        _role("system:certificates.k8s.io:kube-apiserver-client-approver", [
            rule("approve").groups(CERTS).resources("signers")
            .names("kubernetes.io/kube-apiserver-client")]),
        _role("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver", [
            rule("approve").groups(CERTS).resources("signers")
            .names("kubernetes.io/kube-apiserver-client-kubelet")]),
        _role("system:service-account-issuer-discovery", [
            rule("get").urls("/.well-known/openid-configuration", "/openid/v1/jwks")]),
        _role("system:node-proxier", [
            rule("list", "watch").groups(LEGACY).resources("services", "endpoints"),
            rule("get", "list", "watch").groups(LEGACY).resources("nodes"),
            events_rule(),
            rule("list", "watch").groups(DISCOVERY).resources("endpointslices")]),
        _role("system:kube-scheduler", _scheduler_rules()),
        # navio's own: each agent also runs the node side of storage that kube leaves to
        # provisioner/attacher pods with their own service accounts — the local-path
        # directories of its node and the CSI drivers registered on it (CreateVolume,
        # ControllerPublish). Bound to system:nodes; unbind it to run no such driver on nodes.
        _role("system:navio:node-storage", [
            rule("get", "list", "watch", "create", "update", "delete").groups(LEGACY)
            .resources("persistentvolumes"),
            rule(*READ).groups(LEGACY).resources("persistentvolumeclaims"),
            rule(*READ).groups(STORAGE).resources("storageclasses", "csinodes",
                                                   "volumeattachments"),
            rule("update", "patch").groups(STORAGE).resources("volumeattachments",
                                                               "volumeattachments/status")]),
    ]
    roles += controller_roles()
    return roles


def _binding(name: str, role: str, *subjects: tuple[str, str]) -> dict[str, Any]:
    subs = []
    for kind, sub in subjects:
        if kind == "ServiceAccount":
            ns, n = sub.split("/")
            subs.append({"kind": kind, "name": n, "namespace": ns})
        else:
            subs.append({"apiGroup": RBAC, "kind": kind, "name": sub})
    return {"metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": subs}


def cluster_role_bindings() -> list[dict[str, Any]]:
    authed, unauthed = ("Group", "system:authenticated"), ("Group", "system:unauthenticated")
    out = [
        _binding("cluster-admin", "cluster-admin", ("Group", "system:masters")),
        _binding("system:monitoring", "system:monitoring", ("Group", "system:monitoring")),
        _binding("system:discovery", "system:discovery", authed),
        _binding("system:basic-user", "system:basic-user", authed),
        _binding("system:public-info-viewer", "system:public-info-viewer", authed, unauthed),
        _binding("system:node-proxier", "system:node-proxier", ("User", "system:kube-proxy")),
        _binding("system:kube-controller-manager", "system:kube-controller-manager",
                 ("User", "system:kube-controller-manager")),
        _binding("system:kube-dns", "system:kube-dns", ("ServiceAccount", "kube-system/kube-dns"),
                 ("User", "system:kube-dns")),
        _binding("system:kube-scheduler", "system:kube-scheduler",
                 ("User", "system:kube-scheduler")),
        _binding("system:volume-scheduler", "system:volume-scheduler",
                 ("User", "system:kube-scheduler")),
        _binding("system:service-account-issuer-discovery",
                 "system:service-account-issuer-discovery", ("Group", "system:serviceaccounts")),
        _binding("system:node", "system:node"),
        _binding("system:navio:node-storage", "system:navio:node-storage",
                 ("Group", "system:nodes")),
        # kubeadm's node-bootstrap bindings: a bootstrap token may ask for a node certificate,
        # a node may renew its own.
        _binding("system:node-bootstrapper", "system:node-bootstrapper",
                 ("Group", "system:bootstrappers")),
        _binding("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                 ("Group", "system:bootstrappers")),
        _binding("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                 "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                 ("Group", "system:nodes")),
    ]
    return out + controller_bindings()


def namespace_roles() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(namespace, Role, RoleBinding) triples: leader-election locks in kube-system."""
    out = []
    for comp in ("kube-controller-manager", "kube-scheduler"):
        name = f"system::leader-locking-{comp}"
        role = {"metadata": {"name": name}, "rules": [
            rule("watch").groups(LEGACY).resources("configmaps"),
            rule("get", "update").groups(LEGACY).resources("configmaps").names(comp)]}
        binding = {"metadata": {"name": name},
                   "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
                   "subjects": [{"apiGroup": RBAC, "kind": "User", "name": f"system:{comp}"}]}
        out.append(("kube-system", role, binding))
    return out


def _stamp(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta["labels"] = {**meta.get("labels", {}), **BOOTSTRAP_LABEL}
    meta["annotations"] = {AUTOUPDATE: "true"}
    obj.update(apiVersion=f"{RBAC}/v1", kind=kind)
    return obj


def _merged(kind: str, current: dict[str, Any], want: dict[str, Any]) -> dict[str, Any] | None:
    """`current` with what `want` adds, or None when nothing is missing."""
    new = copy.deepcopy(current)
    changed = False
    if kind.endswith("Binding"):
        subs = new.setdefault("subjects", [])
        for s in want.get("subjects") or ():
            if s not in subs:
                subs.append(s)
                changed = True
    else:
        if want.get("aggregationRule") is not None:
            if new.get("aggregationRule") != want["aggregationRule"]:
                new["aggregationRule"] = want["aggregationRule"]
                changed = True
        rules = new.setdefault("rules", [])
        for r in want.get("rules") or ():
            if r not in rules:
                rules.append(r)
                changed = True
    labels = new["metadata"].setdefault("labels", {})
    for k, v in want["metadata"].get("labels", {}).items():
        if labels.get(k) != v:
            labels[k] = v
            changed = True
    return new if changed else None


async def _reconcile(resources: "Resources", plural: str, kind: str, namespace: str,
                     want: dict[str, Any]) -> None:
    from navio.apiserver.resources import WriteOptions
    opts = WriteOptions(field_manager="kube-apiserver")
    k = resources.registry.resource(RBAC, "v1", plural)
    assert k is not None
    want = _stamp(want, kind)
    name = want["metadata"]["name"]
    try:
        current = await resources.get(k, namespace, name)
    except errors.NotFound:
        try:
            await resources.create(k, namespace, want, opts)
            return
        except errors.AlreadyExists:
            current = await resources.get(k, namespace, name)
    if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return

    def mutate(cur: dict[str, Any] | None) -> dict[str, Any]:
        if cur is None:
            return want
        return _merged(kind, cur, want) or cur
    if _merged(kind, current, want) is not None:
        await resources.update(k, namespace, name, mutate, opts)
        log.info("bootstrap policy reconciled", extra={"resource": plural, "object": name})


async def reconcile_policy(resources: "Resources") -> None:
    """Create or complete the default roles and bindings (idempotent)."""
    roles = cluster_roles()
    # Aggregations chain (view → edit → admin): compute until stable.
    for _ in range(3):
        for r in roles:
            got = aggregated_rules(r, roles)
            if got is not None:
                r["rules"] = got
    for r in roles:
        await _reconcile(resources, "clusterroles", "ClusterRole", "", r)
    for b in cluster_role_bindings():
        await _reconcile(resources, "clusterrolebindings", "ClusterRoleBinding", "", b)
    for ns, role, binding in namespace_roles():
        await _reconcile(resources, "roles", "Role", ns, role)
        await _reconcile(resources, "rolebindings", "RoleBinding", ns, binding)
