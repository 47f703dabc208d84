"""The node heartbeat Lease (pkg/kubelet/nodelease, component-helpers/apimachinery/lease).

Why: the node lifecycle controller decides a node is alive from `kube-node-lease/<node>`
being renewed, which is far cheaper than rewriting node status every 10 s.

Guarantees: the Lease is created if missing (owned by the Node, so it goes with it), then
renewed every `renew_interval` seconds with a conditional update (resourceVersion); a conflict
re-reads and retries at once; failures are retried at the next tick with a 200 ms → 7 s
back-off between attempts inside one tick, as the upstream controller does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from navio.api import errors
from navio.client import LEASES, Client, TransportError

__all__ = ["LeaseHeartbeat", "LEASE_NAMESPACE", "micro_time"]

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
_MAX_BACKOFF = 7.0


def micro_time(now: dt.datetime | None = None) -> str:
    """metav1.MicroTime's RFC 3339 form with microseconds."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseHeartbeat:
    def __init__(self, client: Client, node_name: str, *, duration_seconds: int,
                 renew_interval: float) -> None:
        self.client = client
        self.node_name = node_name
        self.duration = duration_seconds
        self.renew_interval = renew_interval
        self.node_uid = ""
        self._lease: dict[str, Any] | None = None

    def _new(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.node_name, "namespace": LEASE_NAMESPACE}
        if self.node_uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                        "name": self.node_name, "uid": self.node_uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.node_name,
                         "leaseDurationSeconds": self.duration, "renewTime": micro_time()}}

    async def renew(self) -> None:
        """Create or renew the Lease once (raises on failure)."""
        for _ in range(3):
            lease = self._lease
            if lease is None:
                try:
                    lease = await self.client.get(LEASES, self.node_name, LEASE_NAMESPACE)
                except errors.NotFound:
                    self._lease = await self.client.create(LEASES, self._new(), LEASE_NAMESPACE)
                    return
            body = {**lease, "spec": {**(lease.get("spec") or {}),
                                      "holderIdentity": self.node_name,
                                      "leaseDurationSeconds": self.duration,
                                      "renewTime": micro_time()}}
            if self.node_uid and not (lease.get("metadata") or {}).get("ownerReferences"):
                body["metadata"] = {**body["metadata"],
                                    "ownerReferences": self._new()["metadata"]["ownerReferences"]}
            try:
                self._lease = await self.client.update(LEASES, body, LEASE_NAMESPACE)
                return
            except (errors.Conflict, errors.NotFound):
                self._lease = None
        raise errors.Conflict(f'leases.coordination.k8s.io "{self.node_name}" kept changing')

    async def run(self) -> None:
        while True:
            delay = 0.2
            while True:
                try:
                    await self.renew()
                    break
                except (errors.ApiError, TransportError):
                    log.warning("lease renewal failed", extra={"node": self.node_name,
                                                               "retry_in": delay})
                    self._lease = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_BACKOFF)
                    if delay >= _MAX_BACKOFF:
                        break
            await asyncio.sleep(self.renew_interval)
