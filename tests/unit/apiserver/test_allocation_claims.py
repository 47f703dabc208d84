"""Service allocations claimed in the store: released on delete, repaired after a crash."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest

from navio.api import errors
from navio.api.registry import default_registry
from navio.apiserver.allocationclaims import IP_PREFIX, PORT_PREFIX, ip_key, port_key
from navio.apiserver.resources import Resources, WriteOptions
from navio.storage.sqlite import SQLiteStore

OPTS = WriteOptions(field_manager="test")


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    store = await SQLiteStore.open(tmp_path / "db")
    res = Resources(default_registry(), store)
    await res.start()
    await res.create(_kind(res, "namespaces"), "", {"metadata": {"name": "default"}}, OPTS)
    try:
        yield res
    finally:
        await res.stop()
        await store.close()


def _kind(res: Resources, plural: str) -> Any:
    kind = res.registry.resource("", "v1", plural)
    assert kind is not None
    return kind


async def _claims(res: Resources) -> dict[str, str]:
    out = {}
    for prefix in (IP_PREFIX, PORT_PREFIX):
        _, items, _ = await res.store.list(prefix)
        out.update({kv.key: orjson.loads(kv.value)["uid"] for kv in items})
    return out


async def _create(res: Resources, name: str, **spec: Any) -> dict[str, Any]:
    body = {"metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": 80}], **spec}}
    return await res.create(_kind(res, "services"), "default", body, OPTS)


async def _settle(res: Resources) -> None:
    await asyncio.gather(*list(res.claims._releasing))


async def test_each_allocation_is_a_claim_owned_by_its_service(resources: Resources) -> None:
    made = await asyncio.gather(*(_create(resources, f"s{i}", type="NodePort")
                                  for i in range(20)))
    claims = await _claims(resources)
    for svc in made:
        uid = svc["metadata"]["uid"]
        assert claims[ip_key(svc["spec"]["clusterIP"])] == uid
        assert claims[port_key(svc["spec"]["ports"][0]["nodePort"])] == uid
    # Deleting frees both; a type change to ClusterIP frees the node port only.
    svc_kind = _kind(resources, "services")
    await resources.delete(svc_kind, "default", "s0", {}, OPTS)
    await _settle(resources)
    claims = await _claims(resources)
    assert ip_key(made[0]["spec"]["clusterIP"]) not in claims
    assert port_key(made[0]["spec"]["ports"][0]["nodePort"]) not in claims

    def to_cluster_ip(obj: dict[str, Any] | None) -> dict[str, Any]:
        assert obj is not None
        obj = orjson.loads(orjson.dumps(obj))
        obj["spec"]["type"] = "ClusterIP"
        obj["spec"].pop("externalTrafficPolicy", None)
        for p in obj["spec"]["ports"]:
            p.pop("nodePort", None)
        return obj
    await resources.update(svc_kind, "default", "s1", to_cluster_ip, OPTS)
    await _settle(resources)
    claims = await _claims(resources)
    assert ip_key(made[1]["spec"]["clusterIP"]) in claims
    assert port_key(made[1]["spec"]["ports"][0]["nodePort"]) not in claims


async def test_a_value_claimed_elsewhere_is_skipped(resources: Resources) -> None:
    # Another API server took the address this one would pick next.
    nxt = str(ipaddress.ip_address(resources.service_ips._next))
    await resources.store.create(ip_key(nxt), orjson.dumps({"uid": "elsewhere"}))
    svc = await _create(resources, "next")
    assert svc["spec"]["clusterIP"] != nxt
    with pytest.raises(errors.Invalid, match="already allocated"):
        await _create(resources, "wants-it", clusterIP=nxt)


async def test_repair_frees_leaked_claims_after_two_passes_and_claims_unclaimed_values(
        resources: Resources) -> None:
    svc = await _create(resources, "held", type="NodePort")
    ip = svc["spec"]["clusterIP"]
    # A server died after claiming 10.43.9.9 and before writing its Service; and a stored
    # Service's claim went missing.
    await resources.store.create(ip_key("10.43.9.9"), orjson.dumps({"uid": "dead"}))
    _, kv = await resources.store.get(ip_key(ip))
    assert kv is not None
    await resources.store.delete(ip_key(ip), expect_revision=kv.mod_revision)
    suspects = await resources.claims.repair({})
    claims = await _claims(resources)
    assert ip_key("10.43.9.9") in claims            # one pass only suspects it
    assert claims[ip_key(ip)] == svc["metadata"]["uid"]
    assert set(suspects) == {ip_key("10.43.9.9")}
    await resources.claims.repair(suspects)
    claims = await _claims(resources)
    assert ip_key("10.43.9.9") not in claims
    assert claims[ip_key(ip)] == svc["metadata"]["uid"]
    assert port_key(svc["spec"]["ports"][0]["nodePort"]) in claims
