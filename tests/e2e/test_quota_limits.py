"""ResourceQuota and LimitRange with the real kubectl (issue 14): quota admission refuses what
would pass `spec.hard` with kube's "exceeded quota" message, the controller keeps
`status.used`, and LimitRange defaults and bounds apply to new pods."""

from __future__ import annotations

import json
import threading

import pytest

from cluster import Kubectl, NavioServer, wait_for

from navio.pki.certs import load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig


def pod(name: str, resources: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: c
    image: busybox
{resources}"""


def used(kubectl: Kubectl, ns: str, name: str) -> dict[str, str]:
    q = json.loads(kubectl("get", "quota", name, "-n", ns, "-o", "json"))
    return (q.get("status") or {}).get("used") or {}


def test_quota_of_two_pods_refuses_the_third(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "quota", "q", "-n", ns, "--hard=pods=2,configmaps=5")
    wait_for(lambda: used(kubectl, ns, "q").get("pods") == "0", 20, "status.used filled")
    for name in ("a", "b"):
        kubectl("apply", "-n", ns, "-f", "-", input=pod(name))
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=pod("c"), check=False)
    assert proc.returncode != 0
    assert ('pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, '
            'limited: pods=2') in proc.stderr
    out = kubectl("describe", "quota", "q", "-n", ns)
    assert any(line.split() == ["Resource", "Used", "Hard"] for line in out.splitlines()), out
    assert any(line.split() == ["pods", "2", "2"] for line in out.splitlines()), out
    # Deleting a pod gives its unit back (the controller recounts).
    kubectl("delete", "pod", "a", "-n", ns, "--grace-period=0", "--force", "--wait=false")
    wait_for(lambda: used(kubectl, ns, "q").get("pods") == "1", 30, "pods used back to 1")
    kubectl("apply", "-n", ns, "-f", "-", input=pod("c"))


def test_quota_holds_under_concurrent_creates(kubectl: Kubectl, ns: str) -> None:
    # Configmaps already there (kube-root-ca.crt, once published) count too, as in kube.
    def existing() -> int:
        return len(json.loads(kubectl("get", "configmaps", "-n", ns, "-o", "json"))["items"])
    wait_for(lambda: existing() > 0, 20, "kube-root-ca.crt published")
    kubectl("create", "quota", "cm", "-n", ns, f"--hard=count/configmaps={existing() + 3}")
    results: list[int] = []
    errors: list[str] = []

    def create(i: int) -> None:
        proc = kubectl.run("create", "configmap", f"c{i}", "-n", ns, check=False)
        results.append(proc.returncode)
        errors.append(proc.stderr)
    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 0, 0, 1, 1, 1], errors
    assert sum('exceeded quota: cm, requested: count/configmaps=1' in e for e in errors) == 3
    names = [c["metadata"]["name"] for c in
             json.loads(kubectl("get", "configmaps", "-n", ns, "-o", "json"))["items"]
             if c["metadata"]["name"].startswith("c") and c["metadata"]["name"][1:].isdigit()]
    assert len(names) == 3


def test_compute_quota_needs_requests(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "quota", "compute", "-n", ns, "--hard=requests.cpu=1,limits.memory=1Gi")
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=pod("bare"), check=False)
    assert 'pods "bare" is forbidden: failed quota: compute: must specify' in proc.stderr
    res = "    resources: {requests: {cpu: 600m}, limits: {memory: 512Mi}}"
    kubectl("apply", "-n", ns, "-f", "-", input=pod("one", res))
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=pod("two", res), check=False)
    assert ('exceeded quota: compute, requested: requests.cpu=600m, used: '
            'requests.cpu=600m, limited: requests.cpu=1') in proc.stderr
    u = used(kubectl, ns, "compute")
    assert u == {"requests.cpu": "600m", "limits.memory": "512Mi"}


def test_limitrange_defaults_and_bounds(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input="""
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
""")
    kubectl("apply", "-n", ns, "-f", "-", input=pod("plain"))
    got = json.loads(kubectl("get", "pod", "plain", "-n", ns, "-o", "json"))
    res = got["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "500m", "memory": "256Mi"},
                   "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert got["metadata"]["annotations"]["kubernetes.io/limit-ranger"].startswith(
        "LimitRanger plugin set: ")
    big = "    resources: {limits: {cpu: '2'}}"
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=pod("big", big), check=False)
    assert proc.returncode != 0
    assert ('pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
            in proc.stderr)


def test_a_write_refused_after_quota_is_not_charged(kubectl: Kubectl, ns: str, server: NavioServer,
                                                     tmp_path_factory: pytest.TempPathFactory
                                                     ) -> None:
    """ResourceQuota is the last validating plugin (kube's order): a role the RBAC escalation
    check refuses leaves `status.used` untouched rather than charged until the resync."""
    ca = load_or_create_ca(server.data_dir / "pki")
    certs = tmp_path_factory.mktemp("quota-user")
    pair = ca.issue(certs, "quinn", cn="quinn", orgs=())
    write_kubeconfig(certs / "quinn.kubeconfig", server=server.url, ca_cert=ca.pair.cert,
                     client=pair, user="quinn")
    quinn = Kubectl(certs / "quinn.kubeconfig", tmp_path_factory.mktemp("home"))
    kubectl("create", "rolebinding", "nsadmin", "--clusterrole=admin", "--user=quinn", "-n", ns)
    resource = "count/roles.rbac.authorization.k8s.io"
    kubectl("create", "quota", "roles", "-n", ns, f"--hard={resource}=3")
    wait_for(lambda: used(kubectl, ns, "roles").get(resource) == "0", 20, "status.used filled")
    for i in range(3):
        proc = quinn.run("create", "role", f"nodes{i}", "--verb=get", "--resource=nodes",
                         "-n", ns, check=False)
        assert "attempting to grant RBAC permissions not currently held" in proc.stderr
    assert used(kubectl, ns, "roles").get(resource) == "0"
    quinn("create", "role", "pods", "--verb=get", "--resource=pods", "-n", ns)
    assert used(kubectl, ns, "roles").get(resource) == "1"
