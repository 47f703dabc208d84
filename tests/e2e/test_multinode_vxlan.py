"""The VXLAN backend (issue 16): nodes on different routed subnets, where host-gw cannot work.

The harness (multinode_lab.py) with `ROUTED` addresses: A and B on 10.201.0.0/24, C on
10.202.0.0/24, the LAN namespace routing between them, so no node is on another's link and
no `<podCIDR> via <InternalIP>` route could be installed. Agents run with
`--pod-network-backend vxlan`.

Shown: each Node announces its VTEP in its annotations; each agent has one `navio.1`
device (VNI 1, UDP 8472, its own address, MTU of its link less 50) with a route, a
permanent neighbour and an FDB entry per other node; the pods' interfaces have that MTU; a
pod on B reaches a pod on C by pod IP (source kept) and by ClusterIP, with a response far
larger than one packet; deleting C's Node removes B's entries for it.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from cluster import wait_for
from multinode_lab import FETCH, ROUTED, Cluster, multinode_cluster, node, pod_ip, \
    server_pod, sh

ANN = "pod-network.navio.io/"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with multinode_cluster(tmp_path_factory.mktemp("mnvxlan"), addrs=ROUTED,
                           agent_args=("--pod-network-backend", "vxlan")) as c:
        yield c


# Prints the MTU of eth0 (SIOCGIFMTU).
_MTU = ("import fcntl, socket, struct; s = socket.socket(); print(struct.unpack('16si12x', "
        "fcntl.ioctl(s.fileno(), 0x8921, struct.pack('16si12x', b'eth0', 0)))[1])")
# Serves a 300 kB body on 8081 (no DNS lookups).
_BIG_SERVE = """
import http.server
BODY = bytes(300000)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(BODY)))
        self.end_headers(); self.wfile.write(BODY)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", 8081), H).serve_forever()
"""
_BIG = ("import sys, urllib.request; print(len(urllib.request.urlopen(sys.argv[1], "
        "timeout=10).read()))")


def test_nodes_on_different_subnets_reach_each_others_pods_over_vxlan(
        cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    # host-gw could not work here: C is not on B's link, only routed through the LAN
    assert f"{c.ip.rsplit('.', 1)[0]}.0/24 via" in b.routes()
    # every Node announces its VTEP (the agent writes it once it is up)
    nb, nc = (wait_for(lambda: (n := node(kubectl, h.node))["metadata"].get("annotations", {})
                       .get(f"{ANN}backend-data") and n, 30, f"{h.key}'s vxlan annotations")
              for h in (b, c))
    cidr_b, cidr_c = nb["spec"]["podCIDR"], nc["spec"]["podCIDR"]
    for n, host in ((nb, b), (nc, c)):
        notes = n["metadata"]["annotations"]
        assert notes[f"{ANN}backend-type"] == "vxlan"
        assert notes[f"{ANN}public-ip"] == host.ip
        data = json.loads(notes[f"{ANN}backend-data"])
        assert data["VNI"] == 1 and len(data["VtepMAC"].split(":")) == 6
    mac_c = json.loads(nc["metadata"]["annotations"][f"{ANN}backend-data"])["VtepMAC"]
    gw_c = cidr_c.split("/")[0]

    # B's device, and its entries for C
    link = sh("ip", "-n", b.netns, "-d", "link", "show", "navio.1").stdout
    assert f"vxlan id 1 local {b.ip}" in link and "dstport 8472" in link, link
    assert "mtu 1450" in link and "nolearning" in link, link
    wait_for(lambda: f"{cidr_c} via {gw_c} dev navio.1" in b.routes(), 30,
             "B's route to C's pods through navio.1")
    assert "onlink" in sh("ip", "-n", b.netns, "route", "show", cidr_c).stdout
    fdb = sh("bridge", "-n", b.netns, "fdb", "show", "dev", "navio.1").stdout
    assert f"{mac_c} dst {c.ip} self permanent" in fdb, fdb
    neigh = sh("ip", "-n", b.netns, "neigh", "show", "dev", "navio.1").stdout
    assert f"{gw_c} lladdr {mac_c} PERMANENT" in neigh, neigh
    wait_for(lambda: f"{cidr_b} via {cidr_b.split('/')[0]} dev navio.1" in c.routes(), 30,
             "C's route to B's pods through navio.1")

    kubectl("apply", "-f", "-", input=server_pod("web-b", b.node))
    kubectl("apply", "-f", "-", input=server_pod("web-c", c.node, {"app": "web-c"}))
    ip_b = wait_for(lambda: pod_ip(kubectl, "web-b"), 90, "pod web-b Ready", 0.5)
    ip_c = wait_for(lambda: pod_ip(kubectl, "web-c"), 90, "pod web-c Ready", 0.5)
    # pods' interfaces leave room for the encapsulation
    assert kubectl("exec", "web-b", "--", "python3", "-c", _MTU).strip() == "1450"
    assert kubectl("exec", "web-c", "--", "python3", "-c", _MTU).strip() == "1450"
    # pod to pod across the overlay, source address kept, both ways
    assert kubectl("exec", "web-b", "--", "python3", "-c", FETCH,
                   f"http://{ip_c}:8080/") == f"web-c {ip_b}"
    assert kubectl("exec", "web-c", "--", "python3", "-c", FETCH,
                   f"http://{ip_b}:8080/") == f"web-b {ip_c}"
    # a body of many full-size packets crosses intact
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big-c"},
        "spec": {"nodeName": c.node, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "python", "command": ["python3", "-c", _BIG_SERVE],
            "readinessProbe": {"tcpSocket": {"port": 8081}, "periodSeconds": 1}}]}}))
    ip_big = wait_for(lambda: pod_ip(kubectl, "big-c"), 90, "pod big-c Ready", 0.5)
    got = wait_for(lambda: kubectl.run("exec", "web-b", "--", "python3", "-c", _BIG,
                                       f"http://{ip_big}:8081/", check=False).stdout.strip(),
                   30, "the large body", 0.5)
    assert got == "300000"
    # and through a Service whose only endpoint is on C
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-c"},
        "spec": {"selector": {"app": "web-c"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    vip = kubectl("get", "service", "web-c", "-o", "jsonpath={.spec.clusterIP}")
    out = wait_for(lambda: kubectl.run("exec", "web-b", "--", "python3", "-c", FETCH,
                                       f"http://{vip}/", check=False).stdout, 30,
                   "the Service across the overlay", 0.5)
    assert out == f"web-c {ip_b}"


def test_a_deleted_node_leaves_the_overlay(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    cidr_c = node(kubectl, c.node)["spec"]["podCIDR"]
    wait_for(lambda: f"{cidr_c} via" in b.routes(), 30, "B's route to C")
    kubectl("delete", "pods", "--all", "--wait=true", "--timeout=30s", check=False,
            timeout=40)
    c.stop_agent()
    # a clean shutdown takes C's device (and so its routes) away
    assert "navio.1" not in sh("ip", "-n", c.netns, "link").stdout
    kubectl("delete", "node", c.node, "--timeout=30s", timeout=40)
    wait_for(lambda: f"{cidr_c} via" not in b.routes(), 30, "B's route to C to go")
    wait_for(lambda: c.ip not in sh("bridge", "-n", b.netns, "fdb", "show", "dev",
                                    "navio.1").stdout, 30, "B's FDB entry for C to go")
    assert "PERMANENT" not in sh("ip", "-n", b.netns, "neigh", "show", "dev",
                                 "navio.1").stdout
