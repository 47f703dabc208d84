"""DaemonSets: one pod per eligible node (kube-controller-manager's "daemonset",
pkg/controller/daemon, v1.32).

Guarantees:
- A node is eligible when the template's nodeName (if any), nodeSelector and required node
  affinity match it and every NoSchedule/NoExecute taint is tolerated, counting the
  tolerations every daemon pod gets: not-ready and unreachable (NoExecute, forever),
  disk/memory/pid-pressure and unschedulable (NoSchedule), and network-unavailable with
  hostNetwork. A pod stays on a node that became ineligible only through untolerated
  NoSchedule taints.
- Pods are created like upstream since 1.12: not bound, but with required node affinity
  `metadata.name In [<node>]` replacing the template's required terms, so the scheduler
  places them; they carry `controller-revision-hash` and `pod-template-generation` labels
  and a controller ownerReference. Failed pods are deleted (`FailedDaemonPod`, with
  per-node back-off), surplus pods pruned (the oldest kept), pods of vanished or
  ineligible nodes deleted. Creates go in slow-start batches behind expectations.
- The template history is kept as ControllerRevisions `<ds>-<hash>`; `RollingUpdate`
  replaces out-of-date pods keeping at most `maxUnavailable` unavailable, or with
  `maxSurge` starts the new pod first and deletes the old one once the new is available;
  `OnDelete` waits for users to delete pods.
- Status: desired/current/updated NumberScheduled, numberMisscheduled, numberReady,
  numberAvailable, numberUnavailable, observedGeneration, collisionCount.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.api.selectors import label_selector_from_spec
from navio.api import nodeaffinity
from navio.client import (CONTROLLERREVISIONS, DAEMONSETS, NAMESPACE_INDEX, NODES, NORMAL, PODS,
                          WARNING, namespace_index)
from navio.controllers.base import Controller, ControllerContext, owner_key
from navio.controllers.controller_utils import add_index, pod_from_template
from navio.controllers.controller_revisions import (REVISION_HASH_LABEL, RevisionCollision,
                                                    bump_revision, controller_ref,
                                                    ensure_revision, equal_data,
                                                    owned_revisions, revision_number,
                                                    template_hash, template_patch,
                                                    truncate_history)
from navio.controllers.manager import register
from navio.controllers.nodelifecycle import NOT_READY, UNREACHABLE, tolerates

__all__ = ["DaemonSetController", "node_should_run", "daemon_tolerations", "target_node",
           "node_affinity_for", "required_affinity_matches", "TEMPLATE_GENERATION_LABEL"]

log = logging.getLogger(__name__)

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
_BACKOFF_START, _BACKOFF_MAX = 1.0, 900.0
_EXPECTATION_TTL = 300.0
Obj = dict[str, Any]


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """util.AddOrUpdateDaemonPodTolerations applied to a pod spec's tolerations."""
    tols = [dict(t) for t in spec.get("tolerations") or ()]
    extra = [(NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"),
             ("node.kubernetes.io/disk-pressure", "NoSchedule"),
             ("node.kubernetes.io/memory-pressure", "NoSchedule"),
             ("node.kubernetes.io/pid-pressure", "NoSchedule"),
             ("node.kubernetes.io/unschedulable", "NoSchedule")]
    if spec.get("hostNetwork"):
        extra.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in extra:
        want = {"key": key, "operator": "Exists", "effect": effect}
        same = [i for i, t in enumerate(tols) if t.get("key") == key and t.get("effect") == effect
                and (t.get("operator") or "Equal") == "Exists" and not t.get("value")]
        if same:
            tols[same[0]] = want          # AddOrUpdateTolerationInPodSpec replaces
        else:
            tols.append(want)
    return tols


def required_affinity_matches(spec: Obj, node: Obj) -> bool:
    """nodeaffinity.GetRequiredNodeAffinity(pod).Match(node): nodeSelector AND terms."""
    return nodeaffinity.required_matches(spec, node)


def _untolerated(taints: list[Obj], tols: list[Obj], effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(tolerates(x, t) for x in tols)
               for t in taints)


def node_should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run, should continue running)."""
    spec = (ds["spec"].get("template") or {}).get("spec") or {}
    name = node["metadata"]["name"]
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not required_affinity_matches(spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tols = daemon_tolerations(spec)
    if _untolerated(taints, tols, ("NoSchedule", "NoExecute")):
        return False, not _untolerated(taints, tols, ("NoExecute",))
    return True, True


def node_affinity_for(affinity: Obj | None, node: str) -> Obj:
    """util.ReplaceDaemonSetPodNodeNameNodeAffinity."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    affinity = copy.deepcopy(affinity) if affinity else {}
    na = affinity.setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        req["nodeSelectorTerms"] = [term]
    return affinity


def target_node(pod: Obj) -> str | None:
    """util.GetTargetNodeName: spec.nodeName, else the node the affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    req = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
            .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in req.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and \
                    len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None


def _parse(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None


def _ready_since(pod: Obj) -> datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "True":
            return _parse(c.get("lastTransitionTime")) or datetime.min.replace(tzinfo=timezone.utc)
    return None


def _available(pod: Obj, min_ready: int, now: datetime) -> bool:
    since = _ready_since(pod)
    return since is not None and (min_ready <= 0 or
                                  (now - since).total_seconds() >= min_ready)


def _by_age(pods: list[Obj]) -> list[Obj]:
    """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"),
                                       p["metadata"].get("creationTimestamp") or "",
                                       p["metadata"]["name"]))


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


@register("daemonset")
class DaemonSetController(Controller):
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
        self.revisions.add_handler(**self.handlers(self._owned))
        self.nodes.add_handler(on_add=self._node, on_update=self._node_update,
                               on_delete=self._node)

    def _owned(self, obj: Obj) -> None:
        key = owner_key(obj, "DaemonSet")
        if key is not None:
            self.queue.add(key)

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
        self._owned(new)

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
        if self._satisfied(key) and not ds["metadata"].get("deletionTimestamp"):
            await self._manage(key, ds, nodes, hash_)
            strategy = ds["spec"].get("updateStrategy") or {}
            if self._satisfied(key) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(key, ds, nodes, hash_)
            live = {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)
                    for p in self._pods(ds)}
            await truncate_history(self.client, olds,
                                   {r["metadata"]["name"] for r in olds
                                    if (r["metadata"].get("labels") or {})
                                    .get(REVISION_HASH_LABEL) in live},
                                   int(ds["spec"].get("revisionHistoryLimit", 10)))
        await self._status(ds, nodes, hash_)

    def _pods(self, ds: Obj) -> list[Obj]:
        uid = ds["metadata"]["uid"]
        return [p for p in self.pods.by_index(NAMESPACE_INDEX, ds["metadata"]["namespace"])
                if any(r.get("controller") and r.get("uid") == uid
                       for r in p["metadata"].get("ownerReferences") or ())
                and not (p["metadata"].get("deletionTimestamp")
                         and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"))]

    def _node_pods(self, ds: Obj) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for p in self._pods(ds):
            node = target_node(p)
            if node:
                out.setdefault(node, []).append(p)
        return out

    def _generation(self, ds: Obj) -> str | None:
        return (ds["metadata"].get("annotations") or {}).get(_GENERATION_ANNOTATION)

    def _updated(self, pod: Obj, ds: Obj, hash_: str) -> bool:
        """util.IsPodUpdated by revision hash. Upstream also accepts a matching
        `pod-template-generation`, but that relies on the API server bumping the DaemonSet's
        template-generation annotation on every template change, which navio's does not."""
        return bool(hash_) and (pod["metadata"].get("labels") or {}).get(
            REVISION_HASH_LABEL) == hash_

    async def _history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        """constructHistory: the revision of the current template (created if missing)."""
        revs = owned_revisions(self.revisions.by_index(NAMESPACE_INDEX,
                                                       ds["metadata"]["namespace"]), ds)
        data = template_patch(ds)
        top = max((revision_number(r) for r in revs), default=0)
        current = [r for r in revs if equal_data(r, data)]
        olds = [r for r in revs if not equal_data(r, data)]
        if current:
            cur = current[-1]
            if revision_number(cur) < top:
                cur = await bump_revision(self.client, cur, top + 1)
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

    async def _manage(self, key: str, ds: Obj, nodes: list[Obj], hash_: str) -> None:
        """manage + podsShouldBeOnNode: which nodes need a pod, which pods must go."""
        node_pods = self._node_pods(ds)
        surge = _scaled(((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
                        .get("maxSurge"), 1) > 0
        create: list[str] = []
        delete: list[Obj] = []
        names = set()
        loop_now = asyncio.get_running_loop().time()
        for node in nodes:
            name = node["metadata"]["name"]
            names.add(name)
            should_run, keep = node_should_run(node, ds)
            pods = node_pods.get(name)
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
                running = _by_age(running)
                if not surge:
                    delete += running[1:]
                elif not running and should_run:
                    create.append(name)
                elif len(running) > 1:
                    delete += self._prune_surge(ds, running, hash_)
            elif pods:
                delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for node_name, pods in node_pods.items():
            if node_name not in names:        # getUnscheduledPodsWithoutNode
                delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                           and not p["metadata"].get("deletionTimestamp")]
        await self._sync_nodes(key, ds, delete, create, hash_)

    def _prune_surge(self, ds: Obj, running: list[Obj], hash_: str) -> list[Obj]:
        new = [p for p in running if self._updated(p, ds, hash_)]
        old = [p for p in running if not self._updated(p, ds, hash_)]
        out = new[1:] + old[1:]
        if new and old:
            if _ready_since(old[0]) is None or _available(
                    new[0], int(ds["spec"].get("minReadySeconds", 0)),
                    datetime.now(timezone.utc)):
                out.append(old[0])
        return out

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

    async def _rolling_update(self, key: str, ds: Obj, nodes: list[Obj], hash_: str) -> None:
        """update.go rollingUpdate: replace old pods within maxUnavailable / maxSurge."""
        node_pods = self._node_pods(ds)
        by_name = {n["metadata"]["name"]: n for n in nodes}
        desired = 0
        for node in nodes:
            if node_should_run(node, ds)[0]:
                desired += 1
                node_pods.setdefault(node["metadata"]["name"], [])
        ru = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
        surge = _scaled(ru.get("maxSurge"), desired)
        unavailable = _scaled(ru.get("maxUnavailable", 1), desired)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        now = datetime.now(timezone.utc)
        delete: list[Obj] = []
        create: list[str] = []
        if surge == 0:
            n_unavailable, allowed, candidates = 0, [], []
            for pods in node_pods.values():
                found = self._split(ds, pods, hash_)
                if found is None:
                    n_unavailable += 1
                    continue
                new, old = found
                if (old is None) == (new is None):
                    n_unavailable += 1
                elif new is not None:
                    n_unavailable += not _available(new, min_ready, now)
                elif old is not None and not _available(old, min_ready, now):
                    allowed.append(old)
                    n_unavailable += 1
                elif old is not None and n_unavailable < unavailable:
                    candidates.append(old)
            room = min(max(unavailable - n_unavailable, 0), len(candidates))
            delete = allowed + candidates[:room]
        else:
            n_surge = n_available = 0
            allowed_nodes: list[str] = []
            candidate_nodes: list[str] = []
            sunset: list[Obj] = []
            for node_name, pods in node_pods.items():
                found = self._split(ds, pods, hash_)
                if found is None:
                    n_surge += 1
                    continue
                new, old = found
                counted = old if old is not None else new
                if counted is not None and _available(counted, min_ready, now):
                    n_available += 1
                if old is None:
                    continue
                should_run = node_name in by_name and node_should_run(by_name[node_name],
                                                                      ds)[0]
                if new is None:
                    if not _available(old, min_ready, now):
                        if should_run:
                            allowed_nodes.append(node_name)
                        else:
                            delete.append(old)
                    elif not should_run:
                        sunset.append(old)
                    elif n_surge < surge:
                        candidate_nodes.append(node_name)
                elif not _available(new, min_ready, now):
                    n_surge += 1
                else:
                    delete.append(old)
            deletable = min(max(n_available - desired, 0), len(sunset))
            delete += sunset[:deletable]
            room = min(max(surge - n_surge, 0), len(candidate_nodes))
            create = allowed_nodes + candidate_nodes[:room]
        await self._sync_nodes(key, ds, delete, create, hash_)

    def _split(self, ds: Obj, pods: list[Obj], hash_: str) -> tuple[Obj | None, Obj | None] | None:
        """findUpdatedPodsOnNode: (new pod, old pod), or None with duplicates of either."""
        new = old = None
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            if self._updated(p, ds, hash_):
                if new is not None:
                    return None
                new = p
            else:
                if old is not None:
                    return None
                old = p
        return new, old

    async def _status(self, ds: Obj, nodes: list[Obj], hash_: str) -> None:
        node_pods = self._node_pods(ds)
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        now = datetime.now(timezone.utc)
        desired = current = mis = ready = available = updated = 0
        for node in nodes:
            should_run, _ = node_should_run(node, ds)
            pods = node_pods.get(node["metadata"]["name"]) or []
            if should_run:
                desired += 1
                if not pods:
                    continue
                current += 1
                pod = _by_age(pods)[0]
                if _ready_since(pod) is not None:
                    ready += 1
                    available += _available(pod, min_ready, now)
                updated += self._updated(pod, ds, hash_)
            elif pods:
                mis += 1
        status = dict(ds.get("status") or {})
        new = {**status, "observedGeneration": ds["metadata"].get("generation"),
               "desiredNumberScheduled": desired, "currentNumberScheduled": current,
               "numberMisscheduled": mis, "numberReady": ready,
               "updatedNumberScheduled": updated, "numberAvailable": available,
               "numberUnavailable": desired - available}
        if new != status:
            await self.client.update_status(DAEMONSETS, {**ds, "status": new})
        if min_ready > 0 and ready != available:
            self.queue.add_after(f"{ds['metadata']['namespace']}/{ds['metadata']['name']}",
                                 float(min_ready))
