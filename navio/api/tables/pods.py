"""The pod table: NAME READY STATUS RESTARTS AGE (+ IP NODE NOMINATED NODE READINESS GATES).

A port of `printPod` in kubernetes/pkg/printers/internalversion/printers.go (v1.32), the most
watched table there is, including its quirks: the STATUS column is the pod phase overridden by
`status.reason`, a `SchedulingGated` condition, the first unfinished init container
(`Init:1/2`, `Init:CrashLoopBackOff`, `Init:ExitCode:1`), then the *first* container with a
waiting or terminated reason; `Completed` with a container still running shows `Running` or
`NotReady`; a deleted pod shows `Terminating` (or `Unknown` when its node was lost). RESTARTS
is a string with the time of the last restart, `3 (10s ago)`, and counts only restartable
("sidecar") init containers once initialisation is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import (
    Printer, age, age_column, column, get, name_column, parse_time, since)
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS", "pod_cells", "pod_row_conditions"]

COLUMNS = (
    name_column(),
    column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "string", "The aggregate status of the containers in this pod."),
    column("Restarts", "string", "The number of times the containers in this pod have been "
           "restarted and when the last container in this pod has restarted."),
    age_column(),
    column("IP", "string", DOC["PodStatus.podIP"], priority=1),
    column("Node", "string", DOC["PodSpec.nodeName"], priority=1),
    column("Nominated Node", "string", DOC["PodStatus.nominatedNodeName"], priority=1),
    column("Readiness Gates", "string", DOC["PodSpec.readinessGates"], priority=1),
)

_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
               "message": "The pod has completed successfully."}]
_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}]
_NODE_LOST = "NodeLost"  # pkg/util/node.NodeUnreachablePodReason


def pod_row_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """TableRow.conditions: `Completed` for pods that succeeded or failed."""
    phase = get(pod, "status", "phase")
    return [dict(c) for c in _SUCCEEDED] if phase == "Succeeded" else \
        [dict(c) for c in _FAILED] if phase == "Failed" else []


def _later(current: datetime | None, state: Mapping[str, Any]) -> datetime | None:
    """The later of `current` and the state's lastState.terminated.finishedAt."""
    finished = parse_time(get(state, "lastState", "terminated", "finishedAt"))
    if finished is not None and (current is None or current < finished):
        return finished
    return current


def _is_restartable(container: Mapping[str, Any] | None) -> bool:
    """podutil.IsRestartableInitContainer: an init container that is a sidecar."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(status: Mapping[str, Any], type_: str) -> bool:
    """isPodInitializedConditionTrue / hasPodReadyCondition: the first condition of the type."""
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return bool(c.get("status") == "True")
    return False


def _exit_reason(terminated: Mapping[str, Any], prefix: str = "") -> str:
    if terminated.get("reason"):
        return prefix + str(terminated["reason"])
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _first_pod_ip(status: Mapping[str, Any]) -> str:
    # The internal PodStatus keeps only podIPs; the v1 podIP wins if both are set.
    if status.get("podIP"):
        return str(status["podIP"])
    ips = status.get("podIPs") or ()
    return str(ips[0].get("ip") or "") if ips else ""


def pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, status = get(pod, "spec", default={}), get(pod, "status", default={})
    init_specs = spec.get("initContainers") or []
    total = len(spec.get("containers") or [])
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in status.get("conditions") or ():
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    by_name = {c.get("name"): c for c in init_specs}
    total += sum(1 for c in init_specs if _is_restartable(c))

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        count = cs.get("restartCount") or 0
        restarts += count
        last_restart = _later(last_restart, cs)
        sidecar = _is_restartable(by_name.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, cs)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            reason = _exit_reason(terminated, "Init:")  # initialisation failed
        elif waiting is not None and waiting.get("reason") and \
                waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        # Backwards, so that the first container's reason is the one that sticks.
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += cs.get("restartCount") or 0
            last_restart = _later(last_restart, cs)
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _exit_reason(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A container still running keeps a "Completed" pod Running (or NotReady).
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleted = get(pod, "metadata", "deletionTimestamp") is not None
    if deleted and status.get("reason") == _NODE_LOST:
        reason = "Unknown"
    elif deleted and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({since(last_restart, now)} ago)"

    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = status.get("conditions") or ()
        true = sum(1 for g in gates if next(
            (c.get("status") == "True" for c in conditions
             if c.get("type") == g.get("conditionType")), False))
        gates_cell = f"{true}/{len(gates)}"
    return [get(pod, "metadata", "name", default=""), f"{ready}/{total}", reason,
            restarts_cell, age(pod, now),
            _first_pod_ip(status) or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_cell]


PRINTERS = {("", "Pod"): Printer(COLUMNS, pod_cells, pod_row_conditions)}
