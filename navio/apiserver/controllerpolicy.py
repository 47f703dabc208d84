"""The `system:controller:*` ClusterRoles (kube's bootstrappolicy/controller_policy.go) for the
controllers navio runs or will run, bound like kube to their service accounts in kube-system.

navio's controller manager runs every controller as one identity, the user
`system:kube-controller-manager` (kube gives each controller its own service account with
`--use-service-account-credentials`), so each binding also names that user: the manager holds
exactly the union of its controllers' roles.
"""

from __future__ import annotations

from typing import Any

from navio.apiserver.policyrules import (APPS, AUTHZ, BATCH, CERTS, DISCOVERY, EXTENSIONS,
                                         LEGACY, POLICY, RBAC, READ, STORAGE, events_rule,
                                         rule)

__all__ = ["controller_roles", "controller_bindings", "CONTROLLER_MANAGER_USER"]

CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
_PREFIX = "system:controller:"


def _roles() -> dict[str, list[dict[str, Any]]]:
    ev = events_rule()
    return {
        "clusterrole-aggregation-controller": [
            rule("escalate", "get", "list", "watch", "update", "patch").groups(RBAC)
            .resources("clusterroles")],
        "cronjob-controller": [
            rule("get", "list", "watch", "update").groups(BATCH).resources("cronjobs"),
            rule("get", "list", "watch", "create", "update", "delete", "patch").groups(BATCH)
            .resources("jobs"),
            rule("update").groups(BATCH).resources("cronjobs/status"),
            rule("update").groups(BATCH).resources("cronjobs/finalizers"),
            rule("list", "watch", "delete").groups(LEGACY).resources("pods"), ev],
        "daemon-set-controller": [
            rule(*READ).groups(EXTENSIONS, APPS).resources("daemonsets"),
            rule("update").groups(EXTENSIONS, APPS).resources("daemonsets/status"),
            rule("update").groups(EXTENSIONS, APPS).resources("daemonsets/finalizers"),
            rule("list", "watch").groups(LEGACY).resources("nodes"),
            rule("list", "watch", "create", "delete", "patch").groups(LEGACY).resources("pods"),
            rule("create").groups(LEGACY).resources("pods/binding"),
            rule("get", "list", "watch", "create", "delete", "update", "patch").groups(APPS)
            .resources("controllerrevisions"), ev],
        "deployment-controller": [
            rule("get", "list", "watch", "update").groups(EXTENSIONS, APPS)
            .resources("deployments"),
            rule("update").groups(EXTENSIONS, APPS).resources("deployments/status"),
            rule("update").groups(EXTENSIONS, APPS).resources("deployments/finalizers"),
            rule("get", "list", "watch", "create", "update", "patch", "delete")
            .groups(APPS, EXTENSIONS).resources("replicasets"),
            rule("get", "list", "watch", "update").groups(LEGACY).resources("pods"), ev],
        "disruption-controller": [
            rule(*READ).groups(EXTENSIONS, APPS).resources("deployments"),
            rule(*READ).groups(APPS, EXTENSIONS).resources("replicasets"),
            rule(*READ).groups(LEGACY).resources("replicationcontrollers"),
            rule(*READ).groups(POLICY).resources("poddisruptionbudgets"),
            rule(*READ).groups(APPS).resources("statefulsets"),
            rule("update").groups(POLICY).resources("poddisruptionbudgets/status"),
            rule("patch", "update").groups(LEGACY).resources("pods/status"),
            rule("get").groups("*").resources("*/scale"), ev],
        "endpoint-controller": [
            rule(*READ).groups(LEGACY).resources("services", "pods"),
            rule("get", "list", "watch", "create", "update", "delete").groups(LEGACY)
            .resources("endpoints"),
            rule("create").groups(LEGACY).resources("endpoints/restricted"), ev],
        "endpointslice-controller": [
            rule(*READ).groups(LEGACY).resources("services", "pods", "nodes"),
            rule("update").groups(LEGACY).resources("services/finalizers"),
            rule("get", "list", "watch", "create", "update", "delete").groups(DISCOVERY)
            .resources("endpointslices"), ev],
        "endpointslicemirroring-controller": [
            rule(*READ).groups(LEGACY).resources("services", "endpoints"),
            rule("update").groups(LEGACY).resources("services/finalizers"),
            rule("update").groups(LEGACY).resources("endpoints/finalizers"),
            rule("get", "list", "watch", "create", "update", "delete").groups(DISCOVERY)
            .resources("endpointslices"), ev],
        "generic-garbage-collector": [
            rule("get", "list", "watch", "patch", "update", "delete").groups("*").resources("*"),
            ev],
        "job-controller": [
            rule("get", "list", "watch", "update", "patch").groups(BATCH).resources("jobs"),
            rule("update").groups(BATCH).resources("jobs/status"),
            rule("update").groups(BATCH).resources("jobs/finalizers"),
            rule("list", "watch", "create", "delete", "patch").groups(LEGACY).resources("pods"),
            ev],
        "namespace-controller": [
            rule("get", "list", "watch", "delete").groups(LEGACY).resources("namespaces"),
            rule("update").groups(LEGACY).resources("namespaces/finalize",
                                                    "namespaces/status"),
            rule("get", "list", "watch", "delete", "deletecollection").groups("*")
            .resources("*")],
        "node-controller": [
            rule("get", "list", "watch", "update", "delete", "patch").groups(LEGACY)
            .resources("nodes"),
            rule("patch", "update").groups(LEGACY).resources("nodes/status"),
            rule("patch", "update").groups(LEGACY).resources("pods/status"),
            rule("list", "watch", "get", "delete").groups(LEGACY).resources("pods"), ev],
        "node-ipam-controller": [
            rule("get", "list", "watch", "update", "patch").groups(LEGACY).resources("nodes"),
            rule("patch", "update").groups(LEGACY).resources("nodes/status"), ev],
        "pod-garbage-collector": [
            rule("list", "watch", "delete").groups(LEGACY).resources("pods"),
            rule("get", "list", "watch").groups(LEGACY).resources("nodes"),
            rule("patch").groups(LEGACY).resources("pods/status")],
        # navio's training operator (Kubeflow's, run in the controller manager).
        "pytorchjob-controller": [
            rule("get", "list", "watch", "update", "delete").groups("kubeflow.org")
            .resources("pytorchjobs"),
            rule("update").groups("kubeflow.org")
            .resources("pytorchjobs/status", "pytorchjobs/finalizers"),
            rule("list", "watch", "create", "delete").groups(LEGACY)
            .resources("pods", "services"),
            rule("get", "list", "watch", "create", "update", "delete")
            .groups("scheduling.navio.dev").resources("podgroups"), ev],
        "replicaset-controller": [
            rule("get", "list", "watch", "update").groups(APPS, EXTENSIONS)
            .resources("replicasets"),
            rule("update").groups(APPS, EXTENSIONS).resources("replicasets/status"),
            rule("update").groups(APPS, EXTENSIONS).resources("replicasets/finalizers"),
            rule("list", "watch", "patch", "create", "delete").groups(LEGACY).resources("pods"),
            ev],
        "replication-controller": [
            rule("get", "list", "watch", "update").groups(LEGACY)
            .resources("replicationcontrollers"),
            rule("update").groups(LEGACY).resources("replicationcontrollers/status"),
            rule("update").groups(LEGACY).resources("replicationcontrollers/finalizers"),
            rule("list", "watch", "patch", "create", "delete").groups(LEGACY).resources("pods"),
            ev],
        "resourcequota-controller": [
            rule("list", "watch").groups("*").resources("*"),
            rule("update").groups(LEGACY).resources("resourcequotas/status"), ev],
        "root-ca-cert-publisher": [
            rule("create", "update").groups(LEGACY).resources("configmaps"), ev],
        "service-account-controller": [
            rule("create").groups(LEGACY).resources("serviceaccounts"), ev],
        "statefulset-controller": [
            rule("list", "watch").groups(LEGACY).resources("pods"),
            rule(*READ).groups(APPS).resources("statefulsets"),
            rule("update").groups(APPS).resources("statefulsets/status"),
            rule("update").groups(APPS).resources("statefulsets/finalizers"),
            rule("get", "create", "delete", "update", "patch").groups(LEGACY).resources("pods"),
            rule("get", "create", "delete", "update", "patch", "list", "watch").groups(APPS)
            .resources("controllerrevisions"),
            rule("get", "create", "list", "watch").groups(LEGACY)
            .resources("persistentvolumeclaims"),
            rule("update", "delete").groups(LEGACY).resources("persistentvolumeclaims"),
            rule("update").groups(LEGACY).resources("pods/finalizers"), ev],
        "persistent-volume-binder": [
            rule("get", "list", "watch", "create", "update", "delete").groups(LEGACY)
            .resources("persistentvolumes"),
            rule("update").groups(LEGACY).resources("persistentvolumes/status"),
            rule("get", "list", "watch", "update").groups(LEGACY)
            .resources("persistentvolumeclaims"),
            rule("update").groups(LEGACY).resources("persistentvolumeclaims/status"),
            rule("get", "list", "watch", "create", "delete").groups(LEGACY).resources("pods"),
            rule(*READ).groups(STORAGE).resources("storageclasses"),
            rule("get", "list").groups(LEGACY).resources("nodes"),
            rule("get", "create", "delete").groups(LEGACY).resources("services", "endpoints"),
            rule("get").groups(LEGACY).resources("secrets"), ev],
        "expand-controller": [
            rule("get", "list", "watch", "update", "patch").groups(LEGACY)
            .resources("persistentvolumes"),
            rule("update", "patch").groups(LEGACY).resources("persistentvolumeclaims/status"),
            rule(*READ).groups(LEGACY).resources("persistentvolumeclaims"),
            rule(*READ).groups(STORAGE).resources("storageclasses"),
            rule("get").groups(LEGACY).resources("endpoints", "services", "secrets"), ev],
        "attachdetach-controller": [
            rule(*READ).groups(LEGACY).resources("persistentvolumes", "persistentvolumeclaims"),
            rule(*READ).groups(LEGACY).resources("nodes"),
            rule("patch", "update").groups(LEGACY).resources("nodes/status"),
            rule("list", "watch").groups(LEGACY).resources("pods"),
            rule("get", "list", "watch", "create", "delete", "update", "patch").groups(STORAGE)
            .resources("volumeattachments"),
            rule(*READ).groups(STORAGE).resources("csidrivers", "csinodes"), ev],
        "pvc-protection-controller": [
            rule("get", "list", "watch", "update").groups(LEGACY)
            .resources("persistentvolumeclaims"),
            rule("list", "watch", "get").groups(LEGACY).resources("pods"), ev],
        "pv-protection-controller": [
            rule("get", "list", "watch", "update").groups(LEGACY).resources("persistentvolumes"),
            ev],
        "ttl-after-finished-controller": [
            rule("get", "list", "watch", "delete").groups(BATCH).resources("jobs"), ev],
        "ttl-controller": [
            rule("update", "patch", "list", "watch").groups(LEGACY).resources("nodes"), ev],
        "certificate-controller": [
            rule("get", "list", "watch", "delete").groups(CERTS)
            .resources("certificatesigningrequests"),
            rule("update").groups(CERTS).resources("certificatesigningrequests/status",
                                                   "certificatesigningrequests/approval"),
            rule("approve").groups(CERTS).resources("signers")
            .names("kubernetes.io/kube-apiserver-client-kubelet"),
            rule("sign").groups(CERTS).resources("signers")
            .names("kubernetes.io/kube-apiserver-client",
                   "kubernetes.io/kube-apiserver-client-kubelet",
                   "kubernetes.io/kubelet-serving", "kubernetes.io/legacy-unknown"),
            rule("create").groups(AUTHZ).resources("subjectaccessreviews"), ev],
    }


def controller_roles() -> list[dict[str, Any]]:
    return [{"metadata": {"name": _PREFIX + name}, "rules": rules}
            for name, rules in sorted(_roles().items())]


def controller_bindings() -> list[dict[str, Any]]:
    return [{"metadata": {"name": _PREFIX + name},
             "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": _PREFIX + name},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"},
                          {"apiGroup": RBAC, "kind": "User",
                           "name": CONTROLLER_MANAGER_USER}]}
            for name in sorted(_roles())]
