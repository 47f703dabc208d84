"""Pod status from runtime state, as the kubelet's generateAPIPodStatus (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest

from navio.kubelet.podstatus import (
    PodStatusInput,
    generate_pod_status,
    get_phase,
    qos_class,
    should_restart,
)
from navio.runtime.protocol import ContainerStatus

NOW = "2026-01-01T00:00:10Z"


def pod(*, restart: str = "Always", inits: int = 0, containers: tuple[str, ...] = ("app",),
        deleting: bool = False, status: dict[str, Any] | None = None, **spec: Any) -> dict:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns", "uid": "u1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:05Z"
    return {"metadata": meta,
            "spec": {"restartPolicy": restart,
                     "initContainers": [{"name": f"init{i}", "image": "i"} for i in range(inits)],
                     "containers": [{"name": n, "image": "img"} for n in containers], **spec},
            "status": status or {}}


def ctr(name: str, state: str, *, attempt: int = 0, exit_code: int | None = None,
        created: float = 1.0, reason: str = "") -> ContainerStatus:
    return ContainerStatus(
        id=f"{name}-{attempt}", sandbox_id="s1", name=name, attempt=attempt, state=state,
        created_at=created, log_path="/x", pid=1, started_at=created + 0.5,
        finished_at=created + 1 if state == "exited" else None, exit_code=exit_code,
        reason=reason or ("" if exit_code is None else "Completed" if exit_code == 0 else "Error"))


def status_of(p: dict, containers: list[ContainerStatus], *, ready: bool = True,
              reasons: dict[str, tuple[str, str]] | None = None, terminal: bool = False,
              sandbox: bool = True, old: dict | None = None) -> dict:
    return generate_pod_status(PodStatusInput(
        pod=p, containers=containers, sandbox_ready=sandbox,
        pod_ips=["10.0.0.5"] if sandbox else [], host_ips=["192.168.1.2"],
        runtime_name="process", old_status=old or {}, ready=lambda n, c: ready,
        started=lambda n, c: True, reasons=reasons or {}, terminal=terminal, now=NOW))


def conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status["conditions"]}


def test_a_pod_without_containers_yet_waits_as_container_creating():
    s = status_of(pod(), [], sandbox=False)
    cs = s["containerStatuses"][0]
    assert s["phase"] == "Pending"
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["ready"] is False and cs["started"] is False and cs["restartCount"] == 0
    assert conditions(s)["PodReadyToStartContainers"] == ("False", "")
    assert conditions(s)["ContainersReady"] == ("False", "ContainersNotReady")
    assert [c["type"] for c in s["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert "podIP" not in s and s["hostIP"] == "192.168.1.2"


def test_a_running_ready_container_makes_the_pod_running_and_ready():
    s = status_of(pod(), [ctr("app", "running")])
    cs = s["containerStatuses"][0]
    assert s["phase"] == "Running"
    assert cs["state"] == {"running": {"startedAt": "1970-01-01T00:00:01Z"}}
    assert cs["containerID"] == "process://app-0" and cs["ready"] is True
    assert conditions(s)["Ready"] == ("True", "")
    assert conditions(s)["ContainersReady"] == ("True", "")
    assert s["podIP"] == "10.0.0.5" and s["podIPs"] == [{"ip": "10.0.0.5"}]
    assert s["qosClass"] == "BestEffort" and s["startTime"] == NOW


def test_readiness_failure_gates_ready_with_the_kubelet_message():
    s = status_of(pod(), [ctr("app", "running")], ready=False)
    ready = next(c for c in s["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [app]"
    assert s["phase"] == "Running"


def test_crash_loop_shows_waiting_with_the_back_off_and_the_last_termination():
    reasons = {"app": ("CrashLoopBackOff", "back-off 10s restarting failed container=app "
                                           "pod=p_ns(u1)")}
    s = status_of(pod(), [ctr("app", "exited", attempt=1, exit_code=1, created=5),
                          ctr("app", "exited", attempt=0, exit_code=1, created=1)],
                  reasons=reasons)
    cs = s["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s restarting failed")
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["containerID"] == "process://app-1"
    assert cs["restartCount"] == 1
    assert s["phase"] == "Running"      # Always: a restarting container keeps the pod Running


@pytest.mark.parametrize("restart, code, phase", [
    ("Never", 0, "Succeeded"), ("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded"),
    ("OnFailure", 1, "Running"), ("Always", 0, "Running"), ("Always", 1, "Running"),
], ids=lambda v: str(v))
def test_phase_after_the_only_container_exits_follows_the_restart_policy(restart, code, phase):
    s = status_of(pod(restart=restart), [ctr("app", "exited", exit_code=code)])
    assert s["phase"] == phase


def test_a_deleted_pod_whose_containers_were_killed_becomes_failed():
    s = status_of(pod(deleting=True), [ctr("app", "exited", exit_code=143)], terminal=True)
    assert s["phase"] == "Failed"
    assert conditions(s)["Ready"] == ("False", "PodFailed")


def test_oom_killed_is_reported_as_the_terminated_reason():
    s = status_of(pod(restart="Never"), [ctr("app", "exited", exit_code=137, reason="OOMKilled")])
    assert s["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    assert s["phase"] == "Failed"


def test_init_containers_hold_the_pod_in_pending_and_regular_ones_wait_pod_initializing():
    s = status_of(pod(inits=2), [ctr("init0", "exited", exit_code=0), ctr("init1", "running")])
    assert s["phase"] == "Pending"
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = {c["name"]: c for c in s["initContainerStatuses"]}
    assert init["init0"]["ready"] is True and init["init1"]["ready"] is False
    assert conditions(s)["Initialized"] == ("False", "ContainersNotInitialized")
    msg = next(c for c in s["conditions"] if c["type"] == "Initialized")["message"]
    assert msg == "containers with incomplete status: [init1]"


def test_a_failed_init_container_fails_a_never_restart_pod():
    s = status_of(pod(inits=1, restart="Never"), [ctr("init0", "exited", exit_code=2)])
    assert s["phase"] == "Failed"


def test_a_create_failure_is_shown_as_the_waiting_reason():
    reasons = {"app": ("CreateContainerConfigError", 'configmap "cfg" not found')}
    s = status_of(pod(), [], reasons=reasons)
    assert s["containerStatuses"][0]["state"] == {"waiting": {
        "reason": "CreateContainerConfigError", "message": 'configmap "cfg" not found'}}
    assert s["phase"] == "Pending"


def test_condition_transition_times_are_kept_while_the_status_is_unchanged():
    first = status_of(pod(), [ctr("app", "running")])
    old = {**first, "conditions": [{**c, "lastTransitionTime": "2020-01-01T00:00:00Z"}
                                   for c in first["conditions"]]}
    again = status_of(pod(), [ctr("app", "running")], old=old)
    assert {c["lastTransitionTime"] for c in again["conditions"]} == {"2020-01-01T00:00:00Z"}
    not_ready = status_of(pod(), [ctr("app", "running")], ready=False, old=old)
    times = {c["type"]: c["lastTransitionTime"] for c in not_ready["conditions"]}
    assert times["Ready"] == NOW and times["PodScheduled"] == "2020-01-01T00:00:00Z"


def test_a_terminal_phase_never_changes_back():
    s = status_of(pod(status={"phase": "Succeeded"}), [ctr("app", "running")])
    assert s["phase"] == "Succeeded"


def test_other_conditions_on_the_pod_are_kept_before_the_kubelet_ones():
    gate = {"type": "example.com/gate", "status": "False"}
    p = pod(status={"conditions": [gate]}, readinessGates=[{"conditionType": "example.com/gate"}])
    s = status_of(p, [ctr("app", "running")])
    assert s["conditions"][0] == gate
    assert conditions(s)["Ready"] == ("False", "ReadinessGatesNotReady")
    assert conditions(s)["ContainersReady"] == ("True", "")


def test_container_statuses_are_sorted_by_name():
    s = status_of(pod(containers=("zeta", "alpha")), [ctr("zeta", "running"),
                                                       ctr("alpha", "running")])
    assert [c["name"] for c in s["containerStatuses"]] == ["alpha", "zeta"]


@pytest.mark.parametrize("resources, qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}},
     "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}},
     "Burstable"),
], ids=["nothing set", "only a request", "requests equal limits", "request below limit"])
def test_qos_class_follows_requests_and_limits(resources, qos):
    p = pod()
    p["spec"]["containers"][0]["resources"] = resources
    assert qos_class(p) == qos


@pytest.mark.parametrize("restart, state, code, expected", [
    ("Always", "exited", 0, True), ("OnFailure", "exited", 0, False),
    ("OnFailure", "exited", 1, True), ("Never", "exited", 1, False),
    ("Never", "created", None, True), ("Always", "running", None, False),
], ids=lambda v: str(v))
def test_should_restart_follows_the_restart_policy(restart, state, code, expected):
    assert should_restart({"name": "app"}, pod(restart=restart),
                          ctr("app", state, exit_code=code)) is expected


def test_get_phase_with_no_statuses_is_pending():
    assert get_phase(pod(), [], False) == "Pending"
