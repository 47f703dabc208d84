"""The lease endpoint reconciler: default/kubernetes lists the API servers whose leases live."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from navio.api.registry import default_registry
from navio.apiserver.masterleases import LEASE_PREFIX, MasterLeases
from navio.apiserver.resources import Resources, WriteOptions
from navio.storage.sqlite import SQLiteStore


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    store = await SQLiteStore.open(tmp_path / "db")
    res = Resources(default_registry(), store)
    await res.start()
    ns = res.registry.resource("", "v1", "namespaces")
    await res.create(ns, "", {"metadata": {"name": "default"}}, WriteOptions())
    try:
        yield res
    finally:
        await res.stop()
        await store.close()


async def _endpoints(res: Resources) -> list[dict[str, Any]]:
    kind = res.registry.resource("", "v1", "endpoints")
    ep = await res.get(kind, "default", "kubernetes")
    assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    return ep.get("subsets") or []


async def test_live_leases_are_listed_and_expired_ones_dropped(resources: Resources) -> None:
    now = [1000.0]
    a = MasterLeases(resources, "192.0.2.1", 6443, ttl=15, clock=lambda: now[0])
    b = MasterLeases(resources, "192.0.2.2", 6443, ttl=15, clock=lambda: now[0])
    c = MasterLeases(resources, "192.0.2.3", 7443, ttl=15, clock=lambda: now[0])
    for m in (a, b, c):
        await m.reconcile()
    await a.reconcile()
    assert await _endpoints(resources) == [
        {"addresses": [{"ip": "192.0.2.1"}, {"ip": "192.0.2.2"}],
         "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
        {"addresses": [{"ip": "192.0.2.3"}],
         "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]}]
    # b and c stop renewing (killed); within the TTL they stay, past it they go.
    now[0] += 10
    await a.reconcile()
    assert len(await _endpoints(resources)) == 2
    now[0] += 10
    await a.reconcile()
    assert await _endpoints(resources) == [
        {"addresses": [{"ip": "192.0.2.1"}],
         "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    _, leases, _ = await resources.store.list(LEASE_PREFIX)
    assert [kv.key for kv in leases] == [f"{LEASE_PREFIX}192.0.2.1:6443"]


async def test_a_stopping_server_withdraws_its_address(resources: Resources) -> None:
    a = MasterLeases(resources, "192.0.2.1", 6443).start()
    b = MasterLeases(resources, "192.0.2.2", 6443)
    await b.reconcile()
    await a.reconcile()
    assert [x["ip"] for x in (await _endpoints(resources))[0]["addresses"]] == \
        ["192.0.2.1", "192.0.2.2"]
    await a.stop()
    assert [x["ip"] for x in (await _endpoints(resources))[0]["addresses"]] == ["192.0.2.2"]
