"""Distributed training on `navio server` (issue 15): Kubeflow PyTorchJobs run a real
torch.distributed (gloo) program over the pod network, gang-scheduled all or nothing.

The server's local node lives in a node netns the test creates (services_lab.ServicesLab):
pods talk to each other over its bridge and find the master through the node-local DNS; no
route leads out of it. Capacity is shaped with CPU requests against the node's 2 CPUs.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterator

import pytest

from cluster import wait_for
from services_lab import ServicesLab

TRAIN = r'''
import datetime, os, socket, sys, time
import torch, torch.distributed as dist
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
fail_once = os.environ.get("FAIL_ONCE_RANK") == str(rank)
if fail_once and not os.path.exists("/scratch/failed"):
    open("/scratch/failed", "w").close()
    print(f"rank {rank} failing on purpose", flush=True)
    sys.exit(1)
deadline = time.time() + 120                 # the operator's init container waits likewise
while True:
    try:
        socket.getaddrinfo(os.environ["MASTER_ADDR"], None)
        break
    except socket.gaierror:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=150))
t = torch.ones(3) * (rank + 1)
dist.all_reduce(t)
assert t.tolist() == [world * (world + 1) / 2] * 3, t
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
ddp = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
g = torch.Generator().manual_seed(42)
x = torch.randn(64, 4, generator=g)
y = x @ torch.tensor([[1.0, -2.0, 3.0, 0.5]]).T
part = slice(rank * 64 // world, (rank + 1) * 64 // world)
for _ in range(20):
    opt.zero_grad()
    ((ddp(x[part]) - y[part]) ** 2).mean().backward()
    opt.step()
with torch.no_grad():
    final = ((model(x) - y) ** 2).mean().item()
dist.barrier()
print(f"rank {rank}/{world} allreduce {t.tolist()} final loss {final:.6f}", flush=True)
dist.destroy_process_group()
'''


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicesLab]:
    lab = ServicesLab(tmp_path_factory.mktemp("train"), tag="trn").start()
    try:
        assert lab.kubectl is not None
        lab.kubectl("create", "configmap", "train", f"--from-literal=train.py={TRAIN}")
        yield lab
    finally:
        if lab.kubectl is not None:
            lab.kubectl("delete", "pytorchjobs", "--all", "--wait=true", "--timeout=60s",
                        check=False, timeout=70)
        lab.close()


def job(name: str, workers: int = 3, cpu: str = "100m", fail_once_rank: int | None = None,
        **run: Any) -> dict[str, Any]:
    env = [{"name": "FAIL_ONCE_RANK", "value": str(fail_once_rank)}] \
        if fail_once_rank is not None else []

    def replica(n: int) -> dict[str, Any]:
        return {"replicas": n, "restartPolicy": "OnFailure", "template": {"spec": {
            "containers": [{"name": "pytorch", "image": "python",
                            "command": [sys.executable, "/train/train.py"],
                            "env": env,
                            "resources": {"requests": {"cpu": cpu}},
                            "volumeMounts": [{"name": "code", "mountPath": "/train"},
                                             {"name": "scratch", "mountPath": "/scratch"}]}],
            "volumes": [{"name": "code", "configMap": {"name": "train"}},
                        {"name": "scratch", "emptyDir": {}}]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"runPolicy": dict(run),
                     "pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(workers)}}}


def _job(lab: ServicesLab, name: str) -> dict[str, Any]:
    assert lab.kubectl is not None
    return json.loads(lab.kubectl("get", "pytorchjob", name, "-o", "json"))


def _state(lab: ServicesLab, name: str) -> str:
    conditions = (_job(lab, name).get("status") or {}).get("conditions") or [{}]
    return conditions[-1].get("type", "")


def _bound(lab: ServicesLab, name: str) -> list[str]:
    assert lab.kubectl is not None
    pods = json.loads(lab.kubectl("get", "pods", "-l", f"training.kubeflow.org/job-name={name}",
                                  "-o", "json"))["items"]
    return [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName")]


def test_a_pytorchjob_trains_with_torch_distributed_and_succeeds(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    lab.apply(job("mnist", fail_once_rank=2))
    wait_for(lambda: _state(lab, "mnist") in ("Succeeded", "Failed"), 300,
             "the PyTorchJob to finish", interval=2)
    assert _state(lab, "mnist") == "Succeeded", json.dumps(_job(lab, "mnist")["status"])
    losses = set()
    for pod in ("mnist-master-0", "mnist-worker-0", "mnist-worker-1", "mnist-worker-2"):
        line = [ln for ln in k("logs", pod).splitlines() if "final loss" in ln][-1]
        assert "allreduce [10.0, 10.0, 10.0]" in line and "/4 " in line, line
        losses.add(line.rsplit("final loss ", 1)[1])
    assert len(losses) == 1, f"every rank reports the same final loss: {losses}"
    # The worker that exited 1 was restarted in place (OnFailure) and the job still succeeded.
    worker = json.loads(k("get", "pod", "mnist-worker-1", "-o", "json"))
    assert worker["status"]["containerStatuses"][0]["restartCount"] >= 1
    table = k("get", "pytorchjobs")
    assert table.split("\n")[0].split() == ["NAME", "STATE", "AGE"]
    assert "mnist" in table and "Succeeded" in table
    svc = json.loads(k("get", "service", "mnist-master-0", "-o", "json"))
    assert svc["spec"]["clusterIP"] == "None"


def test_a_job_that_does_not_fit_whole_binds_nothing_until_it_does(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "blocker"},
               "spec": {"containers": [{"name": "c", "image": "python", "command": [
                   "sleep", "3600"], "resources": {"requests": {"cpu": "700m"}}}]}})
    wait_for(lambda: k("get", "pod", "blocker", "-o", "jsonpath={.spec.nodeName}"), 30,
             "the blocker to be bound")
    # 4 × 400m = 1.6 CPU; beside the blocker's 0.7 only 3 fit on the 2-CPU node.
    lab.apply(job("gang", cpu="400m"))
    wait_for(lambda: "Unschedulable" in k("get", "podgroup", "gang", "-o",
                                          "jsonpath={.status.phase}"), 60,
             "the gang to be found unschedulable")
    assert _bound(lab, "gang") == [], "no member is bound while the whole gang cannot fit"
    events = k("get", "events", "--field-selector", "involvedObject.name=gang",
               "-o", "jsonpath={.items[*].reason}")
    assert "PodGroupUnschedulable" in events
    k("delete", "pod", "blocker", "--grace-period=1", "--wait=true", timeout=60)
    wait_for(lambda: len(_bound(lab, "gang")) == 4, 60, "all four members to be bound")
    wait_for(lambda: _state(lab, "gang") == "Succeeded", 300, "the gang job to finish",
             interval=2)


def test_two_jobs_that_each_half_fit_do_not_both_hold_capacity(lab: ServicesLab) -> None:
    k = lab.kubectl
    assert k is not None
    k("delete", "pytorchjobs", "--all", "--wait=true", "--timeout=60s", timeout=70)
    wait_for(lambda: not json.loads(k("get", "pods", "-o", "json"))["items"], 90,
             "earlier pods to be gone")
    # 4 × 450m = 1.8 CPU each: the node holds one job whole, never half of both.
    lab.apply(job("left", cpu="450m"), job("right", cpu="450m"))
    wait_for(lambda: len(_bound(lab, "left")) + len(_bound(lab, "right")) >= 4, 60,
             "one job to be admitted")
    bound = {"left": len(_bound(lab, "left")), "right": len(_bound(lab, "right"))}
    assert sorted(bound.values()) == [0, 4], bound
    first = max(bound, key=bound.get)           # type: ignore[arg-type]
    second = "right" if first == "left" else "left"
    wait_for(lambda: _state(lab, first) == "Succeeded", 300, f"{first} to finish", interval=2)
    # Finished pods (cleanPodPolicy None) keep no capacity: the second job runs whole.
    wait_for(lambda: len(_bound(lab, second)) == 4, 120, f"{second} to be admitted")
    wait_for(lambda: _state(lab, second) == "Succeeded", 300, f"{second} to finish",
             interval=2)

