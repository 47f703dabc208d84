"""Generic object semantics for every kind: kube-apiserver's generic registry store.

One code path creates, reads, updates, patches and deletes objects of any registered kind:
server-owned metadata, defaulting, admission, validation, managed fields, optimistic
concurrency, finalizers and graceful deletion. Per-kind differences come from data (the
registry, `strategy`, `defaults`, `validation`), never from per-kind handlers.

Writes are all-or-nothing: an object is checked completely before the one storage write that
stores it, and a failed write leaves nothing behind (allocations are undone).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import orjson

from navio.api import conversion, errors, managedfields, validation
from navio.api.defaults import apply_defaults
from navio.api.randstr import random_string
from navio.api.registry import Kind, Registry
from navio.apiserver import admission, strategy
from navio.apiserver.limitranger import limit_ranger
from navio.apiserver.podsecurity import pod_security
from navio.apiserver.podsecurityconfig import NAVIO_DEFAULT, PodSecurityConfig
from navio.apiserver.quota import resource_quota
from navio.apiserver.runtimeclass import validate_runtime_class
from navio.apiserver.allocationclaims import AllocationClaims
from navio.apiserver.allocators import IPAllocator, PortAllocator
from navio.apiserver.crdconversion import ConversionWebhooks
from navio.apiserver.policies import PolicyAdmission
from navio.apiserver.watchcache import WatchCache, decode_object
from navio.apiserver.webhooks import WebhookAdmission
from navio.storage.protocol import (KeyExists, KeyNotFound, RevisionConflict, Store)

__all__ = ["Resources", "WriteOptions", "now_rfc3339"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
_CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
_MAX_UPDATE_RETRIES = 16


_last_second: list[Any] = [0, ""]


def now_rfc3339(clock: Callable[[], dt.datetime] | None = None) -> str:
    if clock is None:
        # Formatted once per second: every write stamps a time.
        second = int(time.time())
        if second != _last_second[0]:
            _last_second[1] = dt.datetime.fromtimestamp(second, dt.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            _last_second[0] = second
        return str(_last_second[1])
    return clock().strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object; through orjson, several times faster than deepcopy."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
        return copied
    except (TypeError, orjson.JSONEncodeError):
        return copy.deepcopy(obj)


@dataclass(frozen=True, slots=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    user_agent: str = ""
    # The authenticated user (authn.UserInfo) writing, for admission that depends on who.
    user: Any = None
    # The request's fieldValidation parameter as given (admission webhooks see it).
    field_validation: str = ""

    def manager(self) -> str:
        """The field manager name: the given one, else the user agent's program name, as
        kube-apiserver derives it."""
        if self.field_manager:
            return self.field_manager
        return (self.user_agent.split("/", 1)[0] or "unknown")[:128]


def _conflict(kind: Kind, name: str) -> errors.Conflict:
    return errors.Conflict(
        f'Operation cannot be fulfilled on {kind.resource_name} "{name}": the object has been '
        f"modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": kind.group, "kind": kind.plural})


def not_found(kind: Kind, name: str) -> errors.NotFound:
    return errors.NotFound(f'{kind.resource_name} "{name}" not found',
                           details={"name": name, "group": kind.group, "kind": kind.plural})


def _already_exists(kind: Kind, name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(f'{kind.resource_name} "{name}" already exists',
                                details={"name": name, "group": kind.group, "kind": kind.plural})


def _cache_key(kind: Kind) -> tuple[str, str, str]:
    """Built-in kinds share one cache per resource; each version of a custom kind has its own,
    since each serves the stored objects converted to its version."""
    return (kind.group, kind.plural, kind.version if kind.custom is not None else "")


def _encode(kind: Kind, obj: dict[str, Any]) -> bytes:
    """The stored form: the object without its resourceVersion (the store's revision is),
    converted to the shared form for kinds stored with another group's (`storage_group`)."""
    meta = obj.get("metadata", {})
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    if kind.storage_group is not None:
        obj = conversion.to_storage(kind.group, kind.kind, obj)
    elif kind.custom is not None:
        obj = kind.custom.to_storage(obj)
    return orjson.dumps(obj)


class Resources:
    """All served resources over one store: their caches, allocators and the write path."""

    def __init__(self, registry: Registry, store: Store, *, service_cidr: str = "10.43.0.0/16",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self.service_ips = IPAllocator(service_cidr)
        self.node_ports = PortAllocator()
        self.claims = AllocationClaims(self)
        self._caches: dict[tuple[str, str, str], WatchCache] = {}
        # Admission webhooks (admissionregistration.k8s.io): mutating after the built-in
        # mutating admission, validating before ResourceQuota, as kube orders them.
        self.webhooks = WebhookAdmission(self)
        # CRD conversion webhooks, called with the same client.
        self.conversions = ConversionWebhooks(self.webhooks.client)
        # Admission after schema validation: LimitRanger (defaults, then bounds), PodSecurity,
        # ValidatingAdmissionPolicy, ValidatingAdmissionWebhook, then those that need the
        # writer (NodeRestriction, RBAC escalation, inserted by the authorizer), and
        # ResourceQuota last, as kube-apiserver.
        self.policies = PolicyAdmission(self, self.webhooks)
        self.validators: list[admission.Validator] = [limit_ranger, pod_security,
                                                      validate_runtime_class,
                                                      self.policies.validate,
                                                      self.webhooks.validate, resource_quota]
        # PodSecurity's defaults and exemptions (`--admission-control-config-file`).
        self.pod_security: PodSecurityConfig = NAVIO_DEFAULT
        self._cache_lock = asyncio.Lock()
        # Set by the API server's metrics: (operation, group, plural, seconds) per store call.
        self.observe_storage: Callable[[str, str, str, float], None] | None = None

    # -- caches -------------------------------------------------------------------------------
    async def start(self) -> None:
        for kind in self.registry.kinds():
            if not kind.virtual:
                await self._start_cache(kind)
        svc_kind = self.registry.resource("", "v1", "services")
        if svc_kind is not None:
            services = [o for _, o in self.cache(svc_kind).list()]
            self.service_ips.rebuild(ip for s in services
                                     for ip in (s.get("spec", {}).get("clusterIPs") or ()))
            self.node_ports.rebuild(p.get("nodePort", 0) for s in services
                                    for p in s.get("spec", {}).get("ports", ()))
            await self.claims.sync(services)

    async def _start_cache(self, kind: Kind) -> WatchCache:
        key = _cache_key(kind)
        cache = self._caches.get(key)
        if cache is None:
            cache = WatchCache(kind, self.store, conversions=self.conversions)
            self._caches[key] = cache
            await cache.start()
        elif cache.kind.custom is not kind.custom:
            cache.kind = kind      # a CRD changed: later reads decode with its new schema
        return cache

    async def add_kind(self, kind: Kind) -> None:
        """Serve a kind registered at run time (a CRD's version): register it and start its
        watch cache."""
        self.registry.add(kind)
        await self._start_cache(kind)

    async def remove_kind(self, kind: Kind) -> None:
        """Stop serving a kind registered at run time; its watchers are closed."""
        self.registry.remove(kind)
        cache = self._caches.pop(_cache_key(kind), None)
        if cache is not None:
            for w in list(cache._watchers):
                w.close()
            await cache.stop()

    async def stop(self) -> None:
        await self.webhooks.close()
        for cache in self._caches.values():
            await cache.stop()

    def cache(self, kind: Kind) -> WatchCache:
        return self._caches[_cache_key(kind)]

    def now(self) -> str:
        return now_rfc3339(self.clock)

    async def _timed(self, operation: str, kind: Kind, call: Awaitable[T]) -> T:
        observe = self.observe_storage
        if observe is None:
            return await call
        start = time.monotonic()
        try:
            return await call
        finally:
            observe(operation, kind.group, kind.plural, time.monotonic() - start)

    # -- reads --------------------------------------------------------------------------------
    async def get(self, kind: Kind, namespace: str, name: str, *,
                  resource_version: str = "") -> dict[str, Any]:
        cache = self.cache(kind)
        if resource_version != "0":
            await cache.consistent()
        obj = cache.get(kind.storage_key(namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return (await cache.resolve([obj]))[0]

    async def _current(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, read from the store itself (what a conditional write needs)."""
        _, kv = await self._timed("get", kind, self.store.get(kind.storage_key(namespace, name)))
        if not kv:
            return None
        return (await self.cache(kind).resolve([decode_object(kv.value, kv.mod_revision,
                                                              kind)]))[0]

    async def _encoded(self, kind: Kind, obj: dict[str, Any]) -> bytes:
        """`_encode`, after the conversion webhook (if the CRD has one) converted `obj` to the
        storage version."""
        custom = kind.custom
        if custom is not None and custom.needs_webhook(obj, custom.gv(custom.storage_version)):
            obj = (await self.conversions.convert(custom, [obj],
                                                  custom.gv(custom.storage_version)))[0]
        return _encode(kind, obj)

    # -- create -------------------------------------------------------------------------------
    async def create(self, kind: Kind, namespace: str, obj: dict[str, Any],
                     opts: WriteOptions) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        # Shallow copies suffice here: _create_once deep-copies before it mutates anything.
        meta = dict(meta)
        obj = {**obj, "metadata": meta, "apiVersion": kind.group_version, "kind": kind.kind}
        if kind.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        await admission.check_namespace(self, kind, namespace)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        for attempt in range(8):
            if generated:
                meta["name"] = meta["generateName"] + random_string(5)
            try:
                return await self._create_once(kind, obj, opts)
            except errors.AlreadyExists:
                if not generated or attempt == 7:
                    raise
        raise AssertionError("unreachable")

    async def _create_once(self, kind: Kind, obj: dict[str, Any], opts: WriteOptions,
                           track_fields: bool = True) -> dict[str, Any]:
        obj = _copy(obj)
        now = self.now()
        strategy.prepare_for_create(kind, obj, now)
        apply_defaults(kind.group, kind.kind, obj)
        # Fields are credited to the writer before admission mutates the object, as
        # kube-apiserver's field manager runs ahead of admission.
        if track_fields:
            obj = self._track_fields(kind, None, obj, opts, now)
        undo = await admission.admit_create(self, kind, obj)
        try:
            mutated = await self._mutating_webhooks(admission.Request(kind, "CREATE", obj,
                                                                      None, opts))
            if mutated is not obj:
                # A webhook changed the object: kube reinvokes the built-in mutating plugins
                # (for pods: the token volume reaches injected containers; the pod plugins are
                # idempotent, a Service's allocation is not) and prepares the object after
                # admission (status reset, a pod's QoS class); uid and time stay.
                if (kind.group, kind.kind) == ("", "Pod"):
                    await admission.admit_create(self, kind, mutated)
                kept = {k: v for k, v in obj["metadata"].items()
                        if k in ("uid", "creationTimestamp")}
                strategy.prepare_for_create(kind, mutated, now)
                mutated["metadata"].update(kept)
                obj = mutated
            self._validate(kind, obj, None)
            await admission.validate(self, admission.Request(kind, "CREATE", obj, None, opts))
            name = obj["metadata"].get("name", "")
            key = kind.storage_key(obj["metadata"].get("namespace"), name)
            if opts.dry_run:
                if self.cache(kind).get(key) is not None:
                    raise _already_exists(kind, name)
                undo()
                return obj
            try:
                rev = await self._timed("create", kind,
                                        self.store.create(key, await self._encoded(kind, obj)))
            except KeyExists:
                raise _already_exists(kind, name) from None
        except BaseException:
            undo()
            raise
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj

    async def _mutating_webhooks(self, request: admission.Request) -> dict[str, Any]:
        """MutatingAdmissionWebhook; the object to store (namespace and name kept)."""
        obj = await self.webhooks.admit(request)
        if obj is request.obj:
            return obj
        meta, was = obj.get("metadata") or {}, request.obj.get("metadata") or {}
        if meta.get("namespace") != was.get("namespace"):
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        return obj

    def _validate(self, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None,
                  subresource: str = "") -> None:
        if subresource == "ephemeralcontainers" and old is not None:
            causes = validation.validate_ephemeral_containers_update(obj, old)
        else:
            causes = validation.validate(kind.group, kind.kind, obj, old)
        if causes:
            raise errors.Invalid(kind.kind, obj.get("metadata", {}).get("name", ""), causes,
                                 group=kind.group)

    def _track_fields(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any],
                      opts: WriteOptions, now: str, subresource: str = "") -> dict[str, Any]:
        schema_name = kind.schema_name
        if schema_name is None:
            return new
        return managedfields.update_managed_fields(
            old, new, manager=opts.manager(), subresource=subresource, schema=schema_name,
            now=now, status_subresource=kind.subresource("status") is not None)

    # -- update -------------------------------------------------------------------------------
    async def update(self, kind: Kind, namespace: str, name: str,
                     mutate: Callable[[dict[str, Any] | None], dict[str, Any]],
                     opts: WriteOptions, *, subresource: str = "",
                     create_if_missing: bool = False,
                     track_fields: bool = True) -> tuple[dict[str, Any], bool]:
        """Read-modify-write: `mutate(current)` returns the desired object (it must not
        mutate its argument); retried on a concurrent write unless the desired object pins a
        resourceVersion. Returns (stored object, created)."""
        for _ in range(_MAX_UPDATE_RETRIES):
            current = await self._current(kind, namespace, name)
            desired = mutate(current)
            if current is None:
                if not create_if_missing:
                    raise not_found(kind, name)
                desired = copy.deepcopy(desired)
                desired.setdefault("metadata", {})["name"] = name
                desired["metadata"].pop("resourceVersion", None)
                await admission.check_namespace(self, kind, namespace)
                if kind.namespaced:
                    desired["metadata"]["namespace"] = namespace
                desired["apiVersion"], desired["kind"] = kind.group_version, kind.kind
                try:
                    return await self._create_once(kind, desired, opts, track_fields), True
                except errors.AlreadyExists:
                    continue
            pinned = str(desired.get("metadata", {}).get("resourceVersion") or "")
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise _conflict(kind, name)
            try:
                return await self._update_once(kind, current, desired, opts, subresource,
                                               track_fields), False
            except RevisionConflict:
                if pinned:
                    raise _conflict(kind, name) from None
                continue
            except KeyNotFound:
                if pinned:
                    raise not_found(kind, name) from None
                continue
        raise _conflict(kind, name)

    async def _update_once(self, kind: Kind, current: dict[str, Any], desired: dict[str, Any],
                           opts: WriteOptions, subresource: str,
                           track_fields: bool) -> dict[str, Any]:
        now = self.now()
        name = current["metadata"]["name"]
        new = _copy(desired)
        new["apiVersion"], new["kind"] = kind.group_version, kind.kind
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        if meta.get("name", name) != name:
            raise errors.BadRequest(f"the name of the object ({meta.get('name')}) does not "
                                    f"match the name on the URL ({name})")
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = current["metadata"].get("namespace")
        new = self._prepare_update(kind, new, current, subresource)
        if subresource != "binding":        # a binding changes no defaulted field
            apply_defaults(kind.group, kind.kind, new)
        if track_fields:
            new = self._track_fields(kind, current, new, opts, now, subresource)
        rv = current["metadata"]["resourceVersion"]
        new["metadata"]["resourceVersion"] = rv
        undo = await admission.admit_update(self, kind, new, current)
        try:
            mutated = await self._mutating_webhooks(admission.Request(
                kind, "UPDATE", new, current, opts, subresource))
            if mutated is not new:
                # As kube, which prepares after mutating admission: a webhook's spec change on
                # /status is undone, one on the main resource bumps generation.
                new = self._prepare_update(kind, mutated, current, subresource)
                new["metadata"]["resourceVersion"] = rv
            if subresource != "binding":
                self._validate(kind, new, current, subresource)
            await admission.validate(self, admission.Request(kind, "UPDATE", new, current, opts,
                                                             subresource))
            if new == current:
                undo()
                return current
            if opts.dry_run:
                undo()
                return new
            key = kind.storage_key(current["metadata"].get("namespace"), name)
            if self._finalized(kind, new):
                rev, _ = await self._timed("delete", kind, self.store.delete(
                    key, expect_revision=int(rv)))
                admission.after_delete(self, kind, new)
                new["metadata"]["resourceVersion"] = str(rev)
                return new
            rev = await self._timed("update", kind, self.store.update(
                key, await self._encoded(kind, new), expect_revision=int(rv)))
        except BaseException:
            undo()
            raise
        admission.after_update(self, kind, new, current)
        new["metadata"]["resourceVersion"] = str(rev)
        return new

    @staticmethod
    def _prepare_update(kind: Kind, new: dict[str, Any], current: dict[str, Any],
                        subresource: str) -> dict[str, Any]:
        """The strategy's PrepareForUpdate for the main resource or a subresource."""
        if subresource == "status":
            new = strategy.prepare_status_update(kind, new, current)
            if (kind.group, kind.kind) == ("certificates.k8s.io", "CertificateSigningRequest"):
                strategy.keep_csr_decisions(new, current)
        elif subresource == "approval":
            new = strategy.prepare_approval_update(kind, new, current)
        elif subresource == "ephemeralcontainers":
            new = strategy.prepare_ephemeral_containers_update(new, current)
        elif subresource != "binding":
            # A binding is built by the server from the stored pod: nothing to protect.
            strategy.prepare_for_update(kind, new, current)
            if subresource == "finalize":
                new["status"] = copy.deepcopy(current.get("status", {}))
        return new

    @staticmethod
    def _finalized(kind: Kind, obj: dict[str, Any]) -> bool:
        """A deleting object whose last finalizer is gone: the update completes the delete."""
        meta = obj.get("metadata", {})
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if kind.group == "" and kind.kind == "Namespace":
            return not obj.get("spec", {}).get("finalizers")
        if kind.group == "" and kind.kind == "Pod":
            # A terminating pod is removed by its kubelet (grace 0), not by an update.
            return int(meta.get("deletionGracePeriodSeconds") or 0) == 0
        return True

    # -- delete -------------------------------------------------------------------------------
    async def delete(self, kind: Kind, namespace: str, name: str, options: dict[str, Any],
                     opts: WriteOptions) -> tuple[dict[str, Any], bool]:
        """Delete, gracefully or through finalizers where they apply. Returns (object,
        gone): `gone` False means the object still exists with a deletionTimestamp."""
        admission.check_delete(kind, name)
        for _ in range(_MAX_UPDATE_RETRIES):
            current = await self._current(kind, namespace, name)
            if current is None:
                raise not_found(kind, name)
            _check_preconditions(kind, name, current, options.get("preconditions") or {})
            request = admission.Request(kind, "DELETE", current, current, opts,
                                        options=options)
            await self._mutating_webhooks(request)
            await admission.validate(self, request)
            pending = self._deletion_update(kind, current, options)
            key = kind.storage_key(namespace, name)
            rv = int(current["metadata"]["resourceVersion"])
            try:
                if pending is not None:
                    if pending == current or opts.dry_run:
                        return pending, False
                    rev = await self._timed("update", kind, self.store.update(
                        key, await self._encoded(kind, pending), expect_revision=rv))
                    pending["metadata"]["resourceVersion"] = str(rev)
                    return pending, False
                if opts.dry_run:
                    return current, True
                rev, _ = await self._timed("delete", kind, self.store.delete(
                    key, expect_revision=rv))
            except (RevisionConflict, KeyNotFound):
                continue
            admission.after_delete(self, kind, current)
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(rev)
            return gone, True
        raise _conflict(kind, name)

    def _deletion_update(self, kind: Kind, current: dict[str, Any],
                         options: dict[str, Any]) -> dict[str, Any] | None:
        """The object as it must be stored instead of deleted (finalizers to run, or a pod's
        graceful termination), or None to delete it now."""
        meta = current.get("metadata", {})
        new = copy.deepcopy(current)
        nmeta = new["metadata"]
        finalizers = list(nmeta.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if (kind.group, kind.kind) == _CRD and _CRD_CLEANUP not in finalizers:
            # The CRD's objects are deleted first (apiextensions' REST Delete adds this).
            finalizers.append(_CRD_CLEANUP)
        if policy in ("Foreground", "Background"):
            finalizers = [f for f in finalizers if f != "orphan" or policy != "Background"]
        is_ns = kind.group == "" and kind.kind == "Namespace"
        ns_finalizers = is_ns and bool(current.get("spec", {}).get("finalizers"))
        grace = self._grace_period(kind, current, options)
        if not finalizers and not ns_finalizers and not grace:
            return None
        if finalizers:
            nmeta["finalizers"] = finalizers
        if not meta.get("deletionTimestamp"):
            when = self.now()
            if grace:
                when = now_rfc3339(lambda: (self.clock() if self.clock else
                                            dt.datetime.now(dt.timezone.utc))
                                   + dt.timedelta(seconds=grace))
            nmeta["deletionTimestamp"] = when
            nmeta["deletionGracePeriodSeconds"] = grace
        elif grace is not None and grace < int(meta.get("deletionGracePeriodSeconds") or 0):
            nmeta["deletionGracePeriodSeconds"] = grace
        if is_ns:
            new.setdefault("status", {})["phase"] = "Terminating"
        return new

    @staticmethod
    def _grace_period(kind: Kind, obj: dict[str, Any], options: dict[str, Any]) -> int:
        """Seconds of graceful termination: only pods bound to a node and still running get
        any; everything else is deleted at once (kube's pod strategy CheckGracefulDelete)."""
        if not (kind.group == "" and kind.kind == "Pod"):
            return 0
        spec, status = obj.get("spec", {}), obj.get("status", {})
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        grace = int(grace)
        meta = obj.get("metadata", {})
        if meta.get("deletionTimestamp") and grace >= int(meta.get("deletionGracePeriodSeconds")
                                                         or 0):
            return int(meta.get("deletionGracePeriodSeconds") or 0)
        return max(grace, 0)


def _check_preconditions(kind: Kind, name: str, obj: dict[str, Any],
                         pre: dict[str, Any]) -> None:
    meta = obj.get("metadata", {})
    uid, rv = pre.get("uid"), pre.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        raise errors.Conflict(
            f"Operation cannot be fulfilled on {kind.resource_name} \"{name}\": Precondition "
            f"failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
            details={"name": name, "group": kind.group, "kind": kind.plural})
    if rv and rv != meta.get("resourceVersion"):
        raise errors.Conflict(
            f"Operation cannot be fulfilled on {kind.resource_name} \"{name}\": Precondition "
            f"failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: "
            f"{meta.get('resourceVersion')}",
            details={"name": name, "group": kind.group, "kind": kind.plural})
