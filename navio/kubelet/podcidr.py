"""This node's pod CIDR from the control plane, for agents started without `--pod-cidr`.

Why: on a multi-node cluster the node IPAM controller hands each Node its own range
(`spec.podCIDR`); the agent must build its bridge and allocate pod IPs from exactly that
range, or two nodes would give out the same addresses. The runtime's IP allocator and the
bridge address are fixed when the agent starts, so the range is obtained first: the Node is
registered early (a bare Node with the `node.kubernetes.io/not-ready:NoSchedule` taint, as a
kubelet registers, so nothing is scheduled on it before it reports Ready; the node lifecycle
controller removes the taint once it is Ready) and the agent waits, bounded, until the
controller has written a range.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from navio.api import errors
from navio.client import NODES, Client, TransportError

__all__ = ["await_pod_cidr", "PodCIDRTimeout", "DEFAULT_WAIT"]

log = logging.getLogger(__name__)

DEFAULT_WAIT = 120.0
_POLL = 0.05            # the controller answers within a moment: ask often, then less often
_POLL_MAX = 1.0
_NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


class PodCIDRTimeout(RuntimeError):
    """The control plane assigned no pod CIDR in time (is node IPAM enabled?)."""


def _pod_cidr(node: dict[str, Any]) -> str | None:
    spec = node.get("spec") or {}
    return spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or ()), None)


async def await_pod_cidr(client: Client, node_name: str, *,
                         timeout: float = DEFAULT_WAIT) -> str:
    """The Node's `spec.podCIDR`, registering the Node first if it does not exist; raises
    `PodCIDRTimeout` after `timeout` seconds without one."""
    logged, poll = False, _POLL
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    node = await client.get(NODES, node_name)
                except errors.NotFound:
                    try:
                        node = await client.create(NODES, {
                            "apiVersion": "v1", "kind": "Node",
                            "metadata": {"name": node_name},
                            "spec": {"taints": [dict(_NOT_READY_TAINT)]}})
                    except errors.AlreadyExists:
                        continue
                except TransportError:
                    await asyncio.sleep(_POLL)
                    continue
                cidr = _pod_cidr(node)
                if cidr:
                    log.info("pod CIDR assigned by the control plane",
                             extra={"node": node_name, "pod_cidr": cidr})
                    return cidr
                if not logged:
                    log.info("waiting for the control plane to assign this node's pod CIDR "
                             "(node IPAM)", extra={"node": node_name, "timeout": timeout})
                    logged = True
                await asyncio.sleep(poll)
                poll = min(_POLL_MAX, poll * 1.5)
    except TimeoutError:
        raise PodCIDRTimeout(
            f"node {node_name}: no spec.podCIDR assigned within {timeout:.0f}s; run the "
            "controller manager with --allocate-node-cidrs=true or give the agent "
            "--pod-cidr") from None
