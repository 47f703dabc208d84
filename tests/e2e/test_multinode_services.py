"""Services across nodes (issue 16): ClusterIP, DNS and NodePort on a three-host LAN, with
each pod-network backend (VXLAN with C on a routed subnet of its own).

The harness (multinode_lab.py) with every agent serving the node-local cluster DNS on
10.43.0.10. The only endpoint of each Service is a pod on C; the client pod is on B; the
LAN client is host A (the control plane's host, which runs no node).

Shown, as kube-proxy behaves:
- a pod on B reaches the Service by ClusterIP and by its DNS name (FQDN and search-path short
  name, answered by B's own DNS), and C's pod sees the client pod's own address (traffic
  inside the cluster CIDR is not masqueraded);
- a NodePort (externalTrafficPolicy Cluster) answers on every node's LAN address, and the
  endpoint sees a masqueraded source (the forwarding node), not A's address;
- with externalTrafficPolicy Local only C (the node with a local endpoint) answers, and the
  endpoint sees A's own address; B drops the connection attempt (the client times out).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterator

import pytest
from cluster import wait_for
from multinode_lab import (FETCH, FLAT, ROUTED, Cluster, multinode_cluster, node, pod_ip,
                           server_pod)


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def cluster(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Each pod-network backend: host-gw on one LAN, VXLAN with C on a routed subnet."""
    vxlan = request.param == "vxlan"
    with multinode_cluster(tmp_path_factory.mktemp("mnsvc"), dns=True,
                           addrs=ROUTED if vxlan else FLAT,
                           agent_args=("--pod-network-backend", "vxlan") if vxlan else ()
                           ) as c:
        kubectl, b, cc = c.kubectl, c.hosts["b"], c.hosts["c"]
        kubectl("apply", "-f", "-", input=server_pod("echo-c", cc.node, {"app": "echo"}))
        kubectl("apply", "-f", "-", input=server_pod("client-b", b.node))
        for name in ("echo-c", "client-b"):
            wait_for(lambda: pod_ip(kubectl, name), 90, f"pod {name} Ready", 0.5)
        yield c


def _forwarded_from(cluster: Cluster, key: str) -> str:
    """The source a pod on another node sees for traffic host `key` forwarded and
    masqueraded: its LAN address (host-gw), or its VTEP's, the network address of its pod
    CIDR on the vxlan device (VXLAN)."""
    host = cluster.hosts[key]
    n = node(cluster.kubectl, host.node)
    vxlan = (n["metadata"].get("annotations") or {}).get(
        "pod-network.navio.io/backend-type") == "vxlan"
    return str(ipaddress.ip_network(n["spec"]["podCIDR"])[0]) if vxlan else host.ip


def _service(name: str, kind: str = "ClusterIP", policy: str | None = None) -> str:
    spec: dict[str, Any] = {"type": kind, "selector": {"app": "echo"},
                            "ports": [{"port": 80, "targetPort": 8080}]}
    if policy:
        spec["externalTrafficPolicy"] = policy
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": spec})


def _from_b(cluster: Cluster, url: str) -> str:
    return cluster.kubectl.run("exec", "client-b", "--", "python3", "-c", FETCH, url, "3",
                               check=False, timeout=60).stdout


def _from_a(cluster: Cluster, url: str, timeout: float = 3) -> str | None:
    """An HTTP GET from host A (on the LAN, no node there): the body, None on failure."""
    proc = cluster.on("a", "python3", "-c", FETCH, url, str(timeout), timeout=timeout + 30)
    return proc.stdout if proc.returncode == 0 else None


def _endpoints_ready(cluster: Cluster, service: str) -> bool:
    out = cluster.kubectl("get", "endpoints", service, "-o", "json")
    return any(s.get("addresses") for s in json.loads(out).get("subsets") or ())


def test_a_pod_reaches_a_service_on_another_node_by_ip_and_by_name(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", input=_service("echo"))
    wait_for(lambda: _endpoints_ready(cluster, "echo"), 30, "echo's endpoints")
    vip = kubectl("get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}")
    client_ip = pod_ip(kubectl, "client-b")
    # by ClusterIP: B's proxy sends it across the LAN to C's pod, source kept
    out = wait_for(lambda: _from_b(cluster, f"http://{vip}/"), 30, "echo by ClusterIP", 0.5)
    assert out == f"echo-c {client_ip}"
    # by name, through B's node-local DNS (the pod's nameserver is 10.43.0.10)
    resolv = kubectl("exec", "client-b", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.43.0.10" in resolv, resolv
    for host in ("echo.default.svc.cluster.local", "echo"):
        out = wait_for(lambda: _from_b(cluster, f"http://{host}/"), 30, f"echo as {host}",
                       0.5)
        assert out == f"echo-c {client_ip}"
    # ...and the DNS answer is the ClusterIP, from B's own DNS server
    looked = kubectl("exec", "client-b", "--", "python3", "-c",
                     "import socket; print(socket.gethostbyname("
                     "'echo.default.svc.cluster.local'))")
    assert looked.strip() == vip


def test_a_nodeport_answers_on_every_node_with_the_source_masqueraded(
        cluster: Cluster) -> None:
    kubectl, a, b, c = (cluster.kubectl, cluster.hosts["a"], cluster.hosts["b"],
                        cluster.hosts["c"])
    kubectl("apply", "-f", "-", input=_service("echo-np", "NodePort", "Cluster"))
    wait_for(lambda: _endpoints_ready(cluster, "echo-np"), 30, "echo-np's endpoints")
    port = kubectl("get", "service", "echo-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
    # through B (no local endpoint): forwarded to C's pod, masqueraded to B's address on the
    # way out (its LAN address; with VXLAN its VTEP's, as flannel + kube-proxy do)
    out = wait_for(lambda: _from_a(cluster, f"http://{b.ip}:{port}/"), 30,
                   "the NodePort on B", 0.5)
    assert out == f"echo-c {_forwarded_from(cluster, 'b')}"
    # through C (the endpoint's own node): masqueraded too (Cluster policy), never A's
    out = wait_for(lambda: _from_a(cluster, f"http://{c.ip}:{port}/"), 30,
                   "the NodePort on C", 0.5)
    name, source = out.split()
    assert name == "echo-c" and source != a.ip
    cidr_c = node(kubectl, c.node)["spec"]["podCIDR"]
    assert source == str(ipaddress.ip_network(cidr_c)[1]), source   # C's bridge address


def test_a_local_policy_nodeport_answers_only_where_an_endpoint_is(cluster: Cluster) -> None:
    kubectl, a, b, c = (cluster.kubectl, cluster.hosts["a"], cluster.hosts["b"],
                        cluster.hosts["c"])
    kubectl("apply", "-f", "-", input=_service("echo-local", "NodePort", "Local"))
    wait_for(lambda: _endpoints_ready(cluster, "echo-local"), 30, "echo-local's endpoints")
    port = kubectl("get", "service", "echo-local", "-o",
                   "jsonpath={.spec.ports[0].nodePort}")
    # C has the endpoint: it answers, and the pod sees the LAN client's own address
    out = wait_for(lambda: _from_a(cluster, f"http://{c.ip}:{port}/"), 30,
                   "the Local NodePort on C", 0.5)
    assert out == f"echo-c {a.ip}"
    # B has none: the connection attempt is dropped (a timeout, not a refusal)
    for _ in range(3):
        assert _from_a(cluster, f"http://{b.ip}:{port}/", timeout=2) is None
    # the Cluster NodePort on B still answers meanwhile (B itself is fine)
    kubectl("apply", "-f", "-", input=_service("echo-np", "NodePort", "Cluster"))
    np = kubectl("get", "service", "echo-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
    assert _from_a(cluster, f"http://{b.ip}:{np}/") == \
        f"echo-c {_forwarded_from(cluster, 'b')}"
