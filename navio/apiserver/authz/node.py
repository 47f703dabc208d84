"""The Node authorizer (kube's plugin/pkg/auth/authorizer/node) for kubelets.

A user `system:node:NAME` in group `system:nodes` may read the Secrets, ConfigMaps,
PersistentVolumeClaims, PersistentVolumes and ServiceAccounts (and request tokens for the
latter) that pods bound to NAME use, may use its own Lease in `kube-node-lease`, and may do
what kube's static node rules allow (bootstrappolicy.NodeRules): register and update Nodes,
write pod status and events, read pods and services; and — since navio's agent also runs the
service proxy, cluster DNS and NetworkPolicy enforcement under the node identity — read
endpoints, EndpointSlices, namespaces and NetworkPolicies. Which Node and which pods a kubelet
may *modify* is NodeRestriction's job (admission), as in kube. Everyone else gets no opinion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from navio.apiserver.authz import nodegraph
from navio.apiserver.authz.protocol import ALLOW, NO_OPINION, Attributes
from navio.apiserver.authz.rules import compile_rules, rule_allows

if TYPE_CHECKING:
    from navio.apiserver.watchcache import WatchCache

__all__ = ["NodeAuthorizer", "node_identity", "NODE_RULES", "NODES_GROUP"]

NODES_GROUP = "system:nodes"
_NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"

_READ = ["get", "list", "watch"]
# bootstrappolicy.NodeRules (v1.32), verbatim: also the `system:node` ClusterRole.
NODE_RULES_DATA: list[dict[str, Any]] = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"],
     "resources": ["localsubjectaccessreviews", "subjectaccessreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims", "persistentvolumes"],
     "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]},
    {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
     "verbs": ["create", "get", "list", "watch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["create", "delete", "get", "patch", "update"]},
    {"apiGroups": ["storage.k8s.io"], "resources": ["volumeattachments"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims/status"],
     "verbs": ["get", "patch", "update"]},
    {"apiGroups": ["storage.k8s.io"], "resources": ["csidrivers"], "verbs": _READ},
    {"apiGroups": ["storage.k8s.io"], "resources": ["csinodes"],
     "verbs": ["create", "delete", "get", "patch", "update"]},
    {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": _READ},
]
# navio's agent also runs the service proxy and cluster DNS under the node identity: what
# system:node-proxier and system:kube-dns hold (read-only), plus namespaces and new-style events.
_AGENT_RULES_DATA: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["endpoints", "namespaces", "services"], "verbs": _READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    # the NetworkPolicy controller (navio/netpol) enforces every policy on the node's pods
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"],
     "verbs": ["create", "patch", "update"]},
]
NODE_RULES = compile_rules(NODE_RULES_DATA + _AGENT_RULES_DATA)
_GRAPH = {"secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes",
          "serviceaccounts"}


def node_identity(user: Any) -> str | None:
    """The node name of a node user, "" for a node user without a name, None otherwise."""
    if NODES_GROUP not in user.groups or not user.name.startswith(_NODE_PREFIX):
        return None
    return user.name[len(_NODE_PREFIX):]


class NodeAuthorizer:
    def __init__(self, pods: Callable[[], "WatchCache"], pvcs: Callable[[], "WatchCache"]
                 ) -> None:
        self._pods = pods
        self._pvcs = pvcs

    def authorize(self, attrs: Attributes) -> tuple[str, str]:
        node = node_identity(attrs.user)
        if node is None:
            return NO_OPINION, ""
        if not node:
            return NO_OPINION, f'unknown node for user "{attrs.user.name}"'
        if attrs.is_resource and attrs.group == "":
            if attrs.resource in _GRAPH:
                return self._graph(node, attrs)
        if attrs.is_resource and attrs.group == "coordination.k8s.io" and \
                attrs.resource == "leases":
            return self._lease(node, attrs)
        for rule in NODE_RULES:
            if rule_allows(rule, attrs.verb, attrs.is_resource, attrs.group, attrs.resource,
                           attrs.subresource, attrs.name, attrs.path):
                return ALLOW, ""
        return NO_OPINION, ""

    def _lease(self, node: str, attrs: Attributes) -> tuple[str, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != LEASE_NAMESPACE:
            return NO_OPINION, f"can only access leases in the {LEASE_NAMESPACE} namespace"
        if attrs.verb != "create" and attrs.name != node:
            return NO_OPINION, ("can only access node lease with the same name as the "
                                "requesting node")
        return ALLOW, ""

    def _graph(self, node: str, attrs: Attributes) -> tuple[str, str]:
        res = attrs.resource
        if res == "serviceaccounts":
            if attrs.subresource == "token" and attrs.verb == "create":
                pass
            elif attrs.subresource or attrs.verb != "get":
                return NO_OPINION, "can only create tokens for individual service accounts"
        elif res == "persistentvolumeclaims" and attrs.subresource == "status":
            if attrs.verb not in ("update", "patch"):
                return NO_OPINION, "can only get, update, or patch persistentvolumeclaim status"
        elif attrs.subresource:
            return NO_OPINION, "cannot read subresource"
        elif attrs.verb not in ("get", "list", "watch"):
            return NO_OPINION, "can only read resources of this type"
        if not attrs.name:
            return NO_OPINION, "No Object name found"
        if res == "persistentvolumes":
            if self._pv_used(node, attrs.name):
                return ALLOW, ""
        elif attrs.namespace:
            pods = [o for _, o in self._pods().list(attrs.namespace)]
            if nodegraph.references(pods, node, res, attrs.name):
                return ALLOW, ""
        return NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _pv_used(self, node: str, pv: str) -> bool:
        for _, claim in self._pvcs().list():
            if (claim.get("spec") or {}).get("volumeName") != pv:
                continue
            meta = claim.get("metadata") or {}
            pods = [o for _, o in self._pods().list(meta.get("namespace", ""))]
            if nodegraph.references(pods, node, "persistentvolumeclaims", meta.get("name", "")):
                return True
        return False
