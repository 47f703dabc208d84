"""Issue #10: `navio datastore migrate --from sqlite:PATH --to etcd://…` moves a cluster's
state; the same server, restarted on etcd, serves every object (secrets still decrypt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cluster import Kubectl, NavioServer
from etcdlab import EtcdCluster


def _state(kubectl: Kubectl) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], Any] = {}
    for kind in ("configmaps", "secrets", "services", "namespaces", "clusterroles"):
        for o in kubectl.json("get", kind, "-A")["items"]:
            meta = o["metadata"]
            if kind == "configmaps" and meta["name"] == "kube-root-ca.crt":
                continue
            out[(kind, meta.get("namespace", ""), meta["name"])] = (
                o.get("data"), o.get("spec"), meta["uid"], meta.get("labels"))
    return out


def test_migrate_sqlite_to_etcd(tmp_path: Path) -> None:
    server = NavioServer(tmp_path / "data", datastore="sqlite",
                         extra_args=("--no-agent", "--disable", "controller-manager")).start()
    kubectl = Kubectl(server.kubeconfig, tmp_path / "home")
    etcd = EtcdCluster(tmp_path / "etcd").start()
    try:
        kubectl("create", "namespace", "moved")
        for i in range(20):
            kubectl("create", "configmap", f"cm{i}", "-n", "moved", f"--from-literal=i={i}")
        kubectl("create", "secret", "generic", "s", "-n", "moved", "--from-literal=pw=hunter2")
        kubectl("create", "service", "clusterip", "web", "-n", "moved", "--tcp=80:8080")
        before = _state(kubectl)
        server.stop()

        db = tmp_path / "data" / "db" / "state.db"
        done = subprocess.run([sys.executable, "-m", "navio.cli.main", "datastore", "migrate",
                               "--from", f"sqlite:{db}", "--to", etcd.datastore],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "migrated" in done.stdout

        server.extra_args = (*server.extra_args, "--datastore", etcd.datastore)
        server.start()
        after = _state(kubectl)
        assert after == before
        assert kubectl("get", "secret", "s", "-n", "moved",
                       "-o", "jsonpath={.data.pw}").strip() == "aHVudGVyMg=="
        # resourceVersions are etcd's revisions now: the key's mod_revision, in kube's layout.
        cm = kubectl.json("get", "cm", "cm0", "-n", "moved")
        raw = subprocess.run(["/usr/bin/etcdctl", "--endpoints", etcd.members[0].client_url,
                              "get", "/registry/configmaps/moved/cm0", "-w", "json"],
                             capture_output=True, text=True, timeout=10, check=True,
                             env={**os.environ, "ETCDCTL_API": "3"}).stdout
        assert cm["metadata"]["resourceVersion"] == str(json.loads(raw)["kvs"][0]["mod_revision"])
        # The cluster works on: writes, and the migrated objects can be updated.
        kubectl("label", "cm", "cm0", "-n", "moved", "after=yes")
        kubectl("create", "configmap", "new", "-n", "moved")
        # Secrets are encrypted at rest in etcd too: the migrated one and a new one.
        kubectl("create", "secret", "generic", "s2", "-n", "moved", "--from-literal=pw=swordfish")
        for name, plain in (("s", b"hunter2"), ("s2", b"swordfish")):
            raw = subprocess.run(["/usr/bin/etcdctl", "--endpoints",
                                  etcd.members[0].client_url, "get",
                                  f"/registry/secrets/moved/{name}", "--print-value-only"],
                                 capture_output=True, timeout=10, check=True,
                                 env={**os.environ, "ETCDCTL_API": "3"}).stdout
            assert raw.startswith(b"k8s:enc:aesgcm:v1:") and plain not in raw
            assert b"aHVudGVy" not in raw and b"c3dvcmRmaXNo" not in raw
        # Migrating into a datastore that holds the objects already is refused.
        server.stop()
        again = subprocess.run([sys.executable, "-m", "navio.cli.main", "datastore",
                                "migrate", "--from", f"sqlite:{db}", "--to", etcd.datastore],
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "exists in the target already" in again.stderr
    finally:
        server.stop()
        etcd.stop()
