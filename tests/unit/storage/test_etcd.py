"""EtcdStore against a real etcd: the Store contract as SQLiteStore keeps it, kube's key
layout, and migration from SQLite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from etcdlab import EtcdCluster  # noqa: E402

from navio.cli.datastore import migrate  # noqa: E402
from navio.storage.etcd import EtcdStore  # noqa: E402
from navio.storage.etcd_client import parse_datastore  # noqa: E402
from navio.storage.etcd_keys import kube_layout  # noqa: E402
from navio.storage.protocol import (Compacted, KeyExists, KeyNotFound,  # noqa: E402
                                    RevisionConflict, StorageError, StoreEvent, WatchBatch)
from navio.storage.sqlite import FutureRevision, SQLiteStore  # noqa: E402

_n = iter(range(10**6))


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def store(etcd: EtcdCluster) -> AsyncIterator[EtcdStore]:
    s = await EtcdStore.open(parse_datastore(etcd.datastore))
    yield s
    await s.close()


@pytest.fixture
def ns() -> str:
    return f"ns{next(_n)}-{os.getpid()}"


def _etcdctl(etcd: EtcdCluster, *args: str) -> str:
    return subprocess.run(["/usr/bin/etcdctl", "--endpoints", etcd.members[0].client_url,
                           *args], capture_output=True, text=True, timeout=10, check=True,
                          env={**os.environ, "ETCDCTL_API": "3"}).stdout


def test_kube_key_layout_round_trips() -> None:
    layout = kube_layout()
    cases = {
        "/registry/core/pods/ns/p": "/registry/pods/ns/p",
        "/registry/core/services/ns/s": "/registry/services/specs/ns/s",
        "/registry/core/endpoints/ns/s": "/registry/services/endpoints/ns/s",
        "/registry/core/nodes/n1": "/registry/minions/n1",
        "/registry/apps/deployments/ns/d": "/registry/deployments/ns/d",
        "/registry/core/events/ns/e": "/registry/events/ns/e",
        "/registry/rbac.authorization.k8s.io/clusterroles/admin":
            "/registry/clusterroles/admin",
        "/registry/coordination.k8s.io/leases/kube-system/x": "/registry/leases/kube-system/x",
        # custom resources and navio's own groups keep their group, as kube stores CRs
        "/registry/example.com/widgets/ns/w": "/registry/example.com/widgets/ns/w",
        "/registry/scheduling.navio.dev/podgroups/ns/g":
            "/registry/scheduling.navio.dev/podgroups/ns/g",
    }
    for navio_key, etcd_key in cases.items():
        assert layout.to_etcd(navio_key) == etcd_key
        assert layout.to_navio(etcd_key) == navio_key
    assert layout.to_etcd("/registry/core/services/") == "/registry/services/specs/"


async def test_guarded_writes(store: EtcdStore, ns: str, etcd: EtcdCluster) -> None:
    key = f"/registry/core/configmaps/{ns}/a"
    rev = await store.create(key, b"v1")
    with pytest.raises(KeyExists):
        await store.create(key, b"again")
    _, kv = await store.get(key)
    assert kv is not None and kv.value == b"v1" and kv.mod_revision == kv.create_revision == rev
    rev2 = await store.update(key, b"v2", expect_revision=rev)
    assert rev2 > rev
    with pytest.raises(RevisionConflict) as conflict:
        await store.update(key, b"stale", expect_revision=rev)
    assert conflict.value.current is not None and conflict.value.current.value == b"v2"
    with pytest.raises(KeyNotFound):
        await store.update(f"/registry/core/configmaps/{ns}/none", b"x", expect_revision=0)
    with pytest.raises(RevisionConflict):
        await store.delete(key, expect_revision=rev)
    drev, old = await store.delete(key, expect_revision=rev2)
    assert drev > rev2 and old.value == b"v2" and old.mod_revision == rev2
    with pytest.raises(KeyNotFound):
        await store.delete(key)
    # Laid out as kube lays it out.
    await store.create(f"/registry/core/services/{ns}/svc", b"s")
    assert _etcdctl(etcd, "get", f"/registry/services/specs/{ns}/svc",
                    "--print-value-only").strip() == "s"


async def test_concurrent_conditional_updates_let_exactly_one_win(store: EtcdStore,
                                                                  ns: str) -> None:
    key = f"/registry/core/configmaps/{ns}/race"
    rev = await store.create(key, b"0")
    results = await asyncio.gather(*(store.update(key, str(i).encode(), expect_revision=rev)
                                     for i in range(10)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, RevisionConflict) for r in results) == 9


async def test_list_pages_at_one_revision(store: EtcdStore, ns: str) -> None:
    prefix = f"/registry/core/pods/{ns}/"
    for i in range(7):
        await store.create(f"{prefix}p{i}", str(i).encode())
    rev, page, more = await store.list(prefix, limit=3)
    assert [kv.key for kv in page] == [f"{prefix}p{i}" for i in range(3)] and more
    await store.create(f"{prefix}p9", b"late")     # after the snapshot: not in later pages
    await store.delete(f"{prefix}p5")
    seen = [kv.key for kv in page]
    while more:
        _, page, more = await store.list(prefix, revision=rev, start=seen[-1] + "\x00",
                                         limit=3)
        seen += [kv.key for kv in page]
    assert seen == [f"{prefix}p{i}" for i in range(7)]
    assert (await store.count(prefix))[1] == 7
    with pytest.raises(FutureRevision):
        await store.list(prefix, revision=rev + 10**6)


async def test_watch_replays_history_then_follows_and_compaction_is_410(
        store: EtcdStore, ns: str) -> None:
    prefix = f"/registry/core/secrets/{ns}/"
    r1 = await store.create(f"{prefix}a", b"1")
    r2 = await store.update(f"{prefix}a", b"2", expect_revision=r1)
    await store.create(f"/registry/core/configmaps/{ns}/other", b"x")   # not under prefix
    stream = store.watch(prefix, from_revision=r1 - 1, progress=True)
    got: list[StoreEvent] = []

    async def take(n: int) -> WatchBatch | None:
        async for batch in stream:
            got.extend(batch)
            if len(got) >= n:
                return batch
        return None
    await asyncio.wait_for(take(2), 10)
    r3, _ = await store.delete(f"{prefix}a")
    await asyncio.wait_for(take(3), 10)
    assert [(e.type, e.kv.mod_revision) for e in got] == [("CREATE", r1), ("UPDATE", r2),
                                                          ("DELETE", r3)]
    assert got[1].prev is not None and got[1].prev.value == b"1"
    assert got[2].kv.value == b"2"
    await stream.aclose()   # type: ignore[attr-defined]
    await store.compact(r2)
    with pytest.raises(Compacted):
        async for _ in store.watch(prefix, from_revision=r1 - 1):
            break
    with pytest.raises(Compacted):
        await store.list(prefix, revision=r1)
    # From the compacted revision itself: the events after it are all kept.
    again = store.watch(prefix, from_revision=r2)
    batch = await asyncio.wait_for(again.__anext__(), 10)
    assert [e.kv.mod_revision for e in batch] == [r3]
    await again.aclose()   # type: ignore[attr-defined]


async def test_a_second_store_sees_the_first_ones_writes_by_watch(store: EtcdStore,
                                                                  etcd: EtcdCluster,
                                                                  ns: str) -> None:
    other = await EtcdStore.open(parse_datastore(etcd.datastore))
    try:
        start = await other.current_revision()
        stream = other.watch(f"/registry/core/configmaps/{ns}/", from_revision=start)
        rev = await store.create(f"/registry/core/configmaps/{ns}/shared", b"v")
        batch = await asyncio.wait_for(stream.__anext__(), 5)
        assert [(e.kv.key, e.kv.mod_revision) for e in batch] == [
            (f"/registry/core/configmaps/{ns}/shared", rev)]
        await stream.aclose()   # type: ignore[attr-defined]
    finally:
        await other.close()


async def test_migrate_copies_every_object_from_sqlite(store: EtcdStore, tmp_path: Path,
                                                       ns: str) -> None:
    sqlite = await SQLiteStore.open(tmp_path / "state.db")
    try:
        keys = [f"/registry/core/configmaps/{ns}/c{i}" for i in range(1200)] + [
            f"/registry/core/nodes/{ns}-n", f"/registry/example.com/widgets/{ns}/w"]
        for i, key in enumerate(keys):
            await sqlite.create(key, f"value-{i}".encode())
        await sqlite.delete(keys[0])
        assert await migrate(sqlite, store) == len(keys) - 1
    finally:
        await sqlite.close()
    _, got, _ = await store.list(f"/registry/core/configmaps/{ns}/")
    assert len(got) == 1199 and got[0].value == b"value-1"
    assert (await store.get(f"/registry/core/nodes/{ns}-n"))[1] is not None
    assert (await store.get(f"/registry/example.com/widgets/{ns}/w"))[1] is not None


@pytest.fixture(scope="module")
def etcd_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    from navio.pki.certs import load_or_create_ca
    d = tmp_path_factory.mktemp("etcd-tls-pki")
    ca = load_or_create_ca(d)
    ca.issue(d, "server", cn="etcd", client=False, server_names=("127.0.0.1",))
    ca.issue(d, "client", cn="navio-apiserver")
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-tls"), tls_dir=d).start()
    yield cluster
    cluster.stop()


async def test_tls_with_client_certificates(etcd_tls: EtcdCluster) -> None:
    """kube's --etcd-cafile/--etcd-certfile/--etcd-keyfile; the key must be a 0600 file."""
    from navio.pki.privatefiles import KeyFileError
    d = etcd_tls.tls_dir
    assert d is not None
    url = f"etcd://127.0.0.1:{etcd_tls.members[0].client_port}"
    config = parse_datastore(url, cafile=d / "ca.crt", certfile=d / "client.crt",
                             keyfile=d / "client.key")
    store = await EtcdStore.open(config)
    try:
        rev = await store.create("/registry/core/configmaps/tls/a", b"over tls")
        assert (await store.get("/registry/core/configmaps/tls/a"))[1].mod_revision == rev
    finally:
        await store.close()
    os.chmod(d / "client.key", 0o644)
    try:
        with pytest.raises(KeyFileError, match="chmod 600"):
            await EtcdStore.open(config)
    finally:
        os.chmod(d / "client.key", 0o600)
    # Without a client certificate etcd refuses the connection: a clear storage error.
    no_cert = parse_datastore(url, cafile=d / "ca.crt")
    no_cert = type(no_cert)(no_cert.endpoints, no_cert.cafile, timeout=3.0)
    with pytest.raises(StorageError):
        await EtcdStore.open(no_cert)
