"""RBAC rule semantics, the index over the caches, the chain's fail-closed rule, kube's 403
messages, the node graph, escalation covering and validation of the RBAC kinds."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest

from navio.api import validation
from navio.api.rbacaggregation import aggregated_rules
from navio.apiserver.authn import UserInfo
from navio.apiserver.authz import nodegraph
from navio.apiserver.authz.chain import Authorization, forbidden
from navio.apiserver.authz.node import NodeAuthorizer
from navio.apiserver.authz.protocol import ALLOW, NO_OPINION, Attributes, attributes_for
from navio.apiserver.authz.rbac import RBACAuthorizer, RBACIndex
from navio.apiserver.authz.rules import compact_string, compile_rule, covers, rule_allows
from navio.apiserver.bootstrappolicy import cluster_role_bindings, cluster_roles
from navio.apiserver.requestinfo import parse_request

ALICE = UserInfo("alice", ("system:authenticated",))
G = "rbac.authorization.k8s.io"


def _allows(rule: dict[str, Any], verb: str, resource: str = "", sub: str = "",
            name: str = "", group: str = "", path: str = "") -> bool:
    return rule_allows(compile_rule(rule), verb, not path, group, resource, sub, name, path)


def test_rule_matching_follows_kube() -> None:
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    assert _allows(pods, "get", "pods")
    assert not _allows(pods, "delete", "pods")
    assert not _allows(pods, "get", "pods", group="apps")
    assert not _allows(pods, "get", "pods", sub="status")           # subresources are separate
    star = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert _allows(star, "delete", "deployments", sub="scale", group="apps")
    status = {"apiGroups": [""], "resources": ["*/status"], "verbs": ["update"]}
    assert _allows(status, "update", "pods", sub="status")
    assert not _allows(status, "update", "pods")
    named = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"],
             "verbs": ["get", "list"]}
    assert _allows(named, "get", "configmaps", name="a")
    assert not _allows(named, "get", "configmaps", name="b")
    assert not _allows(named, "list", "configmaps")                 # a list names nothing
    urls = {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}
    assert _allows(urls, "get", path="/healthz")
    assert _allows(urls, "get", path="/apis/apps/v1")
    assert not _allows(urls, "get", path="/healthz/etcd")
    assert not _allows(urls, "post", path="/healthz")


def test_request_attributes_from_paths() -> None:
    def attrs(method: str, path: str, **q: str) -> Attributes:
        return attributes_for(parse_request(method, path, q), ALICE, q)
    a = attrs("GET", "/api/v1/namespaces/ns/pods", watch="true")
    assert (a.verb, a.resource, a.namespace, a.name) == ("watch", "pods", "ns", "")
    a = attrs("GET", "/api/v1/namespaces/ns/secrets", fieldSelector="metadata.name=s1")
    assert (a.verb, a.name) == ("list", "s1")
    a = attrs("DELETE", "/apis/apps/v1/namespaces/ns/deployments")
    assert (a.verb, a.group) == ("deletecollection", "apps")
    a = attrs("PATCH", "/api/v1/namespaces/ns/pods/p/status")
    assert (a.verb, a.subresource, a.name) == ("patch", "status", "p")
    a = attrs("GET", "/api/v1/namespaces/ns")
    assert (a.resource, a.namespace, a.name) == ("namespaces", "ns", "ns")
    a = attrs("GET", "/healthz")
    assert not a.is_resource and a.path == "/healthz"


def test_forbidden_messages_are_kubes() -> None:
    e = forbidden(Attributes(ALICE, "list", True, "", "v1", "pods", "", "default"))
    assert e.code == 403 and e.message == ('pods is forbidden: User "alice" cannot list '
                                           'resource "pods" in API group "" in the namespace '
                                           '"default"')
    e = forbidden(Attributes(ALICE, "get", True, "apps", "v1", "deployments", "scale", "", "d"))
    assert e.message == ('deployments.apps "d" is forbidden: User "alice" cannot get resource '
                         '"deployments/scale" in API group "apps" at the cluster scope')
    assert e.details == {"name": "d", "group": "apps", "kind": "deployments"}
    e = forbidden(Attributes(ALICE, "get", False, path="/metrics"), "why")
    assert e.message == 'forbidden: User "alice" cannot get path "/metrics": why'


@dataclass
class FakeCache:
    objs: list[dict[str, Any]] = field(default_factory=list)
    events: deque[Any] = field(default_factory=deque)
    window_start: int = 0

    def list(self, namespace: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [("", o) for o in self.objs
                if not namespace or o["metadata"].get("namespace") == namespace]

    def touch(self, rev: int) -> None:
        @dataclass
        class Ev:
            revision: int
        self.events.append(Ev(rev))


def _binding(kind: str, name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]],
             ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": meta, "roleRef": {"apiGroup": G, "kind": ref_kind,
                                                        "name": ref}, "subjects": subjects}


def _index() -> tuple[RBACIndex, tuple[FakeCache, ...]]:
    roles = FakeCache([{"metadata": {"name": "cm-reader", "namespace": "a"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}])
    croles = FakeCache([{"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}])
    rbs = FakeCache([
        _binding("RoleBinding", "b1", "Role", "cm-reader", [{"kind": "User", "name": "alice"}],
                 "a"),
        _binding("RoleBinding", "b2", "ClusterRole", "pod-reader",
                 [{"kind": "ServiceAccount", "name": "robot", "namespace": "b"}], "b"),
    ])
    crbs = FakeCache([_binding("ClusterRoleBinding", "c1", "ClusterRole", "pod-reader",
                               [{"kind": "Group", "name": "readers"}])])
    caches = (roles, croles, rbs, crbs)
    return RBACIndex(lambda: caches), caches


def test_index_grants_by_user_group_and_service_account() -> None:
    index, caches = _index()
    rbac = RBACAuthorizer(index)

    def ok(user: UserInfo, verb: str, res: str, ns: str) -> bool:
        return rbac.authorize(Attributes(user, verb, True, "", "v1", res, "", ns))[0] == ALLOW
    assert ok(ALICE, "get", "configmaps", "a")
    assert rbac.authorize(Attributes(ALICE, "get", True, "", "v1", "configmaps", "", "a"))[1] \
        == 'RBAC: allowed by RoleBinding "b1/a" of Role "cm-reader" to User "alice"'
    assert not ok(ALICE, "get", "configmaps", "b")                   # a RoleBinding is local
    assert not ok(ALICE, "get", "pods", "a")
    reader = UserInfo("bob", ("readers",))
    assert ok(reader, "list", "pods", "anywhere") and ok(reader, "list", "pods", "")
    robot = UserInfo("system:serviceaccount:b:robot", ())
    assert ok(robot, "get", "pods", "b") and not ok(robot, "get", "pods", "c")
    # A binding to a missing role grants nothing and says so, as kube's reason does.
    caches[2].objs.append(_binding("RoleBinding", "b3", "ClusterRole", "gone",
                                   [{"kind": "User", "name": "alice"}], "a"))
    caches[2].touch(5)
    assert rbac.authorize(Attributes(ALICE, "get", True, "", "v1", "secrets", "", "a")) == \
        (NO_OPINION, 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found')
    assert rbac.authorize(Attributes(ALICE, "get", True, "", "v1", "secrets", "", "b")) == \
        (NO_OPINION, "")
    # A change in a cache is seen on the next check, without any storage read.
    caches[3].objs.clear()
    assert ok(reader, "list", "pods", "x")                            # memoised until...
    caches[3].touch(7)
    assert not ok(reader, "list", "pods", "x")                        # ...the cache moves


class _Boom:
    def authorize(self, attrs: Attributes) -> tuple[str, str]:
        raise RuntimeError("broken")


def test_chain_fails_closed() -> None:
    authz = Authorization.__new__(Authorization)
    authz.chain = (_Boom(),)
    assert authz.check(Attributes(ALICE, "get", True, "", "v1", "pods")) == \
        (False, "authorizer error")
    authz.chain = ()
    assert authz.check(Attributes(ALICE, "get", True, "", "v1", "pods"))[0] is False
    masters = UserInfo("root", ("system:masters",))
    assert authz.check(Attributes(masters, "delete", True, "", "v1", "nodes"))[0] is True


def test_node_graph_and_authorizer() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "nodeName": "n1", "serviceAccountName": "sa", "imagePullSecrets": [{"name": "pull"}],
        "containers": [{"envFrom": [{"configMapRef": {"name": "cm"}}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "vol"}},
                    {"name": "e", "ephemeral": {}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "pcm"}}]}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "claim"}}]}}
    refs = set(nodegraph.pod_references(pod))
    assert refs >= {("serviceaccounts", "sa"), ("secrets", "pull"), ("configmaps", "cm"),
                    ("secrets", "vol"), ("persistentvolumeclaims", "p-e"),
                    ("configmaps", "pcm"), ("persistentvolumeclaims", "claim")}
    pods = FakeCache([pod])
    pvcs = FakeCache([{"metadata": {"name": "claim", "namespace": "ns"},
                       "spec": {"volumeName": "pv1"}}])
    node = NodeAuthorizer(lambda: pods, lambda: pvcs)  # type: ignore[arg-type,return-value]
    n1 = UserInfo("system:node:n1", ("system:nodes",))
    n2 = UserInfo("system:node:n2", ("system:nodes",))

    def decide(user: UserInfo, verb: str, res: str, name: str, ns: str = "ns",
               sub: str = "", group: str = "") -> str:
        return node.authorize(Attributes(user, verb, True, group, "v1", res, sub, ns,
                                         name))[0]
    assert decide(n1, "get", "secrets", "vol") == ALLOW
    assert decide(n2, "get", "secrets", "vol") == NO_OPINION
    assert decide(n1, "update", "secrets", "vol") == NO_OPINION
    assert decide(n1, "get", "persistentvolumes", "pv1", ns="") == ALLOW
    assert decide(n1, "create", "serviceaccounts", "sa", sub="token") == ALLOW
    assert decide(n1, "update", "leases", "n1", ns="kube-node-lease",
                  group="coordination.k8s.io") == ALLOW
    assert decide(n1, "update", "leases", "n2", ns="kube-node-lease",
                  group="coordination.k8s.io") == NO_OPINION
    assert decide(n1, "patch", "nodes", "n1", ns="", sub="status") == ALLOW
    assert decide(n1, "list", "endpointslices", "", group="discovery.k8s.io") == ALLOW
    assert decide(ALICE, "get", "secrets", "vol") == NO_OPINION


def test_covers_and_compact_strings() -> None:
    owner = [compile_rule({"apiGroups": [""], "resources": ["pods", "*/status"],
                           "verbs": ["get", "list"]}),
             compile_rule({"nonResourceURLs": ["/api/*"], "verbs": ["get"]})]
    ok = compile_rule({"apiGroups": [""], "resources": ["pods", "services/status"],
                       "resourceNames": ["x"], "verbs": ["get"]})
    assert covers(owner, [ok]) == []
    bad = compile_rule({"apiGroups": ["", "apps"], "resources": ["pods"], "verbs": ["get",
                                                                                   "delete"]})
    missing = covers(owner, [bad])
    assert [compact_string(m) for m in missing] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}',
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get"]}',
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["delete"]}']
    assert covers(owner, [compile_rule({"nonResourceURLs": ["/api/v1"], "verbs": ["get"]})]) \
        == []


def test_rbac_validation_messages() -> None:
    role = {"metadata": {"name": "r", "namespace": "a"}, "rules": [
        {"apiGroups": [""], "verbs": ["get"]}, {"nonResourceURLs": ["/x"], "verbs": ["get"]}]}
    msgs = [c["message"] for c in validation.validate(G, "Role", role)]
    assert msgs == ["Required value: resource rules must supply at least one resource",
                    'Invalid value: []string{"/x"}: namespaced rules cannot apply to '
                    'non-resource URLs']
    rb = _binding("RoleBinding", "b", "Thing", "x", [{"kind": "Robot", "name": "r"}], "a")
    fields = [(c["field"], c["reason"]) for c in validation.validate(G, "RoleBinding", rb)]
    assert fields == [("roleRef.kind", "FieldValueNotSupported"),
                      ("subjects[0].kind", "FieldValueNotSupported")]
    crb = _binding("ClusterRoleBinding", "c", "Role", "x",
                   [{"kind": "ServiceAccount", "name": "sa"}])
    fields = [c["field"] for c in validation.validate(G, "ClusterRoleBinding", crb)]
    assert fields == ["roleRef.kind", "subjects[0].namespace"]
    new = _binding("RoleBinding", "b", "ClusterRole", "edit", [], "a")
    old = _binding("RoleBinding", "b", "ClusterRole", "view", [], "a")
    for o in (new, old):
        o["metadata"].update(resourceVersion="1", uid="u")
    causes = validation.validate(G, "RoleBinding", new, old)
    assert [c["message"] for c in causes] == [
        'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
        'Name:"edit"}: cannot change roleRef']


def test_bootstrap_policy_aggregates_and_binds() -> None:
    roles = {r["metadata"]["name"]: r for r in cluster_roles()}
    view = aggregated_rules(roles["view"], roles.values())
    assert view and any("pods" in r.get("resources", []) for r in view)
    assert not any("secrets" in r.get("resources", []) for r in view)
    edit = aggregated_rules(roles["edit"], roles.values())
    assert edit and any("secrets" in r.get("resources", []) for r in edit)
    bindings = {b["metadata"]["name"]: b for b in cluster_role_bindings()}
    assert bindings["cluster-admin"]["subjects"][0]["name"] == "system:masters"
    # The controller manager's one identity holds every controller role.
    for name, b in bindings.items():
        if name.startswith("system:controller:"):
            assert {"apiGroup": G, "kind": "User", "name": "system:kube-controller-manager"} \
                in b["subjects"], name
            assert b["roleRef"]["name"] in roles
    for b in bindings.values():
        assert b["roleRef"]["name"] in roles
        assert not validation.validate(G, "ClusterRoleBinding", b)
    for r in roles.values():
        assert not validation.validate(G, "ClusterRole", r), r["metadata"]["name"]


@pytest.mark.parametrize("labels,expected", [
    ({"rbac.authorization.k8s.io/aggregate-to-view": "true"}, True),
    ({"rbac.authorization.k8s.io/aggregate-to-view": "false"}, False), ({}, False)])
def test_aggregation_selects_by_label(labels: dict[str, str], expected: bool) -> None:
    agg = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}}
    other = {"metadata": {"name": "o", "labels": labels},
             "rules": [{"apiGroups": ["x"], "resources": ["y"], "verbs": ["get"]}]}
    assert bool(aggregated_rules(agg, [agg, other])) is expected
    assert aggregated_rules(other, [agg, other]) is None
