"""Issue #10: an HA control plane on a real 3-member etcd cluster (loopback ports).

Two `navio apiserver` processes share one etcd: what is written through one is seen through
the other, by reads and by watches opened there, within a second (each server's watch cache is
fed by etcd's watch). Two `navio scheduler` replicas elect a leader on a kube-system Lease; when
the leader is killed the standby binds pods; the same for two controller managers. Losing one etcd member of three keeps writes
working; losing two fails them with a 500 Status carrying etcd's error, without losing data,
and writes work again once a member returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from cluster import Kubectl, NavioServer, wait_for
from etcdlab import EtcdCluster
from rawhttp import status_of


@pytest.fixture(scope="module")
def etcd3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd3"), size=3).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def plane(etcd3: EtcdCluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[NavioServer, NavioServer]]:
    base = tmp_path_factory.mktemp("plane")
    args = ("--datastore", etcd3.datastore)
    a = NavioServer(base / "a", extra_args=args, command="apiserver").start()
    # The second API server shares the cluster's PKI (kubeadm copies it the same way).
    (base / "b").mkdir(mode=0o700)
    shutil.copytree(base / "a" / "pki", base / "b" / "pki")
    b = NavioServer(base / "b", extra_args=args, command="apiserver")
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def _ctx(server: NavioServer) -> ssl.SSLContext:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _watch(server: NavioServer, path: str, events: "queue.Queue[tuple[float, Any]]"
           ) -> Callable[[], None]:
    """Open a watch on `path`; a thread puts (arrival time, event) on `events`. Returns what
    ends it: the socket is shut down first (closing the connection alone would wait for the
    reading thread until the server ends the watch)."""
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=_ctx(server),
                                       timeout=60)
    conn.request("GET", f"{path}?watch=true&timeoutSeconds=30&allowWatchBookmarks=false")
    sock = conn.sock
    resp = conn.getresponse()
    assert resp.status == 200

    def pump() -> None:
        try:
            for line in resp:
                if line.strip():
                    events.put((time.monotonic(), json.loads(line)))
        except Exception:   # noqa: BLE001 - the test closed the connection under us
            pass
    thread = threading.Thread(target=pump, daemon=True)
    thread.start()

    def close() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        thread.join(10)
        resp.close()
        conn.close()
        sock.close()
    return close


def test_two_api_servers_share_objects_and_watches(
        plane: tuple[NavioServer, NavioServer]) -> None:
    a, b = plane
    path = "/api/v1/namespaces/default/configmaps"
    events: queue.Queue[tuple[float, Any]] = queue.Queue()
    close_watch = _watch(b, path, events)
    try:
        for i in range(5):
            code, made = status_of(a, "POST", path, {"metadata": {"name": f"ha-{i}"},
                                                     "data": {"i": str(i)}})
            acked = time.monotonic()
            assert code == 201, made
            # Read through B: consistent reads wait for B's cache to reach etcd's revision.
            code, got = status_of(b, "GET", f"{path}/ha-{i}")
            assert code == 200 and got["data"] == {"i": str(i)}
            assert got["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
            while True:
                arrived, ev = events.get(timeout=5)
                if ev["object"]["metadata"]["name"] == f"ha-{i}":
                    break
            assert ev["type"] == "ADDED"
            assert arrived - acked < 1.0, f"watch on B saw ha-{i} {arrived - acked:.2f}s late"
        # Writes through B reach A as well, deletes included.
        code, _ = status_of(b, "DELETE", f"{path}/ha-0")
        assert code == 200
        assert status_of(a, "GET", f"{path}/ha-0")[0] == 404
        code, lst = status_of(a, "GET", path)
        assert {o["metadata"]["name"] for o in lst["items"]} >= {f"ha-{i}" for i in range(1, 5)}
        # A cluster IP taken through A is known to B's allocator.
        svcs = "/api/v1/namespaces/default/services"
        code, svc = status_of(a, "POST", svcs, {"metadata": {"name": "ha-svc"}, "spec": {
            "ports": [{"port": 80}]}})
        assert code == 201, svc
        ip = svc["spec"]["clusterIP"]

        def refused() -> bool:
            code, st = status_of(b, "POST", svcs, {"metadata": {"name": "ha-svc2"}, "spec": {
                "clusterIP": ip, "ports": [{"port": 80}]}})
            if code == 201:   # not seen yet: undo and retry
                status_of(b, "DELETE", f"{svcs}/ha-svc2")
                return False
            return code == 422 and "already allocated" in st["message"]
        wait_for(refused, 10, "B to know the cluster IP allocated through A")
    finally:
        close_watch()


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name}}}


def _node_status() -> dict[str, Any]:
    cap = {"cpu": "8", "memory": "16Gi", "pods": "110"}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {"capacity": cap, "allocatable": cap, "conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "message": "ready", "lastHeartbeatTime": now, "lastTransitionTime": now}]}}


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def _bound(server: NavioServer, name: str) -> str | None:
    code, pod = status_of(server, "GET", f"/api/v1/namespaces/default/pods/{name}")
    return pod.get("spec", {}).get("nodeName") if code == 200 else None


def _replicaset(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def _rs_pods(server: NavioServer, name: str) -> int:
    _, lst = status_of(server, "GET", f"/api/v1/namespaces/default/pods?labelSelector=app%3D{name}")
    return len(lst.get("items", []))


def _act(component: str, server: NavioServer, name: str) -> None:
    """Give the component something to do; wait_for then checks it was done."""
    if component == "scheduler":
        assert status_of(server, "POST", "/api/v1/namespaces/default/pods", _pod(name))[0] == 201
    else:
        assert status_of(server, "POST", "/apis/apps/v1/namespaces/default/replicasets",
                         _replicaset(name))[0] == 201


def _done(component: str, server: NavioServer, name: str) -> bool:
    return bool(_bound(server, name)) if component == "scheduler" else \
        _rs_pods(server, name) == 1


@pytest.mark.parametrize("component,lease_name", [("scheduler", "kube-scheduler"), (
    "controller-manager", "kube-controller-manager")])
def test_standby_takes_over_from_a_killed_leader(
        plane: tuple[NavioServer, NavioServer], tmp_path: Path, component: str,
        lease_name: str) -> None:
    a, b = plane
    if component == "scheduler":
        code, _ = status_of(a, "POST", "/api/v1/nodes", _node("ha-node"))
        assert code in (201, 409)
        code, d = status_of(a, "PATCH", "/api/v1/nodes/ha-node/status", _node_status(),
                            {"Content-Type": "application/merge-patch+json"})
        assert code == 200, d
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"{component}-{i}.log" for i in range(2)]
    tag = component[:5]
    try:
        for i, server in enumerate((a, b)):     # one replica talks to each API server
            with open(logs[i], "wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "navio.cli.main", component, "--kubeconfig",
                     str(server.kubeconfig)], stdout=log, stderr=log))

        def leader() -> int | None:
            for i, path in enumerate(logs):
                if "acquired leader lease" in path.read_text(errors="replace"):
                    return i
            return None
        wait_for(lambda: leader() is not None, 60, f"a {component} to lead")
        first = leader()
        assert first is not None
        code, lease = status_of(a, "GET", "/apis/coordination.k8s.io/v1/namespaces/"
                                          f"kube-system/leases/{lease_name}")
        assert code == 200 and lease["spec"]["leaseDurationSeconds"] == 15
        _act(component, a, f"{tag}-before")
        wait_for(lambda: _done(component, a, f"{tag}-before"), 30, f"the leading {component}")
        # Only the leader acts: the standby has not acquired the lease.
        assert "acquired leader lease" not in logs[1 - first].read_text(errors="replace")

        procs[first].send_signal(signal.SIGKILL)
        procs[first].wait(10)
        killed = time.monotonic()
        _act(component, a, f"{tag}-after")
        wait_for(lambda: _done(component, a, f"{tag}-after"), 40,
                 f"the standby {component} to take over")
        took = time.monotonic() - killed
        print(f"standby {component} acted {took:.1f}s after the leader was killed")
        assert took < 30, took   # lease 15 s + retry 2 s (+ jitter), on a loaded machine
        assert "acquired leader lease" in logs[1 - first].read_text(errors="replace")
        code, lease = status_of(a, "GET", "/apis/coordination.k8s.io/v1/namespaces/"
                                          f"kube-system/leases/{lease_name}")
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def _create(server: NavioServer, name: str) -> tuple[int, dict[str, Any]]:
    return status_of(server, "POST", "/api/v1/namespaces/default/configmaps",
                     {"metadata": {"name": name}, "data": {"k": name}})


def test_etcd_quorum_loss_fails_writes_cleanly_and_recovers(
        plane: tuple[NavioServer, NavioServer], etcd3: EtcdCluster) -> None:
    a, _ = plane
    assert _create(a, "q-before")[0] == 201
    m0, m1, m2 = etcd3.members
    try:
        etcd3.stop_member(m2)
        # One member of three down: the cluster keeps a quorum and accepts writes.
        wait_for(lambda: _create(a, f"q-one-down-{time.monotonic_ns()}")[0] == 201, 30,
                 "a write with one etcd member down")
        assert _create(a, "q-one-down")[0] == 201
        etcd3.stop_member(m1)
        # Two down: no quorum. The write fails with a 500 Status carrying etcd's error.
        code, status = _create(a, "q-no-quorum")
        assert code == 500, status
        assert status["kind"] == "Status" and status["status"] == "Failure"
        assert status["code"] == 500
        assert status["message"] and ("etcdserver" in status["message"]
                                      or "deadline" in status["message"]
                                      or "etcd unavailable" in status["message"]), status
        # A member returns: quorum again, writes work again, nothing acknowledged was lost.
        etcd3.start_member(m1)
        wait_for(lambda: _create(a, f"q-back-{time.monotonic_ns()}")[0] == 201, 60,
                 "writes to work again once a member returned")
        code, lst = status_of(a, "GET", "/api/v1/namespaces/default/configmaps")
        names = {o["metadata"]["name"] for o in lst["items"]}
        assert {"q-before", "q-one-down"} <= names
    finally:
        for m in (m1, m2):
            if m.proc is None:
                etcd3.start_member(m)


def test_clients_fail_over_between_api_servers(plane: tuple[NavioServer, NavioServer],
                                               tmp_path: Path) -> None:
    """A kubeconfig names one server (kube's format; kubectl uses it) and lists every API
    server in its `navio.dev/servers` extension; navio's client fails over between them."""
    from navio.client import CONFIGMAPS, Client
    from navio.pki.certs import CertPair
    from navio.pki.kubeconfig import write_kubeconfig
    a, b = plane
    pki = a.data_dir / "pki"
    kc = tmp_path / "ha.kubeconfig"
    write_kubeconfig(kc, server=b.url, ca_cert=pki / "ca.crt", user="kubernetes-admin",
                     client=CertPair(pki / "admin.crt", pki / "admin.key"),
                     servers=(b.url, a.url))
    kubectl = Kubectl(kc, tmp_path / "home")
    assert "kubernetes" in kubectl("get", "svc", "-n", "default")   # kubectl reads the file

    async def names() -> set[str]:
        async with Client.from_kubeconfig(kc, component="ha-test") as client:
            lst = await client.list(CONFIGMAPS, "default")
            return {o["metadata"]["name"] for o in lst["items"]}
    assert "ha-1" in asyncio.run(names())
    b.stop()                                   # one API server gone: the client uses the other
    assert "ha-1" in asyncio.run(names())
    assert kubectl.run("get", "cm", "-n", "default", check=False).returncode != 0
