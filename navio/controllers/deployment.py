"""The Deployment controller: declarative updates of pods through ReplicaSets.

Why: `kubectl create deployment`, `set image`, `scale` and every `rollout` subcommand act on
Deployments and expect kube's deployment controller (pkg/controller/deployment) behind them:
one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`, owned by the
Deployment and annotated with its revision.

Guarantees:
- The Deployment controls the ReplicaSets of its namespace whose labels match its selector
  and that it owns; matching orphans are adopted, owned ones that stopped matching released.
- A pass does one thing, in kube's order: status only while being deleted; proportional
  scaling while paused or on a scaling event; otherwise a RollingUpdate or Recreate step
  (deployment_rollout). Status (observedGeneration, replicas, updatedReplicas, readyReplicas,
  availableReplicas, unavailableReplicas, Available and Progressing conditions) is written
  when it changes, so `kubectl rollout status` sees progress and ProgressDeadlineExceeded.
- Revisions: the new ReplicaSet gets max(old revisions) + 1; a template that returns to an
  old ReplicaSet (rollout undo) moves that ReplicaSet's revision up and records the previous
  one in revision-history. The Deployment carries its new ReplicaSet's revision.
- Events as kube writes them: ScalingReplicaSet, ReplicaSetCreateError, SelectingAll.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from navio.api import errors
from navio.api.selectors import LabelSelector, label_selector_from_spec
from navio.client import (DEPLOYMENTS, NAMESPACE_INDEX, NORMAL, PODS, REPLICASETS, WARNING,
                          namespace_index)
from navio.controllers import deployment_util as du
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import add_index, claim, controller_of, \
    controller_ref, ref
from navio.controllers.deployment_rollout import Rollouts, now_rfc3339
from navio.controllers.manager import register
from navio.controllers.replicaset import (CONTROLLER_UID_INDEX, ORPHAN_INDEX,
                                          controller_uid_index, namespace_terminating,
                                          orphan_index)

__all__ = ["DeploymentController"]

log = logging.getLogger(__name__)

NAME = "deployment"

Obj = dict[str, Any]


class DeploymentController(Rollouts, Controller):
    name = NAME

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = int(ctx.options.get("concurrent-deployment-syncs", 5))
        self.deployments = ctx.informers.get(DEPLOYMENTS)
        self.replicasets = ctx.informers.get(REPLICASETS)
        self.pods = ctx.informers.get(PODS)
        add_index(self.deployments, NAMESPACE_INDEX, namespace_index)
        add_index(self.replicasets, NAMESPACE_INDEX, namespace_index)
        add_index(self.replicasets, CONTROLLER_UID_INDEX, controller_uid_index)
        add_index(self.replicasets, ORPHAN_INDEX, orphan_index)
        add_index(self.pods, CONTROLLER_UID_INDEX, controller_uid_index)
        self._selectors: dict[str, LabelSelector] = {}
        self.deployments.add_handler(on_add=self.enqueue,
                                     on_update=lambda old, new: self.enqueue(new),
                                     on_delete=self._deployment_deleted)
        self.replicasets.add_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                     on_delete=self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # ---- lookups ----------------------------------------------------------------------

    def selector(self, d: Obj) -> LabelSelector:
        uid = d["metadata"].get("uid", "")
        sel = self._selectors.get(uid)
        if sel is None:
            sel = label_selector_from_spec((d.get("spec") or {}).get("selector"))
            self._selectors[uid] = sel
        return sel

    def _resolve(self, namespace: str, cref: Obj) -> Obj | None:
        if cref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(f"{namespace}/{cref.get('name')}")
        if d is None or d["metadata"].get("uid") != cref.get("uid"):
            return None
        return d

    def _matching_deployments(self, rs: Obj) -> list[Obj]:
        labels = rs["metadata"].get("labels") or {}
        out = []
        for d in self.deployments.by_index(NAMESPACE_INDEX, rs["metadata"].get("namespace", "")):
            try:
                sel = self.selector(d)
            except errors.ApiError:
                continue
            if not sel.empty() and sel.matches(labels):
                out.append(d)
        return out

    # ---- handlers -----------------------------------------------------------------------

    def _deployment_deleted(self, d: Obj) -> None:
        self._selectors.pop(d["metadata"].get("uid", ""), None)
        self.enqueue(d)

    def _rs_added(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        cref = controller_of(rs)
        if cref is not None:
            d = self._resolve(rs["metadata"].get("namespace", ""), cref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._matching_deployments(rs):
            self.enqueue(d)

    def _rs_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        ns = cur["metadata"].get("namespace", "")
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        changed = cur_ref != old_ref
        if changed and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self.enqueue(d)
        if cur_ref is not None:
            d = self._resolve(ns, cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if changed or old["metadata"].get("labels") != cur["metadata"].get("labels"):
            for d in self._matching_deployments(cur):
                self.enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        cref = controller_of(rs)
        if cref is not None:
            d = self._resolve(rs["metadata"].get("namespace", ""), cref)
            if d is not None:
                self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        # A Recreate rollout waits for the last old pod to go.
        cref = controller_of(pod)
        if cref is None or cref.get("kind") != "ReplicaSet":
            return
        ns = pod["metadata"].get("namespace", "")
        rs = self.replicasets.get(f"{ns}/{cref.get('name')}")
        rs_ref = controller_of(rs) if rs else None
        d = self._resolve(ns, rs_ref) if rs_ref else None
        if d is not None and not du.is_rolling_update(d):
            self.enqueue(d)

    # ---- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """One step of Deployment `key` towards its spec (syncDeployment); safe to repeat."""
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        spec = d.get("spec") or {}
        if spec.get("selector") == {}:
            self.recorder.event(d, WARNING, "SelectingAll", "This deployment is selecting all "
                                "pods. A non-empty selector is required.")
            status = d.setdefault("status", {})
            if int(status.get("observedGeneration") or 0) < d["metadata"].get("generation", 0):
                status["observedGeneration"] = d["metadata"]["generation"]
                await self.update_status(d)
            return
        rs_list = await self._claim_replica_sets(d)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, False)
            await self.sync_deployment_status(old_rss + ([new_rs] if new_rs else []), new_rs, d)
            return
        await self.check_paused_conditions(d)
        if spec.get("paused"):
            await self.sync(d, rs_list)
            return
        if await self._is_scaling_event(d, rs_list):
            await self.sync(d, rs_list)
            return
        if du.is_rolling_update(d):
            await self.rollout_rolling(d, rs_list)
        else:
            pod_map = {rs["metadata"]["uid"]: self.pods.by_index(CONTROLLER_UID_INDEX,
                                                                 rs["metadata"]["uid"])
                       for rs in rs_list}
            await self.rollout_recreate(d, rs_list, pod_map)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        selector = self.selector(d)
        meta = d["metadata"]
        candidates = self.replicasets.by_index(CONTROLLER_UID_INDEX, meta["uid"]) + \
            self.replicasets.by_index(ORPHAN_INDEX, meta.get("namespace", ""))
        return await claim(self.client, REPLICASETS, DEPLOYMENTS, d,
                           lambda rs: selector.matches(rs["metadata"].get("labels")),
                           candidates)

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old_rss = await self.get_all_replica_sets(d, rs_list, False)
        for rs in du.filter_active(list(old_rss) + [new_rs]):
            desired = (rs["metadata"].get("annotations") or {}).get(
                du.DESIRED_REPLICAS_ANNOTATION)
            if desired is not None and desired.lstrip("-").isdigit() and \
                    int(desired) != du.replicas(d):
                return True
        return False

    async def update_status(self, d: Obj) -> None:
        """Write d's status, and its revision annotation if that changed.

        kube writes both with one UpdateStatus (its status strategy keeps metadata changes);
        navio's /status keeps only status, so the annotation goes by a merge patch first."""
        name, ns = d["metadata"]["name"], d["metadata"].get("namespace")
        cached = self.deployments.get(f"{ns}/{name}") or {}
        want = (d["metadata"].get("annotations") or {}).get(du.REVISION_ANNOTATION)
        have = ((cached.get("metadata") or {}).get("annotations") or {}).get(
            du.REVISION_ANNOTATION)
        if want is not None and want != have:
            patched = await self.client.patch(
                DEPLOYMENTS, name, {"metadata": {"annotations": {du.REVISION_ANNOTATION: want},
                                                 "uid": d["metadata"]["uid"]}}, ns)
            d["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]
        updated = await self.client.update_status(DEPLOYMENTS, d)
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    def _set_revision(self, d: Obj, revision: str | None) -> bool:
        if revision is None:
            return False
        ann = d["metadata"].setdefault("annotations", {})
        if ann.get(du.REVISION_ANNOTATION) == revision:
            return False
        ann[du.REVISION_ANNOTATION] = revision
        return True

    async def get_all_replica_sets(self, d: Obj, rs_list: list[Obj], create: bool
                                   ) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, all old ones), revisions synced
        (getAllReplicaSetsAndSyncRevision)."""
        _, old_rss = du.find_old_rss(d, rs_list)
        new_rs = await self._new_replica_set(d, rs_list, old_rss, create)
        return new_rs, old_rss

    async def _new_replica_set(self, d: Obj, rs_list: list[Obj], old_rss: list[Obj],
                               create: bool) -> Obj | None:
        existing = du.find_new_rs(d, rs_list)
        new_revision = str(du.max_revision(old_rss) + 1)
        spec = d.get("spec") or {}
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_rs_annotations(d, rs, new_revision, True)
            min_ready = int(spec.get("minReadySeconds") or 0)
            if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                return await self.client.update(REPLICASETS, rs)  # type: ignore[no-any-return]
            needs = self._set_revision(
                d, (rs["metadata"].get("annotations") or {}).get(du.REVISION_ANNOTATION))
            if du.has_progress_deadline(d) and \
                    du.get_condition(d.get("status") or {}, "Progressing") is None:
                status = d.setdefault("status", {})
                du.set_condition(status, du.new_condition(
                    "Progressing", "True", du.FOUND_NEW_RS_REASON,
                    f'Found new replica set "{rs["metadata"]["name"]}"', now_rfc3339()))
                needs = True
            if needs:
                await self.update_status(d)
            return rs
        if not create:
            return None
        return await self._create_replica_set(d, old_rss, new_revision)

    async def _create_replica_set(self, d: Obj, old_rss: list[Obj], new_revision: str) -> Obj:
        spec, meta = d["spec"], d["metadata"]
        template = copy.deepcopy(spec.get("template") or {})
        collision = (d.get("status") or {}).get("collisionCount")
        pod_hash = du.compute_hash(template, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = dict(tmeta.get("labels") or {}, **{du.HASH_LABEL: pod_hash})
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {},
                                       **{du.HASH_LABEL: pod_hash})
        name = f"{meta['name']}-{pod_hash}"
        new_rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta.get("namespace"),
                         "ownerReferences": [controller_ref(d)],
                         "labels": dict(tmeta["labels"])},
            "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        count = du.new_rs_new_replicas(d, list(old_rss) + [new_rs], new_rs)
        new_rs["spec"]["replicas"] = count
        du.set_new_rs_annotations(d, new_rs, new_revision, False)
        already_exists = False
        try:
            created = await self.client.create(REPLICASETS, new_rs)
        except errors.AlreadyExists:
            found = self.replicasets.get(f"{meta.get('namespace')}/{name}")
            if found is None:
                raise
            cref = controller_of(found)
            if cref is not None and cref.get("uid") == meta["uid"] and \
                    du.equal_ignore_hash(spec.get("template"),
                                         (found.get("spec") or {}).get("template")):
                created, already_exists = found, True
            else:
                status = d.setdefault("status", {})
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self.update_status(d)
                log.info("hash collision, collisionCount bumped",
                         extra={"deployment": ref(d), "collisionCount":
                                status["collisionCount"]})
                raise
        except errors.ApiError as exc:
            if namespace_terminating(exc):
                raise
            msg = f'Failed to create new replica set "{name}": {exc}'
            if du.has_progress_deadline(d):
                du.set_condition(d.setdefault("status", {}), du.new_condition(
                    "Progressing", "False", du.FAILED_RS_CREATE_REASON, msg, now_rfc3339()))
                try:
                    await self.update_status(d)
                except errors.ApiError:
                    pass
            self.recorder.event(d, WARNING, du.FAILED_RS_CREATE_REASON, msg)
            raise
        if not already_exists and count > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled up replica set {name} to {count}")
        needs = self._set_revision(d, new_revision)
        if not already_exists and du.has_progress_deadline(d):
            du.set_condition(d.setdefault("status", {}), du.new_condition(
                "Progressing", "True", du.NEW_RS_REASON,
                f'Created new replica set "{name}"', now_rfc3339()))
            needs = True
        if needs:
            await self.update_status(d)
        log.info("replica set created", extra={"deployment": ref(d), "replicaset":
                                                f"{meta.get('namespace')}/{name}",
                                                "replicas": count})
        return created  # type: ignore[no-any-return]


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return DeploymentController(ctx)

