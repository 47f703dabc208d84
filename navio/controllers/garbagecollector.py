"""The garbage collector: cascading deletion through ownerReferences.

Why: `kubectl delete deployment` (background, the default), `--cascade=foreground` and
`--cascade=orphan` all rely on kube's pkg/controller/garbagecollector: the API server only
marks owners (deletionTimestamp, `foregroundDeletion` or `orphan` finalizer) and this
controller deletes or releases their dependents.

How: discovery lists every resource that supports list, watch and delete (events excepted, as
kube ignores them); one shared informer each feeds a graph of uid -> (resource, name, owners)
and owner uid -> dependents. Keys are `delete:<uid>` (attemptToDelete) and `orphan:<uid>`
(attemptToOrphan). Discovery is repeated every 30 s so that new resources (CRDs) are covered.

Guarantees:
- A dependent is deleted only when none of its owners is alive: an owner missing from the
  graph is looked up through the API server (by uid) before it is called absent. Owners that
  are gone or waiting for dependents are removed from a dependent that still has a live owner.
- Background: dependents of a vanished owner are deleted with the policy their own finalizers
  ask for (Background by default), so the cascade continues level by level.
- Foreground: an owner with `foregroundDeletion` keeps its finalizer while any dependent with
  blockOwnerDeletion=true exists; its dependents are deleted (in the foreground themselves if
  they have dependents), then the finalizer is removed and the API server deletes the owner.
- Orphan: an owner with `orphan` loses its ownerReferences from every dependent, then the
  finalizer, so the dependents survive without it.
- Every write is conditional (uid precondition on deletes, resourceVersion on patches) and
  retried from a fresh read on conflict; processing a key twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from navio.api import errors
from navio.client import Client, ResourceRef
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["GarbageCollector", "DiscoveredResource", "discover_resources",
           "FOREGROUND", "ORPHAN"]

log = logging.getLogger(__name__)

NAME = "garbagecollector"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})
_REQUIRED_VERBS = frozenset({"delete", "list", "watch"})
_REDISCOVERY_PERIOD = 30.0
_WRITE_RETRIES = 5

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DiscoveredResource:
    resource: ResourceRef
    verbs: frozenset[str]


async def discover_resources(client: Client) -> tuple[list[DiscoveredResource], list[str]]:
    """The resources of every group's preferred version (no subresources), and the group
    versions whose discovery failed (ServerPreferredResources)."""
    failed: list[str] = []
    group_versions = [("", "v1", "/api/v1")]
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or ():
        preferred = (g.get("preferredVersion") or {}).get("version") or \
            ((g.get("versions") or [{}])[0]).get("version")
        if preferred:
            group_versions.append((g["name"], preferred, f"/apis/{g['name']}/{preferred}"))

    async def fetch(path: str) -> Obj | None:
        try:
            return await client.request("GET", path)  # type: ignore[no-any-return]
        except (errors.ApiError, ConnectionError) as exc:
            failed.append(f"{path.removeprefix('/apis/').removeprefix('/api/')}: {exc}")
            return None

    lists = await asyncio.gather(*(fetch(path) for _, _, path in group_versions))
    out: list[DiscoveredResource] = []
    for (group, version, _), rl in zip(group_versions, lists):
        for r in (rl or {}).get("resources") or ():
            if "/" in r.get("name", ""):
                continue
            out.append(DiscoveredResource(
                ResourceRef(group, version, r["name"], bool(r.get("namespaced")), r["kind"]),
                frozenset(r.get("verbs") or ())))
    return out, failed


@dataclass(frozen=True, slots=True)
class _Node:
    uid: str
    resource: ResourceRef
    namespace: str | None
    name: str
    owners: tuple[Obj, ...]
    deleting: bool
    finalizers: tuple[str, ...]

    @property
    def waiting_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers

    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def _level(node: _Node) -> int:
    """Secret names are logged at debug only (issue 3: names of secrets leak in logs)."""
    return logging.DEBUG if node.resource.resource_name == "secrets" else logging.INFO


class GarbageCollector(Controller):
    name = NAME

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = int(ctx.options.get("concurrent-gc-syncs", 20))
        self._nodes: dict[str, _Node] = {}
        self._dependents: dict[str, set[str]] = {}
        self._by_kind: dict[tuple[str, str], ResourceRef] = {}
        self._watched: set[ResourceRef] = set()

    # ---- monitors ----------------------------------------------------------------------

    async def run(self, workers: int | None = None) -> None:
        delay = 0.5
        while True:
            try:
                await self._sync_monitors()
                break
            except (errors.ApiError, ConnectionError) as exc:
                log.warning("garbage collector discovery failed", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        task = asyncio.create_task(self._rediscover(), name="gc-rediscovery")
        try:
            await super().run(workers)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(_REDISCOVERY_PERIOD)
            try:
                await self._sync_monitors()
            except (errors.ApiError, ConnectionError) as exc:
                log.info("garbage collector rediscovery failed", extra={"error": str(exc)})

    async def _sync_monitors(self) -> None:
        resources, failed = await discover_resources(self.client)
        fresh = []
        for d in resources:
            r = d.resource
            if (r.group, r.plural) in _IGNORED or not _REQUIRED_VERBS <= d.verbs:
                continue
            self._by_kind[(r.group, r.kind)] = r
            if r in self._watched:
                continue
            self._watched.add(r)
            inf = self.ctx.informers.get(r)
            inf.add_handler(on_add=self._observer(r), on_update=self._updater(r),
                            on_delete=self._forget)
            fresh.append(inf)
        if fresh:
            self.ctx.informers.start()
            await asyncio.gather(*(inf.wait_synced(60) for inf in fresh))
            log.info("garbage collector monitors synced", extra={"added": len(fresh),
                                                                 "failed": len(failed)})

    def _observer(self, resource: ResourceRef) -> Callable[[Obj], None]:
        return lambda obj: self._observe(resource, obj)

    def _updater(self, resource: ResourceRef) -> Callable[[Obj, Obj], None]:
        return lambda old, new: self._observe(resource, new)

    # ---- graph (graph_builder.go) ---------------------------------------------------------

    def _observe(self, resource: ResourceRef, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        node = _Node(uid, resource, meta.get("namespace"), meta.get("name", ""),
                     tuple(meta.get("ownerReferences") or ()),
                     bool(meta.get("deletionTimestamp")), tuple(meta.get("finalizers") or ()))
        old = self._nodes.get(uid)
        self._nodes[uid] = node
        old_owners = {str(r.get("uid")) for r in old.owners} if old else set()
        new_owners = {str(r.get("uid")) for r in node.owners}
        for owner_uid in old_owners - new_owners:
            self._unlink(owner_uid, uid)
        for owner_uid in new_owners - old_owners:
            self._dependents.setdefault(owner_uid, set()).add(uid)
        if node.waiting_for_dependents:
            if old is None or not old.waiting_for_dependents:
                for dep in self._dependents.get(uid, ()):
                    self.queue.add(f"delete:{dep}")
            self.queue.add(f"delete:{uid}")
        if node.deleting and ORPHAN in node.finalizers:
            self.queue.add(f"orphan:{uid}")
        for r in node.owners:
            owner = self._nodes.get(r.get("uid", ""))
            if owner is None or owner.waiting_for_dependents:
                self.queue.add(f"delete:{uid}")
                break

    def _unlink(self, owner_uid: str, uid: str) -> None:
        deps = self._dependents.get(owner_uid)
        if deps is not None:
            deps.discard(uid)
            if not deps:
                del self._dependents[owner_uid]
        owner = self._nodes.get(owner_uid)
        if owner is not None and owner.waiting_for_dependents:
            self.queue.add(f"delete:{owner_uid}")

    def _forget(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        node = self._nodes.pop(uid, None) if uid else None
        if node is None:
            return
        for r in node.owners:
            self._unlink(r.get("uid", ""), node.uid)
        for dep in self._dependents.get(node.uid, ()):
            self.queue.add(f"delete:{dep}")

    # ---- processing -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """attemptToDelete / attemptToOrphan for one uid; safe to repeat."""
        action, _, uid = key.partition(":")
        node = self._nodes.get(uid)
        if node is None:
            return
        if action == "orphan":
            await self._orphan_dependents(node)
        else:
            await self._attempt_to_delete(node)

    async def _owner_state(self, node: _Node, owner_ref: Obj) -> str:
        """"solid", "dangling" or "waiting" (for its dependents' deletion)."""
        owner = self._nodes.get(owner_ref.get("uid", ""))
        if owner is not None:
            return "waiting" if owner.waiting_for_dependents else "solid"
        group = owner_ref.get("apiVersion", "").rpartition("/")[0]
        resource = self._by_kind.get((group, owner_ref.get("kind", "")))
        if resource is None:
            return "solid"      # unknown kind: never delete on a guess
        try:
            live = await self.client.get(resource, owner_ref.get("name", ""),
                                         node.namespace if resource.namespaced else None)
        except errors.NotFound:
            return "dangling"
        lmeta = live.get("metadata") or {}
        if lmeta.get("uid") != owner_ref.get("uid"):
            return "dangling"
        if lmeta.get("deletionTimestamp") and FOREGROUND in (lmeta.get("finalizers") or ()):
            return "waiting"
        return "solid"

    async def _attempt_to_delete(self, node: _Node) -> None:
        if node.deleting:
            if node.waiting_for_dependents:
                await self._process_deleting_dependents(node)
            return
        if not node.owners:
            return
        states = {r.get("uid", ""): await self._owner_state(node, r) for r in node.owners}
        solid = [u for u, s in states.items() if s == "solid"]
        gone = {u for u, s in states.items() if s != "solid"}
        if solid:
            if gone:
                await self._patch_owner_refs(
                    node, lambda refs: [r for r in refs if r.get("uid") not in gone])
            return
        waiting = {u for u, s in states.items() if s == "waiting"}
        deps = [self._nodes[d] for d in self._dependents.get(node.uid, ()) if d in self._nodes]
        if waiting and deps:
            if any(d.waiting_for_dependents for d in deps):
                # A possible cycle: stop blocking the waiting owners, as kube does.
                await self._patch_owner_refs(node, lambda refs: [
                    dict(r, blockOwnerDeletion=False) if r.get("uid") in waiting else r
                    for r in refs])
            policy = "Foreground"
        elif ORPHAN in node.finalizers:
            policy = "Orphan"
        elif FOREGROUND in node.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            await self.client.delete(node.resource, node.name, node.namespace,
                                     propagation_policy=policy,
                                     preconditions={"uid": node.uid})
        except (errors.NotFound, errors.Conflict):
            return
        log.log(_level(node), "dependent deleted", extra={
            "object": node.label(), "resource": node.resource.resource_name, "policy": policy})

    async def _process_deleting_dependents(self, owner: _Node) -> None:
        blocking = []
        for dep_uid in self._dependents.get(owner.uid, ()):
            dep = self._nodes.get(dep_uid)
            if dep is not None and any(r.get("uid") == owner.uid and r.get("blockOwnerDeletion")
                                       for r in dep.owners):
                blocking.append(dep)
        if not blocking:
            await self._remove_finalizer(owner, FOREGROUND)
            return
        for dep in blocking:
            if not dep.waiting_for_dependents:
                self.queue.add(f"delete:{dep.uid}")

    async def _orphan_dependents(self, owner: _Node) -> None:
        if not (owner.deleting and ORPHAN in owner.finalizers):
            return
        for dep_uid in list(self._dependents.get(owner.uid, ())):
            dep = self._nodes.get(dep_uid)
            if dep is not None:
                await self._patch_owner_refs(
                    dep, lambda refs: [r for r in refs if r.get("uid") != owner.uid])
        if await self._remove_finalizer(owner, ORPHAN):
            log.log(_level(owner), "dependents orphaned", extra={
                "object": owner.label(), "resource": owner.resource.resource_name})

    # ---- conditional writes -----------------------------------------------------------------

    async def _rewrite(self, node: _Node, field: str,
                       change: Callable[[list[Any]], list[Any]]) -> bool:
        """Merge-patch metadata.<field> from a fresh read, conditional on its resourceVersion;
        True if this call changed it."""
        for _ in range(_WRITE_RETRIES):
            try:
                live = await self.client.get(node.resource, node.name, node.namespace)
            except errors.NotFound:
                return False
            meta = live.get("metadata") or {}
            if meta.get("uid") != node.uid:
                return False
            before = list(meta.get(field) or ())
            after = change(before)
            if after == before:
                return False
            patch = {"metadata": {field: after or None,
                                  "resourceVersion": meta.get("resourceVersion")}}
            try:
                await self.client.patch(node.resource, node.name, patch, node.namespace)
                return True
            except errors.NotFound:
                return False
            except errors.Conflict:
                continue
        raise errors.Conflict(f"{node.resource.resource_name} {node.label()}: too many "
                              f"conflicts updating {field}")

    async def _patch_owner_refs(self, node: _Node,
                                change: Callable[[list[Obj]], list[Obj]]) -> bool:
        return await self._rewrite(node, "ownerReferences", change)

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> bool:
        return await self._rewrite(node, "finalizers",
                                   lambda fs: [f for f in fs if f != finalizer])


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return GarbageCollector(ctx)
