"""Service cluster IPs and node ports claimed in the store, so API servers never share one.

Why: with several API servers on one store (an HA control plane on etcd) each server's
in-memory allocator only learns the others' allocations through the watch, so two servers
allocating at the same moment could pick the same address. kube-apiserver closes that gap with
a compare-and-swap on a stored range bitmap (`/registry/ranges/serviceips`); navio keeps one
store key per allocated value instead — `/registry/ranges/serviceips/<ip>` and
`/registry/ranges/servicenodeports/<port>` — created with the store's create-if-absent guard
and deleted on release. The store decides who holds a value; the in-memory allocators only
suggest free candidates (a conflict marks the value taken there and tries another). The same
code runs on SQLite and etcd, the keys survive restarts and `navio datastore migrate` (they are
under `/registry/`), and a value released through one server is free for every other at once.

No API resource lists these prefixes (`ranges` is no API group). A key's value names its owner
(the Service's uid), so a release deletes only a key still held by that Service. A server that
dies between claiming a value and writing its Service leaves a claim nobody holds; `repair`
(run periodically, like kube-apiserver's allocation repair controllers) frees it, and claims a
value a stored Service holds without a claim.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any, Iterable

import orjson

from navio.api import errors
from navio.storage.protocol import KeyExists, KeyNotFound, RevisionConflict, StorageError

__all__ = ["IP_PREFIX", "PORT_PREFIX", "ip_key", "port_key", "AllocationClaims", "held_by",
           "REPAIR_INTERVAL"]

log = logging.getLogger(__name__)

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"

# How often claims and stored Services are compared (kube's repair loops run every 3 minutes). A
# claim no Service holds is deleted when two passes in a row find it unchanged, so a claim
# whose Service is still on its way to the store (admission webhooks in between) is kept.
REPAIR_INTERVAL = 90.0

# Dynamic picks tried before giving up: each conflict is another server's fresh allocation
# this one has not seen yet, so a handful is plenty unless the range is nearly full.
_ATTEMPTS = 64


def ip_key(ip: str) -> str:
    return IP_PREFIX + str(ipaddress.ip_address(ip))


def port_key(port: int) -> str:
    return PORT_PREFIX + str(int(port))


def held_by(service: dict[str, Any]) -> set[str]:
    """The claim keys a stored Service holds (its cluster IPs and node ports)."""
    spec = service.get("spec") or {}
    keys: set[str] = set()
    for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
        if ip and ip != "None":
            try:
                keys.add(ip_key(ip))
            except ValueError:
                pass
    for p in spec.get("ports") or ():
        if isinstance(p, dict) and p.get("nodePort"):
            keys.add(port_key(p["nodePort"]))
    return keys


def _owner(service: dict[str, Any]) -> bytes:
    meta = service.get("metadata") or {}
    return orjson.dumps({"uid": meta.get("uid", ""), "namespace": meta.get("namespace", ""),
                         "name": meta.get("name", "")})


class AllocationClaims:
    """The store side of one API server's Service allocators."""

    def __init__(self, resources: Any) -> None:
        self._resources = resources
        self._releasing: set["asyncio.Task[None]"] = set()

    @property
    def _store(self) -> Any:
        return self._resources.store

    async def _claim(self, key: str, service: dict[str, Any]) -> bool:
        """Create the claim key; False when another Service holds it."""
        for attempt in (0, 1):
            try:
                await self._store.create(key, _owner(service))
                return True
            except KeyExists:
                if attempt or not self._releasing:
                    return False
                # A release of this very value may still be on its way to the store.
                await asyncio.gather(*list(self._releasing), return_exceptions=True)
        return False

    async def allocate_ip(self, service: dict[str, Any]) -> str:
        ips = self._resources.service_ips
        for _ in range(_ATTEMPTS):
            ip = ips.allocate()        # marked taken in memory, whoever ends up holding it
            try:
                claimed = await self._claim(ip_key(ip), service)
            except BaseException:
                ips.release(ip)        # the store failed: nobody holds it
                raise
            if claimed:
                return ip
            ips.scatter()              # another server is allocating from the same place
        raise errors.InternalError("failed to allocate a serviceIP: range is full")

    async def reserve_ip(self, service: dict[str, Any], ip: str) -> bool:
        """Claim a requested address. True when claimed; False when it is taken. ValueError
        when it is outside the range."""
        ips = self._resources.service_ips
        fresh = True
        try:
            ips.reserve(ip)
        except ValueError as exc:
            if "already allocated" not in str(exc):
                raise
            fresh = False   # taken in memory: that may be stale (released elsewhere)
        try:
            return await self._claim(ip_key(ip), service)
        except BaseException:
            if fresh:
                ips.release(ip)
            raise

    async def allocate_port(self, service: dict[str, Any]) -> int:
        ports = self._resources.node_ports
        for _ in range(_ATTEMPTS):
            port = ports.allocate()
            try:
                claimed = await self._claim(port_key(port), service)
            except BaseException:
                ports.release(port)
                raise
            if claimed:
                return port
        raise errors.InternalError("failed to allocate a nodePort: range is full")

    async def reserve_port(self, service: dict[str, Any], port: int) -> bool:
        ports = self._resources.node_ports
        fresh = True
        try:
            ports.reserve(port)
        except ValueError as exc:
            if "already allocated" not in str(exc):
                raise
            fresh = False
        try:
            return await self._claim(port_key(port), service)
        except BaseException:
            if fresh:
                ports.release(port)
            raise

    def release(self, service: dict[str, Any], keys: Iterable[str]) -> None:
        """Free `keys` held by `service`: in memory now, in the store in the background (a
        failure there leaves the value taken until `sync` at the next start)."""
        keys = sorted(keys)
        for key in keys:
            if key.startswith(IP_PREFIX):
                self._resources.service_ips.release(key[len(IP_PREFIX):])
            else:
                self._resources.node_ports.release(int(key[len(PORT_PREFIX):]))
        if not keys:
            return
        owner = orjson.loads(_owner(service))["uid"]
        task = asyncio.get_running_loop().create_task(self._delete(keys, owner))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _delete(self, keys: list[str], uid: str) -> None:
        for key in keys:
            try:
                _, kv = await self._store.get(key)
                if kv is None or orjson.loads(kv.value).get("uid") != uid:
                    continue
                await self._store.delete(key, expect_revision=kv.mod_revision)
            except (KeyNotFound, RevisionConflict):
                continue
            except (StorageError, ValueError) as exc:
                log.warning("releasing a service allocation failed",
                            extra={"key": key, "error": str(exc)})

    async def sync(self, services: list[dict[str, Any]]) -> None:
        """At start: claim what stored Services hold but the store has no key for (Services
        written before claims existed). Claims no Service holds (a server died between
        claiming and writing) are left alone: another server may be about to write the
        Service that holds one."""
        present: set[str] = set()
        for prefix in (IP_PREFIX, PORT_PREFIX):
            _, items, _ = await self._store.list(prefix)
            present.update(kv.key for kv in items)
        for svc in services:
            for key in held_by(svc) - present:
                try:
                    await self._store.create(key, _owner(svc))
                except KeyExists:
                    pass

    async def _claims(self) -> list[Any]:
        out: list[Any] = []
        for prefix in (IP_PREFIX, PORT_PREFIX):
            _, items, _ = await self._store.list(prefix)
            out.extend(items)
        return out

    async def repair(self, suspects: dict[str, int]) -> dict[str, int]:
        """One pass: claim values stored Services hold without a claim; delete claims no
        Service holds that `suspects` (the previous pass's result: key → mod_revision) already
        named at the same revision. Returns this pass's suspects."""
        kind = self._resources.registry.resource("", "v1", "services")
        assert kind is not None
        cache = self._resources.cache(kind)
        await cache.consistent()
        # Claims are listed after the Services: a claim made after the Services were read
        # has a newer revision than any suspect and is never deleted on this pass.
        services = [svc for _, svc in cache.list()]
        held: dict[str, dict[str, Any]] = {}
        for svc in services:
            for key in held_by(svc):
                held[key] = svc
        claims = await self._claims()
        present = {kv.key for kv in claims}
        for key in held.keys() - present:
            try:
                await self._store.create(key, _owner(held[key]))
            except KeyExists:
                pass
        found: dict[str, int] = {}
        for kv in claims:
            if kv.key in held:
                continue
            if suspects.get(kv.key) != kv.mod_revision:
                found[kv.key] = kv.mod_revision
                continue
            try:
                await self._store.delete(kv.key, expect_revision=kv.mod_revision)
                log.info("leaked service allocation freed", extra={"key": kv.key})
                if kv.key.startswith(IP_PREFIX):
                    self._resources.service_ips.release(kv.key[len(IP_PREFIX):])
                else:
                    self._resources.node_ports.release(int(kv.key[len(PORT_PREFIX):]))
            except (KeyNotFound, RevisionConflict):
                pass
        return found

    def start_repair(self, interval: float = REPAIR_INTERVAL) -> "asyncio.Task[None]":
        """Run `repair` every `interval` seconds; cancel the task to stop."""
        async def run() -> None:
            suspects: dict[str, int] = {}
            while True:
                await asyncio.sleep(interval)
                try:
                    suspects = await self.repair(suspects)
                except (StorageError, errors.ApiError) as exc:
                    log.warning("service allocation repair failed", extra={"error": str(exc)})
        return asyncio.get_running_loop().create_task(run(), name="allocation repair")
