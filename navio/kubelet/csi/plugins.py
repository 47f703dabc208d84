"""CSI node plugins: discovery through the kubelet's plugin registration, and calls to them.

Why: storage vendors plug in as Kubernetes lets them (pkg/kubelet/pluginmanager and
pkg/volume/csi): a driver's registrar puts a unix socket in `<root>/plugins_registry/`; the
kubelet calls `pluginregistration.Registration/GetInfo` on it (type `CSIPlugin`, the driver's
name and CSI endpoint), then the driver's `NodeGetInfo` and capabilities, records the driver in
this node's CSINode object (`spec.drivers[]`: name, nodeID, topologyKeys) and the Node's
`csi.volume.kubernetes.io/nodeid` annotation (its topology segments become Node labels), and
answers `NotifyRegistrationStatus`. A
socket that disappears deregisters its driver (removed from CSINode).

Guarantees: the registry directory is scanned every `period` seconds; a registration that
fails is reported to the plugin (registered=false with the error) and retried on the next
scan; every gRPC call has a timeout; `driver(name)` is None for a driver not registered here.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from navio.api import errors
from navio.client import NODES, Client
from navio.client.volumes import CSINODES
from navio.kubelet.csi.messages import METHODS, REG

__all__ = ["DriverClient", "Driver", "CSIPlugins", "NODE_ID_ANNOTATION"]

log = logging.getLogger(__name__)

NODE_ID_ANNOTATION = "csi.volume.kubernetes.io/nodeid"
_TIMEOUT = 30.0


def _target(endpoint: str) -> str:
    path = endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint
    return "unix://" + os.path.abspath(path)


class DriverClient:
    """Unary gRPC calls to one unix socket, by full method path (messages.METHODS)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.channel = grpc.aio.insecure_channel(_target(endpoint))

    async def call(self, method: str, request: Any = None, timeout: float = _TIMEOUT) -> Any:
        req_cls, resp_cls = METHODS[method]
        stub = self.channel.unary_unary(method, request_serializer=req_cls.SerializeToString,
                                        response_deserializer=resp_cls.FromString)
        return await stub(request if request is not None else req_cls(), timeout=timeout)

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Driver:
    name: str
    endpoint: str
    client: DriverClient
    node_id: str
    stage_unstage: bool
    controller: bool
    topology: dict[str, str] = field(default_factory=dict)
    publish_unpublish: bool = False          # ControllerPublishVolume (attach) offered


class CSIPlugins:
    def __init__(self, client: Client, node_name: str, registry_dir: Path, *,
                 period: float = 1.0) -> None:
        self.client = client
        self.node_name = node_name
        self.registry_dir = registry_dir
        self.period = period
        self.drivers: dict[str, Driver] = {}
        self._sockets: dict[str, str] = {}       # registration socket -> driver name
        self._task: asyncio.Task[None] | None = None

    def driver(self, name: str) -> Driver | None:
        return self.drivers.get(name)

    def start(self) -> None:
        self.registry_dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="csi plugin watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for d in self.drivers.values():
            await d.client.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("plugin scan failed", extra={"error": str(exc)[:300]})
            await asyncio.sleep(self.period)

    def _sockets_now(self) -> set[str]:
        out = set()
        try:
            entries = list(os.scandir(self.registry_dir))
        except FileNotFoundError:
            return out
        for e in entries:
            try:
                if stat.S_ISSOCK(e.stat().st_mode):
                    out.add(e.path)
            except OSError:
                continue
        return out

    async def scan(self) -> None:
        """Register new plugin sockets and deregister vanished ones (one pass)."""
        now = self._sockets_now()
        for sock in sorted(set(self._sockets) - now):
            name = self._sockets.pop(sock)
            await self._deregister(name)
        for sock in sorted(now - set(self._sockets)):
            await self._register(sock)

    async def _register(self, sock: str) -> None:
        reg = DriverClient(sock)
        try:
            info = await reg.call("/pluginregistration.Registration/GetInfo", timeout=10)
            if info.type != "CSIPlugin":
                raise ValueError(f"plugin type {info.type!r} is not supported")
            endpoint = info.endpoint or sock
            drv = await self._probe(info.name, endpoint)
            await self._record(drv)
        except Exception as exc:
            log.warning("plugin registration failed", extra={"socket": sock,
                                                             "error": str(exc)[:300]})
            try:
                await reg.call("/pluginregistration.Registration/NotifyRegistrationStatus",
                               REG.RegistrationStatus(plugin_registered=False, error=str(exc)),
                               timeout=5)
            except grpc.RpcError:
                pass
            await reg.close()
            return
        old = self.drivers.pop(drv.name, None)
        if old is not None:
            await old.client.close()
        self.drivers[drv.name] = drv
        self._sockets[sock] = drv.name
        await reg.call("/pluginregistration.Registration/NotifyRegistrationStatus",
                       REG.RegistrationStatus(plugin_registered=True), timeout=10)
        await reg.close()
        log.info("csi driver registered", extra={"driver": drv.name, "endpoint": drv.endpoint,
                                                 "node_id": drv.node_id})

    async def _probe(self, name: str, endpoint: str) -> Driver:
        client = DriverClient(endpoint)
        try:
            ni = await client.call("/csi.v1.Node/NodeGetInfo")
            caps = await client.call("/csi.v1.Node/NodeGetCapabilities")
            plugin = await client.call("/csi.v1.Identity/GetPluginCapabilities")
        except BaseException:
            await client.close()
            raise
        stage = any(c.rpc.type == 1 for c in caps.capabilities)
        controller = any(c.service.type == 1 for c in plugin.capabilities)
        publish = False
        if controller:
            try:
                ccaps = await client.call("/csi.v1.Controller/ControllerGetCapabilities")
            except BaseException:
                await client.close()
                raise
            publish = any(c.rpc.type == 2 for c in ccaps.capabilities)
        return Driver(name, endpoint, client, ni.node_id, stage, controller,
                      dict(ni.accessible_topology.segments), publish)

    async def _record(self, drv: Driver) -> None:
        """CSINode spec.drivers and the Node's nodeid annotation (nodeinfomanager)."""
        entry = {"name": drv.name, "nodeID": drv.node_id,
                 "topologyKeys": sorted(drv.topology) or None}
        entry = {k: v for k, v in entry.items() if v is not None}
        await self._update_csinode(lambda drivers: [d for d in drivers
                                                    if d.get("name") != drv.name] + [entry])
        node = await self.client.get(NODES, self.node_name)
        meta = node.get("metadata") or {}
        ids = json.loads((meta.get("annotations") or {}).get(NODE_ID_ANNOTATION) or "{}")
        labels = meta.get("labels") or {}
        # The driver's topology segments become node labels, so that PV node affinity
        # written from them matches this node.
        missing = {k: v for k, v in drv.topology.items() if labels.get(k) != v}
        if ids.get(drv.name) != drv.node_id or missing:
            ids[drv.name] = drv.node_id
            await self.client.patch(NODES, self.node_name, {"metadata": {
                "annotations": {NODE_ID_ANNOTATION: json.dumps(ids, sort_keys=True)},
                **({"labels": missing} if missing else {})}})

    async def _deregister(self, name: str) -> None:
        drv = self.drivers.pop(name, None)
        if drv is not None:
            await drv.client.close()
        await self._update_csinode(lambda drivers: [d for d in drivers if d.get("name") != name])
        log.info("csi driver deregistered", extra={"driver": name})

    async def _update_csinode(self, change: Any) -> None:
        for _ in range(5):
            try:
                current = await self.client.get(CSINODES, self.node_name)
            except errors.NotFound:
                node = await self.client.get(NODES, self.node_name)
                body = {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                        "metadata": {"name": self.node_name, "ownerReferences": [{
                            "apiVersion": "v1", "kind": "Node", "name": self.node_name,
                            "uid": node["metadata"]["uid"]}]},
                        "spec": {"drivers": change([])}}
                try:
                    await self.client.create(CSINODES, body)
                    return
                except errors.AlreadyExists:
                    continue
            body = copy.deepcopy(current)
            body.setdefault("spec", {})["drivers"] = change(list(body["spec"].get("drivers")
                                                                 or []))
            try:
                await self.client.update(CSINODES, body)
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"csinodes {self.node_name}: too many conflicts")
