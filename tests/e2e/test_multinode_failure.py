"""Node failure and rejoin, for real (issue 16): a host's link is cut and restored, with
each pod-network backend (host-gw on one LAN; VXLAN with C on a routed subnet of its own).

The control plane's controller manager runs with tight but kube-shaped node-lifecycle flags
(`--node-monitor-period 1s --node-monitor-grace-period 5s`) and the agents renew their Lease
every second (`--node-lease-duration-seconds 4`); the Deployment's pods tolerate the
unreachable/not-ready NoExecute taints for 2 s (instead of DefaultTolerationSeconds' 300),
and spread over the nodes with a topology spread constraint that honours taints
(`nodeTaintsPolicy: Honor`), so a tainted node is no spreading domain.

Shown: a Deployment of 6 spreads 3/3 over B and C; cutting C's LAN link makes C Unknown
(NodeStatusUnknown) within the grace period, taints it unreachable (NoSchedule and
NoExecute), its pods are evicted after their toleration and replaced on B, the Service's
endpoints drop them and every request to the Service from a pod on B succeeds once the
replacements are Ready. Restoring the link brings C back Ready and untainted, its agent
finishes the evicted pods, and scaling up puts the new pods on C (the spread wants them
there), reached across nodes through the Service.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest
from cluster import wait_for
from multinode_lab import FLAT, ROUTED, Cluster, multinode_cluster, node, pod_ip, \
    server_container, server_pod

CM_FLAGS = ("--node-monitor-period", "1s", "--node-monitor-grace-period", "5s",
            "--node-startup-grace-period", "30s")
AGENT_FLAGS = ("--node-lease-duration-seconds", "4")
TOLERATION = 2
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def cluster(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The same failures with each pod-network backend: host-gw on one LAN, VXLAN with C
    on a routed subnet of its own (where host-gw could not work)."""
    vxlan = request.param == "vxlan"
    with multinode_cluster(tmp_path_factory.mktemp("mnfail"), addrs=ROUTED if vxlan else FLAT,
                           agent_args=AGENT_FLAGS + (("--pod-network-backend", "vxlan")
                                                     if vxlan else ()),
                           controller_manager=CM_FLAGS) as c:
        yield c


def _deployment(replicas: int) -> dict[str, Any]:
    tolerate = [{"key": k, "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": TOLERATION}
                for k in (UNREACHABLE, "node.kubernetes.io/not-ready")]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 2, "tolerations": tolerate,
                         "topologySpreadConstraints": [{
                             "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                             "whenUnsatisfiable": "DoNotSchedule",
                             "nodeTaintsPolicy": "Honor",
                             "labelSelector": {"matchLabels": {"app": "web"}}}],
                         "containers": [server_container()]}}}}


_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": 8080}]}}


def _pods(cluster: Cluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json")
    return list(json.loads(out)["items"])


def _ready_by_node(cluster: Cluster) -> dict[str, list[str]]:
    """node -> names of its Ready, not terminating web pods."""
    out: dict[str, list[str]] = {}
    for p in _pods(cluster):
        conds = (p.get("status") or {}).get("conditions") or ()
        if p["metadata"].get("deletionTimestamp") or not any(
                c["type"] == "Ready" and c["status"] == "True" for c in conds):
            continue
        out.setdefault(p["spec"].get("nodeName", ""), []).append(p["metadata"]["name"])
    return out


def _ask(cluster: Cluster, url: str, times: int) -> list[str]:
    """`times` requests from the client pod on B, each answered or failing the test; the
    answering pods' names."""
    script = ("import sys, urllib.request\n"
              "for _ in range(int(sys.argv[2])):\n"
              "    print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()"
              ".split()[0])\n")
    out = cluster.kubectl("exec", "client", "--", "python3", "-c", script, url, str(times),
                          timeout=90)
    names = out.split()
    assert len(names) == times, out
    return names


def _condition(n: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (n.get("status") or {}).get("conditions") or ()
                 if c["type"] == ctype), {})


def _taints(n: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (n.get("spec") or {}).get("taints") or ()}


def test_a_cut_node_loses_its_pods_to_the_healthy_one_and_rejoins(cluster: Cluster) -> None:
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    kubectl("apply", "-f", "-", input=json.dumps(_SERVICE))
    kubectl("apply", "-f", "-", input=server_pod("client", b.node))
    kubectl("apply", "-f", "-", input=json.dumps(_deployment(6)))
    spread = wait_for(lambda: (r := _ready_by_node(cluster)) and sum(map(len, r.values())) == 6
                      and r, 120, "6 web pods Ready", 0.5)
    assert sorted(map(len, spread.values())) == [3, 3] and set(spread) == {b.node, c.node}
    wait_for(lambda: pod_ip(kubectl, "client"), 60, "the client pod Ready", 0.5)
    vip = kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    url = f"http://{vip}/"
    # the Service reaches pods on both nodes from B (C's across the LAN)
    answered = set(wait_for(lambda: _ask(cluster, url, 20), 30, "the Service to answer"))
    assert answered & set(spread[c.node]) and answered & set(spread[b.node]), answered

    c_cidr = node(kubectl, c.node)["spec"]["podCIDR"]
    assert c_cidr in b.routes(), b.routes()

    # ---- the cable of host C is pulled --------------------------------------------------
    cut = time.monotonic()
    c.link(False)
    unknown = wait_for(lambda: _condition(n := node(kubectl, c.node), "Ready")
                       .get("status") == "Unknown" and n, 30, "C's Ready to become Unknown",
                       0.25)
    took = time.monotonic() - cut
    assert 4 <= took <= 25, took      # the grace period (5 s) plus a monitor period or so
    assert _condition(unknown, "Ready")["reason"] == "NodeStatusUnknown"
    wait_for(lambda: {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
             <= _taints(node(kubectl, c.node)), 20, "C tainted unreachable", 0.25)
    # B withdraws its route to the silent node's pods
    wait_for(lambda: c_cidr not in b.routes(), 10, "B's route to C's pods withdrawn", 0.25)
    # its pods are evicted after their 2 s toleration and replaced on B
    moved = wait_for(lambda: (r := _ready_by_node(cluster)) and list(r) == [b.node]
                     and len(r[b.node]) == 6 and r, 60, "all 6 replicas Ready on B", 0.5)
    assert set(spread[b.node]) <= set(moved[b.node])
    evicted = [p for p in _pods(cluster) if p["spec"].get("nodeName") == c.node]
    assert evicted and all(p["metadata"].get("deletionTimestamp") for p in evicted), evicted
    assert time.monotonic() - cut < 60
    # the Service's endpoints are B's pods only, and no request fails
    ready_eps = wait_for(lambda: (eps := _endpoint_nodes(cluster)) and set(eps) == {b.node}
                         and eps, 20, "the endpoints to drop C's pods", 0.25)
    assert len(ready_eps[b.node]) == 6
    answered = set(_ask(cluster, url, 30))
    assert answered <= set(moved[b.node]), answered

    # ---- the cable is plugged back in -----------------------------------------------------
    c.link(True)
    restored = time.monotonic()
    back = wait_for(lambda: _condition(n := node(kubectl, c.node), "Ready")
                    .get("status") == "True" and n, 90, "C Ready again", 0.5)
    # the agent writes Ready as soon as it sees the stored Node say Unknown (a status
    # update period, 2 s), not a report interval (60 s) later
    assert time.monotonic() - restored < 40, time.monotonic() - restored
    wait_for(lambda: not {t for t in _taints(node(kubectl, c.node)) if t[0] == UNREACHABLE},
             30, "C's unreachable taints to go", 0.5)
    assert back["spec"]["podCIDR"] == node(kubectl, c.node)["spec"]["podCIDR"]
    wait_for(lambda: c_cidr in b.routes(), 10, "B's route to C's pods restored", 0.25)
    # C's agent, reconnected, finishes the pods evicted from it
    wait_for(lambda: not [p for p in _pods(cluster) if p["spec"].get("nodeName") == c.node],
             90, "the evicted pods on C to be finished", 0.5)
    # ...and takes new ones: the spread puts both new replicas on C
    kubectl("scale", "deployment", "web", "--replicas=8")
    after = wait_for(lambda: (r := _ready_by_node(cluster)) and sum(map(len, r.values())) == 8
                     and r, 90, "8 web pods Ready", 0.5)
    assert len(after.get(c.node, ())) == 2 and len(after[b.node]) == 6, after
    answered = set(wait_for(lambda: set(_ask(cluster, url, 20)) & set(after[c.node]) and
                            _ask(cluster, url, 20), 30, "C's new pods to answer", 0.5))
    assert answered <= set(after[b.node]) | set(after[c.node])


def _endpoint_nodes(cluster: Cluster) -> dict[str, list[str]]:
    """node -> IPs of the Service's ready endpoints (the EndpointSlices)."""
    out = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                          "-o", "json")
    nodes: dict[str, list[str]] = {}
    for s in json.loads(out)["items"]:
        for ep in s.get("endpoints") or ():
            if (ep.get("conditions") or {}).get("ready"):
                nodes.setdefault(ep.get("nodeName", ""), []).extend(ep["addresses"])
    return nodes


def test_agents_ride_out_a_control_plane_restart(cluster: Cluster) -> None:
    """The API server stops and comes back on the same address: the joined agents
    reconnect and re-list on their own, are Ready, and run pods bound after the restart."""
    kubectl, b, c = cluster.kubectl, cluster.hosts["b"], cluster.hosts["c"]
    renewed = {h.node: _lease_renew(cluster, h.node) for h in (b, c)}
    cluster.server.stop()
    cluster.server.start()
    for h in (b, c):
        wait_for(lambda: _lease_renew(cluster, h.node) not in (None, renewed[h.node]), 60,
                 f"{h.key}'s Lease renewed after the restart", 0.5)
        # (the controller manager may have seen the Lease silent for longer than its 5 s
        # grace while the API server was away: the agent then writes Ready again at once)
        wait_for(lambda: _condition(node(kubectl, h.node), "Ready").get("status") == "True",
                 30, f"{h.key} Ready after the restart", 0.5)
        assert h.agent is not None and h.agent.poll() is None
    for h in (b, c):
        kubectl("apply", "-f", "-", input=server_pod(f"after-{h.key}", h.node))
    for h in (b, c):
        wait_for(lambda: pod_ip(kubectl, f"after-{h.key}"), 90, f"after-{h.key} Ready", 0.5)


def _lease_renew(cluster: Cluster, name: str) -> str | None:
    proc = cluster.kubectl.run("get", "lease", "-n", "kube-node-lease", name, "-o",
                               "jsonpath={.spec.renewTime}", check=False)
    return proc.stdout or None if proc.returncode == 0 else None
