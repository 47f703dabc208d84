"""The `kubernetes` Service's Endpoints when several API servers share one store.

kube-apiserver's lease endpoint reconciler (`--endpoint-reconciler-type=lease`, the default):
each API server keeps a lease under `/registry/masterleases/` holding its advertised address
and port, renewed well within a TTL, and every server rewrites `default/kubernetes` Endpoints
to list the addresses whose leases are live. A server that stops removes its own lease; one
that dies stops renewing, and its address leaves the Endpoints within the TTL (plus one
reconcile period), through whichever server reconciles next.

etcd leases would expire the keys by themselves; navio's stores share no TTL mechanism, so a
lease's value carries its renew time and TTL, and an expired lease is deleted (guarded by its
revision) by the first server that sees it expired. That reads the servers' wall clocks: they
must agree to well within the TTL, as for any Kubernetes control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Callable

import orjson

from navio.api import errors
from navio.apiserver.resources import Resources, WriteOptions
from navio.storage.protocol import KeyExists, KeyNotFound, RevisionConflict, StorageError

__all__ = ["LEASE_PREFIX", "LEASE_TTL", "MasterLeases", "endpoints_for"]

log = logging.getLogger(__name__)

LEASE_PREFIX = "/registry/masterleases/"
LEASE_TTL = 15.0          # kube's DefaultEndpointReconcilerTTL
_OPTS = WriteOptions(field_manager="kube-apiserver")
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"


def endpoints_for(members: list[tuple[str, int]]) -> dict[str, Any]:
    """The `kubernetes` Endpoints listing these (address, port) pairs: one subset per port."""
    by_port: dict[int, list[str]] = {}
    for ip, port in sorted(set(members)):
        by_port.setdefault(port, []).append(ip)
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {SKIP_MIRROR: "true"}},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
                        for port, ips in sorted(by_port.items())]}


class MasterLeases:
    """This server's lease and the reconcile loop that keeps the Endpoints current."""

    def __init__(self, resources: Resources, ip: str, port: int, *, ttl: float = LEASE_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self._resources = resources
        self.ip, self.port, self.ttl = ip, port, ttl
        self._clock = clock
        self._key = f"{LEASE_PREFIX}{ip}:{port}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "MasterLeases":
        self._task = asyncio.get_running_loop().create_task(self._run(), name="master leases")
        return self

    async def stop(self) -> None:
        """Stop renewing, remove this server's lease and its address from the Endpoints."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        with contextlib.suppress(StorageError, errors.ApiError, asyncio.TimeoutError):
            await asyncio.wait_for(self._withdraw(), 10)   # the store may be gone already

    async def _withdraw(self) -> None:
        _, kv = await self._resources.store.get(self._key)
        if kv is not None:
            await self._resources.store.delete(self._key, expect_revision=kv.mod_revision)
        await self.reconcile(renew=False)

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (StorageError, errors.ApiError) as exc:
                log.warning("kubernetes endpoints not reconciled", extra={"error": str(exc)})
            await asyncio.sleep(self.ttl / 3)

    async def _renew(self) -> None:
        store = self._resources.store
        value = orjson.dumps({"ip": self.ip, "port": self.port, "renewTime": self._clock(),
                              "ttlSeconds": self.ttl})
        _, kv = await store.get(self._key)
        try:
            if kv is None:
                await store.create(self._key, value)
            else:
                await store.update(self._key, value, expect_revision=kv.mod_revision)
        except (KeyExists, KeyNotFound, RevisionConflict):
            pass                     # raced with an expiry: the next round writes it again

    async def live(self) -> list[tuple[str, int]]:
        """The (address, port) of every live lease; expired ones are deleted."""
        store = self._resources.store
        _, items, _ = await store.list(LEASE_PREFIX)
        now, out = self._clock(), []
        for kv in items:
            try:
                lease = orjson.loads(kv.value)
                expired = now > float(lease["renewTime"]) + float(lease["ttlSeconds"])
                member = (str(lease["ip"]), int(lease["port"]))
            except (ValueError, KeyError, TypeError):
                expired, member = True, ("", 0)
            if not expired:
                out.append(member)
                continue
            with contextlib.suppress(KeyNotFound, RevisionConflict):
                await store.delete(kv.key, expect_revision=kv.mod_revision)
                log.info("API server lease expired", extra={"lease": kv.key})
        return out

    async def reconcile(self, *, renew: bool = True) -> None:
        if renew:
            await self._renew()
        want = endpoints_for(await self.live())
        kind = self._resources.registry.resource("", "v1", "endpoints")
        assert kind is not None
        try:
            current = await self._resources.get(kind, "default", "kubernetes")
        except errors.NotFound:
            current = None
        if current is not None and current.get("subsets", []) == want["subsets"] and \
                (current["metadata"].get("labels") or {}).get(SKIP_MIRROR) == "true":
            return

        def mutate(obj: dict[str, Any] | None) -> dict[str, Any]:
            if obj is None:
                return want
            obj = dict(obj)
            obj["metadata"] = {**obj["metadata"], "labels": {
                **(obj["metadata"].get("labels") or {}), SKIP_MIRROR: "true"}}
            obj["subsets"] = want["subsets"]
            return obj
        try:
            await self._resources.update(kind, "default", "kubernetes", mutate, _OPTS,
                                         create_if_missing=True)
        except (errors.Conflict, errors.AlreadyExists):
            pass                     # another server wrote it: the next round compares again
