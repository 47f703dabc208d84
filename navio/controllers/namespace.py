"""The namespace controller: empties a deleted namespace, then lets the API server remove it.

Why: `kubectl delete namespace` only marks the namespace (deletionTimestamp, phase
Terminating) while its `kubernetes` finalizer stays; kube's pkg/controller/namespace deletes
its content and then finalizes it (namespaced_resources_deleter.go).

Guarantees:
- Every namespaced resource that discovery (preferred versions) says supports delete is
  emptied: deletecollection with propagationPolicy Background where supported, else list and
  delete one by one; then listed again to see what remains.
- The namespace keeps its `kubernetes` finalizer until nothing is left; content with
  finalizers (or graceful pods) makes it wait for an estimate (15 s for finalizers, the pods'
  remaining grace period) before looking again; anything else left is an error retried with
  back-off.
- Status conditions are the five kube maintains (NamespaceDeletionDiscoveryFailure,
  NamespaceDeletionGroupVersionParsingFailure, NamespaceDeletionContentFailure,
  NamespaceContentRemaining, NamespaceFinalizersRemaining) with kube's reasons and messages,
  written only when they change.
- Finalizing is `PUT namespaces/<n>/finalize` with the other spec.finalizers kept; the API
  server deletes the namespace when none is left.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from navio.api import errors
from navio.client import NAMESPACES, PODS, ResourceRef
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.controller_utils import parse_time
from navio.controllers.deployment_rollout import now_rfc3339
from navio.controllers.garbagecollector import discover_resources
from navio.controllers.manager import register

__all__ = ["NamespaceController", "FINALIZER", "conditions_for"]

log = logging.getLogger(__name__)

NAME = "namespace"
FINALIZER = "kubernetes"
FINALIZER_ESTIMATE_SECONDS = 15
_CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure",
                    "NamespaceDeletionGroupVersionParsingFailure",
                    "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                    "NamespaceFinalizersRemaining")
_OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered",
                                          "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", "All content successfully deleted, "
                                        "may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers",
                                     "All content-preserving finalizers finished"),
}

Obj = dict[str, Any]


def conditions_for(current: list[Obj], failures: dict[str, tuple[str, str]], now: str
                   ) -> tuple[list[Obj], bool]:
    """The namespace conditions after a pass (updateConditions): each of the five types is
    its failure (status True) or its "ok" variant (status False); (conditions, changed)."""
    out = [dict(c) for c in current]
    changed = False
    for ctype in _CONDITION_TYPES:
        status, (reason, message) = ("True", failures[ctype]) if ctype in failures else \
            ("False", _OK[ctype])
        old = next((c for c in out if c.get("type") == ctype), None)
        if old is None:
            out.append({"type": ctype, "status": status, "lastTransitionTime": now,
                        "reason": reason, "message": message})
            changed = True
        elif (old.get("status"), old.get("reason"), old.get("message")) != \
                (status, reason, message):
            if old.get("status") != status:
                old["lastTransitionTime"] = now
            old.update(status=status, reason=reason, message=message)
            changed = True
    return out, changed


class _ContentRemains(Exception):
    pass


class NamespaceController(Controller):
    name = NAME

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = int(ctx.options.get("concurrent-namespace-syncs", 10))
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.namespaces.add_handler(on_add=self._changed,
                                    on_update=lambda old, new: self._changed(new))

    def _changed(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(ns)

    async def reconcile(self, key: str) -> None:
        """Delete the content of namespace `key` if it is being deleted, then finalize it."""
        try:
            ns = await self.client.get(NAMESPACES, key)
        except errors.NotFound:
            return
        meta = ns.get("metadata") or {}
        if not meta.get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return
        deleted_at = parse_time(meta["deletionTimestamp"]) or time.time()
        estimate = await self._delete_all_content(ns, deleted_at)
        if estimate > 0:
            log.info("namespace content remains", extra={"namespace": key,
                                                         "estimate": estimate})
            self.queue.add_after(key, float(estimate))
            return
        for _ in range(5):          # retryOnConflictError
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": ns["metadata"],
                    "spec": {"finalizers": [f for f in ns["spec"].get("finalizers") or ()
                                            if f != FINALIZER]}}
            try:
                await self.client.update_subresource(NAMESPACES, key, "finalize", body)
            except errors.NotFound:
                return
            except errors.Conflict:
                fresh = await self.client.get(NAMESPACES, key)
                if fresh["metadata"].get("uid") != meta.get("uid"):
                    return
                ns = fresh
                continue
            log.info("namespace finalized", extra={"namespace": key})
            return
        raise errors.Conflict(f'namespaces "{key}": too many conflicts finalizing')

    async def _delete_all_content(self, ns: Obj, deleted_at: float) -> int:
        name = ns["metadata"]["name"]
        failures: dict[str, tuple[str, str]] = {}
        resources, failed = await discover_resources(self.client)
        if failed:
            failures["NamespaceDeletionDiscoveryFailure"] = (
                "DiscoveryFailed", f"Discovery failed for some groups, {len(failed)} failing: "
                f"unable to retrieve the complete list of server APIs: {', '.join(failed)}")
        estimate = 0
        errs: list[str] = []
        remaining: dict[ResourceRef, int] = {}
        finalizers: Counter[str] = Counter()
        for d in resources:
            if not d.resource.namespaced or "delete" not in d.verbs:
                continue
            try:
                est, items = await self._delete_resource(d.resource, d.verbs, name, deleted_at)
            except (errors.ApiError, ConnectionError, _ContentRemains) as exc:
                errs.append(str(exc))
                continue
            estimate = max(estimate, est)
            if items:
                remaining[d.resource] = len(items)
                for item in items:
                    finalizers.update((item.get("metadata") or {}).get("finalizers") or ())
        if remaining:
            parts = sorted(f"{r.plural}.{r.group} has {n} resource instances"
                           for r, n in remaining.items())
            failures["NamespaceContentRemaining"] = (
                "SomeResourcesRemain", f"Some resources are remaining: {', '.join(parts)}")
        if finalizers:
            parts = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())
            failures["NamespaceFinalizersRemaining"] = (
                "SomeFinalizersRemain", f"Some content in the namespace has finalizers "
                f"remaining: {', '.join(parts)}")
        if errs and "NamespaceDeletionContentFailure" not in failures:
            failures["NamespaceDeletionContentFailure"] = (
                "ContentDeletionFailed", f"Failed to delete all resource types, {len(errs)} "
                f"remaining: {', '.join(sorted(errs))}")
        await self._write_conditions(ns, failures)
        if errs:
            raise _ContentRemains(errs[0])
        return estimate

    async def _delete_resource(self, resource: ResourceRef, verbs: frozenset[str], ns: str,
                               deleted_at: float) -> tuple[int, list[Obj]]:
        """Delete everything of `resource` in `ns`; (seconds to wait, items remaining)."""
        estimate = await self._estimate_pods(ns, deleted_at) if resource == PODS else 0
        done = False
        if "deletecollection" in verbs:
            try:
                await self.client.delete_collection(resource, ns,
                                                    propagation_policy="Background")
                done = True
            except (errors.MethodNotAllowed, errors.NotFound):
                done = False
        if not done and "list" in verbs:
            for item in (await self.client.list(resource, ns)).get("items") or ():
                try:
                    await self.client.delete(resource, item["metadata"]["name"], ns,
                                             propagation_policy="Background")
                except errors.NotFound:
                    continue
        if "list" not in verbs:
            return estimate, []
        items = (await self.client.list(resource, ns)).get("items") or []
        if not items:
            return 0, []
        if estimate:
            return estimate, items
        if any((i.get("metadata") or {}).get("finalizers") for i in items):
            return FINALIZER_ESTIMATE_SECONDS, items
        raise _ContentRemains(f"unexpected items still remain in namespace: {ns} for gvr: "
                              f"{resource.group}/{resource.version}, Resource="
                              f"{resource.plural}")

    async def _estimate_pods(self, ns: str, deleted_at: float) -> int:
        """The longest grace period left among the namespace's running pods."""
        estimate = 0
        for pod in (await self.client.list(PODS, ns)).get("items") or ():
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if grace is not None:
                estimate = max(estimate, int(grace))
        return max(estimate - int(time.time() - deleted_at), 0)

    async def _write_conditions(self, ns: Obj, failures: dict[str, tuple[str, str]]) -> None:
        status = ns.get("status") or {}
        conditions, changed = conditions_for(status.get("conditions") or [], failures,
                                             now_rfc3339())
        if not changed:
            return
        body = dict(ns, status=dict(status, conditions=conditions))
        try:
            updated = await self.client.update_status(NAMESPACES, body)
        except (errors.NotFound, errors.Conflict):
            return
        ns["metadata"] = updated.get("metadata", ns["metadata"])
        ns["status"] = updated.get("status", body["status"])


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return NamespaceController(ctx)
