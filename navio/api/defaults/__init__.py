"""Kubernetes v1.32 defaulting for the kinds navio serves.

`apply_defaults(group, kind, obj)` fills in, in place, what kube-apiserver's decoder would for
the v1 version of the kind (pkg/apis/*/v1/defaults.go plus the generated defaulters), nested
pod templates included. Run it on every create and update, on a copy, before validation; it
only fills what is missing, so it is idempotent. Unknown kinds are left alone.

`prepare_for_create(group, kind, obj)` is the registry strategies' PrepareForCreate for the
few kinds where it shapes the stored object: fresh status (Pod phase Pending with its QoS
class, Namespace phase Active), `metadata.generation` 1, a Namespace's `kubernetes`
finalizer, and a Job's generated selector and labels (needs `metadata.uid`). It must not run
on updates: the namespace finalizer, for one, is removed over the object's life.
"""

from __future__ import annotations

from typing import Any, Callable

from navio.api.defaults import admissionregistration, apps, batch, core, misc, networking, storage
from navio.api.quantity import QuantityError
from navio.api.validation.resources import parse_json_quantity

__all__ = ["apply_defaults", "prepare_for_create", "pod_qos_class", "register", "unregister"]

_DEFAULTS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    **{("", k): f for k, f in core.KIND_DEFAULTS.items()},
    **{("apps", k): f for k, f in apps.KIND_DEFAULTS.items()},
    **{("batch", k): f for k, f in batch.KIND_DEFAULTS.items()},
    **misc.KIND_DEFAULTS,
    **storage.KIND_DEFAULTS,
    **networking.KIND_DEFAULTS,
    **admissionregistration.KIND_DEFAULTS,
}


def register(group: str, kind: str, fn: Callable[[dict[str, Any]], None]) -> None:
    """Defaulting for a kind added at run time (CRDs and the custom kinds they define)."""
    _DEFAULTS[(group, kind)] = fn


def unregister(group: str, kind: str) -> None:
    _DEFAULTS.pop((group, kind), None)


def apply_defaults(group: str, kind: str, obj: dict[str, Any]) -> None:
    """Default `obj` (a JSON object of `group`'s v1 `kind`) in place."""
    fn = _DEFAULTS.get((group, kind))
    if fn is not None and isinstance(obj, dict):
        fn(obj)


def pod_qos_class(pod: dict[str, Any]) -> str:
    """qos.ComputePodQOS: BestEffort, Guaranteed or Burstable from cpu/memory of the
    regular and init containers."""
    spec = pod.get("spec") or {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for section, acc in (("requests", requests), ("limits", limits)):
            found = set()
            for name, raw in (res.get(section) or {}).items():
                if name not in ("cpu", "memory"):
                    continue
                try:
                    q = parse_json_quantity(raw).amount
                except QuantityError:
                    continue
                if q > 0:
                    found.add(name)
                    acc[name] = acc.get(name, 0) + q
            if section == "limits" and found != {"cpu", "memory"}:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(n) == v for n, v in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


_ZERO_STATUS: dict[tuple[str, str], dict[str, Any]] = {
    # Strategies reset status on create; these are its JSON forms (non-omitempty zeros kept).
    ("apps", "Deployment"): {},
    ("apps", "ReplicaSet"): {"replicas": 0},
    ("apps", "DaemonSet"): {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                            "desiredNumberScheduled": 0, "numberReady": 0},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("", "ReplicationController"): {"replicas": 0},
    ("batch", "Job"): {},
    ("batch", "CronJob"): {},
    ("policy", "PodDisruptionBudget"): {"disruptionsAllowed": 0, "currentHealthy": 0,
                                        "desiredHealthy": 0, "expectedPods": 0},
}


def prepare_for_create(group: str, kind: str, obj: dict[str, Any]) -> None:
    """The create-only strategy mutations described in the module docstring."""
    if not isinstance(obj, dict):
        return
    gk = (group, kind)
    if gk in _ZERO_STATUS:
        obj["status"] = dict(_ZERO_STATUS[gk])
        obj.setdefault("metadata", {})["generation"] = 1
    if gk == ("apps", "DaemonSet"):
        # Internal spec.templateGeneration starts at 1; apps/v1 carries it as this annotation.
        ann = obj["metadata"].setdefault("annotations", {})
        ann.setdefault("deprecated.daemonset.template.generation", "1")
    if gk == ("batch", "Job"):
        batch.generate_job_selector(obj)
    elif gk == ("", "Pod"):
        status: dict[str, Any] = {"phase": "Pending", "qosClass": pod_qos_class(obj)}
        if (obj.get("spec") or {}).get("schedulingGates"):
            status["conditions"] = [{
                "type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": None, "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates"}]
        obj["status"] = status
    elif gk == ("", "Namespace"):
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        finalizers = list(spec.get("finalizers") or [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers
        obj["spec"] = spec
    elif gk == ("", "Service"):
        obj["status"] = {"loadBalancer": {}}
