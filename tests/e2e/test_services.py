"""Services and DNS on a whole `navio server` (issue 8's "Shown by"), driven by the real kubectl.

A Deployment of 3 pods each answering with its name, behind Services; clients run inside pods
(`kubectl exec`), so every request goes pod → cluster DNS (10.43.0.10, node-local) → cluster
IP → the proxy's rules in the node → a pod. The local node's pods live in a network namespace
this module creates with no route out (services_lab.py), so no packet leaves the machine.
Every test runs twice: with the proxy's nftables backend and with its iptables fallback.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import wait_for
from services_lab import HTTP_CLIENT, ServicesLab, web_deployment

from navio.runtime import namespaces as ns

ROOT = Path(__file__).resolve().parents[2]
WEB_URL_HOST = "web.default.svc.cluster.local"

CLIENT_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "client", "namespace": "default"},
    "spec": {"terminationGracePeriodSeconds": 1,
             "containers": [{"name": "c", "image": "python",
                             "command": ["python3", "-c", "import time; time.sleep(3600)"]}]}}


def service(name: str, *, selector: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": selector},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                "protocol": "TCP"}], **spec}}


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ServicesLab]:
    mode = str(request.param)
    lab = ServicesLab(tmp_path_factory.mktemp(f"services-{mode}"), tag=mode[:3],
                      proxy_mode=mode)
    try:
        lab.start()
        lab.apply(web_deployment(), CLIENT_POD, service("web"),
                  service("web-headless", clusterIP="None"),
                  service("web-np", type="NodePort"),
                  service("web-sticky", sessionAffinity="ClientIP"))
        k = lab.kubectl
        assert k is not None
        k("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
        k("wait", "--for=condition=Ready", "pod/client", "--timeout=90s", timeout=100)
        yield lab
    finally:
        lab.close()


def web_pods(lab: ServicesLab) -> dict[str, str]:
    """Ready, not terminating web pods: name → pod IP."""
    assert lab.kubectl is not None
    pods = lab.kubectl.json("get", "pods", "-l", "app=web")["items"]
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", ()))}


def wait_web_ready(lab: ServicesLab, n: int = 3) -> dict[str, str]:
    return wait_for(lambda: (p := web_pods(lab)) and len(p) == n and p, 120,
                    f"{n} ready web pods")


def test_pods_get_cluster_dns_and_kube_dns_service_exists(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    svc = k.json("get", "service", "kube-dns", "-n", "kube-system")
    assert svc["spec"]["clusterIP"] == "10.43.0.10"
    assert {(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]} == {
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")}
    resolv = k("exec", "client", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.43.0.10" in resolv, resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    events = k("get", "events", "--field-selector", "reason=MissingClusterDNS", "-o", "name")
    assert events.strip() == ""


def test_300_requests_through_the_service_name_reach_all_replicas(lab: ServicesLab) -> None:
    pods = wait_web_ready(lab)
    result = lab.exec_python("client", HTTP_CLIENT, WEB_URL_HOST, "80", "300")
    assert result["errors"] == [], result["errors"][:5]
    assert sum(result["counts"].values()) == 300
    assert set(result["counts"]) == set(pods), result["counts"]
    # random equal-probability choice: each of 3 gets far more than a handful of 300
    assert min(result["counts"].values()) >= 50, result["counts"]


def test_rolling_update_loses_no_request(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    before = set(wait_web_ready(lab))
    client = lab.exec_popen("client", HTTP_CLIENT, WEB_URL_HOST, "80", "600", "0.02")
    try:
        time.sleep(1.0)          # the client is looping before the rollout starts
        k("set", "env", "deployment/web", "VERSION=2")
        k("rollout", "status", "deployment/web", "--timeout=180s", timeout=190)
        out, err = client.communicate(timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
    assert client.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    after = set(wait_web_ready(lab))
    assert result["errors"] == [], result["errors"][:5]
    assert sum(result["counts"].values()) == 600
    assert after.isdisjoint(before), (before, after)
    # the loop ran across the rollout: it saw old pods and new ones
    assert set(result["counts"]) & before and set(result["counts"]) & after, result["counts"]


def _pod_answers_directly(pod_ip: str) -> bool:
    """Whether the pod's own process still answers on its IP (asked from inside the pod
    network: a socket in the node namespace)."""
    try:
        sock = ns.socket_in_netns(f"/run/netns/{LAB_NODE_NETNS[0]}")
        with sock:
            sock.settimeout(2)
            sock.connect((pod_ip, 8080))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return b"200 OK" in sock.recv(4096)
    except OSError:
        return False


LAB_NODE_NETNS: list[str] = []


def test_a_deleted_pod_leaves_rotation_before_its_process_exits(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    LAB_NODE_NETNS[:] = [lab.node_netns]
    pods = wait_web_ready(lab)
    victim, victim_ip = sorted(pods.items())[0]
    k("delete", "pod", victim, "--wait=false")
    started = time.monotonic()
    # The endpoint leaves rotation within a couple of seconds: 60 requests in a row miss it...
    deadline = started + 10
    while True:
        result = lab.exec_python("client", HTTP_CLIENT, WEB_URL_HOST, "80", "60")
        assert result["errors"] == [], result["errors"][:5]
        if victim not in result["counts"]:
            break
        assert time.monotonic() < deadline, f"{victim} still in rotation: {result['counts']}"
    # ... while its process still serves (it exits 6 s after SIGTERM).
    assert _pod_answers_directly(victim_ip), "the victim had already exited"
    assert time.monotonic() - started < 6
    wait_web_ready(lab)


def test_node_port_is_reachable_on_the_node_address(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    pods = wait_web_ready(lab)
    node_port = int(k("get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"))
    assert 30000 <= node_port <= 32767
    # the node's address on the pod network: the bridge gateway of the node namespace
    node_ip = "10.42.0.1"
    result = lab.exec_python("client", HTTP_CLIENT, node_ip, str(node_port), "60")
    assert result["errors"] == [], result["errors"][:5]
    assert set(result["counts"]) == set(pods), result["counts"]
    seen = set()
    for _ in range(30):                 # and from the node itself
        sock = ns.socket_in_netns(f"/run/netns/{lab.node_netns}")
        with sock:
            sock.settimeout(3)
            sock.connect((node_ip, node_port))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        seen.add(data.split(b"\r\n\r\n", 1)[1].decode())
    assert seen <= set(pods) and len(seen) >= 2, seen


DNS_QUERIES = r"""
import json, dns.resolver, dns.reversename, dns.rdatatype
r = dns.resolver.Resolver()          # the pod's /etc/resolv.conf: 10.43.0.10
out = {"nameservers": r.nameservers}
def ask(name, kind):
    try:
        return sorted(rr.to_text() for rr in r.resolve(name, kind, search=False))
    except Exception as exc:
        return [type(exc).__name__]
out["a"] = ask("web.default.svc.cluster.local.", "A")
out["headless"] = ask("web-headless.default.svc.cluster.local.", "A")
out["srv"] = ask("_http._tcp.web.default.svc.cluster.local.", "SRV")
out["headless_srv"] = ask("_http._tcp.web-headless.default.svc.cluster.local.", "SRV")
out["ptr"] = ask(dns.reversename.from_address(out["a"][0]).to_text(), "PTR")
out["missing"] = ask("nope.default.svc.cluster.local.", "A")
tcp = dns.resolver.Resolver(); tcp.use_edns(0, 0, 1232)
out["a_tcp"] = sorted(rr.to_text() for rr in tcp.resolve("web.default.svc.cluster.local.", "A",
                                                           tcp=True, search=False))
print(json.dumps(out))
"""


def test_dns_answers_a_srv_ptr_and_headless_records(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    pods = wait_web_ready(lab)
    cluster_ip = k("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

    def answers() -> Any:
        out = lab.exec_python("client", DNS_QUERIES)
        return out if sorted(out["headless"]) == sorted(pods.values()) else None
    out = wait_for(answers, 15, "the headless service to list the ready pods")
    assert out["nameservers"] == ["10.43.0.10"]
    assert out["a"] == [cluster_ip] == out["a_tcp"]
    assert out["srv"] == ["0 100 80 web.default.svc.cluster.local."]
    # headless: one SRV per pod, with the pod's port and a per-pod name (its dashed IP)
    assert sorted(out["headless_srv"]) == sorted(
        f"0 33 8080 {ip.replace('.', '-')}.web-headless.default.svc.cluster.local."
        for ip in pods.values()), out["headless_srv"]
    assert out["ptr"] == ["web.default.svc.cluster.local."]
    assert out["missing"] == ["NXDOMAIN"]
    # the node answers too: the DNS Service address from the node's own namespace
    import dns.message
    import dns.query
    sock = ns.socket_in_netns(f"/run/netns/{lab.node_netns}", kind=2)   # SOCK_DGRAM
    with sock:
        q = dns.message.make_query("web.default.svc.cluster.local.", "A")
        reply = dns.query.udp(q, "10.43.0.10", timeout=3, sock=sock)
    assert [rr.to_text() for rrset in reply.answer for rr in rrset] == [cluster_ip]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.43.0.0/16")


def test_client_ip_affinity_sends_one_client_to_one_pod(lab: ServicesLab) -> None:
    wait_web_ready(lab)
    result = lab.exec_python("client", HTTP_CLIENT, "web-sticky", "80", "40")
    assert result["errors"] == [], result["errors"][:5]
    assert len(result["counts"]) == 1, result["counts"]
    plain = lab.exec_python("client", HTTP_CLIENT, "web", "80", "40")
    assert len(plain["counts"]) > 1, plain["counts"]     # without affinity: spread


def test_navio_proxy_rules_shows_the_routing_state(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    pods = wait_web_ready(lab)
    cluster_ip = k("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

    def rules() -> str | None:
        out = subprocess.run(
            [sys.executable, "-m", "navio.cli.main", "proxy", "rules", "--root-dir",
             str(lab.agent_root), "--live", "--netns", lab.node_netns],
            capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        line = next((ln for ln in out.stdout.splitlines()
                     if ln.startswith("default/web:http ")), "")
        return out.stdout if all(f"{ip}:8080" in line for ip in pods.values()) else None
    text = wait_for(rules, 10, "the proxy state to list the web pods")
    assert f"mode {lab.proxy_mode}" in text
    assert f"{cluster_ip}:80/TCP" in text
    assert "default/web-sticky:http" in text and "ClientIP 10800s" in text
    assert "kube-dns" not in text                 # served by the node-local DNS
    # the kernel's own listing (--live)
    live = "table ip navio-proxy" if lab.proxy_mode == "nftables" else ":NAVIO-SERVICES"
    assert live in text
