"""Node IPAM (issue 16): each Node gets a distinct pod CIDR from the cluster CIDR, nodes that
already carry one keep it (and it is never handed out again, also after a restart), a
deleted node's range is reused, and an exhausted range is reported with an event."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api import errors
from navio.client import NODES
from navio.client.watch import WatchEvent
from navio.controllers.base import ControllerContext, SharedInformers
from navio.controllers.nodeipam import CIDRSet, NodeIPAMController

Obj = dict[str, Any]


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj]] = []
        self.fail: type[Exception] | None = None

    async def patch(self, resource: Any, name: str, body: Any, ns: Any = None,
                    **_: Any) -> Obj:
        if self.fail is not None:
            raise self.fail("nope")
        self.patches.append((name, copy.deepcopy(body)))
        return {}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


def node(name: str, cidr: str | None = None, rv: str = "1") -> Obj:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": rv},
            "spec": spec}


def make(nodes: list[Obj], **options: Any) -> tuple[NodeIPAMController, FakeClient, Recorder]:
    client, recorder = FakeClient(), Recorder()
    informers = SharedInformers(client)  # type: ignore[arg-type]
    ctl = NodeIPAMController(ControllerContext(client, informers, recorder,  # type: ignore
                                               dict(options)))
    informers.get(NODES)._replace([copy.deepcopy(n) for n in nodes], "1")
    return ctl, client, recorder


async def drain(ctl: NodeIPAMController) -> None:
    """Reconcile every queued key once, as the single worker would."""
    keys = []
    while len(ctl.queue):
        keys.append(await ctl.queue.get())
    for key in keys:
        try:
            await ctl.reconcile(key)
        finally:
            ctl.queue.done(key)


def applied(ctl: NodeIPAMController, client: FakeClient) -> None:
    """Feed the patched ranges back through the informer, as the watch would."""
    for name, body in client.patches:
        n = node(name, body["spec"]["podCIDR"], rv="2")
        ctl.nodes._apply(WatchEvent("MODIFIED", n))
    client.patches.clear()


async def test_each_node_gets_a_distinct_block_and_preset_ones_are_kept() -> None:
    ctl, client, _ = make([node("a", "10.42.0.0/24"), node("b"), node("c")])
    await drain(ctl)
    got = {name: body["spec"]["podCIDRs"] for name, body in client.patches}
    assert got == {"b": ["10.42.1.0/24"], "c": ["10.42.2.0/24"]}
    assert all(body["spec"]["podCIDR"] == body["spec"]["podCIDRs"][0]
               for _, body in client.patches)


async def test_a_restarted_controller_never_reuses_a_range_in_use() -> None:
    ctl, client, _ = make([node("x"), node("b", "10.42.0.0/24"), node("c", "10.42.2.0/24")])
    await drain(ctl)
    assert client.patches == [("x", {"spec": {"podCIDR": "10.42.1.0/24",
                                              "podCIDRs": ["10.42.1.0/24"]}})]


async def test_a_deleted_nodes_range_is_given_to_the_next_node() -> None:
    ctl, client, _ = make([node("a"), node("b")])
    await drain(ctl)
    applied(ctl, client)
    ctl.nodes._apply(WatchEvent("DELETED", node("a", "10.42.0.0/24", rv="3")))
    ctl.nodes._apply(WatchEvent("ADDED", node("c", rv="4")))
    ctl.nodes._apply(WatchEvent("ADDED", node("d", rv="5")))
    await drain(ctl)
    assert [(n, b["spec"]["podCIDR"]) for n, b in client.patches] == [
        ("c", "10.42.0.0/24"), ("d", "10.42.2.0/24")]


async def test_an_exhausted_range_records_cidr_not_available() -> None:
    ctl, client, recorder = make([node("a"), node("b"), node("c")],
                                 **{"cluster-cidr": "10.42.0.0/23"})
    await drain(ctl)
    assert sorted(b["spec"]["podCIDR"] for _, b in client.patches) == ["10.42.0.0/24",
                                                                       "10.42.1.0/24"]
    assert ("Normal", "CIDRNotAvailable", "Node c status is now: CIDRNotAvailable") \
        in recorder.events
    assert ctl.recorder is recorder   # no recorder factory: the shared one


async def test_a_rejected_patch_frees_the_block_and_is_retried() -> None:
    ctl, client, recorder = make([node("a")])
    client.fail = errors.Conflict
    with pytest.raises(errors.Conflict):
        await drain(ctl)
    assert recorder.events[-1][1] == "CIDRAssignmentFailed"
    assert not ctl.cidrs.used
    client.fail = None
    await ctl.reconcile("a")
    assert client.patches[0][1]["spec"]["podCIDR"] == "10.42.0.0/24"


@pytest.mark.parametrize("cidr,size,err", [
    ("10.42.0.0/16", 8, "does not fit"), ("10.0.0.0/8", 28, "at most 16 bits")])
def test_bad_mask_sizes_are_rejected(cidr: str, size: int, err: str) -> None:
    with pytest.raises(ValueError, match=err):
        CIDRSet(cidr, size)


def test_ranges_outside_the_cluster_cidr_are_ignored_and_wide_ones_take_every_block() -> None:
    s = CIDRSet("10.42.0.0/22", 24)
    assert not s.occupy("192.168.0.0/24")
    assert s.occupy("10.42.1.7/32")
    assert s.occupy("10.42.2.0/23")
    assert s.allocate() == "10.42.0.0/24"
    assert s.allocate() is None
    s.release("10.42.2.0/23")
    assert s.allocate() == "10.42.2.0/24"
