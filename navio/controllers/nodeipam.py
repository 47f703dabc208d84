"""Node IPAM: every Node gets its own pod CIDR (kube-controller-manager's node-ipam-controller
with the RangeAllocator, pkg/controller/nodeipam/ipam/range_allocator.go).

Why: with more than one node, each node's pods need addresses no other node hands out, and
every agent must know which range lives behind which node to route to it. The control plane
cuts the cluster CIDR (`--cluster-cidr`, 10.42.0.0/16) into blocks of `--node-cidr-mask-size`
bits (/24) and writes one into each Node's `spec.podCIDR` / `spec.podCIDRs`.

What it guarantees, as kube does:
- A range is never handed out twice: a Node that already carries `spec.podCIDRs` (set by
  whoever created it, e.g. `navio server`'s local agent with its explicit `--pod-cidr`)
  keeps it and that range is marked used. Every existing Node is seen (informer adds) before
  the first allocation, so a restarted controller rebuilds its used set from the Nodes.
- A Node without one gets the lowest free block, patched onto its spec (podCIDR can only go
  from "" to a value; the API rejects any other change).
- Deleting a Node frees its block for the next node.
- When the cluster CIDR is exhausted the Node gets an event `CIDRNotAvailable` ("Node X
  status is now: CIDRNotAvailable", kube's RecordNodeStatusChange) and is retried later; a
  failed patch gets a `CIDRAssignmentFailed` warning.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from navio.api import errors
from navio.client import NODES, NORMAL, WARNING
from navio.controllers.base import Controller, ControllerContext
from navio.controllers.manager import register

__all__ = ["NodeIPAMController", "CIDRSet", "NAME", "DEFAULT_CLUSTER_CIDR",
           "DEFAULT_NODE_CIDR_MASK_SIZE"]

log = logging.getLogger(__name__)

NAME = "nodeipam"
DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_NODE_CIDR_MASK_SIZE = 24
_EXHAUSTED_RETRY = 30.0
# kube's range allocator records under this event source.
_EVENT_SOURCE = "cidrAllocator"


class CIDRSet:
    """The blocks of one cluster CIDR and which of them are used (kube's cidrset)."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.IPv4Network(cluster_cidr, strict=False)
        if not self.network.prefixlen <= mask_size <= 32:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit in "
                             f"cluster CIDR {cluster_cidr}")
        if mask_size - self.network.prefixlen > 16:
            raise ValueError("the cluster CIDR mask and the node CIDR mask may differ by "
                             "at most 16 bits")
        self.mask_size = mask_size
        self.used: set[ipaddress.IPv4Network] = set()

    def __len__(self) -> int:
        return 1 << (self.mask_size - self.network.prefixlen)

    def occupy(self, cidr: str) -> bool:
        """Mark every block of `cidr` that lies in the cluster CIDR as used; False if it
        lies outside (a node may carry a range this allocator does not manage)."""
        net = ipaddress.IPv4Network(cidr, strict=False)
        if not net.overlaps(self.network):
            return False
        for block in self._blocks_of(net):
            self.used.add(block)
        return True

    def release(self, cidr: str) -> None:
        net = ipaddress.IPv4Network(cidr, strict=False)
        if net.overlaps(self.network):
            for block in self._blocks_of(net):
                self.used.discard(block)

    def allocate(self) -> str | None:
        """The lowest free block, now used; None when the range is exhausted."""
        for block in self.network.subnets(new_prefix=self.mask_size):
            if block not in self.used:
                self.used.add(block)
                return str(block)
        return None

    def _blocks_of(self, net: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
        if net.prefixlen >= self.mask_size:       # inside one block: that block
            return [ipaddress.IPv4Network((net.network_address, self.mask_size), strict=False)]
        inside = net if net.subnet_of(self.network) else self.network
        return list(inside.subnets(new_prefix=self.mask_size))


def _node_cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


class NodeIPAMController(Controller):
    """Occupies and releases in the informer handlers (so the used set always reflects every
    Node seen); allocates and patches in one worker (so two nodes never race for a block)."""

    name = NAME
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.recorder = ctx.recorder_for(_EVENT_SOURCE)
        opts = ctx.options
        self.cidrs = CIDRSet(opts.get("cluster-cidr") or DEFAULT_CLUSTER_CIDR,
                             int(opts.get("node-cidr-mask-size")
                                 or DEFAULT_NODE_CIDR_MASK_SIZE))
        # node name -> the block this controller gave it or saw on it
        self.assigned: dict[str, list[str]] = {}
        self.nodes = ctx.informers.get(NODES)
        self.nodes.add_handler(on_add=self._seen, on_update=lambda old, new: self._seen(new),
                               on_delete=self._gone)

    def _seen(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        cidrs = _node_cidrs(node)
        if cidrs:
            if self.assigned.get(name) != cidrs:
                for old in self.assigned.pop(name, ()):
                    self.cidrs.release(old)
                for c in cidrs:
                    self.cidrs.occupy(c)
                self.assigned[name] = cidrs
            return
        self.enqueue(node)

    def _gone(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        for c in self.assigned.pop(name, ()):
            self.cidrs.release(c)
            log.info("pod CIDR released", extra={"node": name, "cidr": c})

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or _node_cidrs(node) or (node["metadata"].get("deletionTimestamp")):
            return
        cidrs = self.assigned.get(key)
        if cidrs is None:
            block = self.cidrs.allocate()
            if block is None:
                self.recorder.event(node, NORMAL, "CIDRNotAvailable",
                                    f"Node {key} status is now: CIDRNotAvailable")
                log.warning("no pod CIDR left for node", extra={"node": key})
                self.queue.add_after(key, _EXHAUSTED_RETRY)
                return
            cidrs = self.assigned[key] = [block]
        try:
            await self.client.patch(NODES, key, {"spec": {"podCIDR": cidrs[0],
                                                          "podCIDRs": cidrs}},
                                    field_manager="node-ipam-controller")
        except errors.NotFound:
            self._gone(node)
            return
        except errors.ApiError as e:
            self.recorder.event(node, WARNING, "CIDRAssignmentFailed",
                                f"Node {key} status is now: CIDRAssignmentFailed")
            if isinstance(e, (errors.Invalid, errors.Conflict)):
                # Someone set a range meanwhile: give ours back; the update handler occupies
                # theirs.
                self._gone(node)
            raise
        log.info("pod CIDR allocated", extra={"node": key, "cidr": cidrs[0]})


@register(NAME)
def _factory(ctx: ControllerContext) -> Controller:
    return NodeIPAMController(ctx)
