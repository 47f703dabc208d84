"""Agents survive the control plane moving to another address (issue 16).

Agents are given two --server URLs (the control plane's address now and the one it will
have); each reaches the API server through its local load balancer on 127.0.0.1:6444
(apilb.py, k3s's design), which is what its kubeconfig names. The control plane (bound to
every address of host A) then stops, host A's LAN address changes from 10.201.0.1 to
10.201.0.11, and the control plane starts again: the agents' new connections fail over to
the new address on their own, their nodes are Ready again, and they run new pods.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from cluster import wait_for
from multinode_lab import FETCH, Cluster, multinode_cluster, node, pod_ip, server_pod, sh

OLD, NEW = "10.201.0.1", "10.201.0.11"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with multinode_cluster(tmp_path_factory.mktemp("mncpmove"), bind="0.0.0.0",
                           join_addrs=(OLD, NEW)) as c:
        yield c


def _renew(cluster: Cluster, name: str) -> str | None:
    proc = cluster.kubectl.run("get", "lease", "-n", "kube-node-lease", name, "-o",
                               "jsonpath={.spec.renewTime}", check=False)
    return (proc.stdout or None) if proc.returncode == 0 else None


def _ready(cluster: Cluster, name: str) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node(cluster.kubectl, name).get("status", {}).get("conditions", ()))


def test_agents_follow_the_control_plane_to_its_new_address(cluster: Cluster) -> None:
    kubectl, a, b, c = (cluster.kubectl, cluster.hosts["a"], cluster.hosts["b"],
                        cluster.hosts["c"])
    for h in (b, c):
        assert "server: https://127.0.0.1:6444" in (h.root / "kubelet.kubeconfig").read_text()
    renewed = {h.node: _renew(cluster, h.node) for h in (b, c)}
    # the control plane's host gets a new address while the control plane is down
    cluster.server.stop()
    sh("ip", "-n", a.netns, "addr", "del", f"{OLD}/24", "dev", "lan0")
    sh("ip", "-n", a.netns, "addr", "add", f"{NEW}/24", "dev", "lan0")
    a.lab.assert_no_route_out()
    cluster.server.start()
    for h in (b, c):
        wait_for(lambda: _renew(cluster, h.node) not in (None, renewed[h.node]), 90,
                 f"{h.key}'s Lease renewed through the new address", 0.5)
        wait_for(lambda: _ready(cluster, h.node), 60, f"{h.key} Ready", 0.5)
        assert h.agent is not None and h.agent.poll() is None
    # the nodes work: new pods run and reach each other across nodes
    for h in (b, c):
        kubectl("apply", "-f", "-", input=server_pod(f"after-{h.key}", h.node))
    ips = {h.key: wait_for(lambda: pod_ip(kubectl, f"after-{h.key}"), 90,
                           f"after-{h.key} Ready", 0.5) for h in (b, c)}
    out = kubectl("exec", "after-b", "--", "python3", "-c", FETCH,
                  f"http://{ips['c']}:8080/", timeout=60)
    assert out == f"after-c {ips['b']}"
    # and kubectl logs/exec (the API server reaching the kubelets) still work
    assert kubectl("logs", "after-c") == ""
