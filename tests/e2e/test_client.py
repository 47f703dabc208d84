"""navio's client against a real navio API server: REST, watch, informer, election, events.

One server per module, started as `navio server --port 0 --no-agent` in a child process,
restarted once on the same port and data dir, and stopped by its PID. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from etcdlab import EtcdCluster
from navio.api import errors
from navio.client import (CONFIGMAPS, DEPLOYMENTS, EVENTS, LEASES, NAMESPACES, PODS,
                          PRIORITYCLASSES, SECRETS, Client, EventRecorder, Informer,
                          LeaderElectionConfig, LeaderElector)

_LISTENING = re.compile(r"API server listening on (https://127\.0\.0\.1:(\d+))")
_names = itertools.count()


async def wait_until(check: Callable[[], Awaitable[bool] | bool], timeout: float,
                     what: str) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


class _Server:
    """One `navio server` child process; restartable on the same port and data dir."""

    def __init__(self, data_dir: Path, datastore: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.datastore = datastore
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir.parent / "server.log"
        self._pump = threading.Thread()

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                 str(self.data_dir), "--port", str(self.port), "--no-agent", *self.datastore],
                stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path(__file__).parents[2])
        listening = threading.Event()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                m = _LISTENING.search(line)
                if m:
                    self.port = int(m.group(2))
                    listening.set()
            listening.set()            # EOF: the server died; start() reports it

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not listening.wait(timeout) or proc.poll() is not None or not self.port:
            self.stop()
            tail = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise AssertionError(f"navio server did not start within {timeout}s:\n{tail}")
        # The kubeconfig is written right after the listening line.
        for _ in range(100):
            if self.kubeconfig.exists():
                return
            threading.Event().wait(0.05)
        raise AssertionError("navio server wrote no admin.kubeconfig")

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._pump.join(5)             # EOF follows the exit; then the pipe can be closed
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
           ) -> Iterator[_Server]:
    """One server per datastore (#10: the client behaves the same on SQLite and etcd)."""
    base = tmp_path_factory.mktemp(f"navio-client-{request.param}")
    etcd = EtcdCluster(base / "etcd").start() if request.param == "etcd" else None
    srv = _Server(base / "data", ("--datastore", etcd.datastore) if etcd else ())
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if etcd is not None:
            etcd.stop()


@pytest.fixture
async def client(server: _Server) -> Any:
    async with Client.from_kubeconfig(server.kubeconfig, component="e2e") as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> Any:
    name = f"client-e2e-{next(_names)}-{os.getpid()}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": name}})
    yield name
    try:
        await client.delete(NAMESPACES, name)
    except (errors.ApiError, ConnectionError):
        pass


def _cm(name: str, ns: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "e2e"}},
            "data": data}


async def test_crud_and_error_mapping(client: Client, ns: str) -> None:
    created = await client.create(CONFIGMAPS, _cm("a", ns, k="1"))
    assert created["metadata"]["resourceVersion"] and created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, "a", ns)
    assert got["data"] == {"k": "1"}

    listed = await client.list(CONFIGMAPS, ns, label_selector="app=e2e")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["metadata"]["resourceVersion"]

    got["data"]["k"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"] == {"k": "2"}
    with pytest.raises(errors.Conflict) as conflict:
        await client.update(CONFIGMAPS, got)          # stale resourceVersion
    assert conflict.value.code == 409 and conflict.value.reason == "Conflict"

    merged = await client.patch(CONFIGMAPS, "a", {"data": {"m": "x"}}, ns)
    assert merged["data"] == {"k": "2", "m": "x"}
    strategic = await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"p": "s"}}}, ns,
                                   patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"app": "e2e", "p": "s"}
    jsonp = await client.patch(CONFIGMAPS, "a", [{"op": "remove", "path": "/data/m"}], ns,
                               patch_type="json")
    assert jsonp["data"] == {"k": "2"}

    with pytest.raises(errors.AlreadyExists):
        await client.create(CONFIGMAPS, _cm("a", ns))
    with pytest.raises(errors.NotFound) as missing:
        await client.get(CONFIGMAPS, "nope", ns)
    assert missing.value.code == 404 and "nope" in missing.value.message

    await client.delete(CONFIGMAPS, "a", ns)
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "a", ns)
    with pytest.raises(errors.NotFound):
        await client.delete(CONFIGMAPS, "a", ns)


async def test_subresources_apply_and_delete_preconditions(client: Client, ns: str) -> None:
    labels = {"app": "d"}
    dep = await client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    scale = await client.get_subresource(DEPLOYMENTS, "d", "scale", ns)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    await client.patch_subresource(DEPLOYMENTS, "d", "scale", {"spec": {"replicas": 3}}, ns)
    assert (await client.get(DEPLOYMENTS, "d", ns))["spec"]["replicas"] == 3
    dep = await client.get(DEPLOYMENTS, "d", ns)
    dep["status"] = {"replicas": 2, "observedGeneration": dep["metadata"]["generation"]}
    assert (await client.update_status(DEPLOYMENTS, dep))["status"]["replicas"] == 2

    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "p", "namespace": ns},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}})
    await client.create_subresource(PODS, "p", "binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}, ns)
    assert (await client.get(PODS, "p", ns))["spec"]["nodeName"] == "n1"

    applied = await client.patch(CONFIGMAPS, "ssa", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": ns},
        "data": {"a": "1"}}, ns, patch_type="apply", field_manager="e2e")
    assert applied["data"] == {"a": "1"}

    with pytest.raises(errors.Conflict):
        await client.delete(PODS, "p", ns, preconditions={"uid": "not-the-uid"})
    await client.delete(PODS, "p", ns, grace_period_seconds=0)


async def test_paged_list_returns_every_item_once(client: Client, ns: str) -> None:
    for i in range(7):
        await client.create(CONFIGMAPS, _cm(f"p{i}", ns))
    names: list[str] = []
    token = None
    for _ in range(10):
        page = await client.list(CONFIGMAPS, ns, limit=3, continue_=token)
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    # (each namespace's root CA ConfigMap, as in kube, is not this test's)
    assert sorted(n for n in names if n != "kube-root-ca.crt") == [f"p{i}" for i in range(7)]


async def test_watch_receives_added_modified_deleted(client: Client, ns: str) -> None:
    rv = (await client.list(CONFIGMAPS, ns))["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async with client.watch(CONFIGMAPS, ns, resource_version=rv,
                                timeout_seconds=60) as stream:
            async for ev in stream:
                if ev.type != "BOOKMARK" and \
                        ev.object["metadata"]["name"] != "kube-root-ca.crt":
                    seen.append((ev.type, ev.object["metadata"]["name"]))
                if ev.type == "DELETED":
                    return

    watcher = asyncio.ensure_future(collect())
    try:
        cm = await client.create(CONFIGMAPS, _cm("w", ns))
        cm["data"] = {"x": "y"}
        await client.update(CONFIGMAPS, cm)
        await client.delete(CONFIGMAPS, "w", ns)
        await asyncio.wait_for(watcher, 15)
    finally:
        watcher.cancel()
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_a_watch_from_a_lists_version_survives_writes_to_other_resources(
        client: Client, ns: str) -> None:
    rv = (await client.list(PRIORITYCLASSES))["metadata"]["resourceVersion"]
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": "other", "namespace": ns}})
    async with client.watch(PRIORITYCLASSES, resource_version=rv, timeout_seconds=1) as stream:
        async for _ in stream:
            pass


class _Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def _note(self, what: str, obj: dict) -> None:
        # (the root CA ConfigMap every namespace gets, as in kube, is not these tests')
        if obj["metadata"]["name"] != "kube-root-ca.crt":
            self.calls.append((what, obj["metadata"]["name"]))

    def handlers(self) -> tuple[Callable[..., None], ...]:
        return (lambda o: self._note("add", o), lambda old, new: self._note("update", new),
                lambda o: self._note("delete", o))


async def test_informer_syncs_and_sees_later_changes(client: Client, ns: str) -> None:
    await client.create(CONFIGMAPS, _cm("before", ns))
    inf = Informer(client, CONFIGMAPS, ns)
    log = _Log()
    inf.add_handler(*log.handlers())
    inf.start()
    try:
        assert await inf.wait_synced(15), "informer did not sync"
        assert [k for k in inf.keys() if not k.endswith("/kube-root-ca.crt")] == \
            [f"{ns}/before"] and log.calls == [("add", "before")]
        cm = await client.create(CONFIGMAPS, _cm("after", ns))
        await wait_until(lambda: inf.get(f"{ns}/after") is not None, 15, "the added object")
        cm["data"] = {"v": "2"}
        await client.update(CONFIGMAPS, cm)
        await wait_until(lambda: (inf.get(f"{ns}/after") or {}).get("data") == {"v": "2"}, 15,
                         "the update")
        await client.delete(CONFIGMAPS, "before", ns)
        await wait_until(lambda: inf.get(f"{ns}/before") is None, 15, "the delete")
        assert log.calls == [("add", "before"), ("add", "after"), ("update", "after"),
                             ("delete", "before")]
    finally:
        await inf.stop()


async def test_informer_re_list_delivers_the_differences(client: Client, ns: str) -> None:
    for name in ("keep", "change", "vanish"):
        await client.create(CONFIGMAPS, _cm(name, ns))
    inf = Informer(client, CONFIGMAPS, ns)
    log = _Log()
    inf.add_handler(*log.handlers())
    inf.start()
    try:
        assert await inf.wait_synced(15)
        await inf.stop()                              # the cache stays
        log.calls.clear()
        await client.delete(CONFIGMAPS, "vanish", ns)
        await client.patch(CONFIGMAPS, "change", {"data": {"n": "1"}}, ns)
        await client.create(CONFIGMAPS, _cm("new", ns))
        inf.start()
        await wait_until(lambda: len(log.calls) >= 3, 15, "the re-list differences")
        assert sorted(log.calls) == [("add", "new"), ("delete", "vanish"), ("update", "change")]
    finally:
        await inf.stop()


async def test_leader_election_hands_over_when_the_leader_stops(client: Client,
                                                                ns: str) -> None:
    leading: dict[str, bool] = {}

    def elector(identity: str, release: bool = True) -> LeaderElector:
        return LeaderElector(client, LeaderElectionConfig(
            name="e2e-lock", namespace=ns, identity=identity, lease_duration=3.0,
            renew_deadline=2.0, retry_period=0.5, release_on_cancel=release))

    def run(le: LeaderElector, identity: str) -> asyncio.Task[None]:
        async def work() -> None:
            leading[identity] = True
            try:
                await asyncio.Event().wait()
            finally:
                leading[identity] = False
        return asyncio.ensure_future(le.run(work))

    a, b = elector("a"), elector("b")
    ta = run(a, "a")
    await wait_until(lambda: leading.get("a", False), 15, "a to lead")
    tb = run(b, "b")
    await wait_until(lambda: b.get_leader() == "a", 15, "b to observe a")
    assert not leading.get("b")
    lease = await client.get(LEASES, "e2e-lock", ns)
    assert lease["spec"]["holderIdentity"] == "a"

    a.stop()
    await asyncio.wait_for(ta, 10)
    # a released the lease, so b need not wait out the 3 s lease.
    await wait_until(lambda: leading.get("b", False), 5, "b to take over after release")
    lease = await client.get(LEASES, "e2e-lock", ns)
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] >= 1

    # A leader that vanishes without releasing is replaced once its lease expires.
    b.stop()
    await asyncio.wait_for(tb, 10)
    c, d = elector("c", release=False), elector("d")
    tc = run(c, "c")
    await wait_until(lambda: leading.get("c", False), 15, "c to lead")
    tc.cancel()
    await asyncio.gather(tc, return_exceptions=True)
    td = run(d, "d")
    await wait_until(lambda: leading.get("d", False), 15, "d to take over after expiry")
    d.stop()
    await asyncio.wait_for(td, 10)


async def test_event_recorder_aggregates_repeats(client: Client, ns: str) -> None:
    cm = await client.create(CONFIGMAPS, _cm("evt", ns))
    rec = EventRecorder(client, "navio-e2e", host="test-host")
    try:
        for _ in range(3):
            rec.event(cm, "Normal", "Synced", "configmap synced")
        rec.event(cm, "Warning", "Failed", "something else")
        assert await rec.flush(15)
    finally:
        await rec.stop()

    async def events() -> list[dict[str, Any]]:
        return [e for e in (await client.list(EVENTS, ns))["items"]
                if e["involvedObject"].get("name") == "evt"]

    evs = {e["reason"]: e for e in await events()}
    assert set(evs) == {"Synced", "Failed"}
    synced = evs["Synced"]
    assert synced["count"] == 3 and synced["type"] == "Normal"
    assert synced["involvedObject"]["kind"] == "ConfigMap"
    assert synced["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert synced["source"]["component"] == "navio-e2e"
    assert synced["reportingComponent"] == "navio-e2e"
    assert synced["firstTimestamp"] <= synced["lastTimestamp"]


async def test_informer_recovers_after_the_server_restarts(server: _Server, ns: str) -> None:
    async with Client.from_kubeconfig(server.kubeconfig, component="e2e-restart") as c:
        await c.create(CONFIGMAPS, _cm("pre", ns))
        inf = Informer(c, CONFIGMAPS, ns)
        lists = 0
        real_list = c.list

        async def counting_list(*a: Any, **kw: Any) -> dict[str, Any]:
            nonlocal lists
            lists += 1
            return await real_list(*a, **kw)

        c.list = counting_list  # type: ignore[method-assign]
        log = _Log()
        inf.add_handler(*log.handlers())
        inf.start()
        try:
            assert await inf.wait_synced(15)
            # Move the global revision past the informer's, so the restarted server's empty
            # watch window cannot serve it from the cache: the server replays the store's
            # history (as kube-apiserver does from etcd) or the informer re-lists.
            await c.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": "bump", "namespace": ns}})
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await c.create(CONFIGMAPS, _cm("post", ns))
            await wait_until(lambda: inf.get(f"{ns}/post") is not None, 60,
                             "the informer to see a change made after the restart")
            assert inf.get(f"{ns}/pre") is not None
            assert ("add", "pre") in log.calls and log.calls.count(("add", "pre")) == 1
            assert log.calls.count(("add", "post")) == 1
            assert lists >= 1
        finally:
            await inf.stop()
