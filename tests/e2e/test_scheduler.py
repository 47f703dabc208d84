"""navio's scheduler against a real API server, driven with the real kubectl (issue 5).

The module runs its own `navio server --no-agent --disable controller-manager,scheduler`
(NavioServer from cluster.py), so that "0/N nodes are available" counts only this module's
nodes and nothing else acts on them, and navio's scheduler as a child process
(`run(SchedulerConfig)`, leader election on, as in production). Nodes are created
through the API with status.allocatable; no kubelet runs, so pods are only bound, never
started. Every wait is bounded and names what it waited for.

Manifests go to `kubectl apply` as a stream of documents rather than a `kind: List`: with a
List, kubectl's client-side validation asks /openapi/v2 (protobuf) and fails with "proto:
cannot parse invalid wire-format data" against navio today.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import Kubectl, NavioServer, wait_for

ROOT = Path(__file__).resolve().parents[2]
# The API server alone: this module runs the scheduler itself, and no controller manager may
# taint its heartbeat-less nodes (node lifecycle) while the tests run.
_SERVER_ARGS = ("--no-agent", "--disable", "controller-manager,scheduler")
HOSTNAME, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
_names = itertools.count()
_SCHEDULER = """
import asyncio, json, logging, signal, sys
from navio.scheduler import SchedulerConfig, run
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(name)s %(message)s")

async def main():
    task = asyncio.ensure_future(run(SchedulerConfig(**json.loads(sys.argv[1]))))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass

asyncio.run(main())
"""


class SchedulerProcess:
    def __init__(self, kubeconfig: Path, log: Path, **config: Any) -> None:
        self.args = {"kubeconfig": str(kubeconfig), "leader_elect_lease_duration": 4.0,
                     "leader_elect_renew_deadline": 3.0, "leader_elect_retry_period": 1.0,
                     **config}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "SchedulerProcess":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _SCHEDULER,
                                          json.dumps(self.args)], cwd=ROOT, stderr=log)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("navio-sched") / "data",
                      extra_args=_SERVER_ARGS).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kubectl(server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(server.kubeconfig, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def scheduler(server: NavioServer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[SchedulerProcess]:
    proc = SchedulerProcess(server.kubeconfig, tmp_path_factory.mktemp("sched") /
                            "scheduler.log", leader_elect_identity="e2e-main").start()
    yield proc
    proc.stop()


@pytest.fixture
def ns(kubectl: Kubectl, scheduler: SchedulerProcess) -> Iterator[str]:
    name = f"sched-{next(_names)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force",
            "--wait=false", check=False)
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def nodes(kubectl: Kubectl) -> Iterator[Any]:
    """Create nodes through the API; every node a test made is deleted afterwards."""
    made: list[str] = []

    def create(*specs: dict[str, Any]) -> list[str]:
        items = []
        for spec in specs:
            name = spec["name"]
            items.append({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {HOSTNAME: name,
                                                      **spec.get("labels", {})}},
                "spec": {"taints": spec.get("taints", [])},
                "status": {"allocatable": {"cpu": spec.get("cpu", "4"),
                                           "memory": spec.get("memory", "8Gi"),
                                           "pods": spec.get("pods", "110")},
                           "capacity": {"cpu": spec.get("cpu", "4"),
                                        "memory": spec.get("memory", "8Gi"),
                                        "pods": spec.get("pods", "110")}}})
            made.append(name)
        kubectl("apply", "-f", "-", input=_documents(items))
        return [s["name"] for s in specs]

    yield create
    if made:
        kubectl("delete", "node", *made, "--wait=false", check=False)


def _documents(objs: Any) -> str:
    """A stream of JSON documents. A `kind: List` would make kubectl's client-side
    validation fall back to /openapi/v2 (see the module docstring)."""
    return "\n".join(json.dumps(o) for o in objs)


def apply(kubectl: Kubectl, ns: str, *objs: dict[str, Any]) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=_documents(objs))


def make_pod(name: str, cpu: str = "100m", labels: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": cpu}}}], **spec}}


def node_of(kubectl: Kubectl, ns: str, pod: str) -> str:
    return kubectl("get", "pod", pod, "-n", ns, "-o", "jsonpath={.spec.nodeName}").strip()


def wait_bound(kubectl: Kubectl, ns: str, *pods: str, timeout: float = 30.0) -> list[str]:
    def check() -> list[str] | None:
        got = [node_of(kubectl, ns, p) for p in pods]
        return got if all(got) else None
    return wait_for(check, timeout, f"pods {pods} in {ns} to be bound", interval=0.2)


def wait_unschedulable(kubectl: Kubectl, ns: str, pod: str, timeout: float = 30.0) -> str:
    """The PodScheduled=False message, once the scheduler has set it."""
    def check() -> str | None:
        out = kubectl("get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.conditions[?(@."
                      "type==\"PodScheduled\")].status}|{.status.conditions[?(@.type=="
                      "\"PodScheduled\")].reason}|{.status.conditions[?(@.type==\"PodSched"
                      "uled\")].message}")
        status, reason, message = out.split("|", 2)
        return message if status == "False" and reason == "Unschedulable" else None
    return wait_for(check, timeout, f"pod {ns}/{pod} to be marked unschedulable",
                    interval=0.2)


def test_pods_land_where_their_requests_fit(kubectl, ns, nodes):
    small, big = nodes({"name": "fit-small", "cpu": "1"}, {"name": "fit-big", "cpu": "8"})
    apply(kubectl, ns, make_pod("wants-2-cpus", cpu="2"))
    assert wait_bound(kubectl, ns, "wants-2-cpus") == [big]
    events = kubectl("get", "events", "-n", ns, "--field-selector",
                     "reason=Scheduled", "-o", "jsonpath={.items[*].message}")
    assert f"Successfully assigned {ns}/wants-2-cpus to {big}" in events
    assert small


def test_node_selector_picks_the_labelled_node(kubectl, ns, nodes):
    nodes({"name": "sel-hdd", "labels": {"disktype": "hdd"}},
          {"name": "sel-ssd", "labels": {"disktype": "ssd"}})
    apply(kubectl, ns, make_pod("needs-ssd", nodeSelector={"disktype": "ssd"}))
    assert wait_bound(kubectl, ns, "needs-ssd") == ["sel-ssd"]


def test_taints_repel_pods_that_do_not_tolerate_them(kubectl, ns, nodes):
    nodes({"name": "taint-gpu", "taints": [{"key": "dedicated", "value": "gpu",
                                            "effect": "NoSchedule"}]},
          {"name": "taint-plain", "cpu": "1"})
    apply(kubectl, ns, make_pod("tolerant", cpu="2", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
    assert wait_bound(kubectl, ns, "tolerant") == ["taint-gpu"]


def test_an_unschedulable_pod_says_why_in_describe(kubectl, ns, nodes):
    nodes({"name": "why-gpu", "taints": [{"key": "dedicated", "value": "gpu",
                                          "effect": "NoSchedule"}]},
          {"name": "why-a", "cpu": "1"}, {"name": "why-b", "cpu": "1"})
    apply(kubectl, ns, make_pod("too-big", cpu="2"))
    expected = ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                "2 Insufficient cpu.")
    message = wait_unschedulable(kubectl, ns, "too-big")
    assert message.startswith(expected)
    described = wait_for(lambda: (lambda out: out if "FailedScheduling" in out else None)(
        kubectl("describe", "pod", "too-big", "-n", ns)), 30,
        "a FailedScheduling event in kubectl describe", interval=0.3)
    assert "default-scheduler" in described
    assert expected in described
    assert node_of(kubectl, ns, "too-big") == ""


def test_pod_affinity_follows_and_anti_affinity_avoids(kubectl, ns, nodes):
    nodes({"name": "aff-1"}, {"name": "aff-2"}, {"name": "aff-3"})
    apply(kubectl, ns, make_pod("db", labels={"app": "db"}))
    [db_node] = wait_bound(kubectl, ns, "db")
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOSTNAME}
    apply(kubectl, ns, make_pod("near-db", affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term]}}))
    apply(kubectl, ns, make_pod("far-from-db", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term]}}))
    near, far = wait_bound(kubectl, ns, "near-db", "far-from-db")
    assert near == db_node and far != db_node


def test_anti_affinity_spreads_replicas_one_per_node(kubectl, ns, nodes):
    nodes({"name": "anti-1"}, {"name": "anti-2"}, {"name": "anti-3"})
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOSTNAME}
    web = [make_pod(f"web-{i}", labels={"app": "web"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term]}}) for i in range(4)]
    apply(kubectl, ns, *web[:3])
    placed = wait_bound(kubectl, ns, "web-0", "web-1", "web-2")
    assert sorted(placed) == ["anti-1", "anti-2", "anti-3"]
    apply(kubectl, ns, web[3])
    message = wait_unschedulable(kubectl, ns, "web-3")
    assert message.startswith("0/3 nodes are available: 3 node(s) didn't match pod "
                              "anti-affinity rules.")


def test_topology_spread_balances_zones(kubectl, ns, nodes):
    nodes({"name": "zone-a1", "labels": {ZONE: "a"}}, {"name": "zone-a2", "labels": {ZONE: "a"}},
          {"name": "zone-b1", "labels": {ZONE: "b"}})
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "spread"}}}]
    pods = [make_pod(f"s-{i}", labels={"app": "spread"}, topologySpreadConstraints=spread)
            for i in range(4)]
    for p in pods:                          # one at a time: each sees the previous ones
        apply(kubectl, ns, p)
        wait_bound(kubectl, ns, p["metadata"]["name"])
    zones = [("a" if n.startswith("zone-a") else "b")
             for n in (node_of(kubectl, ns, p["metadata"]["name"]) for p in pods)]
    assert sorted(zones) == ["a", "a", "b", "b"]


def test_pods_for_another_scheduler_are_left_alone(kubectl, ns, nodes):
    nodes({"name": "other-1"})
    apply(kubectl, ns, make_pod("mine"), make_pod("theirs", schedulerName="other-scheduler"))
    wait_bound(kubectl, ns, "mine")
    assert node_of(kubectl, ns, "theirs") == ""
    conditions = kubectl("get", "pod", "theirs", "-n", ns, "-o",
                         "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}")
    assert "Unschedulable" not in conditions


def test_a_higher_priority_pod_preempts_a_lower_one(kubectl, ns, nodes):
    nodes({"name": "prio-1", "cpu": "2"})
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": f"{ns}-high"}, "value": 1000}))
    apply(kubectl, ns, make_pod("low", cpu="2"))
    wait_bound(kubectl, ns, "low")
    apply(kubectl, ns, make_pod("high", cpu="2", priorityClassName=f"{ns}-high"))
    assert wait_bound(kubectl, ns, "high", timeout=60) == ["prio-1"]
    gone = kubectl.run("get", "pod", "low", "-n", ns, check=False)
    assert gone.returncode != 0 or "Terminating" in gone.stdout
    kubectl("delete", "priorityclass", f"{ns}-high", "--wait=false", check=False)


def test_a_gang_of_four_with_room_for_three_waits_then_binds_together(kubectl, ns, nodes):
    nodes({"name": "gang-1", "cpu": "1"}, {"name": "gang-2", "cpu": "1"},
          {"name": "gang-3", "cpu": "1"})
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "scheduling.navio.dev/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": "train"}, "spec": {"minMember": 4}}))
    members = [f"worker-{i}" for i in range(4)]
    apply(kubectl, ns, *(make_pod(m, cpu="1", labels={
        "scheduling.navio.dev/pod-group": "train"}) for m in members))
    message = wait_unschedulable(kubectl, ns, "worker-0")
    assert "pod group" in message and "3 of 4 pods fit at once" in message
    wait_for(lambda: kubectl("get", "podgroup", "train", "-n", ns, "-o",
                             "jsonpath={.status.phase}").strip() == "Unschedulable", 30,
             "PodGroup train to report Unschedulable", interval=0.3)
    assert [node_of(kubectl, ns, m) for m in members] == ["", "", "", ""]
    time.sleep(1.0)                 # no member may be bound later either (all-or-nothing)
    assert [node_of(kubectl, ns, m) for m in members] == ["", "", "", ""]
    nodes({"name": "gang-4", "cpu": "1"})
    placed = wait_bound(kubectl, ns, *members, timeout=45)
    assert sorted(placed) == ["gang-1", "gang-2", "gang-3", "gang-4"]
    wait_for(lambda: kubectl("get", "podgroup", "train", "-n", ns, "-o",
                             "jsonpath={.status.phase}").strip() == "Scheduled", 30,
             "PodGroup train to report Scheduled", interval=0.3)


def test_a_standby_scheduler_takes_over_when_the_leader_stops(kubectl, ns, nodes, server,
                                                              scheduler, tmp_path):
    nodes({"name": "ha-1"})
    scheduler.stop()
    a = SchedulerProcess(server.kubeconfig, tmp_path / "a.log",
                         leader_elect_identity="e2e-a").start()
    b = SchedulerProcess(server.kubeconfig, tmp_path / "b.log",
                         leader_elect_identity="e2e-b")
    try:
        apply(kubectl, ns, make_pod("first"))
        wait_bound(kubectl, ns, "first")
        holder = kubectl("get", "lease", "kube-scheduler", "-n", "kube-system", "-o",
                         "jsonpath={.spec.holderIdentity}").strip()
        assert holder == "e2e-a"
        b.start()
        a.stop()
        wait_for(lambda: kubectl("get", "lease", "kube-scheduler", "-n", "kube-system", "-o",
                                 "jsonpath={.spec.holderIdentity}").strip() == "e2e-b", 30,
                 "the standby scheduler to take the lease", interval=0.3)
        apply(kubectl, ns, make_pod("second"))
        assert wait_bound(kubectl, ns, "second") == ["ha-1"]
    finally:
        a.stop()
        b.stop()
        scheduler.start()
