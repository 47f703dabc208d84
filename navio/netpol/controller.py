"""The agent's NetworkPolicy controller: informers in, one nftables table out.

Why: issue 14 — every agent enforces the NetworkPolicies the API accepts, within a second of
any pod, namespace or policy change, or says plainly on its Node that it cannot.

Design:
- three informers (pods and namespaces of the whole cluster, since peers may live anywhere;
  networkpolicies) under the node's identity; any event marks the state dirty;
- one sync loop: wait for dirty, coalesce for `debounce` seconds, compute (`model.compute`)
  for the pods bound to this node, render (`nftables.render`) and, when the script differs
  from the last one applied, load it with `nft -f -` in the node's network namespace: one
  atomic whole-table replacement. A failed load is retried (back-off) with the state
  current then. The time from the first unsynced event to the applied table is logged;
- at start the Node gets condition `NetworkPolicyEnforced` (True, reason `NftablesRules`),
  or False with the reason why not (`NotRoot`, `NftablesMissing`, `NftablesFailed`); a node
  that cannot enforce keeps running everything else;
- on shutdown the table is deleted: no stale policy outlives its agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from navio.client import NAMESPACES, NODES, PODS, Client, Informer, ResourceRef
from navio.netpol.model import compute
from navio.netpol.nftables import delete_script, render

__all__ = ["NetpolConfig", "NetworkPolicyController", "run", "unenforced", "NETWORKPOLICIES",
           "CONDITION_TYPE"]

log = logging.getLogger("navio.netpol")

NETWORKPOLICIES = ResourceRef("networking.k8s.io", "v1", "networkpolicies", True,
                              "NetworkPolicy")
CONDITION_TYPE = "NetworkPolicyEnforced"


@dataclass(frozen=True)
class NetpolConfig:
    kubeconfig: Path
    node_name: str
    netns: str | None = None          # a name under /run/netns, a path, or None (host)
    nft: str = "nft"
    debounce: float = 0.05


def _netns_prefix(netns: str | None) -> list[str]:
    if not netns:
        return []
    if netns.startswith("/"):
        return ["nsenter", f"--net={netns}", "--"]
    return ["ip", "netns", "exec", netns]


async def _nft(config: NetpolConfig, script: str, timeout: float = 30.0) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_netns_prefix(config.netns), config.nft, "-f", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(script.encode()), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError("nft timed out") from None
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip() or f"nft exit {proc.returncode}")


def _enforcement_problem(config: NetpolConfig) -> tuple[str, str] | None:
    """(reason, message) when this agent cannot program the kernel, else None."""
    if os.geteuid() != 0:
        return "NotRoot", "the agent does not run as root: NetworkPolicies are not enforced"
    if shutil.which(config.nft) is None:
        return ("NftablesMissing",
                "nft is not installed: NetworkPolicies are not enforced on this node")
    return None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def report_condition(client: Client, node: str, ok: bool, reason: str,
                           message: str) -> None:
    """Set the Node's NetworkPolicyEnforced condition (strategic merge: by type)."""
    cond = {"type": CONDITION_TYPE, "status": "True" if ok else "False", "reason": reason,
            "message": message, "lastHeartbeatTime": _now(), "lastTransitionTime": _now()}
    await client.patch(NODES, node, {"status": {"conditions": [cond]}},
                       patch_type="strategic", subresource="status")


class NetworkPolicyController:
    """Keeps the node's `inet navio-netpol` table in step with the informers' caches."""

    def __init__(self, config: NetpolConfig, pods: Informer, namespaces: Informer,
                 policies: Informer) -> None:
        self.config = config
        self.pods, self.namespaces, self.policies = pods, namespaces, policies
        self._dirty = asyncio.Event()
        self._dirty_since: float | None = None
        self.applied: str | None = None
        self.last_latency: float | None = None
        for inf in (pods, namespaces, policies):
            inf.add_handler(self._mark, lambda old, new: self._mark(new), self._mark)

    def _mark(self, _obj: Any = None) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        self._dirty.set()

    def script(self) -> str:
        pods = self.pods.list()
        local = [p for p in pods if (p.get("spec") or {}).get("nodeName") == self.config.node_name]
        return render(compute(local, pods, self.namespaces.list(), self.policies.list()))

    async def sync_once(self) -> None:
        since = self._dirty_since
        self._dirty_since = None
        self._dirty.clear()
        script = self.script()
        if script != self.applied:
            try:
                await _nft(self.config, script)
            except Exception:
                self._mark()
                if since is not None:
                    self._dirty_since = since
                raise
            self.applied = script
            if since is not None:
                self.last_latency = time.monotonic() - since
                log.info("network policy rules applied", extra={
                    "node": self.config.node_name, "latency_ms": round(self.last_latency * 1e3, 1),
                    "bytes": len(script)})

    async def run(self) -> None:
        for inf in (self.pods, self.namespaces, self.policies):
            inf.start()
        for inf in (self.pods, self.namespaces, self.policies):
            while not await inf.wait_synced(30.0):
                log.warning("network policy informer not synced yet",
                            extra={"resource": inf.resource.plural})
        self._mark()
        delay = 0.5
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.config.debounce)
            try:
                await self.sync_once()
                delay = 0.5
            except Exception as exc:
                log.error("network policy sync failed; retrying",
                          extra={"error": str(exc)[:300], "delay": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        for inf in (self.pods, self.namespaces, self.policies):
            await inf.stop()


async def unenforced(config: NetpolConfig, reason: str, message: str) -> None:
    """Report on the Node that policies are not enforced here (once; nothing to keep up)."""
    client = Client.from_kubeconfig(config.kubeconfig, component="netpol")
    try:
        log.warning("network policies are NOT enforced on this node",
                    extra={"node": config.node_name, "reason": reason})
        await report_condition(client, config.node_name, False, reason, message)
    finally:
        await client.close()


async def run(config: NetpolConfig, *, client: Client | None = None) -> None:
    """Enforce NetworkPolicies on this node until cancelled (or report that it cannot)."""
    own = client is None
    if client is None:
        client = Client.from_kubeconfig(config.kubeconfig, component="netpol")
    try:
        problem = _enforcement_problem(config)
        if problem is None:
            try:
                await _nft(config, delete_script())
            except Exception as exc:
                problem = ("NftablesFailed", f"nft cannot program this node: {exc}"[:500])
        if problem is not None:
            log.warning("network policies are NOT enforced on this node",
                        extra={"node": config.node_name, "reason": problem[0]})
            await report_condition(client, config.node_name, False, *problem)
            await asyncio.Event().wait()            # nothing to enforce; stay reported
        controller = NetworkPolicyController(
            config, Informer(client, PODS), Informer(client, NAMESPACES),
            Informer(client, NETWORKPOLICIES))
        await report_condition(client, config.node_name, True, "NftablesRules",
                               "network policies are enforced with nftables")
        try:
            await controller.run()
        finally:
            await controller.stop()
            try:
                await asyncio.shield(_nft(config, delete_script()))
            except Exception as exc:
                log.warning("could not remove network policy rules", extra={"error": str(exc)})
    finally:
        if own:
            await client.close()
