"""PyTorchJob: the training operator's pods, env, Services and PodGroup, status conditions,
and the controller's decisions against informer caches and a recording client."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

from navio.client import PODS, SERVICES
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.pytorchjob import PODGROUPS, PYTORCHJOBS, PyTorchJobController
from navio.controllers.pytorchjob.spec import (GANG_LABEL, pod_for, pod_group_for, service_for,
                                               validate, with_defaults)
from navio.controllers.pytorchjob.status import (count_replicas, past_backoff_limit,
                                                 set_condition)

Obj = dict[str, Any]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def job(workers: int = 3, **run: Any) -> Obj:
    def replica(n: int) -> Obj:
        return {"replicas": n, "template": {"metadata": {"labels": {"app": "train"}},
                                            "spec": {"containers": [{
                                                "name": "pytorch", "image": "python3",
                                                "command": ["python3", "train.py"]}]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": "mnist", "namespace": "ml", "uid": "job-uid",
                         "creationTimestamp": "2026-11-25T11:59:00Z"},
            "spec": {"runPolicy": dict(run),
                     "pytorchReplicaSpecs": {"master": replica(1), "Worker": replica(workers)}}}


def env(pod: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_defaults_normalise_replica_types_and_add_the_port() -> None:
    j = with_defaults(job())
    assert set(j["spec"]["pytorchReplicaSpecs"]) == {"Master", "Worker"}
    master = j["spec"]["pytorchReplicaSpecs"]["Master"]
    assert master["restartPolicy"] == "OnFailure"
    assert master["template"]["spec"]["containers"][0]["ports"] == [
        {"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}]
    assert j["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    assert j["spec"]["nprocPerNode"] == "auto"
    assert validate(j) == []


def test_validation_names_what_is_wrong() -> None:
    bad = job()
    bad["spec"]["pytorchReplicaSpecs"]["master"]["replicas"] = 2
    bad["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] = "x"
    problems = validate(with_defaults(bad))
    assert "PyTorchJobSpec is not valid: There must be only 1 master replica" in problems
    assert "PyTorchJobSpec is not valid: There is no container named pytorch in Worker" in problems


def test_pods_carry_the_operators_names_labels_and_environment() -> None:
    j = with_defaults(job())
    master, worker = pod_for(j, "Master", 0), pod_for(j, "Worker", 2)
    assert master["metadata"]["name"] == "mnist-master-0"
    assert worker["metadata"]["name"] == "mnist-worker-2"
    assert master["metadata"]["labels"] == {
        "app": "train", "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "mnist", "training.kubeflow.org/replica-type": "master",
        "training.kubeflow.org/replica-index": "0", "training.kubeflow.org/job-role": "master",
        GANG_LABEL: "mnist"}
    assert "training.kubeflow.org/job-role" not in worker["metadata"]["labels"]
    assert master["metadata"]["ownerReferences"][0] == {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": "mnist",
        "uid": "job-uid", "controller": True, "blockOwnerDeletion": True}
    assert env(worker) == {"PYTHONUNBUFFERED": "0", "MASTER_PORT": "23456",
                           "MASTER_ADDR": "mnist-master-0", "PET_MASTER_PORT": "23456",
                           "PET_MASTER_ADDR": "mnist-master-0", "WORLD_SIZE": "4", "RANK": "3",
                           "PET_NPROC_PER_NODE": "auto", "PET_NODE_RANK": "3",
                           "PET_NNODES": "4"}
    assert env(master)["RANK"] == "0"
    assert worker["spec"]["restartPolicy"] == "OnFailure"


def test_exit_code_replicas_run_pods_that_never_restart_and_nproc_scales_the_world() -> None:
    raw = job(workers=1)
    raw["spec"]["nprocPerNode"] = "2"
    raw["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "ExitCode"
    j = with_defaults(raw)
    pod = pod_for(j, "Worker", 0)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert env(pod)["WORLD_SIZE"] == "4"


def test_each_replica_has_a_headless_service_and_the_job_one_pod_group() -> None:
    j = with_defaults(job(schedulingPolicy={"minAvailable": 3, "scheduleTimeoutSeconds": 60}))
    svc = service_for(j, "Worker", 1)
    assert svc["metadata"]["name"] == "mnist-worker-1"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"]["training.kubeflow.org/replica-index"] == "1"
    assert svc["spec"]["ports"][0]["port"] == 23456
    pg = pod_group_for(j)
    assert pg["metadata"]["name"] == "mnist"
    assert pg["spec"] == {"minMember": 3, "scheduleTimeoutSeconds": 60}
    assert pod_group_for(with_defaults(job()))["spec"] == {"minMember": 4}


def test_running_and_restarting_exclude_each_other_and_finishing_stops_running() -> None:
    st: Obj = {}
    set_condition(st, "Created", "True", "PyTorchJobCreated", "created", NOW)
    set_condition(st, "Running", "True", "PyTorchJobRunning", "running", NOW)
    set_condition(st, "Restarting", "True", "PyTorchJobRestarting", "restarting", NOW)
    assert [c["type"] for c in st["conditions"]] == ["Created", "Restarting"]
    set_condition(st, "Running", "True", "PyTorchJobRunning", "running", NOW)
    set_condition(st, "Succeeded", "True", "PyTorchJobSucceeded", "done", NOW)
    assert [(c["type"], c["status"]) for c in st["conditions"]] == [
        ("Created", "True"), ("Running", "False"), ("Succeeded", "True")]


def test_counts_and_back_off() -> None:
    def pod(phase: str, restarts: int = 0, deleting: bool = False) -> Obj:
        meta: Obj = {"name": "p"}
        if deleting:
            meta["deletionTimestamp"] = "2026-11-25T12:00:00Z"
        return {"metadata": meta, "status": {"phase": phase, "containerStatuses": [
            {"name": "pytorch", "restartCount": restarts}]}}
    assert count_replicas([pod("Running"), pod("Running", deleting=True), pod("Succeeded"),
                           pod("Pending")]) == {"active": 1, "succeeded": 1, "failed": 1}
    j = with_defaults(job(backoffLimit=3))
    assert not past_backoff_limit(j, {"Worker": [pod("Running", 2)]})
    assert past_backoff_limit(j, {"Worker": [pod("Running", 2), pod("Running", 1)]})
    assert not past_backoff_limit(j, {"Worker": [pod("Failed", 9)]}), "only running pods count"


# ---- the controller ---------------------------------------------------------------------------

class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.status: Obj | None = None

    async def create(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.calls.append(("create", resource.plural, body["metadata"]["name"]))
        return body

    async def update(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.calls.append(("update", resource.plural, body["metadata"]["name"]))
        return body

    async def update_status(self, resource: Any, body: Obj, ns: Any = None) -> Obj:
        self.status = copy.deepcopy(body["status"])
        return body

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Obj:
        self.calls.append(("delete", resource.plural, name))
        return {}


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


def _pod(j: Obj, rtype: str, idx: int, phase: str, exit_code: int | None = None) -> Obj:
    p = pod_for(with_defaults(j), rtype, idx)
    p["metadata"]["uid"] = f"uid-{rtype}-{idx}"
    p["status"] = {"phase": phase}
    if exit_code is not None:
        p["status"]["containerStatuses"] = [{"name": "pytorch", "restartCount": 0, "state": {
            "terminated": {"exitCode": exit_code}}}]
    return p


async def reconcile(j: Obj, pods: list[Obj] = (), groups: list[Obj] | None = None,
                    services: list[Obj] = ()) -> tuple[_Client, _Recorder]:
    client, recorder = _Client(), _Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctx = ControllerContext(client, informers, recorder, {"pytorchjob-now": lambda: NOW})  # type: ignore[arg-type]
    ctl = PyTorchJobController(ctx)
    informers.get(PYTORCHJOBS)._replace([j], "1")
    informers.get(PODS)._replace(list(pods), "1")
    informers.get(SERVICES)._replace(list(services), "1")
    informers.get(PODGROUPS)._replace(groups or [], "1")
    await ctl.reconcile("ml/mnist")
    ctl.queue.shut_down()
    return client, recorder


async def test_a_new_job_gets_its_pod_group_pods_services_and_created_condition() -> None:
    client, _ = await reconcile(job())
    creates = [(plural, name) for verb, plural, name in client.calls if verb == "create"]
    assert creates[0] == ("podgroups", "mnist")
    assert sorted(n for p, n in creates if p == "pods") == [
        "mnist-master-0", "mnist-worker-0", "mnist-worker-1", "mnist-worker-2"]
    assert sorted(n for p, n in creates if p == "services") == [
        "mnist-master-0", "mnist-worker-0", "mnist-worker-1", "mnist-worker-2"]
    assert client.status is not None
    assert [c["type"] for c in client.status["conditions"]] == ["Created"]
    assert client.status["conditions"][0]["message"] == "PyTorchJob mnist is created."
    assert client.status["startTime"] == "2026-11-25T12:00:00Z"
    assert client.status["replicaStatuses"]["Worker"]["selector"] == (
        "training.kubeflow.org/job-name=mnist,training.kubeflow.org/operator-name="
        "pytorchjob-controller,training.kubeflow.org/replica-type=worker")


async def test_running_master_makes_the_job_running_and_its_success_completes_it() -> None:
    j = job(workers=1)
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running"), _pod(j, "Worker", 0, "Running")])
    assert client.status is not None
    assert client.status["conditions"][-1]["type"] == "Running"
    assert client.status["replicaStatuses"]["Master"]["active"] == 1
    client, rec = await reconcile(j, [_pod(j, "Master", 0, "Succeeded"),
                                      _pod(j, "Worker", 0, "Succeeded")])
    assert client.status is not None
    assert client.status["conditions"][-1]["type"] == "Succeeded"
    assert client.status["completionTime"] == "2026-11-25T12:00:00Z"
    assert ("Normal", "PyTorchJobSucceeded", "PyTorchJob mnist is successfully completed.") \
        in rec.events


async def test_a_failed_on_failure_pod_is_replaced_and_the_job_restarts() -> None:
    j = job(workers=1)
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running"),
                                    _pod(j, "Worker", 0, "Failed", exit_code=1)])
    assert ("delete", "pods", "mnist-worker-0") in client.calls
    assert client.status is not None
    assert client.status["conditions"][-1]["type"] == "Restarting"


async def test_exit_code_policy_retries_signals_and_fails_on_program_errors() -> None:
    j = job(workers=1)
    j["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "ExitCode"
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running"),
                                    _pod(j, "Worker", 0, "Failed", exit_code=137)])
    assert ("delete", "pods", "mnist-worker-0") in client.calls
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running"),
                                    _pod(j, "Worker", 0, "Failed", exit_code=1)])
    assert ("delete", "pods", "mnist-worker-0") not in client.calls
    assert client.status is not None
    assert client.status["conditions"][-1]["type"] == "Failed"


async def test_never_policy_failure_fails_the_job_and_clean_all_removes_everything() -> None:
    j = job(workers=1, cleanPodPolicy="All")
    j["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "Never"
    pods = [_pod(j, "Master", 0, "Running"), _pod(j, "Worker", 0, "Failed", exit_code=1)]
    client, _ = await reconcile(j, pods)
    assert client.status is not None and client.status["conditions"][-1]["type"] == "Failed"
    j["status"] = client.status
    client, _ = await reconcile(j, pods)
    assert {("delete", "pods", "mnist-master-0"), ("delete", "pods", "mnist-worker-0"),
            ("delete", "services", "mnist-master-0"), ("delete", "podgroups", "mnist")} <= \
        set(client.calls)


async def test_an_expired_deadline_fails_the_job_and_deletes_its_pods() -> None:
    j = job(workers=1, activeDeadlineSeconds=30)
    j["status"] = {"startTime": (NOW - timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "conditions": [{"type": "Created", "status": "True",
                                   "reason": "PyTorchJobCreated"}]}
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running")])
    assert ("delete", "pods", "mnist-master-0") in client.calls
    assert client.status is not None
    assert client.status["conditions"][-1]["message"] == \
        "Job mnist has failed because it was active longer than specified deadline"


async def test_an_unschedulable_pod_group_is_reported_on_the_job() -> None:
    j = job(workers=1)
    group = pod_group_for(with_defaults(j))
    group["status"] = {"phase": "Unschedulable", "conditions": [{
        "type": "Scheduled", "status": "False", "reason": "Unschedulable",
        "message": "pod group ml/mnist: 1 of 2 pods fit at once (minMember 2)."}]}
    _, rec = await reconcile(j, groups=[group])
    assert ("Warning", "PodGroupUnschedulable",
            "pod group ml/mnist: 1 of 2 pods fit at once (minMember 2).") in rec.events


async def test_suspend_deletes_what_runs_and_says_so() -> None:
    j = job(workers=1, suspend=True)
    client, _ = await reconcile(j, [_pod(j, "Master", 0, "Running")],
                                groups=[pod_group_for(with_defaults(j))])
    assert ("delete", "pods", "mnist-master-0") in client.calls
    assert ("delete", "podgroups", "mnist") in client.calls
    assert client.status is not None
    assert client.status["conditions"][-1]["type"] == "Suspended"


async def test_an_invalid_job_is_warned_about_and_left_alone() -> None:
    j = job()
    j["spec"]["pytorchReplicaSpecs"]["master"]["replicas"] = 2
    client, rec = await reconcile(j)
    assert client.calls == [] and client.status is None
    assert rec.events[0][1] == "InvalidSpec"


async def test_a_gang_unschedulable_past_its_timeout_releases_the_pods_it_holds() -> None:
    j = job(workers=1, schedulingPolicy={"scheduleTimeoutSeconds": 30})
    group = pod_group_for(with_defaults(j))
    group["status"] = {"phase": "Unschedulable", "conditions": [{
        "type": "Scheduled", "status": "False", "reason": "Unschedulable", "message": "m",
        "lastTransitionTime": (NOW - timedelta(seconds=31)).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    master = _pod(j, "Master", 0, "Running")
    master["spec"]["nodeName"] = "n1"
    worker = _pod(j, "Worker", 0, "Pending")            # lost its place; cannot come back
    client, rec = await reconcile(j, [master, worker], groups=[group])
    assert ("delete", "pods", "mnist-master-0") in client.calls
    assert ("delete", "pods", "mnist-worker-0") not in client.calls, "it holds nothing"
    assert any(r == "GangScheduleTimeout" for _, r, _ in rec.events)
    group["status"]["conditions"][0]["lastTransitionTime"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    client, _ = await reconcile(j, [master, worker], groups=[group])
    assert ("delete", "pods", "mnist-master-0") not in client.calls, "not yet timed out"
