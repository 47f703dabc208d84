"""Issue 3, secrets at rest: encrypted in the store file, readable through the API, key
rotation without a restart, and a kill -9 in the middle of a rotation loses nothing."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

MARKER = "at-rest-marker-7f3a9c"


def raw_store(data: Path) -> bytes:
    """Every byte of the SQLite database: main file, WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted((data / "db").glob("state.db*")))


def key_names(data: Path) -> list[str]:
    doc = yaml.safe_load((data / "pki" / "encryption-config.yaml").read_text())
    return [k["name"] for p in doc["resources"][0]["providers"] if "aesgcm" in p
            for k in p["aesgcm"]["keys"]]


def rotate(data: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "navio.cli.main", "secrets", "rotate-key",
                             "--data-dir", str(data), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NavioServer, Kubectl]]:
    base = tmp_path_factory.mktemp("secrets-at-rest")
    srv = NavioServer(base / "data").start()
    try:
        yield srv, Kubectl(srv.kubeconfig, base / "home")
    finally:
        srv.stop()


def test_secret_value_is_not_in_the_store_file(cluster: tuple[NavioServer, Kubectl]) -> None:
    srv, kubectl = cluster
    kubectl("create", "secret", "generic", "at-rest", f"--from-literal=password={MARKER}")
    kubectl("create", "configmap", "control", f"--from-literal=value={MARKER}-cm")
    doc = yaml.safe_load(kubectl("get", "secret", "at-rest", "-o", "yaml"))
    assert base64.b64decode(doc["data"]["password"]).decode() == MARKER
    raw = raw_store(srv.data_dir)
    assert f"{MARKER}-cm".encode() in raw            # the configmap: the check can see text
    assert MARKER.encode() not in raw.replace(f"{MARKER}-cm".encode(), b"")
    assert base64.b64encode(MARKER.encode()) not in raw
    assert b"k8s:enc:aesgcm:v1:key1:" in raw
    mode = (srv.data_dir / "pki" / "encryption-config.yaml").stat().st_mode & 0o777
    assert mode == 0o600


def test_rotate_key_reencrypts_every_secret_without_restart(
        cluster: tuple[NavioServer, Kubectl]) -> None:
    srv, kubectl = cluster
    for i in range(20):
        kubectl("create", "secret", "generic", f"rot-{i}", f"--from-literal=v={MARKER}-{i}")
    before = key_names(srv.data_dir)
    proc = rotate(srv.data_dir)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = key_names(srv.data_dir)
    assert len(after) == 1 and after[0] not in before, (before, after)
    from navio.cli.secrets import stale_in_file
    from navio.storage.encryptionconfig import load_config
    config = load_config(srv.data_dir / "pki" / "encryption-config.yaml")
    assert stale_in_file(srv.data_dir / "db" / "state.db", config) == 0
    for i in range(20):
        value = kubectl("get", "secret", f"rot-{i}", "-o", "jsonpath={.data.v}")
        assert base64.b64decode(value).decode() == f"{MARKER}-{i}"
    # New writes use the new key.
    kubectl("create", "secret", "generic", "after-rotation", "--from-literal=v=x")
    assert f"k8s:enc:aesgcm:v1:{after[0]}:".encode() in raw_store(srv.data_dir)


def test_kill_9_during_rotation_loses_nothing(tmp_path: Path) -> None:
    srv = NavioServer(tmp_path / "data").start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path / "home")
    try:
        n = 150
        items = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"k9-{i}"},
                  "stringData": {"v": f"{MARKER}-{i}"}} for i in range(n)]
        kubectl("create", "-f", "-", input=yaml.safe_dump_all(items), timeout=120)
        proc = rotate(srv.data_dir, "--timeout", "120")
        wait_for(lambda: len(key_names(srv.data_dir)) == 2, 30, "the new key to be written")
        srv.stop(signal.SIGKILL)
        srv.start()     # same data dir and port; it finishes the re-encryption on start
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err
        assert len(key_names(srv.data_dir)) == 1
        got = json.loads(kubectl("get", "secrets", "-o", "json"))["items"]
        values = {s["metadata"]["name"]: base64.b64decode(s["data"]["v"]).decode()
                  for s in got if s["metadata"]["name"].startswith("k9-")}
        assert values == {f"k9-{i}": f"{MARKER}-{i}" for i in range(n)}
    finally:
        srv.stop()


def test_plaintext_secrets_from_before_encryption_are_migrated(tmp_path: Path) -> None:
    """A store written without encryption (an older navio) is read and then encrypted."""
    import asyncio

    from navio.storage.sqlite import SQLiteStore

    data = tmp_path / "data"

    async def write_plain() -> None:
        store = await SQLiteStore.open(data / "db" / "state.db")
        obj = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "legacy", "namespace": "default",
                            "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                            "creationTimestamp": "2026-01-01T00:00:00Z"},
               "data": {"v": base64.b64encode(MARKER.encode()).decode()}}
        await store.create("/registry/core/secrets/default/legacy", json.dumps(obj).encode())
        await store.close()
    data.mkdir(mode=0o700)
    asyncio.run(write_plain())
    assert base64.b64encode(MARKER.encode()) in raw_store(data)
    srv = NavioServer(data).start()
    try:
        kubectl = Kubectl(srv.kubeconfig, tmp_path / "home")
        value = kubectl("get", "secret", "legacy", "-o", "jsonpath={.data.v}")
        assert base64.b64decode(value).decode() == MARKER
        from navio.cli.secrets import stale_in_file
        from navio.storage.encryptionconfig import load_config
        config = load_config(data / "pki" / "encryption-config.yaml")
        wait_for(lambda: stale_in_file(data / "db" / "state.db", config) == 0, 30,
                 "the legacy secret to be encrypted")
    finally:
        srv.stop()


def test_rotate_key_with_the_server_stopped(tmp_path: Path) -> None:
    srv = NavioServer(tmp_path / "data").start()
    kubectl = Kubectl(srv.kubeconfig, tmp_path / "home")
    try:
        kubectl("create", "secret", "generic", "offline", f"--from-literal=v={MARKER}")
    finally:
        srv.stop()
    proc = rotate(srv.data_dir)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "no server was running" in out, err
    assert key_names(srv.data_dir) == ["key2"]
    assert b"k8s:enc:aesgcm:v1:key2:" in raw_store(srv.data_dir)
    srv.start()
    try:
        value = kubectl("get", "secret", "offline", "-o", "jsonpath={.data.v}")
        assert base64.b64decode(value).decode() == MARKER
    finally:
        srv.stop()
