"""navio.sim without a server: node shapes, addresses, fractions, memory, the control app."""

from __future__ import annotations

import gc
import ipaddress
import tracemalloc

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from navio.sim import (NodeShape, PodSimulator, SimNode, SimPod, Simulator, control_app,
                       parse_fraction, running_status)


def test_node_names_cidrs_and_ips_are_per_index() -> None:
    shape = NodeShape(cluster_cidr="10.128.0.0/10", node_cidr_mask_size=24)
    assert shape.max_nodes == 1 << 14
    assert shape.name(7) == "sim-node-7"
    assert shape.cidr(0) == "10.128.0.0/24"
    assert shape.cidr(257) == "10.129.1.0/24"
    assert ipaddress.ip_address(shape.node_ip(3)).is_loopback
    body = shape.node_body(SimNode(3))
    assert body["spec"]["podCIDRs"] == ["10.128.3.0/24"]
    assert body["metadata"]["labels"]["type"] == "navio-sim"
    assert body["metadata"]["annotations"]["navio.io/node"] == "sim"
    assert "taints" not in body["spec"]
    types = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert types == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False",
                     "PIDPressure": "False"}


def test_node_cidr_mask_must_fit() -> None:
    with pytest.raises(ValueError):
        NodeShape(cluster_cidr="10.0.0.0/24", node_cidr_mask_size=16)


def test_pod_ips_come_from_the_node_cidr_lowest_free_first() -> None:
    shape = NodeShape(cluster_cidr="10.200.0.0/16", node_cidr_mask_size=28)
    node = SimNode(2)                                    # 10.200.0.32/28
    ips = [node.take_ip(shape) for _ in range(13)]
    assert ips == [f"10.200.0.{32 + i}" for i in range(2, 15)]
    assert node.take_ip(shape) is None                   # .47 is broadcast: full
    node.release_ip(shape, "10.200.0.36")
    assert node.take_ip(shape) == "10.200.0.36"
    assert not node.mark_ip(shape, "10.200.0.1")         # another node's range
    other = SimNode(3)
    assert other.mark_ip(shape, "10.200.0.50")
    assert other.take_ip(shape) == "10.200.0.51"        # 10.200.0.48/28: .50 is taken


def test_parse_fraction() -> None:
    assert parse_fraction("5%", 100) == 5
    assert parse_fraction("0.1", 50) == 5
    assert parse_fraction("1%", 50) == 1                 # at least one node
    assert parse_fraction("3", 50) == 3
    assert parse_fraction("0%", 50) == 0
    for bad in ("x", "150%", "-1%"):
        with pytest.raises(ValueError):
            parse_fraction(bad, 10)


def test_running_status_is_the_kubelets() -> None:
    shape = NodeShape()
    pod = SimPod("ns", "p", "uid-1", SimNode(1))
    pod.ip = "10.128.1.2"
    pod.containers = (("c", "img"),)
    pod.inits = (("i", "init-img"),)
    pod.seen_at = 1_700_000_000.0
    st = running_status(pod, shape, 1_700_000_001.0)
    assert st["phase"] == "Running" and st["podIP"] == "10.128.1.2"
    assert st["hostIP"] == shape.node_ip(1)
    assert {c["type"] for c in st["conditions"]} == {
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}
    assert st["containerStatuses"][0]["state"]["running"]["startedAt"] == "2023-11-14T22:13:21Z"
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_memory_per_node_fits_5000_nodes_in_one_process() -> None:
    """Bytes per simulated node (its record and its share of the simulator): small enough
    that 5,000 nodes cost a few MB."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sim = Simulator(client=None, count=5000)             # type: ignore[arg-type]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_node = (after - before) / 5000
    print(f"bytes per simulated node: {per_node:.0f}")
    assert per_node < 400, per_node
    assert len(sim.nodes) == 5000


def test_node_of_accepts_only_own_names() -> None:
    sim = Simulator(client=None, count=10)               # type: ignore[arg-type]
    assert sim.node_of("sim-node-3") is sim.nodes[3]
    for name in ("sim-node-10", "sim-node-03", "other-3", "sim-node-", "sim-node-x"):
        assert sim.node_of(name) is None


def test_too_many_nodes_for_the_cidr_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        Simulator(client=None, count=300,                # type: ignore[arg-type]
                  shape=NodeShape(cluster_cidr="10.0.0.0/16", node_cidr_mask_size=24))


async def test_control_endpoint_fails_and_recovers_nodes() -> None:
    sim = Simulator(client=None, count=20, seed=1)       # type: ignore[arg-type]
    async with TestClient(TestServer(control_app(sim))) as http:
        resp = await http.post("/fail", params={"fraction": "10%"})
        assert resp.status == 200
        failed = (await resp.json())["failed"]
        assert len(failed) == 2 and all(sim.node_of(n).failed for n in failed)  # type: ignore
        resp = await http.post("/fail", params={"nodes": "sim-node-0"})
        assert (await resp.json())["failed"] == ["sim-node-0"]
        resp = await http.post("/fail", params={"nodes": "nope"})
        assert resp.status == 400
        resp = await http.post("/fail")
        assert resp.status == 400
        state = await (await http.get("/state")).json()
        assert state["nodes"] == 20 and len(state["failed"]) == len(set(failed) | {"sim-node-0"})
        resp = await http.post("/recover")
        assert sorted((await resp.json())["recovered"]) == sorted(set(failed) | {"sim-node-0"})
        assert not any(n.failed for n in sim.nodes)
        assert all(n.status_at == 0.0 for n in sim.nodes if n.ready_since)


def test_pods_of_other_nodes_and_deletions() -> None:
    sim = Simulator(client=None, count=3)                # type: ignore[arg-type]
    pods: PodSimulator = sim.pods
    pods.startup_delay = 0.0
    queued: list[tuple[int, tuple[str, str]]] = []
    pods._queue.put_nowait = queued.append               # type: ignore[method-assign]
    other = {"metadata": {"namespace": "a", "name": "x", "uid": "1"},
             "spec": {"nodeName": "real-node"}}
    pods.observe(other)
    assert not pods.pods and not queued
    mine = {"metadata": {"namespace": "a", "name": "y", "uid": "2"},
            "spec": {"nodeName": "sim-node-1", "containers": [{"name": "c", "image": "i"}]}}
    pods.observe(mine)
    assert len(queued) == 1 and pods.pods[("a", "y")].node is sim.nodes[1]
    adopted = {"metadata": {"namespace": "a", "name": "z", "uid": "3"},
               "spec": {"nodeName": "sim-node-2"},
               "status": {"phase": "Running", "podIP": "10.128.2.7"}}
    pods.observe(adopted)
    assert len(queued) == 1 and sim.nodes[2].pods == 1
    assert sim.nodes[2].take_ip(sim.shape) == "10.128.2.2"
    deleting = {**mine, "metadata": {**mine["metadata"],
                                     "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    pods.observe(deleting)
    pods.observe(deleting)
    assert len(queued) == 2                              # one delete, not two
    pods.forget(("a", "z"))
    assert sim.nodes[2].pods == 0
    sim.fail(["sim-node-0"])
    pods.observe({"metadata": {"namespace": "a", "name": "w", "uid": "4"},
                  "spec": {"nodeName": "sim-node-0"}})
    assert len(queued) == 2                              # a failed node starts nothing
    sim.recover(["sim-node-0"])
    assert len(queued) == 3


def test_running_pod_marked_not_ready_is_reported_ready_again() -> None:
    sim = Simulator(client=None, count=2)                # type: ignore[arg-type]
    pods = sim.pods
    queued: list[tuple[int, tuple[str, str]]] = []
    pods._queue.put_nowait = queued.append               # type: ignore[method-assign]
    running = {"metadata": {"namespace": "a", "name": "r", "uid": "9"},
               "spec": {"nodeName": "sim-node-1", "containers": [{"name": "c", "image": "i"}]},
               "status": {"phase": "Running", "podIP": "10.128.1.5", "conditions": [
                   {"type": "Ready", "status": "True"}]}}
    pods.observe(running)                                # adopted: nothing to do
    assert queued == [] and pods.pods[("a", "r")].containers == (("c", "i"),)
    not_ready = {**running, "status": {**running["status"], "conditions": [
        {"type": "Ready", "status": "False"}]}}
    pods.observe(not_ready)
    assert len(queued) == 1 and queued[0][1] == ("a", "r")
    sim.fail(["sim-node-1"])
    pods.observe(not_ready)                              # a failed node reports nothing
    assert len(queued) == 1


def test_memory_per_pod_record_is_small() -> None:
    """What the sim keeps per bound pod (record, key, strings), measured: 150,000 pods of
    5,000 nodes must fit in one process next to the 5,000 node records."""
    sim = Simulator(client=None, count=10)               # type: ignore[arg-type]
    queued: list[object] = []
    sim.pods._queue.put_nowait = queued.append           # type: ignore[method-assign]
    raw = [orjson.dumps({"metadata": {"namespace": "density",
                                      "name": f"d{i % 50}-7d9c5f8b4-{i:05x}",
                                      "uid": f"0b4c7e2a-1f3d-4e5a-9c8b-{i:012x}"},
                         "spec": {"nodeName": f"sim-node-{i % 10}", "containers": [
                             {"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
           for i in range(10000)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for data in raw:                     # as from a watch: the object itself is not kept
        sim.pods.observe(orjson.loads(data))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_pod = (after - before - 10000 * 8) / 10000          # minus the test's own queue list
    print(f"bytes per simulated pod: {per_pod:.0f}")
    assert len(sim.pods.pods) == 10000
    assert per_pod < 1000, per_pod
