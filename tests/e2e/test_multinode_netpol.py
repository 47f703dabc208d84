"""NetworkPolicy across nodes (issues 14 and 16): rules on the server's node judge traffic
from pods on another node.

The harness (multinode_lab.py); the server pod runs on C, every client pod on B, so each
connection crosses the LAN (host-gw) and is judged by C's agent's `inet navio-netpol`
table, which must know B's pods by their own addresses.

Shown: with a default-deny ingress policy and an allow rule (podSelector role=client in the
server's namespace, or any pod of a namespace labelled team=blue), exactly the allowed pods
on B get through and the others time out; the server sees the client pod's own address (no
masquerade inside the cluster CIDR), which is why an ipBlock rule naming one cross-node pod
IP lets that pod in and no other; deleting the policies restores traffic.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from cluster import wait_for
from multinode_lab import FETCH, Cluster, multinode_cluster, pod_ip, server_pod

NS, FRIENDS, STRANGERS = "np", "np-friends", "np-strangers"
# pod name -> (namespace, labels); all on B
CLIENTS = {"client": (NS, {"role": "client"}), "other": (NS, {"role": "other"}),
           "ally": (FRIENDS, {"role": "other"}), "stranger": (STRANGERS, {"role": "client"})}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with multinode_cluster(tmp_path_factory.mktemp("mnnetpol")) as c:
        kubectl, b, cc = c.kubectl, c.hosts["b"], c.hosts["c"]
        for name, labels in ((NS, {}), (FRIENDS, {"team": "blue"}), (STRANGERS, {})):
            kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels}}))
        kubectl("apply", "-f", "-", input=server_pod("srv", cc.node, {"app": "srv"}, NS))
        for name, (ns, labels) in CLIENTS.items():
            kubectl("apply", "-f", "-", input=server_pod(name, b.node, labels, ns))
        for name, (ns, _) in [("srv", (NS, {})), *CLIENTS.items()]:
            wait_for(lambda: pod_ip(kubectl, name, ns), 90, f"pod {name} Ready", 0.5)
        yield c


def _policy(name: str, ingress: list[dict[str, Any]] | None,
            selector: dict[str, Any] | None = None) -> str:
    spec: dict[str, Any] = {"podSelector": selector or {}, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": name, "namespace": NS}, "spec": spec})


def _get(cluster: Cluster, client: str, url: str) -> str | None:
    """The server's answer to `client` (a pod on B), None when the connection fails."""
    ns = CLIENTS[client][0]
    proc = cluster.kubectl.run("exec", "-n", ns, client, "--", "python3", "-c", FETCH, url,
                               "1.5", check=False, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


def _expect(cluster: Cluster, url: str, allowed: set[str], what: str) -> None:
    """Every client reaches the server iff it is in `allowed` (waiting, bounded, for the
    rules to follow the API, then checking once more that it holds)."""
    for client in CLIENTS:
        want = client in allowed
        wait_for(lambda: (_get(cluster, client, url) is not None) == want, 30,
                 f"{client} to be {'allowed' if want else 'blocked'} ({what})", 0.2)
    for client in CLIENTS:
        got = _get(cluster, client, url)
        assert (got is not None) == (client in allowed), (what, client, got)


def test_policies_judge_traffic_from_pods_on_another_node(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    srv = pod_ip(kubectl, "srv", NS)
    url = f"http://{srv}:8080/"
    _expect(cluster, url, set(CLIENTS), "no policy")
    # the server sees the client pod's own address across nodes
    assert _get(cluster, "client", url) == f"srv {pod_ip(kubectl, 'client', NS)}"

    kubectl("apply", "-f", "-", input=_policy("deny-all", None))
    _expect(cluster, url, set(), "default deny ingress")

    kubectl("apply", "-f", "-", input=_policy("allow-clients", [{"from": [
        {"podSelector": {"matchLabels": {"role": "client"}}},
        {"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}], {"matchLabels": {"app": "srv"}}))
    _expect(cluster, url, {"client", "ally"}, "podSelector or namespaceSelector")
    assert _get(cluster, "ally", url) == f"srv {pod_ip(kubectl, 'ally', FRIENDS)}"

    # an ipBlock of one cross-node pod IP admits exactly that pod
    kubectl("delete", "networkpolicy", "-n", NS, "allow-clients")
    other = pod_ip(kubectl, "other", NS)
    kubectl("apply", "-f", "-", input=_policy("allow-ip", [{"from": [
        {"ipBlock": {"cidr": f"{other}/32"}}]}]))
    _expect(cluster, url, {"other"}, "ipBlock of other's pod IP")
    assert _get(cluster, "other", url) == f"srv {other}"

    kubectl("delete", "networkpolicy", "-n", NS, "--all")
    _expect(cluster, url, set(CLIENTS), "policies deleted")
