"""The node half of the local-path provisioner: directories for this node's local-path PVs.

Why: the controller manager decides and creates the PersistentVolume, but only the node can
touch its disk. The agent publishes its storage directory on its Node (annotation
`navio.dev/local-path-dir`), watches PersistentVolumes, and for each one whose
`local.path.provisioner/selected-node` is this node:

- makes the hostPath directory (mode 0777, as k3s's provisioner does, so that pods running as
  any user can write) as soon as the PV exists;
- when the PV is being deleted and still carries `navio.dev/local-path-cleanup`: removes the
  directory if the reclaim policy is Delete (Retain keeps the data), then removes the
  finalizer so the deletion completes.

Guarantees: only paths strictly inside the storage directory are ever created or removed (a
PV edited to point elsewhere is refused and logged); work is serialised per PV through a work
queue, and failures retry with back-off; repeating any step is harmless.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from navio.api import errors
from navio.api.persistentvolumes import (LOCAL_PATH_DIR_ANNOTATION, LOCAL_PATH_FINALIZER,
                                         LOCAL_PATH_NODE_ANNOTATION, LOCAL_PATH_NODE_LABEL)
from navio.api.validation.names import is_valid_label_value
from navio.client import NODES, Client, Informer, WorkQueue
from navio.client.volumes import PVS
from navio.kubelet.iopool import run_io

__all__ = ["LocalPathVolumes", "inside"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_PUBLISH_RETRY = 1.0


def inside(base: Path, path: str) -> bool:
    """`path` is strictly below `base` once both are normalised (no `..` escapes)."""
    try:
        rel = Path(os.path.normpath(path)).relative_to(os.path.normpath(base))
    except ValueError:
        return False
    return str(rel) not in ("", ".")


class LocalPathVolumes:
    def __init__(self, client: Client, node_name: str, storage_dir: Path) -> None:
        self.client = client
        self.node_name = node_name
        self.storage_dir = storage_dir
        # Server-side filtering by the node label when the node name can be a label value
        # (the annotation is still checked: it is what names the node).
        selector = f"{LOCAL_PATH_NODE_LABEL}={node_name}" \
            if not is_valid_label_value(node_name) else None
        self.informer = Informer(client, PVS, label_selector=selector)
        self.queue = WorkQueue()
        self._tasks: list[asyncio.Task[None]] = []

    def _ours(self, pv: Obj) -> bool:
        ann = (pv.get("metadata") or {}).get("annotations") or {}
        return ann.get(LOCAL_PATH_NODE_ANNOTATION) == self.node_name

    def _changed(self, pv: Obj) -> None:
        if self._ours(pv):
            self.queue.add(pv["metadata"]["name"])

    async def start(self) -> None:
        await run_io(self.storage_dir.mkdir, 0o755, True, True)
        self.informer.add_handler(on_add=self._changed, on_update=lambda o, n: self._changed(n))
        self.informer.start()
        self._tasks = [asyncio.create_task(self._publish(), name="local-path publish"),
                       asyncio.create_task(self._worker(), name="local-path worker")]

    async def stop(self) -> None:
        self.queue.shut_down()
        await self.informer.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _publish(self) -> None:
        """Put the storage directory on our Node (retried until the Node accepts it)."""
        patch = {"metadata": {"annotations": {LOCAL_PATH_DIR_ANNOTATION: str(self.storage_dir)}}}
        while True:
            try:
                await self.client.patch(NODES, self.node_name, patch)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:          # the node may not be registered yet
                log.info("local-path directory not published yet",
                         extra={"node": self.node_name, "error": str(exc)[:200]})
                await asyncio.sleep(_PUBLISH_RETRY)

    async def _worker(self) -> None:
        await self.queue.run_worker(self.sync, "local-path volume sync failed")

    async def sync(self, name: str) -> None:
        """Make or clean up the directory of PV `name`; safe to repeat."""
        pv = self.informer.get(name)
        if pv is None or not self._ours(pv):
            return
        path = str(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or "")
        meta = pv["metadata"]
        safe = bool(path) and inside(self.storage_dir, path)
        if not safe:
            log.warning("local-path volume outside the storage directory left alone",
                        extra={"volume": name, "path": path})
        if not meta.get("deletionTimestamp"):
            if safe:
                await run_io(_make_dir, path)
            return
        if LOCAL_PATH_FINALIZER not in (meta.get("finalizers") or []):
            return
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if safe and policy == "Delete":
            await run_io(shutil.rmtree, path, True)
            log.info("local-path volume removed", extra={"volume": name, "path": path})
        body = copy.deepcopy(pv)
        body["metadata"]["finalizers"] = [f for f in meta.get("finalizers") or ()
                                          if f != LOCAL_PATH_FINALIZER]
        try:
            await self.client.update(PVS, body)
        except errors.NotFound:
            return


def _make_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
