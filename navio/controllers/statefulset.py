"""StatefulSets: ordered pods with stable names and storage (kube-controller-manager's
"statefulset", pkg/controller/statefulset/stateful_set_control.go, v1.32).

Guarantees:
- Pods are named `<set>-<ordinal>` for ordinals `[start, start+replicas)` (`spec.ordinals`),
  with hostname = pod name, subdomain = `serviceName`, and labels
  `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
  `controller-revision-hash` (the name of the ControllerRevision they were made from).
- For each `volumeClaimTemplates` entry the pod mounts PVC `<template>-<set>-<ordinal>`,
  created before the pod (labelled with the selector's matchLabels); retention policy and
  claim ownership are in statefulset_claims.py. Orphan pods the selector matches and whose
  name makes them members are adopted; owned pods that stop matching are released.
- OrderedReady: one pod at a time in ordinal order, each waiting until every lower ordinal is
  Running and Ready (and available after `minReadySeconds`); scale-down removes the highest
  ordinal first, one at a time, waiting for terminations. Parallel: all at once. Failed or
  Succeeded pods are deleted and recreated (`RecreatingFailedPod`).
- Template history is kept as ControllerRevisions `<set>-<hash>`; pods below the rolling
  update `partition` keep the current revision; above it, the highest ordinal not at the
  update revision is deleted (and recreated at it) once all others are healthy. OnDelete
  replaces pods only when users delete them.
- Events as upstream: "create Pod web-0 in StatefulSet web successful", "create Claim
  data-web-0 Pod web-0 in StatefulSet web success", "delete Pod ... successful".
- Status: replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
  currentRevision, updateRevision, observedGeneration, collisionCount.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import label_selector_from_spec
from navio.client import (CONTROLLERREVISIONS, NAMESPACE_INDEX, NORMAL, PODS, STATEFULSETS,
                          WARNING, namespace_index)
from navio.controllers.base import Controller, ControllerContext, owner_key
from navio.controllers.controller_utils import (add_index, claim, controller_of,
                                                pod_from_template)
from navio.controllers.controller_revisions import (REVISION_HASH_LABEL, RevisionCollision,
                                                    bump_revision, controller_ref,
                                                    ensure_revision, equal_data,
                                                    owned_revisions, revision_hash,
                                                    revision_number, template_patch,
                                                    truncate_history)
from navio.controllers.manager import register
from navio.controllers.statefulset_claims import (PVCS, claim_name, claims_for, create_claims,
                                                  retain_claims)

__all__ = ["StatefulSetController", "PVCS", "POD_NAME_LABEL", "POD_INDEX_LABEL",
           "pod_ordinal", "claim_name", "new_pod", "claims_for"]

log = logging.getLogger(__name__)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")
Obj = dict[str, Any]


def pod_ordinal(pod: Obj) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("", -1) when the name has no ordinal."""
    m = _ORDINAL.match(pod["metadata"]["name"])
    return (m.group(1), int(m.group(2))) if m else ("", -1)


def _with_identity(set_: Obj, pod: Obj, ordinal: int) -> None:
    """updateIdentity + updateStorage."""
    name = f"{set_['metadata']['name']}-{ordinal}"
    meta, spec = pod["metadata"], pod.setdefault("spec", {})
    meta.update(name=name, namespace=set_["metadata"]["namespace"])
    meta.pop("generateName", None)
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    spec["hostname"] = name
    if set_["spec"].get("serviceName"):
        spec["subdomain"] = set_["spec"]["serviceName"]
    claims = claims_for(set_, ordinal)
    volumes = [v for v in spec.get("volumes") or () if v.get("name") not in claims]
    for vname, pvc in claims.items():
        volumes.append({"name": vname, "persistentVolumeClaim": {
            "claimName": pvc["metadata"]["name"]}})
    if volumes:
        spec["volumes"] = volumes


def new_pod(set_: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """newVersionedStatefulSetPod: the pod for `ordinal` from a revision's template."""
    pod = pod_from_template(template, {**set_, "apiVersion": "apps/v1", "kind": "StatefulSet"})
    _with_identity(set_, pod, ordinal)
    pod["metadata"]["labels"][REVISION_HASH_LABEL] = revision
    return pod


def _identity_matches(set_: Obj, pod: Obj, ordinal: int) -> bool:
    name = f"{set_['metadata']['name']}-{ordinal}"
    labels = pod["metadata"].get("labels") or {}
    return pod["metadata"]["name"] == name and labels.get(POD_NAME_LABEL) == name and \
        labels.get(POD_INDEX_LABEL) == str(ordinal)


def _storage_matches(set_: Obj, pod: Obj, ordinal: int) -> bool:
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    return all(((volumes.get(n) or {}).get("persistentVolumeClaim") or {}).get("claimName")
               == c["metadata"]["name"] for n, c in claims_for(set_, ordinal).items())


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _ready_since(pod: Obj) -> datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "True":
            try:
                return datetime.fromisoformat(str(c.get("lastTransitionTime"))
                                              .replace("Z", "+00:00"))
            except ValueError:
                return datetime.min.replace(tzinfo=timezone.utc)
    return None


def _running_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and _ready_since(pod) is not None


def _running_available(pod: Obj, min_ready: int) -> bool:
    since = _ready_since(pod)
    return _phase(pod) == "Running" and since is not None and (
        min_ready <= 0 or (datetime.now(timezone.utc) - since).total_seconds() >= min_ready)


def _healthy(pod: Obj) -> bool:
    return _running_ready(pod) and not _terminating(pod)


def _selects(set_: Obj, labels: dict[str, str]) -> bool:
    """The set's selector matches `labels`; an invalid or empty selector matches nothing."""
    spec = (set_.get("spec") or {}).get("selector")
    if not spec:
        return False
    try:
        selector = label_selector_from_spec(spec)
    except Exception:
        return False
    return not selector.empty() and selector.matches(labels)


def _revision(pod: Obj) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL, ""))


@register("statefulset")
class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = ctx.informers.get(STATEFULSETS)
        self.pods = ctx.informers.get(PODS)
        self.revisions = ctx.informers.get(CONTROLLERREVISIONS)
        self.claims = ctx.informers.get(PVCS)
        for inf in (self.pods, self.revisions):
            add_index(inf, NAMESPACE_INDEX, namespace_index)
        self.sets.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(**self.handlers(self._owned))
        self.revisions.add_handler(**self.handlers(self._owned))

    def _owned(self, obj: Obj) -> None:
        key = owner_key(obj, "StatefulSet")
        if key is not None:
            self.queue.add(key)
        elif obj.get("kind", "Pod") == "Pod" and controller_of(obj) is None:
            # An orphan pod: every set of its namespace that selects it may adopt it
            # (getPodStatefulSets).
            ns = (obj.get("metadata") or {}).get("namespace")
            labels = (obj.get("metadata") or {}).get("labels") or {}
            for set_ in self.sets.list():
                if set_["metadata"].get("namespace") == ns and _selects(set_, labels):
                    self.queue.add(f"{ns}/{set_['metadata']['name']}")

    async def _claim_pods(self, set_: Obj) -> list[Obj]:
        """getPodsForStatefulSet: the set's pods after adopting orphans that its selector
        matches and whose name makes them its members, and releasing owned pods that stopped
        matching (ControllerRefManager semantics)."""
        uid, name = set_["metadata"]["uid"], set_["metadata"]["name"]
        candidates = [p for p in self.pods.by_index(NAMESPACE_INDEX,
                                                    set_["metadata"]["namespace"])
                      if (controller_of(p) or {}).get("uid") in (uid, None)]
        return await claim(
            self.client, PODS, STATEFULSETS, {**set_, "apiVersion": "apps/v1",
                                              "kind": "StatefulSet"},
            lambda p: _selects(set_, p["metadata"].get("labels") or {})
            and pod_ordinal(p)[0] == name, candidates)

    async def reconcile(self, key: str) -> None:
        shared = self.sets.get(key)
        if shared is None:
            return
        set_ = copy.deepcopy(shared)
        pods = await self._claim_pods(set_)
        revs = owned_revisions(self.revisions.by_index(NAMESPACE_INDEX,
                                                       set_["metadata"]["namespace"]), set_)
        current, update, collisions = await self._revisions(set_, revs)
        status = await self._update(set_, pods, current, update)
        status["collisionCount"] = collisions
        spec_replicas = int(set_["spec"].get("replicas", 1))
        strategy = (set_["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and status["updatedReplicas"] == status["replicas"] \
                and status["readyReplicas"] == status["replicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = dict(shared.get("status") or {})
        new = {**old, **status}
        if new != old:
            await self.client.update_status(STATEFULSETS, {**shared, "status": new})
        live = {current["metadata"]["name"], update["metadata"]["name"]} | \
            {_revision(p) for p in pods}
        await truncate_history(self.client, [r for r in revs if r["metadata"]["name"] not in
                                             (current["metadata"]["name"],
                                              update["metadata"]["name"])],
                               live, int(set_["spec"].get("revisionHistoryLimit", 10)))
        min_ready = int(set_["spec"].get("minReadySeconds", 0))
        if min_ready > 0 and status["availableReplicas"] != spec_replicas:
            self.queue.add_after(key, float(min_ready))

    async def _revisions(self, set_: Obj, revs: list[Obj]) -> tuple[Obj, Obj, int]:
        """getStatefulSetRevisions: (current revision, update revision, collision count)."""
        collisions = int((set_.get("status") or {}).get("collisionCount") or 0)
        data = template_patch(set_)
        top = max((revision_number(r) for r in revs), default=0)
        equal = [r for r in revs if equal_data(r, data)]
        if equal and revision_number(equal[-1]) == top:
            update = equal[-1]
        elif equal:
            update = await bump_revision(self.client, equal[-1], top + 1)
        else:
            labels = dict(((set_["spec"].get("template") or {}).get("metadata") or {})
                          .get("labels") or {})
            ref = controller_ref(set_, "apps/v1", "StatefulSet")
            while True:                       # history.CreateControllerRevision
                hash_ = revision_hash(data, collisions)
                try:
                    update = await ensure_revision(
                        self.client, set_, ref, name=f"{set_['metadata']['name']}-{hash_}",
                        data=data, number=top + 1,
                        labels={**labels, REVISION_HASH_LABEL: hash_})
                    break
                except RevisionCollision:
                    collisions += 1
        name = (set_.get("status") or {}).get("currentRevision")
        current = next((r for r in revs if r["metadata"]["name"] == name), update)
        return current, update, collisions

    @staticmethod
    def _template(revision: Obj) -> Obj:
        """ApplyRevision: the pod template a revision holds."""
        tmpl = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template")
                             or {})
        tmpl.pop("$patch", None)
        return tmpl

    async def _update(self, set_: Obj, pods: list[Obj], current: Obj, update: Obj) -> Obj:
        """updateStatefulSet: one pass of creations, deletions and rolling updates."""
        spec = set_["spec"]
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        count = int(spec.get("replicas", 1))
        min_ready = int(spec.get("minReadySeconds", 0))
        status: Obj = {"observedGeneration": set_["metadata"].get("generation"),
                       "currentRevision": current["metadata"]["name"],
                       "updateRevision": update["metadata"]["name"], "replicas": 0,
                       "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0,
                       "updatedReplicas": 0}
        for p in pods:
            status["replicas"] += 1
            if _running_ready(p):
                status["readyReplicas"] += 1
                status["availableReplicas"] += _running_available(p, min_ready)
            if not _terminating(p):
                status["currentReplicas"] += _revision(p) == current["metadata"]["name"]
                status["updatedReplicas"] += _revision(p) == update["metadata"]["name"]
        replicas: list[Obj | None] = [None] * count
        condemned: list[Obj] = []
        for p in pods:
            parent, ordinal = pod_ordinal(p)
            if parent == set_["metadata"]["name"] and start <= ordinal < start + count:
                replicas[ordinal - start] = p
            elif ordinal >= 0:
                condemned.append(p)
        condemned.sort(key=lambda p: pod_ordinal(p)[1])
        if set_["metadata"].get("deletionTimestamp"):
            return status
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        cur_replicas = int((set_.get("status") or {}).get("currentReplicas") or 0)

        def fresh(i: int) -> Obj:
            ordinal = i + start
            if strategy.get("rollingUpdate") is not None:
                use_current = rolling and ordinal < start + partition
            else:
                use_current = rolling and ordinal < start + cur_replicas
            rev = current if use_current else update
            return new_pod(set_, self._template(rev), ordinal, rev["metadata"]["name"])

        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        first_unhealthy = next((p for p in [*replicas, *condemned]
                                if p is not None and not _healthy(p)), None)
        results = []
        for i in range(count):
            results.append(self._process_replica(set_, replicas, i, fresh, monotonic,
                                                 min_ready, start, status))
            if monotonic:
                if await results.pop():
                    return status
        if results:
            outcomes = await asyncio.gather(*results, return_exceptions=True)
            errs = [o for o in outcomes if isinstance(o, Exception)]
            if errs:
                raise errs[0]
        for p in reversed(condemned):
            if _terminating(p):
                if monotonic:
                    return status
                continue
            if monotonic and p is not first_unhealthy and not (
                    _running_ready(p) and _running_available(p, min_ready)):
                return status
            await retain_claims(self.client, self.claims, set_, p, condemned=True)
            await self._delete(set_, p)
            if monotonic:
                return status
        if not rolling:
            return status
        for i in range(count - 1, partition - 1, -1):
            pod = replicas[i]
            if pod is None:
                continue
            if _revision(pod) != update["metadata"]["name"] and not _terminating(pod):
                log.info("statefulset pod terminating for update",
                         extra={"pod": f"{pod['metadata']['namespace']}/"
                                       f"{pod['metadata']['name']}"})
                await self._delete(set_, pod)
                status["currentReplicas"] -= 1
                return status
            if not _healthy(pod):
                return status
        return status

    async def _process_replica(self, set_: Obj, replicas: list[Obj | None], i: int, fresh: Any,
                               monotonic: bool, min_ready: int, start: int,
                               status: Obj) -> bool:
        """processReplica: True when this pass must stop (monotonic waits or a write)."""
        pod = replicas[i]
        name = f"{set_['metadata']['name']}-{i + start}"
        if pod is not None and _phase(pod) in ("Failed", "Succeeded") and not _terminating(pod):
            if _phase(pod) == "Failed":
                self.recorder.event(set_, WARNING, "RecreatingFailedPod",
                                    f"StatefulSet {set_['metadata']['namespace']}/"
                                    f"{set_['metadata']['name']} is recreating failed Pod {name}")
            else:
                self.recorder.event(set_, NORMAL, "RecreatingTerminatedPod",
                                    f"StatefulSet {set_['metadata']['namespace']}/"
                                    f"{set_['metadata']['name']} is recreating terminated Pod "
                                    f"{name}")
            await self._delete(set_, pod)
            return True                       # recreated once the deletion is observed
        if pod is None:
            replica = fresh(i)
            await create_claims(self.client, self.claims, self.recorder, set_, replica, i + start)
            await self._create(set_, replica)
            return monotonic
        if _phase(pod) == "Pending":
            await create_claims(self.client, self.claims, self.recorder, set_, pod, i + start)
        if monotonic and (_terminating(pod) or not _running_ready(pod)
                          or not _running_available(pod, min_ready)):
            return True
        if _identity_matches(set_, pod, i + start) and _storage_matches(set_, pod, i + start):
            return False
        updated = copy.deepcopy(pod)
        _with_identity(set_, updated, i + start)
        await create_claims(self.client, self.claims, self.recorder, set_, updated,
                            i + start)
        await self.client.update(PODS, updated)
        self.recorder.event(set_, NORMAL, "SuccessfulUpdate",
                            f"update Pod {name} in StatefulSet {set_['metadata']['name']} "
                            "successful")
        return False

    async def _create(self, set_: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.create(PODS, pod, set_["metadata"]["namespace"])
        except errors.ApiError as exc:
            if not isinstance(exc, errors.AlreadyExists):
                self.recorder.event(set_, WARNING, "FailedCreate",
                                    f"create Pod {name} in StatefulSet "
                                    f"{set_['metadata']['name']} failed error: {exc}")
            raise
        self.recorder.event(set_, NORMAL, "SuccessfulCreate",
                            f"create Pod {name} in StatefulSet {set_['metadata']['name']} "
                            "successful")

    async def _delete(self, set_: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"]["namespace"])
        except errors.NotFound:
            return
        except errors.ApiError as exc:
            self.recorder.event(set_, WARNING, "FailedDelete",
                                f"delete Pod {name} in StatefulSet {set_['metadata']['name']} "
                                f"failed error: {exc}")
            raise
        self.recorder.event(set_, NORMAL, "SuccessfulDelete",
                            f"delete Pod {name} in StatefulSet {set_['metadata']['name']} "
                            "successful")
