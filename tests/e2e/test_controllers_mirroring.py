"""EndpointSlice mirroring of hand-written Endpoints against a real `navio server
--no-agent`, driven with the real kubectl (issue 6). Set up as test_controllers_nodes_jobs,
whose helpers it uses; the controller runs in the test's event loop; every wait is bounded."""

from __future__ import annotations

from cluster import Kubectl, NavioServer
from navio.client import ENDPOINTS, ENDPOINTSLICES, Client
from navio.controllers.endpointslicemirroring import plan_mirrored_slices
from test_controllers_nodes_jobs import (Obj, apply, controllers, kc, server_fixtures,
                                         wait_until)

MANAGED = "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"
server, kubectl, ns = server_fixtures("m")


def endpoints(ips: list[str], not_ready: list[str] = (), port: int = 5432) -> Obj:  # type: ignore[assignment]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "db", "labels": {"team": "data"}},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                         "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                         "ports": [{"name": "sql", "port": port, "protocol": "TCP"}]}]}


async def mirrored(client: Client, ns: str) -> list[Obj]:
    return (await client.list(ENDPOINTSLICES, ns, label_selector=MANAGED))["items"]  # type: ignore[no-any-return]


async def test_endpoints_of_a_selectorless_service_are_mirrored_into_a_slice(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: a Service without selector plus hand-written Endpoints yields one slice
    labelled managed-by endpointslicemirroring-controller.k8s.io with ready and not-ready
    endpoints; it follows the Endpoints, needs no rewrite once stored, and goes when the
    Service gets a selector."""
    async with controllers(server, "endpointslicemirroring") as client:
        await apply(kubectl, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "db"}, "spec": {"ports": [{"name": "sql", "port": 5432}]}})
        await apply(kubectl, ns, endpoints(["10.9.0.1", "10.9.0.2"], ["10.9.0.3"]))

        async def one_slice() -> Obj | None:
            got = await mirrored(client, ns)
            return got[0] if len(got) == 1 and len(got[0].get("endpoints") or ()) == 3 \
                else None
        s = await wait_until(one_slice, timeout=15, what="the mirrored slice")
        assert s["metadata"]["name"].startswith("db-")
        assert s["metadata"]["labels"]["kubernetes.io/service-name"] == "db"
        assert s["metadata"]["labels"]["team"] == "data"
        assert s["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
        assert s["addressType"] == "IPv4"
        assert s["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]
        assert sorted((e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"]) \
            == [("10.9.0.1", True), ("10.9.0.2", True), ("10.9.0.3", False)]
        out = await kc(kubectl, "get", "endpointslices", "-n", ns, "-l", MANAGED)
        assert "10.9.0.1,10.9.0.2,10.9.0.3" in out and "5432" in out

        await apply(kubectl, ns, endpoints(["10.9.0.1"], port=6432))

        async def followed() -> Obj | None:
            got = await mirrored(client, ns)
            return got[0] if len(got) == 1 and [e["addresses"] for e in got[0]["endpoints"]] \
                == [["10.9.0.1"]] and got[0]["ports"][0]["port"] == 6432 else None
        s = await wait_until(followed, timeout=15, what="the slice to follow the Endpoints")
        # What the API server stored is what the controller wants: no rewrite loop.
        stored = await client.get(ENDPOINTS, "db", ns)
        assert plan_mirrored_slices(stored, [s], 1000) == ([], [], [])

        await kc(kubectl, "patch", "service", "db", "-n", ns, "--type=merge", "-p",
                 '{"spec":{"selector":{"app":"db"}}}')

        async def gone() -> bool:
            return not await mirrored(client, ns)
        await wait_until(gone, timeout=15, what="mirrored slices deleted once selected")
