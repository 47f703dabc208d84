"""The API server's CRD controllers: naming, establishing and finalizing, in one loop.

kube-apiserver runs these in apiextensions-apiserver (pkg/controller/status/naming_controller.go,
establish/, finalizer/crd_finalizer.go). Here one task watches the CustomResourceDefinition
cache and, for each CRD:

- decides whether its names are accepted (a plural, singular, short name, kind or list kind
  another CRD of the group has already been given is a conflict: NamesAccepted False,
  `NameConflict`); accepted names go to `status.acceptedNames`;
- registers the kinds of its served versions (registry, watch caches, type definitions for
  OpenAPI, table columns, defaulting and validation), then records Established: the kind is
  servable as soon as the CRD event reaches this loop, well within a second;
- on deletion (the `customresourcecleanup.apiextensions.k8s.io` finalizer that its delete
  added), marks it Terminating, deletes every object of the kind (waiting for their own
  finalizers), removes the finalizer, and unregisters the kinds when the CRD is gone.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, Callable

from navio.api import defaults, errors, schema, tables, validation
from navio.api.crd import CLEANUP_FINALIZER, CustomResource
from navio.api.crd.definition import default_crd, validate_crd, validate_crd_update
from navio.api.crd.printer import printer_for
from navio.api.registry import Kind
from navio.apiserver.resources import Resources, WriteOptions
from navio.apiserver.watchcache import Watcher

__all__ = ["CustomResourceDefinitions", "GROUP", "KIND"]

log = logging.getLogger(__name__)

GROUP, KIND = "apiextensions.k8s.io", "CustomResourceDefinition"
_OPTS = WriteOptions(field_manager="kube-apiserver", user_agent="kube-apiserver")
_FINALIZE_POLL = 0.2


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


class CustomResourceDefinitions:
    def __init__(self, resources: Resources, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], str] | None = None) -> None:
        self.resources = resources
        self.on_change = on_change
        self.now = clock or resources.now
        self.served: dict[str, tuple[CustomResource, list[Kind]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._finalizing: dict[str, asyncio.Task[None]] = {}
        kind = resources.registry.kind(GROUP, "v1", KIND)
        assert kind is not None
        self.kind = kind
        # CRD objects themselves are defaulted and validated from now on (before `start`, so
        # that navio's built-in CRDs are checked as they are installed).
        defaults.register(GROUP, KIND, default_crd)
        validation.register(GROUP, KIND, validate_crd, validate_crd_update, namespaced=False)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve the kinds of every stored CRD, then follow changes."""
        watcher, objs = self.resources.cache(self.kind).watch_from_now("", None)
        for obj in objs:
            await self._sync_safely(obj)
        self._task = asyncio.create_task(self._run(watcher), name="crd controller")

    async def stop(self) -> None:
        for t in [self._task, *self._finalizing.values()]:
            if t is not None:
                t.cancel()
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass

    async def _run(self, watcher: Watcher) -> None:
        while True:
            item = await watcher.next(None)
            if item is None:   # closed (overflow): start over from the current state
                watcher, objs = self.resources.cache(self.kind).watch_from_now("", None)
                for obj in objs:
                    await self._sync_safely(obj)
                continue
            ev_type, ev = item
            if ev_type == "DELETED":
                await self._unserve(ev.object["metadata"]["name"])
            else:
                await self._sync_safely(ev.object)

    async def _sync_safely(self, crd: dict[str, Any]) -> None:
        try:
            await self._sync(crd)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except errors.ApiError as exc:
            log.info("CRD sync failed", extra={"crd": crd["metadata"]["name"],
                                               "error": str(exc)})
        except Exception:
            log.exception("CRD sync failed", extra={"crd": crd["metadata"]["name"]})

    # -- naming --------------------------------------------------------------------------------
    def _accepted_names(self, crd: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(names to accept, conflict message); names None when they conflict."""
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        names = dict(spec.get("names") or {})
        me = crd["metadata"]["name"]
        taken: dict[str, set[str]] = {"plural": set(), "singular": set(), "shortNames": set(),
                                      "kind": set(), "listKind": set()}
        for _, other in self.resources.cache(self.kind).list():
            if other["metadata"]["name"] == me or (other.get("spec") or {}).get("group") != \
                    group:
                continue
            acc = (other.get("status") or {}).get("acceptedNames") or {}
            for key in ("plural", "singular", "kind", "listKind"):
                if acc.get(key):
                    taken[key].add(acc[key])
            taken["shortNames"].update(acc.get("shortNames") or ())
        for k in self.resources.registry.kinds():
            if k.group == group and k.custom is None:
                taken["plural"].add(k.plural)
                taken["singular"].add(k.singular)
                taken["kind"].add(k.kind)
                taken["shortNames"].update(k.short_names)
        words = taken["plural"] | taken["singular"] | taken["shortNames"]
        for key in ("plural", "singular"):
            if names.get(key) and names[key] in words:
                return None, f'"{names[key]}" is already in use'
        for sn in names.get("shortNames") or ():
            if sn in words:
                return None, f'"{sn}" is already in use'
        for key in ("kind", "listKind"):
            if names.get(key) and names[key] in taken["kind"] | taken["listKind"]:
                return None, f'"{names[key]}" is already in use'
        return names, "no conflicts found"

    # -- sync ----------------------------------------------------------------------------------
    async def _sync(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        status = copy.deepcopy(crd.get("status") or {})
        conditions = {c["type"]: c for c in status.get("conditions") or ()}
        names, message = self._accepted_names(crd)
        terminating = bool(crd["metadata"].get("deletionTimestamp"))
        if names is not None:
            status["acceptedNames"] = names
            conditions["NamesAccepted"] = _condition("NamesAccepted", "True", "NoConflicts",
                                                     message)
        else:
            conditions["NamesAccepted"] = _condition("NamesAccepted", "False", "NameConflict",
                                                     message)
        accepted = (status.get("acceptedNames") or {}).get("plural")
        if accepted:
            await self._serve(crd, status)
            conditions["Established"] = _condition("Established", "True",
                                                   "InitialNamesAccepted",
                                                   "the initial names have been accepted")
        else:
            conditions.setdefault("Established", _condition(
                "Established", "False", "NotAccepted", "not all names are accepted"))
        if terminating:
            conditions["Terminating"] = _condition("Terminating", "True",
                                                   "InstanceDeletionInProgress",
                                                   "CustomResource deletion is in progress")
        storage = next((v["name"] for v in (crd.get("spec") or {}).get("versions") or ()
                        if v.get("storage")), None)
        stored = list(status.get("storedVersions") or [])
        if storage and storage not in stored:
            stored.append(storage)
        status["storedVersions"] = stored
        status["conditions"] = self._stamped(list(conditions.values()), crd)
        if status != (crd.get("status") or {}):
            await self._write_status(name, status)
        if terminating and name not in self._finalizing:
            self._finalizing[name] = asyncio.create_task(self._finalize(name),
                                                         name=f"crd finalizer {name}")

    def _stamped(self, conditions: list[dict[str, Any]],
                 crd: dict[str, Any]) -> list[dict[str, Any]]:
        old = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or ()}
        order = {"NamesAccepted": 0, "Established": 1, "Terminating": 2}
        out = []
        for c in sorted(conditions, key=lambda c: order.get(c["type"], 9)):
            prev = old.get(c["type"])
            when = prev.get("lastTransitionTime") if prev and \
                prev.get("status") == c["status"] else None
            out.append({"type": c["type"], "status": c["status"],
                        "lastTransitionTime": when or self.now(), "reason": c["reason"],
                        "message": c["message"]})
        return out

    async def _write_status(self, name: str, status: dict[str, Any]) -> None:
        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise errors.NotFound(name)
            new = copy.deepcopy(current)
            new["status"] = status
            new["metadata"].pop("resourceVersion", None)
            return new
        try:
            await self.resources.update(self.kind, "", name, mutate, _OPTS,
                                        subresource="status")
        except errors.NotFound:
            pass

    # -- serving -------------------------------------------------------------------------------
    async def _serve(self, crd: dict[str, Any], status: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        cr = CustomResource.from_crd({**crd, "status": status})
        prev = self.served.get(name)
        if prev is not None and prev[0] == cr and prev[0].terminating == cr.terminating:
            return
        schema.add_definitions(cr.definitions())
        kinds = cr.kinds()
        new_keys = {(k.group, k.version, k.plural) for k in kinds}
        if prev is not None:
            for k in prev[1]:
                if (k.group, k.version, k.plural) not in new_keys or k.kind != cr.kind:
                    await self.resources.remove_kind(k)
            if prev[0].kind != cr.kind:
                self._unregister_behaviour(prev[0])
        for k in kinds:
            await self.resources.add_kind(k)
        self._register_behaviour(cr)
        self.served[name] = (cr, kinds)
        self.on_change()

    def _register_behaviour(self, cr: CustomResource) -> None:
        for v in cr.versions:
            if v.served:
                tables.register_printer(cr.group, cr.kind, v.name, printer_for(v.columns))
        defaults.register(cr.group, cr.kind, cr.default)
        validation.register(cr.group, cr.kind, lambda obj: cr.validate(obj, None),
                            lambda new, old: cr.validate(new, old), namespaced=cr.namespaced)

    @staticmethod
    def _unregister_behaviour(cr: CustomResource) -> None:
        tables.unregister_printer(cr.group, cr.kind)
        defaults.unregister(cr.group, cr.kind)
        validation.unregister(cr.group, cr.kind)

    async def _unserve(self, name: str) -> None:
        entry = self.served.pop(name, None)
        task = self._finalizing.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
        if entry is None:
            return
        cr, kinds = entry
        for k in kinds:
            await self.resources.remove_kind(k)
        self._unregister_behaviour(cr)
        self.on_change()

    # -- finalizing ----------------------------------------------------------------------------
    async def _finalize(self, name: str) -> None:
        """Delete every object of the CRD's kind, wait until they are gone, then release the
        CRD (crd_finalizer.go)."""
        try:
            while True:
                entry = self.served.get(name)
                remaining = 0
                if entry is not None:
                    cr, kinds = entry
                    kind = next((k for k in kinds if k.version == cr.storage_version),
                                kinds[0] if kinds else None)
                    if kind is not None:
                        objs = [o for _, o in self.resources.cache(kind).list()]
                        remaining = len(objs)
                        for o in objs:
                            meta = o["metadata"]
                            if meta.get("deletionTimestamp"):
                                continue
                            try:
                                await self.resources.delete(kind, meta.get("namespace", ""),
                                                            meta["name"], {}, _OPTS)
                            except errors.NotFound:
                                pass
                if remaining == 0:
                    break
                await asyncio.sleep(_FINALIZE_POLL)
            await self._release(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("CRD finalization failed", extra={"crd": name})
        finally:
            self._finalizing.pop(name, None)

    async def _release(self, name: str) -> None:
        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise errors.NotFound(name)
            new = copy.deepcopy(current)
            new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or ()
                                             if f != CLEANUP_FINALIZER]
            new["metadata"].pop("resourceVersion", None)
            return new
        try:
            await self.resources.update(self.kind, "", name, mutate, _OPTS)
        except errors.NotFound:
            pass
