"""Multi-node clusters (issue 16): node IPAM and host-gw pod routing across three "hosts".

The harness (multinode_lab.py): three hosts as network namespaces on a test LAN, the control
plane on A, agents on B and C joined with a bootstrap token and no --pod-cidr: each waits for
the range node IPAM assigns its Node.

Shown: the Nodes get distinct pod CIDRs and each agent routes the other's range via its
InternalIP; a pod on B reaches a pod on C by pod IP with its own source address; stopping
C's agent removes its routes, deleting C's Node removes B's route to it and frees the range
for the next node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator

import pytest
from cluster import wait_for
from multinode_lab import FETCH, SERVE, Cluster, in_net, multinode_cluster, node, pod_ip, \
    server_pod


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with multinode_cluster(tmp_path_factory.mktemp("multinode")) as c:
        yield c


def test_nodes_get_distinct_pod_cidrs_and_pods_reach_each_other(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    nb, nc = node(kubectl, b.node), node(kubectl, c.node)
    cidr_b, cidr_c = nb["spec"]["podCIDR"], nc["spec"]["podCIDR"]
    assert {cidr_b, cidr_c} == {"10.42.0.0/24", "10.42.1.0/24"}
    assert nb["spec"]["podCIDRs"] == [cidr_b] and nc["spec"]["podCIDRs"] == [cidr_c]
    # kubectl shows the ranges as kube does
    assert kubectl("get", "node", b.node, "-o", "jsonpath={.spec.podCIDR}") == cidr_b
    # each agent routes the other's range via its InternalIP, in its own host namespace
    wait_for(lambda: f"{cidr_c} via {c.ip} dev lan0" in b.routes(), 30,
             "B's route to C's pods")
    wait_for(lambda: f"{cidr_b} via {b.ip} dev lan0" in c.routes(), 30,
             "C's route to B's pods")
    assert "default" not in b.routes() and "default" not in c.routes()

    kubectl("apply", "-f", "-", input=server_pod("web-b", b.node))
    kubectl("apply", "-f", "-", input=server_pod("web-c", c.node))
    ip_b = wait_for(lambda: pod_ip(kubectl, "web-b"), 90, "pod web-b Ready", 0.5)
    ip_c = wait_for(lambda: pod_ip(kubectl, "web-c"), 90, "pod web-c Ready", 0.5)
    assert in_net(ip_b, cidr_b) and in_net(ip_c, cidr_c)
    # B's pod asks C's pod, by pod IP: C's pod answers with its name and sees B's pod IP
    out = kubectl("exec", "web-b", "--", "python3", "-c", FETCH, f"http://{ip_c}:8080/",
                  timeout=60)
    assert out == f"web-c {ip_b}"
    out = kubectl("exec", "web-c", "--", "python3", "-c", FETCH, f"http://{ip_b}:8080/",
                  timeout=60)
    assert out == f"web-b {ip_c}"

    # Leaving the cluster CIDR (to host A's own address, outside the pod network), a pod's
    # packet is masqueraded to its node's address.
    a = cluster.hosts["a"]
    host_a = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{a.netns}", sys.executable, "-c", SERVE],
        env={**os.environ, "POD": "host-a", "PORT": "8099"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = wait_for(lambda: kubectl.run(
            "exec", "web-b", "--", "python3", "-c", FETCH, f"http://{a.ip}:8099/",
            check=False, timeout=60).stdout, 30, "host A's server to answer web-b", 0.5)
        assert out == f"host-a {b.ip}"
    finally:
        host_a.terminate()
        host_a.wait(10)


def test_a_departed_node_takes_its_routes_and_frees_its_range(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    cidr_b = node(kubectl, b.node)["spec"]["podCIDR"]
    cidr_c = node(kubectl, c.node)["spec"]["podCIDR"]
    wait_for(lambda: f"{cidr_b} via {b.ip}" in c.routes(), 30, "C's route to B")
    kubectl("delete", "pod", "web-c", "--wait=true", "--timeout=30s", check=False,
            timeout=40)
    c.stop_agent()
    # a clean shutdown takes the agent's routes with it
    assert f"{cidr_b} via" not in c.routes(), c.routes()
    kubectl("delete", "node", c.node, "--timeout=30s", timeout=40)
    wait_for(lambda: f"{cidr_c} via" not in b.routes(), 30,
             "B's route to the deleted node's pods to go")
    # the range is free again: the next Node gets it
    newcomer = f"mn-d-{c.tag}"
    kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": newcomer}}))
    try:
        got = wait_for(lambda: node(kubectl, newcomer).get("spec", {}).get("podCIDR"), 30,
                       "the new node's pod CIDR")
        assert got == cidr_c
        # ...and B routes it once the node has an address
        kubectl("patch", "node", newcomer, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"addresses": [
                    {"type": "InternalIP", "address": c.ip}]}}))
        wait_for(lambda: f"{cidr_c} via {c.ip}" in b.routes(), 30,
                 "B's route to the new node")
    finally:
        kubectl("delete", "node", newcomer, check=False)
