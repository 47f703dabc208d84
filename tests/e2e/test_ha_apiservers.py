"""Several API servers on one etcd: allocations, the kubernetes Endpoints, shared PKI.

Service cluster IPs and node ports stay unique across API servers sharing one etcd.

Two `navio apiserver` processes on one etcd start allocating from the same place in their
in-memory allocators; Services created concurrently through both must still all get distinct
cluster IPs and node ports (each value is claimed in the store). A Service deleted through one
server frees its address for the other, and the claims are keys under /registry/ranges/ that
no API list shows.

`default/kubernetes` Endpoints list every live API server's advertised address (the lease
endpoint reconciler): a server's address appears while it runs, leaves at once when it stops,
and within the lease TTL when it is killed. kubectl, given the address of a node's local API
load balancer, keeps working while one server is down.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for
from etcdlab import EtcdCluster
from navio.kubelet.apilb import ApiLoadBalancer
from rawhttp import status_of

SVCS = "/api/v1/namespaces/default/services"


@pytest.fixture(scope="module")
def etcd1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    etcd = EtcdCluster(tmp_path_factory.mktemp("etcd1"), size=1).start()
    yield etcd
    etcd.stop()


@pytest.fixture(scope="module")
def pair(etcd1: EtcdCluster, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[NavioServer, NavioServer]]:
    etcd = etcd1
    base = tmp_path_factory.mktemp("pair")
    args = ("--datastore", etcd.datastore)
    a = NavioServer(base / "a", extra_args=(*args, "--advertise-address", "192.0.2.1"),
                    command="apiserver")
    b = None
    try:
        a.start()
        b = NavioServer(base / "b", extra_args=(*args, "--advertise-address", "192.0.2.2",
                                                "--pki-from", str(base / "a" / "pki")),
                        command="apiserver").start()
        yield a, b
    finally:
        if b is not None:
            b.stop()
        a.stop()


def _service(name: str, node_port: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80, "name": "http"},
                                      {"port": 443, "name": "https"}]}
    if node_port:
        spec["type"] = "NodePort"
    return {"metadata": {"name": name}, "spec": spec}


def test_concurrent_creates_through_two_servers_get_unique_ips_and_ports(
        pair: tuple[NavioServer, NavioServer]) -> None:
    a, b = pair
    jobs = [(a if i % 2 else b, f"race-{i}", i % 3 == 0) for i in range(48)]

    def create(job: tuple[NavioServer, str, bool]) -> tuple[int, dict[str, Any]]:
        server, name, node_port = job
        return status_of(server, "POST", SVCS, _service(name, node_port))
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, jobs))
    assert all(code == 201 for code, _ in results), [r for r in results if r[0] != 201][:3]
    ips = [svc["spec"]["clusterIP"] for _, svc in results]
    assert len(set(ips)) == len(ips), sorted(ips)
    ports = [p["nodePort"] for _, svc in results for p in svc["spec"]["ports"]
             if "nodePort" in p]
    assert len(ports) == 2 * 16
    assert len(set(ports)) == len(ports), sorted(ports)
    # What every server lists afterwards agrees: no two stored Services share a value.
    _, listed = status_of(b, "GET", SVCS)
    stored = [s["spec"]["clusterIP"] for s in listed["items"]]
    assert len(set(stored)) == len(stored)


def test_an_address_taken_through_one_server_is_refused_by_the_other_at_once(
        pair: tuple[NavioServer, NavioServer]) -> None:
    a, b = pair
    code, svc = status_of(a, "POST", SVCS, _service("held-a", True))
    assert code == 201, svc
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    # No waiting for B's watch: the store claim refuses the address immediately.
    code, st = status_of(b, "POST", SVCS, {"metadata": {"name": "held-b"}, "spec": {
        "clusterIP": ip, "ports": [{"port": 80}]}})
    assert code == 422 and "already allocated" in st["message"], st
    code, st = status_of(b, "POST", SVCS, {"metadata": {"name": "held-b"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}})
    assert code == 422 and "already allocated" in st["message"], st


def test_a_service_deleted_through_one_server_frees_its_address_for_the_other(
        pair: tuple[NavioServer, NavioServer]) -> None:
    a, b = pair
    code, svc = status_of(a, "POST", SVCS, _service("freed", True))
    assert code == 201, svc
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert status_of(a, "DELETE", f"{SVCS}/freed")[0] == 200

    def reused() -> bool:
        code, got = status_of(b, "POST", SVCS, {"metadata": {"name": "reuse"}, "spec": {
            "type": "NodePort", "clusterIP": ip, "ports": [{"port": 80, "nodePort": port}]}})
        assert code in (201, 422), got
        return code == 201
    wait_for(reused, 15, "B to reuse the address and port freed through A")
    # Changing the Service to ClusterIP through B frees its node port for A.
    code, got = status_of(b, "GET", f"{SVCS}/reuse")
    got["spec"]["type"] = "ClusterIP"
    got["spec"].pop("externalTrafficPolicy", None)
    for p in got["spec"]["ports"]:
        p.pop("nodePort", None)
    code, got = status_of(b, "PUT", f"{SVCS}/reuse", got)
    assert code == 200, got

    def port_free() -> bool:
        code, got = status_of(a, "POST", SVCS, {"metadata": {"name": "port-again"}, "spec": {
            "type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}})
        assert code in (201, 422), got
        return code == 201
    wait_for(port_free, 15, "A to reuse the node port released through B")


def _members(server: NavioServer) -> set[tuple[str, int]]:
    code, ep = status_of(server, "GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    if code != 200:
        return set()
    return {(addr["ip"], subset["ports"][0]["port"]) for subset in ep.get("subsets") or ()
            for addr in subset.get("addresses") or ()}


def test_kubernetes_endpoints_list_every_live_api_server(
        pair: tuple[NavioServer, NavioServer], etcd1: EtcdCluster, tmp_path: Path) -> None:
    a, b = pair
    both = {("192.0.2.1", a.port), ("192.0.2.2", b.port)}
    wait_for(lambda: _members(b) == both, 30, "both API servers in the kubernetes Endpoints")
    c = NavioServer(tmp_path / "c", command="apiserver", extra_args=(
        "--datastore", etcd1.datastore, "--advertise-address", "192.0.2.3",
        "--pki-from", str(a.data_dir / "pki")))
    try:
        c.start()
        mine = ("192.0.2.3", c.port)
        wait_for(lambda: _members(a) == both | {mine}, 30, "the third server's address")
        # A server that stops removes its own lease and address.
        c.stop()
        wait_for(lambda: _members(a) == both, 10, "the stopped server's address to leave")
        c.start()
        wait_for(lambda: _members(a) == both | {mine}, 30, "the restarted server's address")
        # One killed outright stops renewing: its address leaves within the lease TTL (15s)
        # plus a reconcile period, through the servers still running.
        assert c.proc is not None
        os.kill(c.proc.pid, signal.SIGKILL)
        c.proc.wait(10)
        wait_for(lambda: _members(a) == both, 60, "the killed server's address to expire")
        assert _members(b) == both
    finally:
        c.stop()


def test_a_server_joined_with_pki_from_shares_the_ca_and_signing_key(
        pair: tuple[NavioServer, NavioServer]) -> None:
    a, b = pair
    for name in ("ca.crt", "ca.key", "sa.key", "encryption-config.yaml"):
        assert (b.data_dir / "pki" / name).read_bytes() == \
            (a.data_dir / "pki" / name).read_bytes()
        assert (b.data_dir / "pki" / name).stat().st_mode & 0o077 == 0
    # Each server issued its own serving certificate and admin credentials from the shared CA.
    assert (b.data_dir / "pki" / "apiserver.key").read_bytes() != \
        (a.data_dir / "pki" / "apiserver.key").read_bytes()
    # A's admin certificate is accepted by B.
    code, _ = status_of(NavioServer(a.data_dir, port=b.port), "GET", "/api/v1/namespaces")
    assert code == 200
    # A service-account token issued by A authenticates at B (one signing key).
    assert status_of(a, "POST", "/api/v1/namespaces/default/serviceaccounts",
                     {"metadata": {"name": "joined"}})[0] == 201
    code, tr = status_of(a, "POST",
                         "/api/v1/namespaces/default/serviceaccounts/joined/token",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": 600}})
    assert code == 201, tr
    ctx = ssl.create_default_context(cafile=str(a.data_dir / "pki" / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", b.port, context=ctx, timeout=30)
    try:
        conn.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     body=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "SelfSubjectReview"}),
                     headers={"Authorization": f"Bearer {tr['status']['token']}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        review = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 201, review
    assert review["status"]["userInfo"]["username"] == \
        "system:serviceaccount:default:joined"


def test_kubectl_fails_over_through_a_nodes_local_api_load_balancer(
        pair: tuple[NavioServer, NavioServer], tmp_path: Path) -> None:
    """Issue 10: kubectl (one `server` per kubeconfig) fails over the way k3s users do, through
    the API load balancer an agent runs on 127.0.0.1 for its `--server A,B` (apilb.py)."""
    a, b = pair
    loop = asyncio.new_event_loop()
    lb = ApiLoadBalancer([("127.0.0.1", a.port), ("127.0.0.1", b.port)], port=0)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        url = asyncio.run_coroutine_threadsafe(lb.start(), loop).result(10)
        config = yaml.safe_load(a.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = url
        kubeconfig = tmp_path / "via-lb.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        kubeconfig.chmod(0o600)
        kubectl = Kubectl(kubeconfig, tmp_path / "home")
        assert "default" in kubectl("get", "namespaces", "-o", "name")
        a.stop()
        try:
            # every new connection skips the dead server: kubectl keeps working through B
            for _ in range(3):
                assert "default" in kubectl("get", "namespaces", "-o", "name")
            kubectl("create", "configmap", "through-b", "-n", "default")
        finally:
            a.start()
        assert status_of(a, "GET", "/api/v1/namespaces/default/configmaps/through-b")[0] == 200
    finally:
        asyncio.run_coroutine_threadsafe(lb.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
