"""Choosing and building the node's container runtime, and its image garbage collection.

Why: issue 11 — `--runtime auto` (the default) runs real images with `oci` wherever runc is
installed and the agent is root, and host programs with `process` elsewhere; `sim` runs
nothing. The RuntimeClass handler of a pod maps onto these names (`runc` → `oci`).

Guarantees: `resolve_runtime` never picks `oci` where it cannot work (no runc, not root,
isolation switched off); `collect_images` runs the kubelet's ImageGCManager pass every
5 minutes and never ends the agent on a failed pass.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from navio.kubelet.config import AgentConfig
from navio.runtime.protocol import ImageInfo, ImageService, Runtime

__all__ = ["IMAGE_GC_PERIOD", "collect_images", "make_runtime", "node_images",
           "report_images", "resolve_runtime"]

log = logging.getLogger(__name__)

IMAGE_GC_PERIOD = 300.0   # kubelet ImageGCPeriod
NODE_STATUS_MAX_IMAGES = 50   # kubelet --node-status-max-images


def resolve_runtime(config: AgentConfig) -> str:
    """`auto`: `oci` where runc is installed and the agent is root (and isolation is not
    switched off), `process` elsewhere; any other choice stands."""
    if config.runtime != "auto":
        return config.runtime
    from navio.runtime import namespaces
    from navio.runtime.oci.runtime import runc_available
    if config.isolation is not False and namespaces.available() and runc_available():
        return "oci"
    return "process"


def make_runtime(config: AgentConfig, node_ip: str) -> Runtime:
    kind = resolve_runtime(config)
    if kind == "sim":
        # Nothing is networked on a simulated node: its made-up pod IPs need not wait for
        # the range node IPAM assigns (the Node still gets one).
        from navio.runtime.sim import SimRuntime
        return SimRuntime(pod_cidr=config.pod_cidr or "10.42.0.0/24")
    assert config.pod_cidr is not None
    from navio.runtime.process import ProcessRuntime, ProcessRuntimeConfig
    process = ProcessRuntimeConfig(
        state_dir=config.runtime_state_dir, log_dir=config.pod_logs_dir,
        pod_cidr=config.pod_cidr, bridge=config.bridge, node_netns=config.node_netns,
        cgroup_parent=config.cgroup_parent, isolation=config.isolation, node_ip=node_ip,
        mtu=config.pod_mtu)
    if kind == "oci":
        from navio.runtime.oci.runtime import OciRuntime, OciRuntimeConfig
        return OciRuntime(OciRuntimeConfig(process=process, image_dir=config.image_dir,
                                           registry_config=config.registry_config))
    return ProcessRuntime(process)


async def collect_images(images: ImageService, config: AgentConfig,
                         node_event: Callable[[str, str, str], None]) -> None:
    """kubelet's ImageGCManager: every 5 minutes, unused images go (least recently used
    first) while disk usage is at or above the high threshold, down to the low one."""
    while True:
        await asyncio.sleep(IMAGE_GC_PERIOD)
        try:
            removed = await images.garbage_collect(config.image_gc_high_threshold,
                                                   config.image_gc_low_threshold)
        except Exception:   # (a failed pass must not end the agent)
            log.exception("image garbage collection failed")
            continue
        if removed:
            log.info("images garbage collected", extra={"count": len(removed)})
            node_event("Normal", "FreeDiskSpace", f"removed {len(removed)} unused images")


def node_images(images: list[ImageInfo]) -> list[dict[str, Any]]:
    """Node.status.images as the kubelet writes it: largest first, at most 50, each named by
    its repo digests then its tags."""
    out = [{"names": [*i.repo_digests, *i.repo_tags] or [i.id], "sizeBytes": i.size}
           for i in sorted(images, key=lambda i: -i.size)]
    return out[:NODE_STATUS_MAX_IMAGES]


async def report_images(images: ImageService, set_images: Callable[[list[dict[str, Any]]],
                                                                  None], period: float) -> None:
    """Keep the Node's image list current (read at every node status update)."""
    while True:
        try:
            set_images(node_images(await images.list_images()))
        except Exception:   # (a failed listing must not end the agent)
            log.exception("listing images failed")
        await asyncio.sleep(period)
