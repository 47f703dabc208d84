"""DaemonSets: one pod per eligible node (kube-controller-manager's "daemonset",
pkg/controller/daemon, v1.32).

Guarantees:
- Eligible nodes and pod placement as `placement.py` says; pods are created not bound but
  pinned by node affinity, with `controller-revision-hash` and `pod-template-generation`
  labels and a controller ownerReference. Failed pods are deleted (`FailedDaemonPod`, with
  per-node back-off), surplus pods pruned (the oldest kept), pods of vanished or ineligible
  nodes deleted. Creates go in slow-start batches behind expectations.
- Like kube's ControllerRefManager, pods (and ControllerRevisions) the selector matches and
  no controller owns are adopted, and owned ones that stopped matching are released, before
  anything is counted; adoption re-reads the DaemonSet first, so a DaemonSet being deleted
  adopts nothing.
- The template history is kept as ControllerRevisions `<ds>-<hash>`; updates roll as
  `rollout.py` says.
- Status: desired/current/updated NumberScheduled, numberMisscheduled, numberReady,
  numberAvailable, numberUnavailable, observedGeneration, collisionCount.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import label_selector_from_spec
from navio.client import (CONTROLLERREVISIONS, DAEMONSETS, NAMESPACE_INDEX, NODES, NORMAL, PODS,
                          WARNING, namespace_index)
from navio.controllers.base import ControllerContext, owner_key
from navio.controllers.controller_revisions import (REVISION_HASH_LABEL, RevisionCollision,
                                                    claim_revisions,
                                                    controller_ref, ensure_revision,
                                                    equal_data, revision_for,
                                                    template_hash, template_patch,
                                                    truncate_history)
from navio.controllers.controller_utils import add_index, claim, controller_of, pod_from_template
from navio.controllers.daemonset.placement import (daemon_tolerations, node_affinity_for,
                                                   node_should_run)
from navio.controllers.daemonset.rollout import (TEMPLATE_GENERATION_LABEL, DaemonSetRollout,
                                                 available, by_age, node_pods, ready_since,
                                                 scaled)
from navio.controllers.manager import register

__all__ = ["DaemonSetController"]

log = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_MAX = 1.0, 900.0
_EXPECTATION_TTL = 300.0
Obj = dict[str, Any]


@register("daemonset")
class DaemonSetController(DaemonSetRollout):
    name = "daemonset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.dss = ctx.informers.get(DAEMONSETS)
        self.pods = ctx.informers.get(PODS)
        self.nodes = ctx.informers.get(NODES)
        self.revisions = ctx.informers.get(CONTROLLERREVISIONS)
        for inf in (self.pods, self.revisions, self.dss):
            add_index(inf, NAMESPACE_INDEX, namespace_index)
        self._expect: dict[str, tuple[int, int, float]] = {}
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}
        self.dss.add_handler(**self.handlers(self.enqueue))
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)
        self.revisions.add_handler(on_add=self._owned, on_update=lambda o, n: self._owned(n, o),
                                   on_delete=self._owned)
        self.nodes.add_handler(on_add=self._node, on_update=self._node_update,
                               on_delete=self._node)

    def _owned(self, obj: Obj, old: Obj | None = None) -> None:
        """Enqueue the owning DaemonSet; for an orphan, every DaemonSet whose selector
        matches it (getDaemonSetsForPod / getDaemonSetsForHistory); on a change of owner or
        labels, the former owner too."""
        key = owner_key(obj, "DaemonSet")
        if key is not None:
            self.queue.add(key)
        elif controller_of(obj) is None:
            labels = obj["metadata"].get("labels") or {}
            for ds in self.dss.by_index(NAMESPACE_INDEX, obj["metadata"].get("namespace", "")):
                try:
                    if label_selector_from_spec(ds["spec"].get("selector")).matches(labels):
                        self.enqueue(ds)
                except errors.ApiError:
                    continue
        if old is not None and (controller_of(old) != controller_of(obj) or
                                old["metadata"].get("labels") != obj["metadata"].get("labels")):
            former = owner_key(old, "DaemonSet")
            if former is not None and former != key:
                self.queue.add(former)

    def _observe(self, pod: Obj, *, created: bool) -> None:
        key = owner_key(pod, "DaemonSet")
        if key is not None and key in self._expect:
            a, d, t = self._expect[key]
            self._expect[key] = (a - int(created), d - int(not created), t)

    def _pod_added(self, pod: Obj) -> None:
        self._observe(pod, created=not pod["metadata"].get("deletionTimestamp"))
        self._owned(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get(
                "deletionTimestamp"):
            self._observe(new, created=False)
        self._owned(new, old)

    def _pod_deleted(self, pod: Obj) -> None:
        if not pod["metadata"].get("deletionTimestamp"):
            self._observe(pod, created=False)
        self._owned(pod)

    def _node(self, node: Obj) -> None:
        for ds in self.dss.list():
            self.enqueue(ds)

    def _node_update(self, old: Obj, new: Obj) -> None:
        # shouldIgnoreNodeUpdate: only labels, taints and conditions matter.
        def facts(n: Obj) -> Any:
            return (n["metadata"].get("labels"), (n.get("spec") or {}).get("taints"),
                    [(c.get("type"), c.get("status"))
                     for c in (n.get("status") or {}).get("conditions") or ()])
        if facts(old) != facts(new):
            self._node(new)

    # ---- expectations -------------------------------------------------------------------

    def _satisfied(self, key: str) -> bool:
        a, d, t = self._expect.get(key, (0, 0, 0.0))
        return (a <= 0 and d <= 0) or asyncio.get_running_loop().time() - t > _EXPECTATION_TTL

    def _expect_changes(self, key: str, adds: int, dels: int) -> None:
        self._expect[key] = (adds, dels, asyncio.get_running_loop().time())

    # ---- sync ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.dss.get(key)
        if ds is None:
            self._expect.pop(key, None)
            return
        if label_selector_from_spec(ds["spec"].get("selector")).empty():
            self.recorder.event(ds, WARNING, "SelectingAll", "This daemon set is selecting all "
                                "pods. A non-empty selector is required.")
            return
        nodes = self.nodes.list()
        revision, olds = await self._history(ds)
        hash_ = (revision["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL, "")
        pods = await self._claim_pods(ds)
        if self._satisfied(key) and not ds["metadata"].get("deletionTimestamp"):
            await self._manage(key, ds, nodes, hash_, pods)
            strategy = ds["spec"].get("updateStrategy") or {}
            if self._satisfied(key) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(key, ds, nodes, hash_, pods)
            live = {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods}
            await truncate_history(self.client, olds,
                                   {r["metadata"]["name"] for r in olds
                                    if (r["metadata"].get("labels") or {})
                                    .get(REVISION_HASH_LABEL) in live},
                                   int(ds["spec"].get("revisionHistoryLimit", 10)))
        await self._status(ds, nodes, hash_, pods)

    async def _claim_pods(self, ds: Obj) -> list[Obj]:
        """getDaemonPods: the pods this DaemonSet controls once orphans it selects are
        adopted and its pods that stopped matching released; finished pods being deleted
        do not count."""
        selector = label_selector_from_spec(ds["spec"].get("selector"))
        owner = {**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"}
        pods = await claim(self.client, PODS, DAEMONSETS, owner,
                           lambda p: selector.matches(p["metadata"].get("labels")),
                           self.pods.by_index(NAMESPACE_INDEX, ds["metadata"]["namespace"]))
        return [p for p in pods if not (p["metadata"].get("deletionTimestamp") and
                                        (p.get("status") or {}).get("phase")
                                        in ("Succeeded", "Failed"))]

    async def _history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        """constructHistory: the revision of the current template (created if missing)."""
        revs = await claim_revisions(self.client, DAEMONSETS,
                                     {**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"},
                                     self.revisions.by_index(NAMESPACE_INDEX,
                                                             ds["metadata"]["namespace"]))
        data = template_patch(ds)
        olds = [r for r in revs if not equal_data(r, data)]
        cur, top = await revision_for(self.client, revs, data)
        if cur is not None:
            return cur, olds
        collisions = (ds.get("status") or {}).get("collisionCount")
        hash_ = template_hash(ds["spec"].get("template") or {}, collisions)
        labels = dict(((ds["spec"].get("template") or {}).get("metadata") or {})
                      .get("labels") or {})
        labels[REVISION_HASH_LABEL] = hash_
        try:
            cur = await ensure_revision(
                self.client, ds, controller_ref(ds, "apps/v1", "DaemonSet"),
                name=f"{ds['metadata']['name']}-{hash_}", data=data, number=top + 1,
                labels=labels, annotations=ds["metadata"].get("annotations"))
        except RevisionCollision:
            fresh = await self.client.get(DAEMONSETS, ds["metadata"]["name"],
                                          ds["metadata"]["namespace"])
            if (fresh.get("status") or {}).get("collisionCount") == collisions:
                fresh.setdefault("status", {})["collisionCount"] = (collisions or 0) + 1
                await self.client.update_status(DAEMONSETS, fresh)
            raise
        return cur, olds

    async def _manage(self, key: str, ds: Obj, nodes: list[Obj], hash_: str,
                      pods_: list[Obj]) -> None:
        """manage + podsShouldBeOnNode: which nodes need a pod, which pods must go."""
        by_node = node_pods(pods_)
        surge = scaled(((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
                        .get("maxSurge"), 1) > 0
        create: list[str] = []
        delete: list[Obj] = []
        names = set()
        loop_now = asyncio.get_running_loop().time()
        for node in nodes:
            name = node["metadata"]["name"]
            names.add(name)
            should_run, keep = node_should_run(node, ds)
            pods = by_node.get(name)
            if should_run and not pods:
                create.append(name)
            elif keep:
                running = []
                for p in pods or ():
                    if p["metadata"].get("deletionTimestamp"):
                        continue
                    phase = (p.get("status") or {}).get("phase")
                    if phase == "Failed":
                        until, delay = self._backoff.get((key, name), (0.0, 0.0))
                        if loop_now < until:
                            self.queue.add_after(key, until - loop_now)
                            continue
                        delay = min(max(delay * 2, _BACKOFF_START), _BACKOFF_MAX)
                        self._backoff[(key, name)] = (loop_now + delay, delay)
                        self.recorder.event(ds, WARNING, "FailedDaemonPod",
                                            f"Found failed daemon pod {p['metadata']['namespace']}"
                                            f"/{p['metadata']['name']} on node {name}, will try "
                                            "to kill it")
                        delete.append(p)
                    elif phase == "Succeeded":
                        delete.append(p)
                    else:
                        running.append(p)
                running = by_age(running)
                if not surge:
                    delete += running[1:]
                elif not running and should_run:
                    create.append(name)
                elif len(running) > 1:
                    delete += self._prune_surge(ds, running, hash_)
            elif pods:
                delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for node_name, pods in by_node.items():
            if node_name not in names:        # getUnscheduledPodsWithoutNode
                delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                           and not p["metadata"].get("deletionTimestamp")]
        await self._sync_nodes(key, ds, delete, create, hash_)

    async def _sync_nodes(self, key: str, ds: Obj, delete: list[Obj], create: list[str],
                          hash_: str) -> None:
        if not delete and not create:
            return
        self._expect_changes(key, len(create), len(delete))
        errs: list[Exception] = []
        batch, pending = 1, list(create)
        while pending:
            chunk, pending = pending[:batch], pending[batch:]
            results = await asyncio.gather(*(self._create(ds, n, hash_) for n in chunk),
                                           return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                errs += failed
                a, d, t = self._expect[key]
                self._expect[key] = (a - len(failed) - len(pending), d, t)
                break
            batch *= 2
        results = await asyncio.gather(*(self._delete(ds, p) for p in delete),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            a, d, t = self._expect[key]
            self._expect[key] = (a, d - len(failed), t)
            errs += failed
        if errs:
            raise errs[0]

    async def _create(self, ds: Obj, node: str, hash_: str) -> None:
        pod = pod_from_template(ds["spec"].get("template") or {},
                                {**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"})
        meta, spec = pod["metadata"], pod["spec"]
        meta["namespace"] = ds["metadata"]["namespace"]
        meta["labels"][REVISION_HASH_LABEL] = hash_
        gen = self._generation(ds)
        if gen is not None:
            meta["labels"][TEMPLATE_GENERATION_LABEL] = gen
        spec["tolerations"] = daemon_tolerations(spec)
        spec["affinity"] = node_affinity_for(spec.get("affinity"), node)
        try:
            made = await self.client.create(PODS, pod)
        except errors.ApiError as exc:
            if "being terminated" not in str(exc):
                self.recorder.event(ds, WARNING, "FailedCreate", f"Error creating: {exc}")
            raise
        self.recorder.event(ds, NORMAL, "SuccessfulCreate",
                            f"Created pod: {made['metadata']['name']}")

    async def _delete(self, ds: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, pod["metadata"]["namespace"])
        except errors.NotFound:
            return
        except errors.ApiError as exc:
            self.recorder.event(ds, WARNING, "FailedDelete", f"Error deleting: {exc}")
            raise
        self.recorder.event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

    async def _status(self, ds: Obj, nodes: list[Obj], hash_: str, pods_: list[Obj]) -> None:
        by_node = node_pods(pods_)
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        now = datetime.now(timezone.utc)
        desired = current = mis = ready = n_available = updated = 0
        for node in nodes:
            should_run, _ = node_should_run(node, ds)
            pods = by_node.get(node["metadata"]["name"]) or []
            if should_run:
                desired += 1
                if not pods:
                    continue
                current += 1
                pod = by_age(pods)[0]
                if ready_since(pod) is not None:
                    ready += 1
                    n_available += available(pod, min_ready, now)
                updated += self._updated(pod, ds, hash_)
            elif pods:
                mis += 1
        status = dict(ds.get("status") or {})
        new = {**status, "observedGeneration": ds["metadata"].get("generation"),
               "desiredNumberScheduled": desired, "currentNumberScheduled": current,
               "numberMisscheduled": mis, "numberReady": ready,
               "updatedNumberScheduled": updated, "numberAvailable": n_available,
               "numberUnavailable": desired - n_available}
        if new != status:
            await self._store_status(ds, {k: v for k, v in new.items() if k not in status
                                          or status[k] != v})
        if min_ready > 0 and ready != n_available:
            self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}",
                                 float(min_ready))

    async def _store_status(self, ds: Obj, changes: Obj) -> None:
        """storeDaemonSetStatus: write the counters; on a conflict re-read the DaemonSet
        once (StatusUpdateRetries) and write them onto the fresh copy."""
        target = ds
        for attempt in range(2):
            body = {**target, "status": {**(target.get("status") or {}), **changes}}
            try:
                await self.client.update_status(DAEMONSETS, body)
                return
            except errors.Conflict:
                if attempt:
                    raise
                target = await self.client.get(DAEMONSETS, ds["metadata"]["name"],
                                               ds["metadata"]["namespace"])
                if target["metadata"].get("uid") != ds["metadata"].get("uid"):
                    return

