"""What a PyTorchJob asks for: defaults, validation, and the pods, Services and PodGroup that
Kubeflow's training operator (pkg/controller.v1/pytorch, v1.7–1.8) makes for it.

Why pure functions: the naming, labels and environment are the contract users' training
scripts and tools read (`MASTER_ADDR`, `RANK`, `PET_*`, `training.kubeflow.org/*` labels), so
they are built here without I/O and tested exactly.

Contract (as the training operator):
- Replica types are `Master` and `Worker` (keys normalised to that case); each defaults to 1
  replica and restartPolicy OnFailure; the container named `pytorch` (the first one if none
  is) gets the port `pytorchjob-port` 23456 unless it declares it; `nprocPerNode` defaults
  to "auto"; `runPolicy.cleanPodPolicy` defaults to None.
- Replica i of type T is the pod and headless Service `<job>-<t>-<i>` (t lower-case),
  labelled `training.kubeflow.org/{operator-name,job-name,replica-type,replica-index}` and
  `training.kubeflow.org/job-role: master` on master 0. The pod's restartPolicy is the
  replica's, except ExitCode, which becomes Never (the operator decides on restarts).
- Every container gets PYTHONUNBUFFERED=0; with a Master: MASTER_ADDR/PORT and
  PET_MASTER_ADDR/PORT (the master Service), WORLD_SIZE (replicas × nprocPerNode, nprocPerNode
  1 when "auto"), RANK and PET_NODE_RANK (master 0, worker i+1), PET_NPROC_PER_NODE; and
  PET_NNODES (the number of replicas).
- Gang scheduling: one PodGroup named as the job with minMember = all replicas (or
  `schedulingPolicy.minAvailable`) and the job's scheduleTimeoutSeconds; every pod carries the
  label that makes navio's scheduler treat it as a member.

Not built: elastic training (`elasticPolicy`, PET_RDZV_*), and the operator's init container
that waits for the master's DNS name (torch's rendezvous retries connecting until its
timeout, and images other than the job's may not exist on a node).
"""

from __future__ import annotations

import copy
from typing import Any

from navio.client import ResourceRef

__all__ = ["PYTORCHJOBS", "PODGROUPS", "GANG_LABEL", "MASTER", "WORKER", "OPERATOR_NAME",
           "JOB_NAME_LABEL", "OPERATOR_NAME_LABEL", "REPLICA_TYPE_LABEL", "REPLICA_INDEX_LABEL",
           "JOB_ROLE_LABEL", "DEFAULT_PORT", "PORT_NAME", "CONTAINER_NAME", "with_defaults",
           "validate", "replica_name", "job_labels", "replica_labels", "pod_for", "service_for",
           "pod_group_for", "total_replicas", "master_port", "Obj"]

Obj = dict[str, Any]

PYTORCHJOBS = ResourceRef("kubeflow.org", "v1", "pytorchjobs", True, "PyTorchJob")
PODGROUPS = ResourceRef("scheduling.navio.dev", "v1alpha1", "podgroups", True, "PodGroup")
GANG_LABEL = "scheduling.navio.dev/pod-group"

MASTER, WORKER = "Master", "Worker"
OPERATOR_NAME = "pytorchjob-controller"
OPERATOR_NAME_LABEL = "training.kubeflow.org/operator-name"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
CONTAINER_NAME, PORT_NAME, DEFAULT_PORT = "pytorch", "pytorchjob-port", 23456
_RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")


def _container(template: Obj) -> Obj | None:
    containers = ((template.get("spec") or {}).get("containers")) or []
    return next((c for c in containers if c.get("name") == CONTAINER_NAME),
                containers[0] if containers else None)


def with_defaults(job: Obj) -> Obj:
    """A copy of the job with the training operator's defaults applied."""
    job = copy.deepcopy(job)
    spec = job.setdefault("spec", {})
    run = spec.setdefault("runPolicy", {})
    run.setdefault("cleanPodPolicy", "None")
    spec.setdefault("nprocPerNode", "auto")
    replicas: Obj = {}
    for rtype, rspec in (spec.get("pytorchReplicaSpecs") or {}).items():
        name = {"master": MASTER, "worker": WORKER}.get(rtype.lower(), rtype)
        rspec = dict(rspec or {})
        rspec.setdefault("replicas", 1)
        rspec.setdefault("restartPolicy", "OnFailure")
        container = _container(rspec.setdefault("template", {}))
        if container is not None:
            ports = container.setdefault("ports", [])
            if not any(p.get("name") == PORT_NAME for p in ports):
                ports.append({"name": PORT_NAME, "containerPort": DEFAULT_PORT,
                              "protocol": "TCP"})
        replicas[name] = rspec
    spec["pytorchReplicaSpecs"] = replicas
    return job


def validate(job: Obj) -> list[str]:
    """ValidateV1PyTorchJob's complaints about a defaulted job; empty when valid."""
    replicas = (job.get("spec") or {}).get("pytorchReplicaSpecs") or {}
    if not replicas:
        return ["PyTorchJobSpec is not valid: pytorchReplicaSpecs must be set"]
    errs = []
    for rtype, rspec in sorted(replicas.items()):
        if rtype not in (MASTER, WORKER):
            errs.append(f"PyTorchJobSpec is not valid: unknown replica type {rtype!r} "
                        f"(Master or Worker)")
            continue
        containers = ((rspec.get("template") or {}).get("spec") or {}).get("containers") or []
        if not containers:
            errs.append(f"PyTorchJobSpec is not valid: containers definition expected in "
                        f"{rtype}")
        elif not any(c.get("name") == CONTAINER_NAME for c in containers):
            errs.append(f"PyTorchJobSpec is not valid: There is no container named "
                        f"{CONTAINER_NAME} in {rtype}")
        if any(not c.get("image") for c in containers):
            errs.append(f"PyTorchJobSpec is not valid: Image is undefined in the container "
                        f"of {rtype}")
        if rspec.get("restartPolicy") not in _RESTART_POLICIES:
            errs.append(f"PyTorchJobSpec is not valid: restartPolicy of {rtype} must be one "
                        f"of {', '.join(_RESTART_POLICIES)}")
        if rtype == MASTER and rspec.get("replicas") != 1:
            errs.append("PyTorchJobSpec is not valid: There must be only 1 master replica")
        if not isinstance(rspec.get("replicas"), int) or rspec["replicas"] < 0:
            errs.append(f"PyTorchJobSpec is not valid: replicas of {rtype} must be >= 0")
    return errs


def replica_name(job_name: str, rtype: str, index: int) -> str:
    return f"{job_name}-{rtype.lower()}-{index}".replace("/", "-")


def job_labels(job_name: str) -> dict[str, str]:
    return {OPERATOR_NAME_LABEL: OPERATOR_NAME, JOB_NAME_LABEL: job_name.replace("/", "-")}


def replica_labels(job_name: str, rtype: str, index: int | None = None) -> dict[str, str]:
    labels = job_labels(job_name)
    labels[REPLICA_TYPE_LABEL] = rtype.lower()
    if index is not None:
        labels[REPLICA_INDEX_LABEL] = str(index)
    return labels


def total_replicas(job: Obj) -> int:
    return sum(int(r.get("replicas") or 0)
               for r in (job["spec"].get("pytorchReplicaSpecs") or {}).values())


def master_port(job: Obj) -> int:
    master = job["spec"]["pytorchReplicaSpecs"].get(MASTER) or {}
    container = _container(master.get("template") or {}) or {}
    return next((int(p["containerPort"]) for p in container.get("ports") or ()
                 if p.get("name") == PORT_NAME), DEFAULT_PORT)


def _owner(job: Obj) -> Obj:
    return {"apiVersion": PYTORCHJOBS.api_version, "kind": PYTORCHJOBS.kind,
            "name": job["metadata"]["name"], "uid": job["metadata"].get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def _env(job: Obj, rtype: str, index: int) -> list[Obj]:
    spec = job["spec"]
    total = total_replicas(job)
    nproc = str(spec.get("nprocPerNode") or "auto")
    env = [{"name": "PYTHONUNBUFFERED", "value": "0"}]
    if MASTER in spec["pytorchReplicaSpecs"]:
        port = str(master_port(job))
        addr = replica_name(job["metadata"]["name"], MASTER, 0)
        rank = index + 1 if rtype == WORKER else index
        world = total * (int(nproc) if nproc.isdigit() else 1)
        env += [{"name": "MASTER_PORT", "value": port},
                {"name": "MASTER_ADDR", "value": addr},
                {"name": "PET_MASTER_PORT", "value": port},
                {"name": "PET_MASTER_ADDR", "value": addr},
                {"name": "WORLD_SIZE", "value": str(world)},
                {"name": "RANK", "value": str(rank)},
                {"name": "PET_NPROC_PER_NODE", "value": nproc},
                {"name": "PET_NODE_RANK", "value": str(rank)}]
    env.append({"name": "PET_NNODES", "value": str(total)})
    return env


def pod_for(job: Obj, rtype: str, index: int, gang: bool = True) -> Obj:
    """The pod of replica `index` of `rtype` for a defaulted job."""
    name = job["metadata"]["name"]
    rspec = job["spec"]["pytorchReplicaSpecs"][rtype]
    template = copy.deepcopy(rspec.get("template") or {})
    meta = template.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels.update(replica_labels(name, rtype, index))
    if rtype == MASTER and index == 0:
        labels[JOB_ROLE_LABEL] = "master"
    if gang:
        labels[GANG_LABEL] = name
    pod_spec = template.get("spec") or {}
    priority = ((job["spec"].get("runPolicy") or {}).get("schedulingPolicy") or {}
                ).get("priorityClass")
    if priority and not pod_spec.get("priorityClassName"):
        pod_spec["priorityClassName"] = priority      # the gang's priority is its pods'
    policy = rspec.get("restartPolicy") or "OnFailure"
    pod_spec["restartPolicy"] = "Never" if policy == "ExitCode" else policy
    extra = _env(job, rtype, index)
    for container in pod_spec.get("containers") or ():
        names = {e["name"] for e in extra}
        container["env"] = [e for e in container.get("env") or () if e.get("name") not in names] \
            + copy.deepcopy(extra)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": replica_name(name, rtype, index),
                         "namespace": job["metadata"]["namespace"], "labels": labels,
                         "annotations": dict(meta.get("annotations") or {}),
                         "ownerReferences": [_owner(job)]},
            "spec": pod_spec}


def service_for(job: Obj, rtype: str, index: int) -> Obj:
    """The headless Service that gives replica `index` of `rtype` its stable DNS name."""
    name = job["metadata"]["name"]
    labels = replica_labels(name, rtype, index)
    rspec = job["spec"]["pytorchReplicaSpecs"][rtype]
    container = _container(rspec.get("template") or {}) or {}
    port = next((int(p["containerPort"]) for p in container.get("ports") or ()
                 if p.get("name") == PORT_NAME), DEFAULT_PORT)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": replica_name(name, rtype, index),
                         "namespace": job["metadata"]["namespace"], "labels": labels,
                         "ownerReferences": [_owner(job)]},
            "spec": {"clusterIP": "None", "selector": labels,
                     "ports": [{"name": PORT_NAME, "port": port, "targetPort": port,
                                "protocol": "TCP"}]}}


def pod_group_for(job: Obj) -> Obj:
    """The PodGroup that makes the scheduler bind the job's pods all together or not at all."""
    policy = (job["spec"].get("runPolicy") or {}).get("schedulingPolicy") or {}
    spec: Obj = {"minMember": max(int(policy.get("minAvailable") or total_replicas(job)), 1)}
    if policy.get("scheduleTimeoutSeconds"):
        spec["scheduleTimeoutSeconds"] = int(policy["scheduleTimeoutSeconds"])
    return {"apiVersion": PODGROUPS.api_version, "kind": PODGROUPS.kind,
            "metadata": {"name": job["metadata"]["name"],
                         "namespace": job["metadata"]["namespace"],
                         "labels": job_labels(job["metadata"]["name"]),
                         "ownerReferences": [_owner(job)]},
            "spec": spec}
