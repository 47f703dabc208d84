"""syncPod against the sim runtime: starts, restarts with back-off, restart policies, init
containers, termination and adoption after a restart (issue 7)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from navio.kubelet.backoff import Backoff
from navio.kubelet.containers import ContainerRunner
from navio.kubelet.pleg import RuntimeCache
from navio.kubelet.prober import ProbeManager
from navio.kubelet.probes import ProbeRunner
from navio.kubelet.sync import PodSyncer
from navio.kubelet.volumes import VolumeManager
from navio.runtime.sim import SimRuntime


class FakeStatus:
    """The status manager's interface, keeping statuses in memory."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def get(self, uid: str) -> dict[str, Any] | None:
        return self.latest.get(uid)

    def set(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.latest[pod["metadata"]["uid"]] = status

    def forget(self, uid: str) -> None:
        self.latest.pop(uid, None)


class Harness:
    def __init__(self, tmp: Path, runtime: SimRuntime | None = None) -> None:
        self.runtime = runtime or SimRuntime(pod_cidr="10.9.0.0/24", finish_init_containers=False)
        self.offset = 0.0
        self.events: list[tuple[str, str]] = []
        self.status = FakeStatus()
        self.cache = RuntimeCache(self.runtime)

        async def lookup(kind: str, namespace: str, name: str) -> None:
            return None

        def event(pod: Any, kind: str, reason: str, message: str) -> None:
            self.events.append((reason, message))

        probes = ProbeRunner(self.runtime)
        reasons: dict[tuple[str, str], tuple[str, str]] = {}
        self.syncer = PodSyncer(
            runtime=self.runtime, cache=self.cache,
            prober=ProbeManager(probes, on_change=lambda uid: None, event=event),
            runner=ContainerRunner(self.runtime, probes, lookup=lookup, event=event,
                                   reasons=reasons, services_env=lambda pod: {},
                                   host_ips=lambda: ["192.168.0.2"], allocatable=lambda: {},
                                   refresh=self.cache.refresh_container),
            volumes=VolumeManager(tmp / "pods", lookup, allocatable=lambda: {}, tmpfs=False),
            status=self.status,  # type: ignore[arg-type]
            event=event, backoff=Backoff(clock=lambda: time.time() + self.offset),
            reasons=reasons, host_ips=lambda: ["192.168.0.2"], pod_logs_dir=tmp / "logs",
            dns={"cluster_dns": ("10.43.0.10",), "cluster_domain": "cluster.local",
                 "host_resolv": None}, sync_frequency=60.0,
            clock=lambda: time.time() + self.offset)

    async def sync(self, pod: dict[str, Any]) -> dict[str, Any]:
        await self.cache.relist()
        self.last = await self.syncer.sync(pod)
        return self.status.latest[pod["metadata"]["uid"]]

    def containers(self, name: str | None = None) -> list[Any]:
        return sorted((c for c in self.runtime._containers.values()
                       if name is None or c.name == name), key=lambda c: c.attempt)


def make_pod(restart: str = "Always", inits: int = 0, uid: str = "uid-1") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid},
            "spec": {"restartPolicy": restart, "nodeName": "n",
                     "initContainers": [{"name": f"init{i}", "image": "x", "command": ["true"]}
                                        for i in range(inits)],
                     "containers": [{"name": "main", "image": "x", "command": ["run"]}]},
            "status": {}}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def state(status: dict[str, Any]) -> dict[str, Any]:
    return status["containerStatuses"][0]["state"]


async def test_a_new_pod_gets_a_sandbox_and_a_running_ready_container(h):
    status = await h.sync(make_pod())
    assert status["phase"] == "Running" and "running" in state(status)
    assert status["podIP"].startswith("10.9.0.")
    assert status["containerStatuses"][0]["ready"] is True
    assert [r for r, _ in h.events] == ["Created", "Started"]
    await h.sync(make_pod())              # repeating the sync starts nothing new
    assert len(h.containers()) == 1


async def test_a_crashing_container_restarts_at_once_then_backs_off(h):
    pod = make_pod()
    await h.sync(pod)
    h.runtime.terminate(h.containers()[0].id, 1)
    status = await h.sync(pod)
    assert [c.attempt for c in h.containers()] == [0, 1]
    assert status["containerStatuses"][0]["restartCount"] == 1
    h.runtime.terminate(h.containers()[1].id, 1)
    status = await h.sync(pod)
    waiting = state(status)["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"] == "back-off 10s restarting failed container=main pod=p_ns(uid-1)"
    assert 9 < h.last.retry_in <= 10.1
    assert ("BackOff", "Back-off restarting failed container main in pod p_ns(uid-1)") \
        in h.events
    h.offset = 11
    status = await h.sync(pod)
    assert "running" in state(status) and status["containerStatuses"][0]["restartCount"] == 2


@pytest.mark.parametrize("restart, code, phase", [("Never", 0, "Succeeded"),
                                                   ("Never", 3, "Failed"),
                                                   ("OnFailure", 0, "Succeeded")])
async def test_a_finished_pod_keeps_its_container_and_releases_its_sandbox(h, restart, code,
                                                                           phase):
    pod = make_pod(restart)
    await h.sync(pod)
    h.runtime.terminate(h.containers()[0].id, code)
    status = await h.sync(pod)
    assert status["phase"] == phase and h.last.terminal
    assert [s.state for s in h.runtime._sandboxes.values()] == ["notready"]
    assert len(h.containers()) == 1
    assert state(status)["terminated"]["exitCode"] == code


async def test_init_containers_run_one_at_a_time_before_the_main_one(h):
    pod = make_pod(inits=2)
    status = await h.sync(pod)
    assert [c.name for c in h.containers()] == ["init0"]
    assert status["phase"] == "Pending" and state(status)["waiting"]["reason"] == \
        "PodInitializing"
    h.runtime.terminate(h.containers("init0")[0].id, 0)
    await h.sync(pod)
    assert sorted(c.name for c in h.containers()) == ["init0", "init1"]
    h.runtime.terminate(h.containers("init1")[0].id, 0)
    status = await h.sync(pod)
    assert status["phase"] == "Running" and "running" in state(status)


async def test_on_a_sim_node_init_containers_succeed_and_the_pod_runs(tmp_path):
    h = Harness(tmp_path, SimRuntime(pod_cidr="10.9.0.0/24"))
    pod = make_pod(inits=2)
    for _ in range(3):   # one init container per sync, then the app
        status = await h.sync(pod)
    assert status["phase"] == "Running" and "running" in state(status)
    inits = status["initContainerStatuses"]
    assert [(s["name"], s["state"]["terminated"]["exitCode"], s["state"]["terminated"]["reason"])
            for s in inits] == [("init0", 0, "Completed"), ("init1", 0, "Completed")]
    assert [c.name for c in h.containers() if c.state == "running"] == ["main"]


def sidecar_pod(restart: str = "Always") -> dict[str, Any]:
    pod = make_pod(restart, inits=1)
    pod["spec"]["initContainers"].insert(0, {"name": "proxy", "image": "x", "command": ["px"],
                                             "restartPolicy": "Always"})
    return pod


def init_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["initContainerStatuses"] if s["name"] == name)


async def test_a_sidecar_starts_first_keeps_running_and_counts_for_readiness(h):
    pod = sidecar_pod()
    status = await h.sync(pod)
    assert [c.name for c in h.containers()] == ["proxy"]          # the sidecar first
    assert status["phase"] == "Pending"
    status = await h.sync(pod)                                    # started: the next init
    assert sorted(c.name for c in h.containers()) == ["init0", "proxy"]
    proxy = init_status(status, "proxy")
    assert "running" in proxy["state"] and proxy["started"] is True
    h.runtime.terminate(h.containers("init0")[0].id, 0)
    status = await h.sync(pod)
    assert status["phase"] == "Running" and "running" in state(status)
    assert [c.state for c in h.containers("proxy")] == ["running"]   # beside the app
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Initialized"] == conditions["ContainersReady"] == "True"
    assert init_status(status, "proxy")["ready"] is True
    # A sidecar that exits is restarted, whatever the pod's restartPolicy.
    h.runtime.terminate(h.containers("proxy")[0].id, 1)
    status = await h.sync(pod)
    assert [c.attempt for c in h.containers("proxy")] == [0, 1]
    assert init_status(status, "proxy")["restartCount"] == 1
    assert status["phase"] == "Running"


async def test_a_never_pod_with_a_sidecar_completes_when_its_app_does(h):
    pod = sidecar_pod("Never")
    for _ in range(2):
        await h.sync(pod)
    h.runtime.terminate(h.containers("init0")[0].id, 0)
    await h.sync(pod)
    h.runtime.terminate(h.containers("main")[0].id, 0)
    status = await h.sync(pod)
    assert h.containers("proxy")[0].state == "exited"          # stopped by the kubelet
    assert status["phase"] == "Succeeded"


async def test_terminating_stops_sidecars_after_the_app(h):
    pod = sidecar_pod()
    pod["spec"]["initContainers"].insert(1, {"name": "logger", "image": "x",
                                             "command": ["lg"], "restartPolicy": "Always"})
    for _ in range(3):
        await h.sync(pod)
    h.runtime.terminate(h.containers("init0")[0].id, 0)
    await h.sync(pod)
    killed = [r for r, m in h.events if r == "Killing"]
    assert killed == []
    await h.syncer.terminate(pod)
    order = [m for r, m in h.events if r == "Killing"]
    assert order == ["Stopping container main", "Stopping container logger",
                     "Stopping container proxy"]


async def test_a_pod_past_its_active_deadline_is_killed_and_fails(h):
    pod = make_pod()
    pod["spec"]["activeDeadlineSeconds"] = 30
    status = await h.sync(pod)
    assert status["phase"] == "Running"
    assert 29 < h.last.retry_in <= 30.1             # a sync is due when the deadline passes
    h.offset = 31.0
    status = await h.sync(pod)
    assert h.last.terminal
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed", "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline")
    assert "terminated" in state(status)          # the container was killed
    assert [c.state for c in h.containers()] == ["exited"]
    assert ("DeadlineExceeded", "Pod was active on the node longer than the specified "
                                "deadline") in h.events
    status = await h.sync(pod)                      # and it stays so
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")


async def test_a_failed_init_container_fails_a_never_pod_without_running_the_app(h):
    pod = make_pod("Never", inits=1)
    await h.sync(pod)
    h.runtime.terminate(h.containers("init0")[0].id, 1)
    status = await h.sync(pod)
    assert status["phase"] == "Failed" and not h.containers("main")


async def test_a_container_without_a_command_fails_unless_nothing_runs(tmp_path):
    class Picky(SimRuntime):
        name = "process"

    h = Harness(tmp_path, Picky(pod_cidr="10.9.0.0/24"))
    pod = make_pod()
    del pod["spec"]["containers"][0]["command"]
    status = await h.sync(pod)
    assert state(status)["waiting"]["reason"] == "CreateContainerConfigError"
    assert "container has no command" in state(status)["waiting"]["message"]
    assert h.last.retry_in == 10.0


async def test_terminate_stops_everything_and_cleanup_leaves_nothing(h):
    pod = make_pod()
    await h.sync(pod)
    await h.syncer.terminate(pod, grace=0)
    assert [c.state for c in h.containers()] == ["exited"]
    assert ("Killing", "Stopping container main") in h.events
    await h.syncer.cleanup("uid-1")
    assert h.runtime._sandboxes == {} and h.runtime._containers == {}


async def test_a_restarted_agent_adopts_running_containers(tmp_path, h):
    pod = make_pod()
    await h.sync(pod)
    again = Harness(tmp_path, h.runtime)          # a new agent over the same runtime
    status = await again.sync(pod)
    assert len(h.containers()) == 1 and "running" in state(status)
    assert again.events == []
