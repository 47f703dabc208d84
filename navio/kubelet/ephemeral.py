"""Ephemeral containers (`kubectl debug`) on the kubelet's side.

As kube's kubelet: an ephemeral container is started once, when it has never run in the pod
(computePodActions' EphemeralContainersToStart), before the init containers so that a pod
stuck in them can still be debugged, and is never restarted. It joins the pod's sandbox,
whose PID namespace the process runtime shares among all the pod's containers (and mounts as
/proc), so `--target` sees the target's processes. Its status goes to
`ephemeralContainerStatuses`, in spec order, never ready and without `started` (kube's prober
reports only on regular and init containers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from navio.runtime.protocol import ContainerStatus

__all__ = ["to_start", "as_ephemeral_statuses"]


def to_start(pod: Mapping[str, Any], containers: Iterable[ContainerStatus]
             ) -> list[Mapping[str, Any]]:
    """The pod's ephemeral containers that have never run (`containers`: all of the pod's)."""
    known = {c.name for c in containers}
    return [c for c in (pod.get("spec") or {}).get("ephemeralContainers") or ()
            if str(c.get("name")) not in known]


def as_ephemeral_statuses(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statuses built as init containers' are, made ephemeral containers' statuses."""
    for status in statuses:
        status["ready"] = False
        status.pop("started", None)
    return statuses
