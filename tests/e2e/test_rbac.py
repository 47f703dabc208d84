"""Authorization against a real server: RBAC roles, `kubectl auth can-i`, impersonation,
escalation prevention, the Node authorizer with NodeRestriction, and aggregation.

Each user is a client certificate signed by the server's CA (CN = user, O = groups), used
through its own kubeconfig, exactly as a real user would be.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from cluster import Kubectl, NavioServer, wait_for

from navio.api import errors
from navio.client import PODS, Client
from navio.pki.certs import load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig


@pytest.fixture(scope="module")
def as_user(server: NavioServer, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ca = load_or_create_ca(server.data_dir / "pki")
    certs = tmp_path_factory.mktemp("users")
    made: dict[str, Kubectl] = {}

    def make(user: str, *groups: str) -> Kubectl:
        key = "|".join((user, *groups))
        if key not in made:
            stem = f"u{len(made)}"
            pair = ca.issue(certs, stem, cn=user, orgs=groups)
            kc = certs / f"{stem}.kubeconfig"
            write_kubeconfig(kc, server=server.url, ca_cert=ca.pair.cert, client=pair,
                             user=user)
            made[key] = Kubectl(kc, tmp_path_factory.mktemp("home"))
        return made[key]
    return make


def _fails(k: Kubectl, *args: str, input: str | None = None) -> str:
    proc = k.run(*args, input=input, check=False)
    assert proc.returncode != 0, f"kubectl {args} unexpectedly succeeded: {proc.stdout}"
    return proc.stderr


def test_view_user_reads_pods_not_secrets_and_cannot_write(kubectl: Kubectl, ns: str,
                                                           as_user) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--user=alice", "-n", ns)
    kubectl("create", "secret", "generic", "s1", "--from-literal=k=v", "-n", ns)
    alice = as_user("alice")
    assert alice.json("get", "pods", "-n", ns)["items"] == []          # 200 on pods list
    err = _fails(alice, "get", "secrets", "-n", ns)
    assert (f'Error from server (Forbidden): secrets is forbidden: User "alice" cannot list '
            f'resource "secrets" in API group "" in the namespace "{ns}"') in err
    err = _fails(alice, "get", "secret", "s1", "-n", ns)
    assert (f'secrets "s1" is forbidden: User "alice" cannot get resource "secrets" in API '
            f'group "" in the namespace "{ns}"') in err
    err = _fails(alice, "create", "configmap", "c1", "-n", ns)
    assert 'cannot create resource "configmaps" in API group ""' in err
    err = _fails(alice, "delete", "secret", "s1", "-n", ns)
    assert "Forbidden" in err
    err = _fails(alice, "get", "pods", "-n", "kube-system")
    assert 'in the namespace "kube-system"' in err
    err = _fails(alice, "get", "nodes")
    assert ('nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" '
            'at the cluster scope') in err


def test_raw_403_status_matches_kubernetes(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    alice = as_user("alice")
    out = alice.run("get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                    check=False)
    assert out.returncode != 0
    assert ('deployments.apps "web" is forbidden: User "alice" cannot get resource '
            f'"deployments" in API group "apps" in the namespace "{ns}"') in out.stderr
    err = _fails(alice, "get", "--raw", "/metrics")
    assert 'forbidden: User "alice" cannot get path "/metrics"' in err
    # Discovery and health are open to every authenticated user.
    assert json.loads(alice("get", "--raw", "/api"))["kind"] == "APIVersions"
    assert alice("get", "--raw", "/healthz") == "ok"


def test_can_i_matches_roles(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--user=carol", "-n", ns)
    kubectl("create", "rolebinding", "editor", "--clusterrole=edit", "--user=dave", "-n", ns)
    carol, dave = as_user("carol"), as_user("dave")

    def can(k: Kubectl, *args: str) -> str:
        return k.run("auth", "can-i", *args, "-n", ns, check=False).stdout.strip()
    assert can(carol, "list", "pods") == "yes"
    assert can(carol, "get", "secrets") == "no"
    assert can(carol, "create", "deployments") == "no"
    assert can(dave, "create", "deployments") == "yes"
    assert can(dave, "get", "secrets") == "yes"
    assert can(dave, "create", "roles") == "no"
    assert can(dave, "list", "pods", "--all-namespaces") == "no"
    # The admin asks on their behalf (impersonation) and gets the same answers.
    assert can(kubectl, "create", "deployments", "--as=dave") == "yes"
    assert can(kubectl, "create", "deployments", "--as=carol") == "no"
    listing = carol("auth", "can-i", "--list", "-n", ns)
    pods = next(line for line in listing.splitlines() if line.startswith("pods "))
    assert "[get list watch]" in pods
    assert not any(line.startswith("secrets ") for line in listing.splitlines())


def test_subject_access_reviews(kubectl: Kubectl, ns: str) -> None:
    # --validate=false: kinds without PATCH make kubectl validate against /openapi/v2 in
    # protobuf, which navio serves only as JSON (see NOTES.md, issue #2).
    create = ("create", "--validate=false", "-f", "-")
    kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--user=erin", "-n", ns)
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "erin", "resourceAttributes": {
               "namespace": ns, "verb": "list", "resource": "pods"}}}
    out = kubectl.json(*create, input=json.dumps(sar))
    assert out["status"] == {"allowed": True, "reason": (
        f'RBAC: allowed by RoleBinding "viewer/{ns}" of ClusterRole "view" to User "erin"')}
    sar["spec"]["resourceAttributes"]["resource"] = "secrets"
    assert kubectl.json(*create, input=json.dumps(sar))["status"]["allowed"] is False
    lsar = {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": ns},
            "spec": {"user": "erin", "resourceAttributes": {
                "namespace": ns, "verb": "get", "resource": "configmaps"}}}
    out = kubectl.json(*create, "-n", ns, input=json.dumps(lsar))
    assert out["status"]["allowed"] is True
    bad = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}
    err = _fails(kubectl, *create, input=json.dumps(bad))
    assert "at least one of user or group must be specified" in err


def test_impersonation_needs_the_impersonate_verb(kubectl: Kubectl, ns: str,
                                                  as_user) -> None:  # type: ignore[no-untyped-def]
    frank = as_user("frank")
    err = _fails(frank, "get", "--raw", f"/api/v1/namespaces/{ns}/pods", "--as=admin-wannabe")
    assert ('users "admin-wannabe" is forbidden: User "frank" cannot impersonate resource '
            '"users" in API group "" at the cluster scope') in err
    kubectl("create", "clusterrole", f"imp-{ns}", "--verb=impersonate", "--resource=users",
            "--resource-name=gina")
    kubectl("create", "clusterrolebinding", f"imp-{ns}", f"--clusterrole=imp-{ns}",
            "--user=frank")
    kubectl("create", "rolebinding", "gina", "--clusterrole=view", "--user=gina", "-n", ns)
    assert frank.json("get", "pods", "-n", ns, "--as=gina")["items"] == []
    err = _fails(frank, "get", "--raw", f"/api/v1/namespaces/{ns}/pods", "--as=gina",
                 "--as-group=system:masters")
    assert 'cannot impersonate resource "groups"' in err


def test_escalation_is_refused(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "rolebinding", "nsadmin", "--clusterrole=admin", "--user=hank", "-n", ns)
    hank = as_user("hank")
    hank("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
    err = _fails(hank, "create", "role", "node-reader", "--verb=get", "--resource=nodes",
                 "-n", ns)
    assert ('roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "hank" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
            'currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}') in err
    err = _fails(hank, "create", "rolebinding", "root", "--clusterrole=cluster-admin",
                 "--user=hank", "-n", ns)
    assert "is attempting to grant RBAC permissions not currently held" in err
    hank("create", "rolebinding", "readers", "--role=pod-reader", "--user=ivy", "-n", ns)
    # `bind` on a role lets one bind it without holding its rules; `escalate` lets one write it.
    kubectl("create", "role", "binder", "--verb=bind,escalate", "--resource=roles",
            "-n", ns)
    kubectl("create", "rolebinding", "hank-binder", "--role=binder", "--user=hank", "-n", ns)
    kubectl("create", "role", "node-reader", "--verb=get", "--resource=nodes", "-n", ns)
    hank("create", "rolebinding", "nr", "--role=node-reader", "--user=ivy", "-n", ns)
    hank("create", "role", "node-lister", "--verb=list", "--resource=nodes", "-n", ns)


def test_role_ref_is_immutable_and_bindings_validated(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "rolebinding", "rb", "--clusterrole=view", "--user=jo", "-n", ns)
    err = _fails(kubectl, "patch", "rolebinding", "rb", "-n", ns, "--type=merge", "-p",
                 '{"roleRef":{"name":"edit"}}')
    assert ('The RoleBinding "rb" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:'
            '"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change '
            'roleRef') in err
    bad = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "bad", "namespace": ns},
           "rules": [{"apiGroups": [""], "resources": ["pods"]},
                     {"nonResourceURLs": ["/x"], "verbs": ["get"]}]}
    err = _fails(kubectl, "create", "-f", "-", input=json.dumps(bad))
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in err
    assert "rules[1].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules " \
           "cannot apply to non-resource URLs" in err
    wide = kubectl("get", "rolebinding", "rb", "-n", ns, "-o", "wide")
    assert wide.split("\n")[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS",
                                            "SERVICEACCOUNTS"]
    assert "ClusterRole/view" in wide and "jo" in wide


def test_aggregated_roles_follow_labelled_roles(kubectl: Kubectl, ns: str) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"widgets-view-{ns}",
                         "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": [f"{ns}.example.com"], "resources": ["widgets"],
                       "verbs": ["get", "list"]}]}
    kubectl("create", "-f", "-", input=json.dumps(role))

    def groups(name: str) -> set[str]:
        rules = kubectl.json("get", "clusterrole", name).get("rules") or []
        return {g for r in rules for g in r.get("apiGroups", ())}
    # view aggregates it, and edit and admin aggregate view.
    for name in ("view", "edit", "admin"):
        wait_for(lambda n=name: f"{ns}.example.com" in groups(n), 60, f"{name} to aggregate")
    kubectl("delete", "clusterrole", f"widgets-view-{ns}")
    wait_for(lambda: f"{ns}.example.com" not in groups("view"), 60, "view to drop it")


def test_bootstrap_policy_is_in_place(kubectl: Kubectl) -> None:
    crb = kubectl.json("get", "clusterrolebinding", "cluster-admin")
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                "name": "system:masters"}]
    assert crb["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == \
        "true"
    names = {r["metadata"]["name"] for r in kubectl.json("get", "clusterroles")["items"]}
    for want in ("cluster-admin", "admin", "edit", "view", "system:basic-user",
                 "system:discovery", "system:public-info-viewer", "system:kube-scheduler",
                 "system:volume-scheduler", "system:kube-controller-manager", "system:node",
                 "system:node-proxier", "system:kube-dns",
                 "system:controller:replicaset-controller",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient"):
        assert want in names, want


_POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  nodeName: {node}
  containers:
  - name: c
    image: busybox
    env: [{{name: A, valueFrom: {{secretKeyRef: {{name: {secret}, key: k}}}}}}]
"""


async def _patch_status(k: Kubectl, ns: str, pod: str) -> str:
    """"" if the kubelet's pod status patch succeeds, else the error message."""
    async with Client.from_kubeconfig(k.kubeconfig, component="e2e") as c:
        try:
            await c.patch(PODS, pod, {"status": {"message": "hi"}}, ns, patch_type="merge",
                          subresource="status")
        except errors.ApiError as exc:
            return exc.message
    return ""


def test_node_may_only_touch_its_own(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    n1, n2 = f"{ns}-n1"[:63], f"{ns}-n2"[:63]
    kubelet = as_user(f"system:node:{n1}", "system:nodes")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n1}}
    kubelet("create", "-f", "-", input=json.dumps(node))
    kubectl("create", "-f", "-", input=json.dumps({**node, "metadata": {"name": n2}}))
    kubelet("label", "node", n1, "role=worker")                      # its own Node
    err = _fails(kubelet, "label", "node", n2, "role=worker")
    assert f'nodes "{n2}" is forbidden: node "{n1}" is not allowed to modify node "{n2}"' in err
    err = _fails(kubelet, "delete", "node", n1)          # kube's NodeRules: no delete
    assert 'cannot delete resource "nodes" in API group "" at the cluster scope' in err
    kubectl("create", "secret", "generic", "used", "--from-literal=k=v", "-n", ns)
    kubectl("create", "secret", "generic", "unused", "--from-literal=k=v", "-n", ns)
    kubectl("create", "-f", "-", input=_POD.format(name="mine", ns=ns, node=n1, secret="used"))
    kubectl("create", "-f", "-", input=_POD.format(name="theirs", ns=ns, node=n2,
                                                    secret="unused"))
    assert kubelet.json("get", "secret", "used", "-n", ns)["data"]["k"] == "dg=="
    err = _fails(kubelet, "get", "secret", "unused", "-n", ns)
    assert (f'secrets "unused" is forbidden: User "system:node:{n1}" cannot get resource '
            f'"secrets" in API group "" in the namespace "{ns}": no relationship found between '
            f"node '{n1}' and this object") in err
    _fails(kubelet, "get", "secrets", "-n", ns)
    # Pod status: its own pods only (as the kubelet writes it: a PATCH of pods/status).
    assert asyncio.run(_patch_status(kubelet, ns, "mine")) == ""
    err = asyncio.run(_patch_status(kubelet, ns, "theirs"))
    assert err == (f'pods "theirs" is forbidden: node "{n1}" can only update pod status for '
                   f"pods with spec.nodeName set to itself")
    err = _fails(kubelet, "delete", "pod", "theirs", "-n", ns)
    assert "can only delete pods with spec.nodeName set to itself" in err
    # Reads the proxy and DNS need.
    for what in ("pods", "services", "endpointslices", "namespaces"):
        kubelet("get", what, "-A")
    err = _fails(kubelet, "create", "configmap", "x", "-n", ns)
    assert 'cannot create resource "configmaps"' in err
    assert err.rstrip().endswith("can only read resources of this type")


def test_node_lease_is_its_own(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    n1 = f"{ns}-lease"[:63]
    kubelet = as_user(f"system:node:{n1}", "system:nodes")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": n1, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": n1, "leaseDurationSeconds": 40}}
    kubelet("create", "-f", "-", input=json.dumps(lease))
    kubelet("get", "lease", n1, "-n", "kube-node-lease")
    other = {**lease, "metadata": {"name": f"{n1}-x", "namespace": "kube-node-lease"}}
    kubectl("create", "-f", "-", input=json.dumps(other))
    err = _fails(kubelet, "delete", "lease", f"{n1}-x", "-n", "kube-node-lease")
    assert "can only access node lease with the same name as the requesting node" in err
    err = _fails(kubelet, "create", "-f", "-", input=json.dumps(
        {**lease, "metadata": {"name": n1, "namespace": ns}}))
    assert "can only access leases in the kube-node-lease namespace" in err


def test_new_binding_applies_at_once(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    kim = as_user("kim")
    _fails(kim, "get", "configmaps", "-n", ns)
    kubectl("create", "rolebinding", "kim", "--clusterrole=view", "--user=kim", "-n", ns)
    kim("get", "configmaps", "-n", ns)                                # no wait needed
    kubectl("delete", "rolebinding", "kim", "-n", ns)
    wait_for(lambda: kim.run("get", "configmaps", "-n", ns, check=False).returncode != 0,
             30, "the revoked binding to stop applying")


def test_groups_and_service_accounts_are_subjects(kubectl: Kubectl, ns: str,
                                                  as_user) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "rolebinding", "team", "--clusterrole=view", "--group=team-a", "-n", ns)
    assert as_user("lou", "team-a").json("get", "pods", "-n", ns)["items"] == []
    _fails(as_user("lou"), "get", "pods", "-n", ns)
    kubectl("create", "rolebinding", "sa", "--clusterrole=edit",
            f"--serviceaccount={ns}:robot", "-n", ns)
    out = kubectl("auth", "can-i", "create", "deployments", "-n", ns,
                  f"--as=system:serviceaccount:{ns}:robot", check=False)
    assert out.strip() == "yes"


def test_exec_by_websocket_get_also_needs_create(kubectl: Kubectl, ns: str, as_user) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "role", "exec-get", "--verb=get", "--resource=pods/exec", "-n", ns)
    kubectl("create", "rolebinding", "exec-get", "--role=exec-get", "--user=mo", "-n", ns)
    mo = as_user("mo")
    err = _fails(mo, "get", "--raw", f"/api/v1/namespaces/{ns}/pods/p/exec?command=ls")
    assert (f'pods "p" is forbidden: User "mo" cannot create resource "pods/exec" in API group '
            f'"" in the namespace "{ns}"') in err
    kubectl("create", "role", "exec-create", "--verb=create", "--resource=pods/exec", "-n", ns)
    kubectl("create", "rolebinding", "exec-create", "--role=exec-create", "--user=mo", "-n", ns)
    err = _fails(mo, "get", "--raw", f"/api/v1/namespaces/{ns}/pods/p/exec?command=ls")
    assert "forbidden" not in err.lower()                      # past authorization: no pod
