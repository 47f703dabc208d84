"""Node lifecycle, endpoints, jobs, cron jobs, daemon sets and stateful sets against a real
`navio server --no-agent`, driven with the real kubectl (issue 6).

This module starts its own server with `--disable controller-manager`, so that only the
controllers under test run (`navio server` otherwise runs all of them, with default flags).
No kubelet or scheduler runs: the tests create Nodes and Leases through the API, bind pods
with the `pods/<p>/binding` subresource, and play the kubelet by patching `pods/<p>/status`.
The controllers run in the test's event loop through `navio.controllers.manager.run`, with
short periods and an injected CronJob clock so nothing waits minutes. kubectl runs in a
thread so the controllers keep running meanwhile. Every wait is bounded and names what it
awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from cluster import Kubectl, NavioServer
from navio.api import errors
from navio.client import (CONTROLLERREVISIONS, CRONJOBS, DAEMONSETS, ENDPOINTS, ENDPOINTSLICES,
                          EVENTS, JOBS, LEASES, NODES, PODS, STATEFULSETS, Client)
from navio.controllers.manager import ControllerManagerConfig, run
from navio.controllers.statefulset import PVCS

Obj = dict[str, Any]


def server_fixtures(tag: str) -> tuple[Any, Any, Any]:
    """The `server`, `kubectl` and `ns` fixtures of a module: its own server without the
    built-in controller-manager, and a fresh namespace per test. A module assigns them:
    `server, kubectl, ns = server_fixtures("x")`."""
    counter = itertools.count()

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
        srv = NavioServer(tmp_path_factory.mktemp(f"navio-{tag}") / "data",
                          extra_args=("--no-agent", "--disable", "controller-manager")).start()
        yield srv
        srv.stop()

    @pytest.fixture(scope="module")
    def kubectl(server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
        return Kubectl(server.kubeconfig, tmp_path_factory.mktemp(f"home-{tag}"))

    @pytest.fixture
    def ns(kubectl: Kubectl) -> Iterator[str]:
        name = f"{tag}{next(counter)}"
        kubectl("create", "namespace", name)
        yield name
        kubectl("delete", "namespace", name, "--wait=false", check=False)

    return server, kubectl, ns


server, kubectl, ns = server_fixtures("c")


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float, what: str) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (result := await check()):
                await asyncio.sleep(0.05)
            return result
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


def now_micro() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_sec() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.asynccontextmanager
async def controllers(server: NavioServer, *names: str, **options: Any
                      ) -> AsyncIterator[Client]:
    """Run the named controllers (and yield a client) for the body of the block."""
    config = ControllerManagerConfig(kubeconfig=Path(server.kubeconfig), leader_elect=False,
                                     controllers=names, options=options)
    task = asyncio.create_task(run(config), name="controller-manager")
    try:
        async with Client.from_kubeconfig(server.kubeconfig, qps=0) as client:
            yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # A request the cancellation caught in the middle of aiohttp's connect+TLS can leave
        # its socket for the garbage collector (the in-process manager is cancelled while
        # busy; a real one exits). Collect those here, not inside the next test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


async def kc(kubectl: Kubectl, *args: str, **kw: Any) -> str:
    return await asyncio.to_thread(kubectl, *args, **kw)


async def apply(kubectl: Kubectl, ns: str, manifest: Obj) -> None:
    await kc(kubectl, "apply", "-n", ns, "-f", "-", input=json.dumps(manifest))


async def make_node(client: Client, name: str, labels: dict[str, str], *, ready: bool = True,
                    taints: list[Obj] | None = None) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                "metadata": {"name": name, "labels": labels},
                                "spec": {"taints": taints or []}})
    if ready:
        await post_ready(client, name)


async def post_ready(client: Client, name: str) -> None:
    stamp = now_sec()
    conds = [{"type": t, "status": s, "reason": r, "lastHeartbeatTime": stamp,
              "lastTransitionTime": stamp}
             for t, s, r in (("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                             ("Ready", "True", "KubeletReady"))]
    await client.patch_subresource(NODES, name, "status", {"status": {"conditions": conds}},
                                   patch_type="strategic")


async def renew_lease(client: Client, name: str) -> None:
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                     "renewTime": now_micro()}}
    try:
        await client.patch(LEASES, name, {"spec": {"renewTime": now_micro()}}, "kube-node-lease")
    except errors.NotFound:
        await client.create(LEASES, body)


async def delete_nodes(client: Client, *names: str) -> None:
    for name in names:
        with contextlib.suppress(errors.NotFound):
            await client.delete(NODES, name)
        with contextlib.suppress(errors.NotFound):
            await client.delete(LEASES, name, "kube-node-lease")


def pod(name: str, labels: dict[str, str], **spec: Any) -> Obj:
    container = {"name": "c", "image": "busybox",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [container], **spec}}


async def bind(client: Client, ns: str, name: str, node: str) -> None:
    await client.create_subresource(PODS, name, "binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}}, ns)


async def set_pod(client: Client, ns: str, name: str, *, phase: str = "Running",
                  ready: bool | None = None, ip: str | None = None) -> None:
    status: Obj = {"phase": phase}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "lastTransitionTime": now_sec()}]
    await client.patch_subresource(PODS, name, "status", {"status": status}, ns,
                                   patch_type="strategic")


async def get(client: Client, resource: Any, name: str, ns: str | None = None) -> Obj | None:
    try:
        return await client.get(resource, name, ns)
    except errors.NotFound:
        return None


def condition(obj: Obj | None, ctype: str) -> Obj:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return {}


async def events(client: Client, ns: str, reason: str) -> list[Obj]:
    items = (await client.list(EVENTS, ns)).get("items") or []
    return [e for e in items if e.get("reason") == reason]


async def event(client: Client, ns: str, reason: str, message: str | None = None,
                name: str | None = None) -> Obj:
    """The first event with `reason` (and `message`, about object `name`), waited for:
    the recorder writes events asynchronously."""
    async def find() -> Obj | None:
        for e in await events(client, ns, reason):
            if (message is None or e.get("message") == message) and \
                    (name is None or e["involvedObject"].get("name") == name):
                return e
        return None
    return await wait_until(find, timeout=10, what=f"event {reason} {message or ''}")  # type: ignore[no-any-return]


# ---- node lifecycle ------------------------------------------------------------------------

async def test_node_that_stops_renewing_its_lease_goes_unknown_and_loses_its_pods(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: Lease silence → Ready=Unknown, unreachable taints, evictions after the
    pods' tolerationSeconds (at once without a matching toleration), recovery, pod GC."""
    live, lost = f"{ns}-live", f"{ns}-lost"
    zone = {"topology.kubernetes.io/zone": ns}
    async with controllers(server, "nodelifecycle", **{
            "node-monitor-period": 0.2, "node-monitor-grace-period": 2,
            "node-startup-grace-period": 2, "pod-gc-quarantine": 0.5}) as client:
        for name in (live, lost):
            await make_node(client, name, zone)
            await renew_lease(client, name)
        renewing = True

        async def heartbeat() -> None:
            while True:
                await renew_lease(client, live)
                if renewing:
                    await renew_lease(client, lost)
                await asyncio.sleep(0.3)

        beat = asyncio.create_task(heartbeat())
        try:
            short = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                      "effect": "NoExecute", "tolerationSeconds": 3}]
            untolerating = [{"key": "node.kubernetes.io/unreachable", "operator": "Equal",
                             "value": "never", "effect": "NoExecute"}]
            await apply(kubectl, ns, pod("tolerates", {"app": "x"}, tolerations=short))
            await apply(kubectl, ns, pod("intolerant", {"app": "x"}, tolerations=untolerating))
            await apply(kubectl, ns, pod("safe", {"app": "x"}))
            for name, node, ip in (("tolerates", lost, "10.9.0.1"),
                                   ("intolerant", lost, "10.9.0.2"), ("safe", live, "10.9.0.3")):
                await bind(client, ns, name, node)
                await set_pod(client, ns, name, ready=True, ip=ip)
            renewing = False

            async def unknown() -> Obj | None:
                node = await client.get(NODES, lost)
                return node if condition(node, "Ready").get("status") == "Unknown" else None

            node = await wait_until(unknown, timeout=15, what="lost node Ready=Unknown")
            ready = condition(node, "Ready")
            assert ready["reason"] == "NodeStatusUnknown"
            assert ready["message"] == "Kubelet stopped posting node status."
            assert condition(node, "MemoryPressure")["status"] == "Unknown"

            async def tainted() -> Obj | None:
                n = await client.get(NODES, lost)
                keys = {(t["key"], t["effect"]) for t in n["spec"].get("taints") or ()}
                want = {("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoSchedule")}
                return n if want <= keys else None

            await wait_until(tainted, timeout=10, what="unreachable taints on the lost node")
            tainted_at = asyncio.get_running_loop().time()

            async def deleting(name: str) -> Obj | None:
                p = await get(client, PODS, name, ns)
                return p if p is None or p["metadata"].get("deletionTimestamp") else None

            await wait_until(lambda: deleting("intolerant"), timeout=5,
                             what="the pod without a matching toleration to be evicted")
            early = await client.get(PODS, "tolerates", ns)
            assert not early["metadata"].get("deletionTimestamp"), "evicted before toleration"
            assert condition(early, "Ready")["status"] == "False"
            evicted = await wait_until(lambda: deleting("tolerates"), timeout=10,
                                       what="the tolerating pod to be evicted")
            assert asyncio.get_running_loop().time() - tainted_at >= 2.0
            assert condition(evicted, "DisruptionTarget")["reason"] == "DeletionByTaintManager"
            assert not (await client.get(PODS, "safe", ns))["metadata"].get("deletionTimestamp")
            marked = await event(client, ns, "TaintManagerEviction",
                                 f"Marking for deletion Pod {ns}/tolerates")
            assert marked["source"]["component"] == "taint-eviction-controller"
            not_ready = await event(client, "default", "NodeNotReady",
                                    f"Node {lost} status is now: NodeNotReady", name=lost)
            assert not_ready["reportingComponent"] == "node-controller"

            renewing = True
            await post_ready(client, lost)

            async def untainted() -> bool:
                n = await client.get(NODES, lost)
                return not any(t["key"].startswith("node.kubernetes.io/un")
                               for t in n["spec"].get("taints") or ())

            await wait_until(untainted, timeout=10, what="taints removed after recovery")

            await client.delete(NODES, lost)

            async def gone() -> bool:
                return all([await get(client, PODS, n, ns) is None
                            for n in ("tolerates", "intolerant")])

            await wait_until(gone, timeout=10, what="pods of the deleted node to be deleted")
            assert await get(client, PODS, "safe", ns) is not None
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await delete_nodes(client, live, lost)


# ---- endpoints and endpoint slices ---------------------------------------------------------

async def test_service_endpoints_and_slices_follow_pod_readiness_within_a_second(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: addresses from pod IPs, named target ports, ready/not-ready/terminating,
    publishNotReadyAddresses, labels, owner, trigger-time annotation, all within 1 s."""
    node = f"{ns}-n"
    async with controllers(server, "endpoint", "endpointslice") as client:
        await make_node(client, node, {"topology.kubernetes.io/zone": "z1"})
        try:
            for name, publish in (("web", False), ("web-all", True)):
                await apply(kubectl, ns, {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "labels": {"tier": "front"}},
                    "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": publish,
                             "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
            for i in (1, 2, 3):
                await apply(kubectl, ns, pod(f"web-{i}", {"app": "web"}))
            for i in (1, 2):
                await bind(client, ns, f"web-{i}", node)
                await set_pod(client, ns, f"web-{i}", ready=True, ip=f"10.7.0.{i}")
            await bind(client, ns, "web-3", node)
            await set_pod(client, ns, "web-3", ready=True)          # no IP: left out

            async def slice_of(svc: str) -> Obj | None:
                items = (await client.list(ENDPOINTSLICES, ns,
                                           label_selector=f"kubernetes.io/service-name={svc}")
                         ).get("items") or []
                return items[0] if len(items) == 1 else None

            async def endpoints_by_pod(svc: str) -> dict[str, Obj]:
                s = await slice_of(svc)
                return {e["targetRef"]["name"]: e for e in (s or {}).get("endpoints") or ()}

            async def two_ready() -> bool:
                eps = await endpoints_by_pod("web")
                return set(eps) == {"web-1", "web-2"} and all(
                    e["conditions"]["ready"] for e in eps.values())

            await wait_until(two_ready, timeout=10, what="a slice with both ready pods")
            s = await slice_of("web")
            assert s is not None
            assert s["addressType"] == "IPv4"
            assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
            assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
                "endpointslice-controller.k8s.io"
            assert s["metadata"]["labels"]["tier"] == "front"
            assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
            assert s["metadata"]["generateName"] == "web-"
            ep1 = (await endpoints_by_pod("web"))["web-1"]
            assert ep1["addresses"] == ["10.7.0.1"] and ep1["nodeName"] == node
            assert ep1["zone"] == "z1"
            # Endpoints and EndpointSlices are written by two controllers: wait for both.
            async def endpoints_current() -> bool:
                e = await client.get(ENDPOINTS, "web", ns)
                subsets = e.get("subsets") or [{}]
                return [a["ip"] for a in subsets[0].get("addresses", ())] == \
                    ["10.7.0.1", "10.7.0.2"]
            await wait_until(endpoints_current, timeout=5, what="Endpoints with both pods")
            ep = await client.get(ENDPOINTS, "web", ns)
            assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 8080,
                                                  "protocol": "TCP"}]
            assert "endpoints.kubernetes.io/last-change-trigger-time" in \
                ep["metadata"]["annotations"]

            await set_pod(client, ns, "web-2", ready=False, ip="10.7.0.2")

            async def web2_unready() -> bool:
                eps = await endpoints_by_pod("web")
                e = await client.get(ENDPOINTS, "web", ns)
                not_ready = [a["ip"] for s in e.get("subsets") or ()
                             for a in s.get("notReadyAddresses") or ()]
                return "web-2" in eps and eps["web-2"]["conditions"] == {
                    "ready": False, "serving": False, "terminating": False} and \
                    not_ready == ["10.7.0.2"]

            await wait_until(web2_unready, timeout=1.0,
                             what="web-2 not ready in the slice and the Endpoints")
            published = await wait_until(lambda: endpoints_by_pod("web-all"), timeout=5,
                                         what="the publishNotReadyAddresses slice")
            assert published["web-2"]["conditions"]["ready"] is True

            await kc(kubectl, "delete", "pod", "web-1", "-n", ns, "--wait=false")

            async def web1_terminating() -> bool:
                eps = await endpoints_by_pod("web")
                e = await client.get(ENDPOINTS, "web", ns)
                ips = [a["ip"] for s in e.get("subsets") or ()
                       for a in s.get("addresses") or ()]
                return eps.get("web-1", {}).get("conditions") == {
                    "ready": False, "serving": True, "terminating": True} and \
                    "10.7.0.1" not in ips

            await wait_until(web1_terminating, timeout=1.0, what="web-1 terminating")
            await set_pod(client, ns, "web-2", ready=True, ip="10.7.0.2")

            async def web2_ready() -> bool:
                return (await endpoints_by_pod("web"))["web-2"]["conditions"]["ready"]

            await wait_until(web2_ready, timeout=1.0, what="web-2 ready again")
        finally:
            await delete_nodes(client, node)


# ---- jobs ----------------------------------------------------------------------------------

def job_manifest(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox"}]}}, **spec}}


async def job_pods(client: Client, ns: str, job: str) -> list[Obj]:
    items = (await client.list(PODS, ns, label_selector=f"batch.kubernetes.io/job-name={job}")
             ).get("items") or []
    return items


async def test_job_with_five_completions_and_parallelism_two_completes(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: never more than `parallelism` active pods, tracking finalizers removed,
    SuccessCriteriaMet then Complete, succeeded=5; Indexed jobs fill every index."""
    async with controllers(server, "job", **{"job-sync-batch-period": 0.1}) as client:
        await apply(kubectl, ns, job_manifest("five", completions=5, parallelism=2))
        await apply(kubectl, ns, job_manifest("idx", completions=3, parallelism=3,
                                              completionMode="Indexed"))
        finished: set[str] = set()

        async def progress() -> bool:
            job = await client.get(JOBS, "five", ns)
            if condition(job, "Complete").get("status") == "True":
                return True
            active = [p for p in await job_pods(client, ns, "five")
                      if p["status"].get("phase") not in ("Succeeded", "Failed")]
            assert len(active) <= 2, "more active pods than parallelism"
            for p in active:
                if p["metadata"]["name"] not in finished:
                    await set_pod(client, ns, p["metadata"]["name"], phase="Succeeded")
                    finished.add(p["metadata"]["name"])
            return False

        await wait_until(progress, timeout=30, what="job five to complete")
        job = await client.get(JOBS, "five", ns)
        assert job["status"]["succeeded"] == 5 and len(finished) == 5
        assert condition(job, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
        assert job["status"]["completionTime"]
        pods = await job_pods(client, ns, "five")
        assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers")
                                                              or ()) for p in pods)
        await event(client, ns, "Completed", "Job completed", name="five")

        async def idx_pods() -> list[Obj] | None:
            pods = await job_pods(client, ns, "idx")
            return pods if len(pods) == 3 else None

        pods = await wait_until(idx_pods, timeout=10, what="three indexed pods")
        indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                         for p in pods)
        assert indexes == ["0", "1", "2"]
        assert sorted(p["spec"]["hostname"] for p in pods) == ["idx-0", "idx-1", "idx-2"]
        for p in pods:
            await set_pod(client, ns, p["metadata"]["name"], phase="Succeeded")

        async def idx_done() -> Obj | None:
            j = await client.get(JOBS, "idx", ns)
            return j if condition(j, "Complete").get("status") == "True" else None

        job = await wait_until(idx_done, timeout=10, what="the indexed job to complete")
        assert job["status"]["completedIndexes"] == "0-2"


async def test_failing_job_stops_after_backoff_limit(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: each failure is replaced after a back-off until failures exceed
    backoffLimit; then FailureTarget, Failed (BackoffLimitExceeded) and a warning."""
    async with controllers(server, "job", **{"job-sync-batch-period": 0.1,
                                             "job-pod-failure-backoff": 0.2}) as client:
        await apply(kubectl, ns, job_manifest("flaky", backoffLimit=2))
        failed: set[str] = set()

        async def fail_all() -> Obj | None:
            job = await client.get(JOBS, "flaky", ns)
            if condition(job, "Failed").get("status") == "True":
                return job
            for p in await job_pods(client, ns, "flaky"):
                if p["status"].get("phase") not in ("Failed", "Succeeded"):
                    await set_pod(client, ns, p["metadata"]["name"], phase="Failed")
                    failed.add(p["metadata"]["name"])
            return None

        job = await wait_until(fail_all, timeout=30, what="the job to fail")
        assert len(failed) == 3 and job["status"]["failed"] == 3
        assert condition(job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
        assert condition(job, "Failed")["message"] == "Job has reached the specified backoff limit"
        warned = await event(client, ns, "BackoffLimitExceeded",
                             "Job has reached the specified backoff limit")
        assert warned["type"] == "Warning"
        assert len(await job_pods(client, ns, "flaky")) == 3


# ---- cron jobs -----------------------------------------------------------------------------

async def complete_job(client: Client, ns: str, name: str) -> None:
    """Play the Job controller: mark the Job complete (re-read on conflict)."""
    for _ in range(10):
        job = await client.get(JOBS, name, ns)
        stamp = now_sec()
        job.setdefault("status", {}).update(
            startTime=stamp, completionTime=stamp, succeeded=1,
            conditions=[{"type": t, "status": "True", "lastTransitionTime": stamp}
                        for t in ("SuccessCriteriaMet", "Complete")])
        try:
            await client.update_status(JOBS, job)
            return
        except errors.Conflict:
            continue
    raise AssertionError(f"could not complete job {name}")


class _ShiftedClock:
    """Wall time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


async def test_cronjob_creates_jobs_on_schedule_with_an_injected_clock(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: one Job per scheduled minute named by the time, active/lastScheduleTime/
    lastSuccessfulTime maintained, history limited."""
    clock = _ShiftedClock()
    async with controllers(server, "cronjob", **{"cronjob-clock": clock}) as client:
        await apply(kubectl, ns, {
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": "*/1 * * * *", "successfulJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": {"app": "tick"}},
                                     "spec": job_manifest("x")["spec"]}}})
        cj = await client.get(CRONJOBS, "tick", ns)
        created = datetime.fromisoformat(cj["metadata"]["creationTimestamp"]
                                         .replace("Z", "+00:00"))
        first = (created + timedelta(minutes=1)).replace(second=0)
        made: list[str] = []
        for n, when in enumerate((first, first + timedelta(minutes=1))):
            clock.offset = when + timedelta(seconds=0.5) - datetime.now(timezone.utc)
            await kc(kubectl, "annotate", "cronjob", "tick", "-n", ns, f"tick={n}",
                     "--overwrite")
            name = f"tick-{int(when.timestamp()) // 60}"

            async def started(name: str = name) -> Obj | None:
                c = await client.get(CRONJOBS, "tick", ns)
                return c if any(a["name"] == name for a in c["status"].get("active") or ())\
                    else None

            cj = await wait_until(started, timeout=10, what=f"job {name} in status.active")
            assert cj["status"]["lastScheduleTime"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
            job = await client.get(JOBS, name, ns)
            assert job["metadata"]["labels"]["app"] == "tick"
            assert job["metadata"]["annotations"][
                "batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
                when.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
            await complete_job(client, ns, name)
            made.append(name)

            async def saw_completion() -> Obj | None:
                c = await client.get(CRONJOBS, "tick", ns)
                return c if not c["status"].get("active") and \
                    c["status"].get("lastSuccessfulTime") else None

            await wait_until(saw_completion, timeout=10, what="the completed job seen")

        async def pruned() -> bool:
            return await get(client, JOBS, made[0], ns) is None

        await wait_until(pruned, timeout=10, what="the older completed job pruned")
        assert await get(client, JOBS, made[1], ns) is not None
        await event(client, ns, "SawCompletedJob",
                    f"Saw completed job: {made[0]}, condition: Complete")
        created = await event(client, ns, "SuccessfulCreate", f"Created job {made[1]}")
        assert created["source"]["component"] == "cronjob-controller"
        await event(client, ns, "SuccessfulDelete", f"Deleted job {made[0]}")


# ---- daemon sets ---------------------------------------------------------------------------

async def test_daemonset_follows_nodes_in_and_out(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: a pod per eligible node pinned by node affinity, none on a node with an
    untolerated taint, removed with its node; revisions and a rolling update."""
    n1, n2, n3 = f"{ns}-a", f"{ns}-b", f"{ns}-tainted"
    label = {"e2e-ds": ns}
    async with controllers(server, "daemonset") as client:
        try:
            await make_node(client, n1, label)
            await apply(kubectl, ns, {
                "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"nodeSelector": label, "containers": [
                                          {"name": "c", "image": "busybox"}]}}}})

            async def pods_by_node(count: int) -> dict[str, Obj] | None:
                items = (await client.list(PODS, ns, label_selector="app=agent")
                         ).get("items") or []
                live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
                out = {}
                for p in live:
                    terms = p["spec"]["affinity"]["nodeAffinity"][
                        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                    out[terms[0]["matchFields"][0]["values"][0]] = p
                return out if len(out) == count == len(live) else None

            first = await wait_until(lambda: pods_by_node(1), timeout=10, what="a pod on n1")
            p1 = first[n1]
            assert not p1["spec"].get("nodeName")
            tols = {(t["key"], t.get("effect")) for t in p1["spec"]["tolerations"]}
            assert ("node.kubernetes.io/unreachable", "NoExecute") in tols
            assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tols
            revs = (await client.list(CONTROLLERREVISIONS, ns)).get("items") or []
            assert len(revs) == 1
            hash_ = p1["metadata"]["labels"]["controller-revision-hash"]
            assert revs[0]["metadata"]["name"] == f"agent-{hash_}"

            await make_node(client, n2, label)
            await make_node(client, n3, label, taints=[{"key": "dedicated", "value": "x",
                                                        "effect": "NoSchedule"}])
            both = await wait_until(lambda: pods_by_node(2), timeout=10, what="pods on n1, n2")
            assert set(both) == {n1, n2}

            async def status(desired: int) -> Obj | None:
                ds = await client.get(DAEMONSETS, "agent", ns)
                st = ds.get("status") or {}
                return st if st.get("desiredNumberScheduled") == desired and \
                    st.get("currentNumberScheduled") == desired else None

            await wait_until(lambda: status(2), timeout=10, what="status of two nodes")

            await client.delete(NODES, n1)
            left = await wait_until(lambda: pods_by_node(1), timeout=10,
                                    what="the pod of the deleted node removed")
            assert set(left) == {n2}

            await kc(kubectl, "set", "env", "daemonset/agent", "-n", ns, "MODE=new")

            async def rolled() -> bool:
                pods = await pods_by_node(1)
                if not pods:
                    return False
                revs = (await client.list(CONTROLLERREVISIONS, ns)).get("items") or []
                return len(revs) == 2 and pods[n2]["spec"]["containers"][0].get("env") == \
                    [{"name": "MODE", "value": "new"}]

            await wait_until(rolled, timeout=15, what="the pod replaced by the new template")
            await event(client, ns, "SuccessfulDelete", name="agent")
        finally:
            await delete_nodes(client, n1, n2, n3)


# ---- stateful sets -------------------------------------------------------------------------

async def test_statefulset_creates_pods_in_order_waiting_for_ready(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: web-0, web-1, web-2 one after another as each becomes Running and Ready,
    with stable identity labels, claims from volumeClaimTemplates, and ordered scale-down."""
    async with controllers(server, "statefulset") as client:
        await apply(kubectl, ns, {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "serviceName": "web",
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}]}})

        async def names() -> list[str]:
            items = (await client.list(PODS, ns, label_selector="app=web")).get("items") or []
            return sorted(p["metadata"]["name"] for p in items)

        for i in range(3):
            await wait_until(lambda i=i: _eq(names(), [f"web-{j}" for j in range(i + 1)]),  # type: ignore[misc]
                             timeout=10, what=f"exactly web-0..web-{i}")

            async def observed(i: int = i) -> bool:
                st = (await client.get(STATEFULSETS, "web", ns)).get("status") or {}
                return st.get("replicas") == i + 1

            await wait_until(observed, timeout=10, what="status to count the new pod")
            assert await names() == [f"web-{j}" for j in range(i + 1)], "did not wait for Ready"
            p = await client.get(PODS, f"web-{i}", ns)
            assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
            assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
            assert p["metadata"]["labels"]["controller-revision-hash"].startswith("web-")
            assert p["spec"]["hostname"] == f"web-{i}" and p["spec"]["subdomain"] == "web"
            vol = next(v for v in p["spec"]["volumes"] if v["name"] == "data")
            assert vol["persistentVolumeClaim"]["claimName"] == f"data-web-{i}"
            claim = await client.get(PVCS, f"data-web-{i}", ns)
            assert claim["metadata"]["labels"] == {"app": "web"}
            await set_pod(client, ns, f"web-{i}", ready=True, ip=f"10.8.0.{i}")

        async def all_ready() -> Obj | None:
            st = (await client.get(STATEFULSETS, "web", ns)).get("status") or {}
            return st if st.get("readyReplicas") == 3 else None

        st = await wait_until(all_ready, timeout=10, what="three ready replicas")
        assert st["currentRevision"] == st["updateRevision"]
        assert st["updatedReplicas"] == 3 and st["currentReplicas"] == 3
        made = await event(client, ns, "SuccessfulCreate",
                           "create Pod web-0 in StatefulSet web successful")
        assert made["source"]["component"] == "statefulset-controller"
        await event(client, ns, "SuccessfulCreate",
                    "create Claim data-web-0 Pod web-0 in StatefulSet web success")

        deleted: list[str] = []
        watching = asyncio.Event()

        async def record_deletions() -> None:
            rv = (await client.list(PODS, ns))["metadata"]["resourceVersion"]
            watching.set()
            async with client.watch(PODS, ns, resource_version=rv) as stream:
                async for ev in stream:
                    if ev.type == "DELETED":
                        deleted.append(ev.object["metadata"]["name"])

        watcher = asyncio.create_task(record_deletions())
        try:
            await asyncio.wait_for(watching.wait(), 10)
            await kc(kubectl, "scale", "statefulset/web", "-n", ns, "--replicas=1")
            await wait_until(lambda: _eq(names(), ["web-0"]), timeout=10,
                             what="scale-down to web-0")
            await wait_until(lambda: _eq(_snapshot(deleted), ["web-2", "web-1"]), timeout=5,
                             what="deletions web-2 then web-1")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _snapshot(value: Any) -> Any:
    return list(value)


async def _eq(value: Awaitable[Any], want: Any) -> bool:
    return await value == want


pytestmark = pytest.mark.timeout(120)
