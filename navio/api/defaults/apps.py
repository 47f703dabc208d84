"""Defaults of apps/v1 kinds (pkg/apis/apps/v1/defaults.go, v1.32), pod templates included.

Feature gates as v1.32 ships them: StatefulSetAutoDeletePVC is on (the PVC retention policy
defaults to Retain/Retain), MaxUnavailableStatefulSet is off (no rollingUpdate.maxUnavailable).
A StatefulSet's volumeClaimTemplates get the PersistentVolumeClaim defaults, status
`phase: Pending` included, as the generated defaulter applies them.
"""

from __future__ import annotations

from typing import Any

from navio.api.defaults.core import default_pvc
from navio.api.defaults.podspec import default_pod_template

__all__ = ["default_deployment", "default_replica_set", "default_daemon_set",
           "default_stateful_set", "KIND_DEFAULTS"]


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    v = parent.get(key)
    if not isinstance(v, dict):
        v = parent[key] = {}
    return v


def default_deployment(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(spec.get("template"))


def default_replica_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(spec.get("template"))


def default_daemon_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = _dict(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))


def default_stateful_set(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    ru = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(ru, dict) and ru.get("partition") is None:
        ru["partition"] = 0
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    for f in ("whenDeleted", "whenScaled"):
        if not policy.get(f):
            policy[f] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            default_pvc(pvc)


KIND_DEFAULTS = {
    "Deployment": default_deployment,
    "ReplicaSet": default_replica_set,
    "DaemonSet": default_daemon_set,
    "StatefulSet": default_stateful_set,
}
