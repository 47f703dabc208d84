"""VolumeBinding: pods with claims go only where their volumes can be (plugins/volumebinding,
v1.32).

PreFilter reads the pod's claims (and generic ephemeral volumes' claims): a missing or deleting
claim, or an unbound claim whose class binds Immediately, makes the pod unschedulable
everywhere (the PV controller binds those first; the pod is retried when claims, volumes or
classes change). Filter, per node: every bound claim's PV must admit the node (node affinity),
and every unbound WaitForFirstConsumer claim must find an Available PV that fits on the node
or be provisionable there (a class with a provisioner other than
`kubernetes.io/no-provisioner` whose allowedTopologies, if any, match the node's labels).
PreBind, once a node is chosen: a matching PV is bound to the claim (`spec.claimRef`, as the
scheduler's volume binder writes it); otherwise the claim is annotated
`volume.kubernetes.io/selected-node` for the provisioner. The pod is then bound at once; the
kubelet waits for its volumes to be ready.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from navio.api.persistentvolumes import (SELECTED_NODE_ANNOTATION, claim_class,
                                         find_matching_volume, pod_claim_names,
                                         volume_admits_node)
from navio.client.volumes import PVCS, PVS
from navio.scheduler.framework import (
    EVENT_NODE_ADD,
    EVENT_NODE_UPDATE,
    SKIP,
    CycleState,
    NodeMask,
    Status,
)
from navio.scheduler.nodearrays import np

if TYPE_CHECKING:
    from navio.client import Client
    from navio.scheduler.cache import Cache
    from navio.scheduler.nodeinfo import NodeInfo
    from navio.scheduler.podinfo import PodInfo

__all__ = ["NAME", "VolumeBinding", "VolumeListers", "EVENT_PVC_CHANGE", "EVENT_PV_CHANGE",
           "EVENT_STORAGE_CLASS_CHANGE", "ERR_REASON_BIND_CONFLICT", "ERR_REASON_NODE_CONFLICT",
           "ERR_REASON_PV_NOT_EXIST", "UNBOUND_IMMEDIATE"]

NAME = "VolumeBinding"
EVENT_PVC_CHANGE = "PersistentVolumeClaimChange"
EVENT_PV_CHANGE = "PersistentVolumeChange"
EVENT_STORAGE_CLASS_CHANGE = "StorageClassChange"
ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_PV_NOT_EXIST = ("node(s) unavailable due to one or more pvc(s) bound to "
                           "non-existent pv(s)")
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
_KEY = "PreFilter" + NAME

Obj = dict[str, Any]


@dataclass(frozen=True)
class VolumeListers:
    """Read access to the scheduler's informer caches."""

    claim: Callable[[str], Obj | None]          # "ns/name" -> PVC
    volume: Callable[[str], Obj | None]         # name -> PV
    volumes: Callable[[], list[Obj]]
    storage_class: Callable[[str], Obj | None]  # name -> StorageClass


@dataclass(frozen=True, slots=True)
class _PodVolumes:
    bound: tuple[Obj, ...]                       # PVs of bound claims
    delayed: tuple[tuple[Obj, Obj | None], ...]  # (unbound WFC claim, its class)


def _topology_ok(sc: Obj | None, labels: dict[str, str]) -> bool:
    terms = (sc or {}).get("allowedTopologies") or []
    if not terms:
        return True
    return any(all(labels.get(e.get("key", "")) in (e.get("values") or [])
                   for e in t.get("matchLabelExpressions") or ()) for t in terms)


class VolumeBinding:
    name = NAME
    events = frozenset({EVENT_NODE_ADD, EVENT_NODE_UPDATE, EVENT_PVC_CHANGE, EVENT_PV_CHANGE,
                        EVENT_STORAGE_CLASS_CHANGE})

    def __init__(self, listers: VolumeListers) -> None:
        self.listers = listers

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> Status | None:
        claims = pod_claim_names(pod.pod)
        if not claims:
            return SKIP
        bound: list[Obj] = []
        delayed: list[tuple[Obj, Obj | None]] = []
        for _, name, _ in claims:
            pvc = self.listers.claim(f"{pod.namespace}/{name}")
            if pvc is None:
                return Status.unresolvable(f'persistentvolumeclaim "{name}" not found',
                                           plugin=NAME)
            if (pvc.get("metadata") or {}).get("deletionTimestamp"):
                return Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted',
                                           plugin=NAME)
            volume_name = (pvc.get("spec") or {}).get("volumeName")
            if volume_name:
                pv = self.listers.volume(volume_name)
                if pv is None:
                    return Status.unresolvable(ERR_REASON_PV_NOT_EXIST, plugin=NAME)
                bound.append(pv)
                continue
            cls = claim_class(pvc)
            sc = self.listers.storage_class(cls) if cls else None
            if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
                return Status.unresolvable(UNBOUND_IMMEDIATE, plugin=NAME)
            delayed.append((pvc, sc))
        state[_KEY] = _PodVolumes(tuple(bound), tuple(delayed))
        return None

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        pv_state: _PodVolumes = state[_KEY]
        node_obj = node.node or {"metadata": {"name": node.name, "labels": node.labels}}
        for pv in pv_state.bound:
            if not volume_admits_node(pv, node_obj):
                return Status.unresolvable(ERR_REASON_NODE_CONFLICT, plugin=NAME)
        if pv_state.delayed:
            volumes = self.listers.volumes()
            for pvc, sc in pv_state.delayed:
                if find_matching_volume(pvc, volumes, node=node_obj) is not None:
                    continue
                provisioner = (sc or {}).get("provisioner") or NO_PROVISIONER
                if provisioner == NO_PROVISIONER or not _topology_ok(sc, node.labels):
                    return Status.unresolvable(ERR_REASON_BIND_CONFLICT, plugin=NAME)
        return None

    def filter_nodes(self, state: CycleState, pod: "PodInfo", cache: "Cache") -> NodeMask:
        n = len(cache.slots)
        ok = np.zeros(n, dtype=bool)
        reasons: dict[str, Any] = {}
        for ni in cache.slots:
            if ni is None or ni.node is None:
                continue
            st = self.filter(state, pod, ni)
            if st is None:
                ok[ni.idx] = True
            else:
                mask = reasons.setdefault(st.message, np.zeros(n, dtype=bool))
                mask[ni.idx] = True
        return NodeMask(ok, [(reason, mask, True) for reason, mask in reasons.items()])

    async def pre_bind(self, client: "Client", pod: Obj, node: Obj) -> None:
        """Bind or select-node each unbound WaitForFirstConsumer claim of `pod` for `node`."""
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        node_name = (node.get("metadata") or {}).get("name", "")
        for _, name, _ in pod_claim_names(pod):
            pvc = self.listers.claim(f"{namespace}/{name}")
            if pvc is None or (pvc.get("spec") or {}).get("volumeName"):
                continue
            pv = find_matching_volume(pvc, self.listers.volumes(), node=node)
            if pv is not None and not (pv.get("spec") or {}).get("claimRef"):
                body = copy.deepcopy(pv)
                meta = pvc["metadata"]
                body["spec"]["claimRef"] = {
                    "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                    "namespace": namespace, "name": name, "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion")}
                body["metadata"].setdefault("annotations", {})[
                    "pv.kubernetes.io/bound-by-controller"] = "yes"
                await client.update(PVS, body)
                continue
            if pv is not None:
                continue                     # pre-bound to this claim: the PV controller binds
            ann = (pvc.get("metadata") or {}).get("annotations") or {}
            if ann.get(SELECTED_NODE_ANNOTATION) != node_name:
                await client.patch(PVCS, name, {"metadata": {"annotations": {
                    SELECTED_NODE_ANNOTATION: node_name}}}, namespace)


if TYPE_CHECKING:
    from navio.scheduler.protocol import BatchFilterPlugin

    _batch_filter_plugin: type[BatchFilterPlugin] = VolumeBinding
