"""A pod's API status from what the runtime reports, as the kubelet's generateAPIPodStatus.

Why: `kubectl get pods` (READY, STATUS, RESTARTS), `describe` and every controller read
status.phase, conditions and containerStatuses; they must come out exactly as a real kubelet
writes them (pkg/kubelet/kubelet_pods.go convertToAPIContainerStatuses and getPhase,
pkg/kubelet/status/generate.go, pkg/apis/core/helper/qos).

Guarantees (pure functions, tested table-wise in tests/unit/kubelet):
- Each container's latest runtime instance gives `state`, the one before it `lastState`;
  `restartCount` is the latest instance's attempt. A container that will be (re)started and
  has a recorded start failure shows `waiting` with that reason (CrashLoopBackOff,
  CreateContainerConfigError, ...); one with no instance yet waits as ContainerCreating
  (PodInitializing while the pod has init containers).
- Conditions are the non-kubelet ones already on the pod, then PodReadyToStartContainers,
  Initialized, Ready, ContainersReady, PodScheduled; a condition keeps its
  lastTransitionTime while its status is unchanged.
- A terminal phase never changes again; reason/message stay with an unchanged phase.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from navio.api.quantity import QuantityError, parse_quantity
from navio.kubelet.ephemeral import as_ephemeral_statuses
from navio.runtime.protocol import ContainerStatus

__all__ = ["PodStatusInput", "generate_pod_status", "get_phase", "is_sidecar", "qos_class",
           "rfc3339",
           "should_restart", "CONTAINER_CREATING", "POD_INITIALIZING", "KUBELET_CONDITIONS"]

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                      "PodScheduled")
_EPOCH = "1970-01-01T00:00:00Z"


def rfc3339(ts: float | None) -> str:
    if not ts:
        return _EPOCH
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PodStatusInput:
    """What the kubelet knows about one pod at one moment.

    `containers`: every runtime container of the pod (any sandbox). `sandbox_ready`: a ready
    sandbox exists. `ready`/`started`: the probe manager's verdict for a running container
    (name, container id). `reasons`: start failures by container name. `terminal`: the pod
    worker finished the pod for good (deleted, or done under its restart policy).
    `evicted`: (reason, message) of a kubelet decision that failed the pod (its active
    deadline passed): phase Failed with them, whatever the containers say."""

    pod: Mapping[str, Any]
    containers: Sequence[ContainerStatus]
    sandbox_ready: bool
    pod_ips: Sequence[str]
    host_ips: Sequence[str]
    runtime_name: str
    old_status: Mapping[str, Any]
    ready: Callable[[str, str], bool]
    started: Callable[[str, str], bool]
    reasons: Mapping[str, tuple[str, str]]
    terminal: bool
    now: str
    evicted: tuple[str, str] | None = None


def _latest(containers: Sequence[ContainerStatus], name: str) -> list[ContainerStatus]:
    mine = [c for c in containers if c.name == name]
    return sorted(mine, key=lambda c: (c.created_at, c.attempt), reverse=True)


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """podutil.IsRestartableInitContainer: an init container with restartPolicy Always
    (kube 1.29+ sidecar), started in init order and kept running beside the app."""
    return container.get("restartPolicy") == "Always"


def should_restart(container: Mapping[str, Any], pod: Mapping[str, Any],
                   latest: ContainerStatus | None) -> bool:
    """kubecontainer.ShouldContainerBeRestarted (a container's own restartPolicy, which only
    sidecars have, wins over the pod's)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if latest is None:
        return True
    if latest.state == "running":
        return False
    if latest.state in ("unknown", "created"):
        return True
    policy = container.get("restartPolicy") or (pod.get("spec") or {}).get("restartPolicy") \
        or "Always"
    if policy == "Never":
        return False
    if policy == "OnFailure" and latest.exit_code == 0:
        return False
    return True


def _state(c: ContainerStatus, cid: str) -> dict[str, Any]:
    if c.state == "running":
        return {"running": {"startedAt": rfc3339(c.started_at)}}
    if c.state == "exited":
        term: dict[str, Any] = {"exitCode": int(c.exit_code or 0)}
        if c.reason:
            term["reason"] = c.reason
        if c.message:
            term["message"] = c.message
        term.update(startedAt=rfc3339(c.started_at), finishedAt=rfc3339(c.finished_at),
                    containerID=cid)
        return {"terminated": term}
    return {"waiting": {}}


def _container_statuses(inp: PodStatusInput, specs: Sequence[Mapping[str, Any]],
                        old: Sequence[Mapping[str, Any]], *, is_init: bool) -> list[dict]:
    pod = inp.pod
    has_init = bool((pod.get("spec") or {}).get("initContainers"))
    default_reason = POD_INITIALIZING if has_init else CONTAINER_CREATING
    olds = {o.get("name"): o for o in old}
    out = []
    for spec in specs:
        name = str(spec.get("name"))
        status: dict[str, Any] = {"name": name, "state": {"waiting": {"reason": default_reason}},
                                  "lastState": {}, "ready": False, "restartCount": 0,
                                  "image": spec.get("image", ""), "imageID": ""}
        prev = olds.get(name)
        if prev is not None:
            if "terminated" in (prev.get("state") or {}):
                status = {**prev}
            else:
                status["restartCount"] = prev.get("restartCount", 0)
                status["lastState"] = prev.get("lastState") or {}
        mounts = [{"name": m.get("name"), "mountPath": m.get("mountPath"),
                   **({"readOnly": True, "recursiveReadOnly": "Disabled"}
                      if m.get("readOnly") else {})}
                  for m in spec.get("volumeMounts") or ()]
        if mounts:
            status["volumeMounts"] = mounts
        history = _latest(inp.containers, name)
        if history:
            latest = history[0]
            cid = f"{inp.runtime_name}://{latest.id}"
            status.update(state=_state(latest, cid), restartCount=latest.attempt,
                          containerID=cid, image=latest.image or spec.get("image", ""),
                          imageID=latest.image_id)
            if len(history) > 1:
                status["lastState"] = _state(history[1],
                                             f"{inp.runtime_name}://{history[1].id}")
        latest_rt = history[0] if history else None
        sidecar = is_init and is_sidecar(spec)
        skip = is_init and not sidecar and latest_rt is not None \
            and latest_rt.state == "exited" and latest_rt.exit_code == 0
        if not skip and should_restart(spec, pod, latest_rt) and name in inp.reasons:
            reason, message = inp.reasons[name]
            if "terminated" in status["state"]:
                status["lastState"] = status["state"]
            waiting = {"reason": reason}
            if message:
                waiting["message"] = message
            status["state"] = {"waiting": waiting}
        running = "running" in status["state"]
        cid_raw = latest_rt.id if latest_rt is not None else ""
        started = running and inp.started(name, cid_raw)
        status["started"] = started
        if is_init and not sidecar:
            term = status["state"].get("terminated")
            status["ready"] = bool(term) and term.get("exitCode") == 0
        else:
            status["ready"] = bool(started and inp.ready(name, cid_raw))
        out.append(status)
    if not is_init:
        out.sort(key=lambda s: s["name"])
    return out


def _any_regular_started(spec: Mapping[str, Any], by_name: Mapping[str, Any]) -> bool:
    """kubecontainer.HasAnyRegularContainerStarted."""
    for c in spec.get("containers") or ():
        state = (by_name.get(c.get("name")) or {}).get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def get_phase(pod: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]],
              terminal: bool) -> str:
    """kubelet_pods.go getPhase; sidecars count as running (pending until started), and
    once terminated they are ignored."""
    spec = pod.get("spec") or {}
    by_name = {str(s.get("name")): s for s in statuses}
    pending_init = failed_init = 0
    for c in spec.get("initContainers") or ():
        if is_sidecar(c):
            continue
        s = by_name.get(c.get("name"))
        state = (s or {}).get("state") or {}
        last = ((s or {}).get("lastState") or {}).get("terminated")
        if s is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode", 0) != 0:
                failed_init += 1
        elif "waiting" in state:
            if last is not None:
                if last.get("exitCode", 0) != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    unknown = running = waiting = stopped = succeeded = 0
    for c in spec.get("containers") or ():
        s = by_name.get(c.get("name"))
        if s is None:
            unknown += 1
            continue
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode", 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if (s.get("lastState") or {}).get("terminated") is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    for c in spec.get("initContainers") or ():
        if not is_sidecar(c):
            continue
        s = by_name.get(c.get("name"))
        if s is None:
            unknown += 1
            continue
        state = s.get("state") or {}
        if "running" in state:
            if not s.get("started"):
                pending_init += 1
            running += 1
        elif "terminated" in state:
            pass
        elif "waiting" in state:
            if (s.get("lastState") or {}).get("terminated") is None:
                pending_init += 1
        else:
            pending_init += 1
    policy = spec.get("restartPolicy") or "Always"
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if (pending_init > 0 and not _any_regular_started(spec, by_name)) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _sum(resources: list[Mapping[str, Any]], kind: str) -> tuple[dict[str, Decimal], bool]:
    total: dict[str, Decimal] = {}
    all_limited = True
    for r in resources:
        found = set()
        for name, q in ((r or {}).get(kind) or {}).items():
            if name not in ("cpu", "memory"):
                continue
            try:
                amount = parse_quantity(str(q))
            except QuantityError:
                continue
            if amount > 0:
                found.add(name)
                total[name] = total.get(name, Decimal(0)) + amount
        if kind == "limits" and not {"cpu", "memory"} <= found:
            all_limited = False
    return total, all_limited


def qos_class(pod: Mapping[str, Any]) -> str:
    """pkg/apis/core/helper/qos ComputePodQOS."""
    spec = pod.get("spec") or {}
    res = [c.get("resources") or {} for c in (*(spec.get("containers") or ()),
                                                *(spec.get("initContainers") or ()))]
    requests, _ = _sum(res, "requests")
    limits, guaranteed = _sum(res, "limits")
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _conditions(inp: PodStatusInput, phase: str, statuses: list[dict],
                init_statuses: list[dict]) -> list[dict[str, Any]]:
    pod = inp.pod
    spec = pod.get("spec") or {}
    by_name = {s["name"]: s for s in (*statuses, *init_statuses)}
    terminal_phase = phase in ("Succeeded", "Failed")

    def cond(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False",
                             "lastProbeTime": None}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    ready_to_start = cond("PodReadyToStartContainers", inp.sandbox_ready)
    # Initialized
    unknown = [c["name"] for c in spec.get("initContainers") or () if c["name"] not in by_name]
    incomplete = [c["name"] for c in spec.get("initContainers") or ()
                  if c["name"] in by_name
                  and not by_name[c["name"]]["started" if is_sidecar(c) else "ready"]]
    if phase == "Succeeded" and not unknown:
        initialized = cond("Initialized", True, "PodCompleted")
    elif _any_regular_started(spec, by_name) or not (unknown or incomplete):
        initialized = cond("Initialized", True)
    else:
        msgs = []
        if unknown:
            msgs.append(f"containers with unknown status: {_names(unknown)}")
        if incomplete:
            msgs.append(f"containers with incomplete status: {_names(incomplete)}")
        initialized = cond("Initialized", False, "ContainersNotInitialized", ", ".join(msgs))
    # ContainersReady / Ready
    must_be_ready = [*(c for c in spec.get("initContainers") or () if is_sidecar(c)),
                     *(spec.get("containers") or ())]
    unknown = [c["name"] for c in must_be_ready if c["name"] not in by_name]
    unready = [c["name"] for c in must_be_ready
               if c["name"] in by_name and not by_name[c["name"]]["ready"]]
    if terminal_phase and (phase == "Failed" or not unknown):
        reason = "PodFailed" if phase == "Failed" else "PodCompleted"
        containers_ready = cond("ContainersReady", False, reason)
    elif unknown or unready:
        msgs = []
        if unknown:
            msgs.append(f"containers with unknown status: {_names(unknown)}")
        if unready:
            msgs.append(f"containers with unready status: {_names(unready)}")
        containers_ready = cond("ContainersReady", False, "ContainersNotReady", ", ".join(msgs))
    else:
        containers_ready = cond("ContainersReady", True)
    existing = [c for c in (pod.get("status") or {}).get("conditions") or ()
                if c.get("type") not in KUBELET_CONDITIONS]
    if containers_ready["status"] != "True":
        ready = {**containers_ready, "type": "Ready"}
    else:
        msgs = []
        for gate in spec.get("readinessGates") or ():
            kind = gate.get("conditionType")
            found = next((c for c in existing if c.get("type") == kind), None)
            if found is None:
                msgs.append(f'corresponding condition of pod readiness gate "{kind}" does not '
                            "exist.")
            elif found.get("status") != "True":
                msgs.append(f'the status of pod readiness gate "{kind}" is not "True", but '
                            f"{found.get('status')}")
        ready = cond("Ready", not msgs, "ReadinessGatesNotReady" if msgs else "",
                     ", ".join(msgs))
    scheduled = cond("PodScheduled", True)
    out = [*existing, ready_to_start, initialized, ready, containers_ready, scheduled]
    previous = {c.get("type"): c for c in (*((pod.get("status") or {}).get("conditions") or ()),
                                           *(inp.old_status.get("conditions") or ()))}
    for c in out:
        if c["type"] not in KUBELET_CONDITIONS:
            continue
        old = previous.get(c["type"])
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            c["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            c["lastTransitionTime"] = inp.now
    return out


def generate_pod_status(inp: PodStatusInput) -> dict[str, Any]:
    pod = inp.pod
    spec = pod.get("spec") or {}
    api_status = pod.get("status") or {}
    old = inp.old_status
    statuses = _container_statuses(inp, spec.get("containers") or (),
                                   old.get("containerStatuses") or (), is_init=False)
    init_statuses = _container_statuses(inp, spec.get("initContainers") or (),
                                        old.get("initContainerStatuses") or (), is_init=True)
    phase = get_phase(pod, [*statuses, *init_statuses], inp.terminal)
    if phase not in ("Failed", "Succeeded"):
        for earlier in (old.get("phase"), api_status.get("phase")):
            if earlier in ("Failed", "Succeeded"):
                phase = earlier
                break
    status: dict[str, Any] = {"phase": phase}
    if inp.evicted is not None:   # (generateAPIPodStatus: a PodSyncHandler's ShouldEvict)
        phase = status["phase"] = "Failed"
        status["reason"], status["message"] = inp.evicted
    elif phase == old.get("phase"):
        for key in ("reason", "message"):
            val = old.get(key) or api_status.get(key)
            if val:
                status[key] = val
    status["conditions"] = _conditions(inp, phase, statuses, init_statuses)
    if inp.host_ips:
        status["hostIP"] = inp.host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in inp.host_ips]
    pod_ips = list(inp.pod_ips)
    if spec.get("hostNetwork") and not pod_ips:
        pod_ips = list(inp.host_ips)
    if not pod_ips:
        pod_ips = [p.get("ip") for p in (old.get("podIPs") or api_status.get("podIPs") or ())
                   if p.get("ip")]
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    status["startTime"] = old.get("startTime") or api_status.get("startTime") or inp.now
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    if spec.get("ephemeralContainers"):
        status["ephemeralContainerStatuses"] = as_ephemeral_statuses(_container_statuses(
            inp, spec["ephemeralContainers"], old.get("ephemeralContainerStatuses") or (),
            is_init=True))
    status["qosClass"] = qos_class(pod)
    return status
