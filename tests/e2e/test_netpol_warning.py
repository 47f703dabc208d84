"""A NetworkPolicy write warns (kubectl's "Warning:") while some node does not enforce
policies (issue 14: never silently ignored). Its own server (no agent), since it adds Nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cluster import Kubectl, NavioServer

from navio.apiserver.netpolwarning import unenforced_warnings

POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny", "namespace": "default"},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def node(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})


def condition(status: str, reason: str) -> str:
    return json.dumps({"status": {"conditions": [{
        "type": "NetworkPolicyEnforced", "status": status, "reason": reason, "message": "m"}]}})


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    srv = NavioServer(tmp_path_factory.mktemp("netpolwarn") / "data").start()
    try:
        yield Kubectl(srv.kubeconfig, tmp_path_factory.mktemp("home"))
    finally:
        srv.stop()


def apply(k: Kubectl) -> str:
    """Apply POLICY with a fresh annotation (kubectl sends nothing for an unchanged object)."""
    apply.count = getattr(apply, "count", 0) + 1  # type: ignore[attr-defined]
    body = json.loads(json.dumps(POLICY))
    body["metadata"]["annotations"] = {"n": str(apply.count)}  # type: ignore[attr-defined]
    return k.run("apply", "-f", "-", input=json.dumps(body)).stderr


def test_warning_names_the_nodes_that_do_not_enforce(kubectl: Kubectl) -> None:
    k = kubectl
    assert "Warning" not in apply(k)                    # no nodes: nothing unenforced
    k("create", "-f", "-", input=node("n1"))
    k("create", "-f", "-", input=node("n2"))
    k("patch", "node", "n1", "--subresource=status", "--type=strategic", "-p",
      condition("True", "NftablesRules"))
    k("patch", "node", "n2", "--subresource=status", "--type=strategic", "-p",
      condition("False", "NotRoot"))
    err = apply(k)
    assert "Warning: NetworkPolicy is not enforced on 1 node(s): n2 (NotRoot)" in err, err
    k("create", "-f", "-", input=node("n3"))
    err = k.run("label", "netpol", "deny", "x=y").stderr
    assert "2 node(s): n2 (NotRoot), n3 (not reported)" in err, err
    k("patch", "node", "n2", "--subresource=status", "--type=strategic", "-p",
      condition("True", "NftablesRules"))
    k("delete", "node", "n3")
    assert "Warning" not in apply(k)
    # reads and deletes never warn
    k("patch", "node", "n2", "--subresource=status", "--type=strategic", "-p",
      condition("False", "NotRoot"))
    assert "Warning" not in k.run("get", "netpol").stderr
    assert "Warning" not in k.run("delete", "netpol", "deny").stderr


def test_warning_lists_at_most_five_nodes() -> None:
    nodes = [{"metadata": {"name": f"n{i}"}} for i in range(7)]
    (w,) = unenforced_warnings(nodes)
    assert w.startswith("NetworkPolicy is not enforced on 7 node(s): n0 (not reported), ")
    assert "and 2 more;" in w
    assert unenforced_warnings([{"metadata": {"name": "a"}, "status": {"conditions": [
        {"type": "NetworkPolicyEnforced", "status": "True"}]}}]) == []
