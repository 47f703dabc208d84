"""ReplicaSet, Deployment, garbage collector, namespace and service account controllers
against a real `navio server` with the real kubectl (issue 6).

The module runs its own server without the built-in controller-manager and starts exactly
these five controllers in a child process, so that nothing else writes the same objects. No
kubelet exists: `Kubelet` below marks pods Running and Ready through pods/<p>/status, as a
kubelet would once containers pass their readiness probes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

from navio.client import DEPLOYMENTS, PODS, REPLICASETS, Client

CONTROLLERS = ("replicaset", "deployment", "garbagecollector", "namespace", "serviceaccount")
_RUNNER = """
import asyncio, importlib, sys
from navio.cli.logs import setup_logging
from navio.client import Client, EventRecorder
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.manager import CONTROLLERS

async def main(kubeconfig, names):
    for n in names:
        importlib.import_module("navio.controllers." + n)
    async with Client.from_kubeconfig(kubeconfig, component="controller-manager",
                                      qps=200, burst=400) as client:
        informers = SharedInformers(client)
        recorder = EventRecorder(client, "controller-manager")
        recorder.start()
        ctx = ControllerContext(client, informers, recorder, {})
        controllers = [CONTROLLERS[n](ctx) for n in names]
        informers.start()
        await informers.wait_synced(60)
        print("controllers started", flush=True)
        await asyncio.gather(*(c.run() for c in controllers))

setup_logging(0)
asyncio.run(main(sys.argv[1], sys.argv[2].split(",")))
"""
_counter = itertools.count()


@pytest.fixture(scope="module")
def wl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("workloads") / "data",
                      extra_args=("--no-agent", "--disable", "controller-manager")).start()
    log = open(srv.data_dir.parent / "controllers.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(srv.kubeconfig),
                             ",".join(CONTROLLERS)], stdout=subprocess.PIPE, stderr=log,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()       # bounded: the runner exits on failure
        assert "controllers started" in line, f"controllers did not start: {line!r}"
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        log.close()
        srv.stop()


@pytest.fixture(scope="module")
def kc(wl_server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(wl_server.kubeconfig, tmp_path_factory.mktemp("wl-home"))


@pytest.fixture
def wns(kc: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"w{next(_counter)}-{request.node.name.lower()[:40]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")[:60]
    kc("create", "namespace", name)
    yield name
    kc("delete", "namespace", name, "--wait=false", check=False)


def pods(kc: Kubectl, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["-n", ns, "get", "pods"] + (["-l", selector] if selector else [])
    return kc.json(*args)["items"]  # type: ignore[no-any-return]


def replicasets(kc: Kubectl, ns: str) -> list[dict[str, Any]]:
    return kc.json("-n", ns, "get", "replicasets")["items"]  # type: ignore[no-any-return]


def ready_status() -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


class Kubelet:
    """Marks every pod of a namespace Running and Ready as it appears, and checks the
    rollout bounds on every watch event of the namespace's pods."""

    def __init__(self, kubeconfig: Path, ns: str) -> None:
        self.kubeconfig, self.ns = kubeconfig, ns
        self.pods: dict[str, dict[str, Any]] = {}
        self.events = 0
        self.max_total = 0
        self.min_ready: int | None = None
        self.track = False

    async def run(self) -> None:
        async with Client.from_kubeconfig(self.kubeconfig, qps=0) as client:
            listed = await client.list(PODS, self.ns)
            for p in listed["items"]:
                self._apply("ADDED", p)
                await self._make_ready(client, p)
            async with client.watch(PODS, self.ns, resource_version=listed["metadata"][
                    "resourceVersion"], timeout_seconds=600) as stream:
                async for ev in stream:
                    if ev.type == "BOOKMARK":
                        continue
                    self._apply(ev.type, ev.object)
                    if ev.type != "DELETED":
                        await self._make_ready(client, ev.object)

    def _apply(self, kind: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            self.pods.pop(name, None)
        else:
            self.pods[name] = pod
        if self.track:
            self.events += 1
            ready = sum(1 for p in self.pods.values() if is_ready(p))
            self.max_total = max(self.max_total, len(self.pods))
            self.min_ready = ready if self.min_ready is None else min(self.min_ready, ready)

    async def _make_ready(self, client: Client, pod: dict[str, Any]) -> None:
        if is_ready(pod) or pod["metadata"].get("deletionTimestamp"):
            return
        try:
            await client.patch(PODS, pod["metadata"]["name"], ready_status(), self.ns,
                               subresource="status")
        except Exception:   # gone meanwhile
            pass

    def start_tracking(self) -> None:
        self.events, self.max_total, self.min_ready, self.track = 0, 0, None, True


async def run_kubectl(kc: Kubectl, *args: str, timeout: float = 90.0) -> str:
    return await asyncio.to_thread(kc, *args, timeout=timeout)


async def async_wait(check: Any, timeout: float, what: str) -> Any:
    return await asyncio.to_thread(wait_for, check, timeout, what)


# ---- ReplicaSet ---------------------------------------------------------------------------

def test_deployment_creates_its_pods_and_replaces_a_deleted_one(kc: Kubectl, wns: str) -> None:
    kc("-n", wns, "create", "deployment", "web", "--image=x", "--replicas=3")
    first = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(pods(kc, wns, "app=web")),
                     30, "3 pods of deployment web")
    rs = replicasets(kc, wns)
    assert len(rs) == 1 and rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    for p in first:
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == \
            ("ReplicaSet", rs[0]["metadata"]["name"], True, True)
        assert p["metadata"]["labels"]["pod-template-hash"] == \
            rs[0]["metadata"]["labels"]["pod-template-hash"]
    victim = first[0]["metadata"]["name"]
    kc("-n", wns, "delete", "pod", victim)
    wait_for(lambda: (lambda p: len(p) == 3 and victim not in {x["metadata"]["name"] for x in p})(
        pods(kc, wns, "app=web")), 30, "a replacement for the deleted pod")
    events = kc.json("-n", wns, "get", "events")["items"]
    reasons = {(e["reason"], e["involvedObject"]["kind"]) for e in events}
    assert ("SuccessfulCreate", "ReplicaSet") in reasons
    assert ("ScalingReplicaSet", "Deployment") in reasons
    status = kc.json("-n", wns, "get", "replicaset", rs[0]["metadata"]["name"])["status"]
    assert status["replicas"] == 3 and status["fullyLabeledReplicas"] == 3


def test_replicaset_adopts_matching_orphans_and_releases_pods_that_stop_matching(
        kc: Kubectl, wns: str) -> None:
    kc("-n", wns, "run", "stray", "--image=x", "--labels=app=cache,tier=db")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "cache", "namespace": wns},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cache"}},
                   "template": {"metadata": {"labels": {"app": "cache"}},
                                "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    kc("apply", "-f", "-", input=json.dumps(rs))

    def owned() -> list[dict[str, Any]] | None:
        ps = pods(kc, wns, "app=cache")
        if len(ps) == 2 and all(p["metadata"].get("ownerReferences") for p in ps):
            return ps
        return None
    ps = wait_for(owned, 30, "the orphan adopted and one pod created")
    assert "stray" in {p["metadata"]["name"] for p in ps}
    kc("-n", wns, "label", "pod", "stray", "app=other", "--overwrite")
    wait_for(lambda: not kc.json("-n", wns, "get", "pod", "stray")["metadata"].get(
        "ownerReferences"), 30, "the relabelled pod released")
    wait_for(lambda: len(pods(kc, wns, "app=cache")) == 2, 30, "a replacement pod")


# ---- Deployment rollouts ------------------------------------------------------------------

async def test_rolling_update_keeps_surge_and_availability_and_rollout_commands_work(
        kc: Kubectl, wns: str, wl_server: NavioServer) -> None:
    kubelet = Kubelet(wl_server.kubeconfig, wns)
    task = asyncio.create_task(kubelet.run())
    try:
        await run_kubectl(kc, "-n", wns, "create", "deployment", "web", "--image=x",
                          "--replicas=4")
        out = await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                                "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out
        # 25 % of 4: at most 5 pods, at least 3 ready, checked on every pod watch event.
        kubelet.start_tracking()
        await run_kubectl(kc, "-n", wns, "set", "image", "deployment/web", "x=y")
        out = await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                                "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out
        assert kubelet.events >= 8
        assert kubelet.max_total <= 5, f"surge exceeded: {kubelet.max_total} pods"
        assert kubelet.min_ready is not None and kubelet.min_ready >= 3, \
            f"availability dropped to {kubelet.min_ready}"
        kubelet.track = False
        images = {p["spec"]["containers"][0]["image"] for p in pods(kc, wns)}
        assert images == {"y"}

        history = await run_kubectl(kc, "-n", wns, "rollout", "history", "deployment/web")
        assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1", "2"]

        await run_kubectl(kc, "-n", wns, "rollout", "undo", "deployment/web")
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                          "--timeout=60s")
        d = json.loads(await run_kubectl(kc, "-n", wns, "get", "deployment", "web", "-o",
                                         "json"))
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "x"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        history = await run_kubectl(kc, "-n", wns, "rollout", "history", "deployment/web")
        assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["2", "3"]

        await run_kubectl(kc, "-n", wns, "rollout", "restart", "deployment/web")
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                          "--timeout=60s")
        assert len(replicasets(kc, wns)) == 3
        await run_kubectl(kc, "-n", wns, "rollout", "undo", "deployment/web",
                          "--to-revision=2")
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                          "--timeout=60s")
        assert {p["spec"]["containers"][0]["image"] for p in pods(kc, wns)} == {"y"}

        await run_kubectl(kc, "-n", wns, "rollout", "pause", "deployment/web")
        await run_kubectl(kc, "-n", wns, "set", "image", "deployment/web", "x=z")

        def paused_and_observed() -> bool:
            dep = kc.json("-n", wns, "get", "deployment", "web")
            cond = {c["type"]: c for c in dep["status"].get("conditions", [])}
            return dep["status"].get("observedGeneration") == dep["metadata"]["generation"] \
                and cond.get("Progressing", {}).get("reason") == "DeploymentPaused"
        await async_wait(paused_and_observed, 30, "the paused deployment observed")
        assert len(replicasets(kc, wns)) == 3      # no new ReplicaSet while paused
        await run_kubectl(kc, "-n", wns, "rollout", "resume", "deployment/web")
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/web",
                          "--timeout=60s")
        assert {p["spec"]["containers"][0]["image"] for p in pods(kc, wns)} == {"z"}
        dep = kc.json("-n", wns, "get", "deployment", "web")
        conds = {c["type"]: c for c in dep["status"]["conditions"]}
        assert conds["Available"]["status"] == "True"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_recreate_never_runs_old_and_new_pods_together(
        kc: Kubectl, wns: str, wl_server: NavioServer) -> None:
    kubelet = Kubelet(wl_server.kubeconfig, wns)
    task = asyncio.create_task(kubelet.run())
    try:
        await run_kubectl(kc, "-n", wns, "create", "deployment", "re", "--image=x",
                          "--replicas=2")
        await run_kubectl(kc, "-n", wns, "patch", "deployment", "re", "--type=merge", "-p",
                          '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}')
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/re", "--timeout=60s")
        mixed: list[set[str]] = []
        original = kubelet._apply

        def check(kind: str, pod: dict[str, Any]) -> None:
            original(kind, pod)
            images = {p["spec"]["containers"][0]["image"] for p in kubelet.pods.values()}
            if len(images) > 1:
                mixed.append(images)
        kubelet._apply = check  # type: ignore[method-assign]
        await run_kubectl(kc, "-n", wns, "set", "image", "deployment/re", "x=y")
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/re", "--timeout=60s")
        assert not mixed
        assert {p["spec"]["containers"][0]["image"] for p in pods(kc, wns)} == {"y"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_scaling_mid_rollout_distributes_replicas_proportionally(
        kc: Kubectl, wns: str, wl_server: NavioServer) -> None:
    kubelet = Kubelet(wl_server.kubeconfig, wns)
    task = asyncio.create_task(kubelet.run())
    try:
        await run_kubectl(kc, "-n", wns, "create", "deployment", "p", "--image=x",
                          "--replicas=10")
        await run_kubectl(kc, "-n", wns, "patch", "deployment", "p", "--type=merge", "-p",
                          '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":3,'
                          '"maxUnavailable":2}}}}')
        await run_kubectl(kc, "-n", wns, "rollout", "status", "deployment/p", "--timeout=60s")
    finally:
        task.cancel()               # from now on no pod becomes ready
        await asyncio.gather(task, return_exceptions=True)
    await run_kubectl(kc, "-n", wns, "set", "image", "deployment/p", "x=y")

    def sizes() -> list[int]:
        return sorted(r["spec"]["replicas"] for r in replicasets(kc, wns))
    # 10 old ready pods, 2 may be unavailable, 3 may surge: the rollout stalls at 8 + 5.
    await async_wait(lambda: sizes() == [5, 8], 30, "the rollout stalled at 8 old + 5 new")
    await run_kubectl(kc, "-n", wns, "rollout", "pause", "deployment/p")
    await run_kubectl(kc, "-n", wns, "scale", "deployment/p", "--replicas=20")
    # 13 -> 23 (20 + surge 3): 8 * 23/13 = 14.2 -> 14 and 5 * 23/13 = 8.8 -> 9.
    await async_wait(lambda: sizes() == [9, 14], 30, "replicas distributed proportionally")
    await async_wait(lambda: len(pods(kc, wns)) == 23, 30, "23 pods")


def test_progress_deadline_exceeded_fails_rollout_status(kc: Kubectl, wns: str) -> None:
    kc("-n", wns, "create", "deployment", "slow", "--image=x", "--replicas=1")
    kc("-n", wns, "patch", "deployment", "slow", "--type=merge", "-p",
       '{"spec":{"progressDeadlineSeconds":2}}')
    proc = kc.run("-n", wns, "rollout", "status", "deployment/slow", "--timeout=60s",
                  check=False)
    assert proc.returncode != 0
    assert 'deployment "slow" exceeded its progress deadline' in proc.stderr
    conds = {c["type"]: c for c in
             kc.json("-n", wns, "get", "deployment", "slow")["status"]["conditions"]}
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == \
        ("False", "ProgressDeadlineExceeded")
    assert conds["Available"]["reason"] == "MinimumReplicasUnavailable"


# ---- garbage collection -------------------------------------------------------------------

def _deployment_with_pods(kc: Kubectl, ns: str, name: str) -> dict[str, Any]:
    kc("-n", ns, "create", "deployment", name, "--image=x", "--replicas=2")
    wait_for(lambda: len(pods(kc, ns, f"app={name}")) == 2, 30, f"pods of {name}")
    return replicasets(kc, ns)[0]


def test_background_deletion_removes_replicasets_and_pods(kc: Kubectl, wns: str) -> None:
    _deployment_with_pods(kc, wns, "bg")
    kc("-n", wns, "delete", "deployment", "bg")
    wait_for(lambda: not replicasets(kc, wns) and not pods(kc, wns), 30,
             "dependents of a deployment deleted in the background")


async def test_foreground_deletion_deletes_the_owner_last(kc: Kubectl, wns: str,
                                                         wl_server: NavioServer) -> None:
    await asyncio.to_thread(_deployment_with_pods, kc, wns, "fg")
    deleted: dict[str, list[int]] = {"Deployment": [], "ReplicaSet": [], "Pod": []}
    finalizer_seen: list[bool] = []

    async def watch(client: Client, resource: Any, ready: asyncio.Event) -> None:
        listed = await client.list(resource, wns)
        ready.set()
        async with client.watch(resource, wns, timeout_seconds=120,
                                resource_version=listed["metadata"]["resourceVersion"]
                                ) as stream:
            async for ev in stream:
                meta = ev.object.get("metadata") or {}
                if ev.type == "DELETED":
                    deleted[ev.object["kind"]].append(int(meta["resourceVersion"]))
                elif ev.object.get("kind") == "Deployment" and meta.get("deletionTimestamp"):
                    finalizer_seen.append("foregroundDeletion" in meta.get("finalizers", []))

    async with Client.from_kubeconfig(wl_server.kubeconfig, qps=0) as client:
        events = [asyncio.Event() for _ in range(3)]
        tasks = [asyncio.create_task(watch(client, r, e))
                 for r, e in zip((DEPLOYMENTS, REPLICASETS, PODS), events)]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
            await run_kubectl(kc, "-n", wns, "delete", "deployment", "fg",
                              "--cascade=foreground")
            await async_wait(lambda: deleted["Deployment"], 30, "the deployment's DELETED event")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert finalizer_seen and all(finalizer_seen)
    assert len(deleted["Pod"]) == 2 and len(deleted["ReplicaSet"]) == 1
    # Revisions order the deletions: pods, then their ReplicaSet, then the Deployment.
    assert max(deleted["Pod"]) < deleted["ReplicaSet"][0] < deleted["Deployment"][0]


def test_orphan_deletion_keeps_the_replicaset_without_owner(kc: Kubectl, wns: str) -> None:
    rs = _deployment_with_pods(kc, wns, "orph")
    kc("-n", wns, "delete", "deployment", "orph", "--cascade=orphan")
    wait_for(lambda: kc.run("-n", wns, "get", "deployment", "orph",
                            check=False).returncode != 0, 30, "the deployment gone")
    left = kc.json("-n", wns, "get", "replicaset", rs["metadata"]["name"])
    assert not left["metadata"].get("ownerReferences")
    assert "orphan" not in left["metadata"].get("finalizers", [])
    assert len(pods(kc, wns, "app=orph")) == 2


# ---- namespaces and service accounts -------------------------------------------------------

def test_deleting_a_namespace_deletes_its_content_then_the_namespace(kc: Kubectl) -> None:
    ns = f"w{next(_counter)}-doomed"
    kc("create", "namespace", ns)
    kc("-n", ns, "create", "deployment", "web", "--image=x", "--replicas=2")
    kc("-n", ns, "create", "configmap", "settings", "--from-literal=a=b")
    kc("-n", ns, "create", "secret", "generic", "creds", "--from-literal=p=q")
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": ns, "finalizers": ["example.com/hold"]}}
    kc("apply", "-f", "-", input=json.dumps(held))
    wait_for(lambda: len(pods(kc, ns)) == 2, 30, "pods in the namespace")
    kc("delete", "namespace", ns, "--wait=false")

    def finalizer_condition() -> dict[str, Any] | None:
        n = kc.json("get", "namespace", ns)
        conds = {c["type"]: c for c in n["status"].get("conditions", [])}
        c = conds.get("NamespaceFinalizersRemaining")
        return n if c and c["status"] == "True" else None
    n = wait_for(finalizer_condition, 30, "the namespace waiting on the held configmap")
    assert n["status"]["phase"] == "Terminating"
    conds = {c["type"]: c for c in n["status"]["conditions"]}
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 " \
        "resource instances"
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert not pods(kc, ns) and not replicasets(kc, ns)
    kc("-n", ns, "patch", "configmap", "held", "--type=merge", "-p",
       '{"metadata":{"finalizers":null}}')
    wait_for(lambda: kc.run("get", "namespace", ns, check=False).returncode != 0, 60,
             "the namespace removed")


def test_every_namespace_gets_a_default_service_account(kc: Kubectl, wns: str) -> None:
    wait_for(lambda: kc.run("-n", wns, "get", "serviceaccount", "default",
                            check=False).returncode == 0, 30, "the default service account")
    kc("-n", wns, "delete", "serviceaccount", "default")
    wait_for(lambda: kc.run("-n", wns, "get", "serviceaccount", "default",
                            check=False).returncode == 0, 30, "the default account recreated")
    assert yaml.safe_load(kc("-n", wns, "get", "serviceaccount", "default", "-o", "yaml"))[
        "metadata"]["name"] == "default"
