"""The `oci` runtime: pods as the process runtime's sandboxes, containers as runc containers
of real images.

Why: issue 11 — `image: nginx:1.27` must run that image. Sandboxes (pod network, pause
holding the network/UTS/IPC namespaces, /dev/shm, pod cgroup), records, recovery, stop,
attach, port-forward and stats are the process runtime's, unchanged: only what a container
*is* differs. Here a container is an OCI bundle — the image's layers overlay-mounted as its
root, a runtime spec built by spec.py — run by runc under a shim (shim.py) that outlives
the agent exactly as the process runtime's supervisor does and writes the same status file.

Guarantees, beyond the process runtime's:
- `create_container` needs the image in the node's store (the kubelet pulls first through
  `images`); the container's record names the image's ID and repo digest (`imageID`).
- runc's state lives under <state dir>/runc, so agents sharing a machine never see each
  other's containers; `remove_container` deletes the runc container and unmounts its root.
- exec runs `runc exec` (the container's env, user, capabilities and seccomp apply).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pty
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navio.images.registry import RegistryClient, load_registry_config
from navio.images.store import ImageRecord, ImageStore
from navio.runtime import cgroups
from navio.runtime.execsession import ProcessExecSession, _pty_reader, _PtyWriter
from navio.runtime.oci import rootfs
from navio.runtime.oci.images import OciImages
from navio.runtime.oci.spec import NonRootError, SpecError, build_spec
from navio.runtime.process import ProcessRuntime, _bounded
from navio.runtime.process_config import ProcessRuntimeConfig
from navio.runtime.process_records import container_status_of, finalize_lost, sandbox_info_of
from navio.runtime.protocol import (Capabilities, ContainerConfig, ContainerConfigFailure,
                                    ContainerStatus,
                                    InvalidState, NotFound, RuntimeFailure, SandboxInfo)

__all__ = ["OciRuntime", "OciRuntimeConfig", "runc_available"]

log = logging.getLogger(__name__)


def runc_available(runc: str = "runc") -> str | None:
    """The runc binary's path, if runc is installed."""
    return shutil.which(runc) or next(
        (p for p in ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc")
         if os.access(p, os.X_OK)), None)


@dataclass(frozen=True, slots=True)
class OciRuntimeConfig:
    """`process`: the sandbox/record settings shared with the process runtime;
    `image_dir`: the node's image store; `registry_config`: registries.yaml (mirrors,
    insecure hosts)."""

    process: ProcessRuntimeConfig
    image_dir: Path
    registry_config: Path | None = None
    runc: str = "runc"
    overlay: bool = True


class OciRuntime(ProcessRuntime):
    name = "oci"

    def __init__(self, config: OciRuntimeConfig) -> None:
        if config.process.isolation is False:
            raise RuntimeFailure("the oci runtime needs isolation (root)")
        runc = runc_available(config.runc)
        if runc is None:
            raise RuntimeFailure("the oci runtime needs runc (Debian package `runc`)")
        super().__init__(config.process)
        if not self._caps.namespaces:
            self._state.close()
            raise RuntimeFailure("the oci runtime needs root on Linux")
        self._oci = config
        self._runc = runc
        self._runc_root = str(config.process.state_dir / "runc")
        os.makedirs(self._runc_root, mode=0o700, exist_ok=True)
        self.store = ImageStore(config.image_dir)
        registry = RegistryClient(self.store, load_registry_config(config.registry_config))
        self.images = OciImages(self.store, registry, self._images_in_use)

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(self._caps, mounts=True)

    def _images_in_use(self) -> set[str]:
        return {r.get("image", {}).get("id", "") for r in self._containers_records()}

    @_bounded()
    async def run_sandbox(self, pod: dict[str, Any], *, ip_hint: str | None = None
                          ) -> SandboxInfo:
        """The process runtime's sandbox, remembering what of the pod spec containers need
        (pod securityContext, shareProcessNamespace)."""
        info = await ProcessRuntime.run_sandbox.__wrapped__(self, pod, ip_hint=ip_hint)
        spec = pod.get("spec") or {}
        keep = {k: spec[k] for k in ("securityContext", "shareProcessNamespace") if k in spec}
        rec = self._state.load_sandbox(info.id)
        if rec is not None and rec.get("pod_spec") != keep:
            rec["pod_spec"] = keep
            self._state.save_sandbox(rec)
        return info

    async def _stop_sandbox(self, sandbox_id: str) -> None:
        rec = self._state.load_sandbox(sandbox_id)
        await super()._stop_sandbox(sandbox_id)
        relpath = self._cgroups_path((rec or {}).get("cgroup") or {})
        if relpath:   # runc made the pod's cgroup in every hierarchy (devices, blkio, ...)
            await asyncio.to_thread(remove_cgroup_everywhere, relpath)

    # ---- statuses carry the image ---------------------------------------------------------

    def _status(self, rec: dict[str, Any]) -> ContainerStatus:
        status = container_status_of(rec, self._state.load_status(rec["id"]))
        image = rec.get("image") or {}
        return dataclasses.replace(status, image=image.get("ref", ""),
                                   image_id=image.get("digest") or image.get("id", ""))

    def _containers_of(self, sandbox_id: str | None) -> list[ContainerStatus]:
        out = []
        for cid in self._state.container_ids(sandbox_id):
            rec = self._state.load_container(cid)
            if rec:
                out.append(self._status(rec))
        return out

    @_bounded()
    async def container_status(self, container_id: str) -> ContainerStatus | None:
        rec = self._state.load_container(container_id)
        return self._status(rec) if rec else None

    # ---- containers ---------------------------------------------------------------------

    def _cgroups_path(self, group: dict[str, str]) -> str | None:
        """The container cgroup relative to its hierarchy's root (runc's cgroupsPath)."""
        mounts = cgroups.discover()
        for controller in ("memory", "pids", "cpu"):
            if controller in group and controller in mounts:
                return "/" + os.path.relpath(group[controller], mounts[controller])
        return None

    @_bounded()
    async def create_container(self, sandbox_id: str, container: dict[str, Any],
                               config: ContainerConfig) -> str:
        name = config.name or str(container.get("name", ""))
        async with self._lock(sandbox_id):
            sandbox, existing = self._sandbox_for_create(sandbox_id, name, config.attempt)
            if existing is not None:
                return existing
            ref = str(container.get("image") or "")
            image = await asyncio.to_thread(self.store.resolve, ref)
            if image is None:
                raise RuntimeFailure(f'failed to create containerd container: image "{ref}" '
                                     "not found on the node")
            cid = uuid.uuid4().hex
            log_path = str(self._config.log_dir / config.log_path)
            rec = {"id": cid, "sandbox_id": sandbox_id, "name": name, "attempt": config.attempt,
                   "created_at": time.time(), "log_path": log_path, "mountpoints": [],
                   "targets": [], "cgroup": {}, "cwd": config.working_dir or "/",
                   "labels": [list(kv) for kv in config.labels],
                   "image": {"id": image.id, "ref": _display_ref(ref, image),
                             "digest": _repo_digest(ref, image)}, "rootfs": None}
            self._state.save_container(rec)
            try:
                await self._prepare(rec, sandbox, container, config, image)
            except BaseException as exc:
                await asyncio.shield(self._remove_container(cid, rec))
                if isinstance(exc, (RuntimeFailure, asyncio.CancelledError)):
                    raise
                if isinstance(exc, NonRootError):
                    raise ContainerConfigFailure(str(exc)) from None
                if isinstance(exc, SpecError):
                    raise RuntimeFailure(str(exc)) from None
                raise RuntimeFailure(f"creating container {name!r} failed: {exc}") from exc
            await asyncio.to_thread(self.store.touch, image.id)
            log.info("container created", extra={"container": cid, "sandbox": sandbox_id,
                                                 "container_name": name, "image": image.id})
            return cid

    async def _prepare(self, rec: dict[str, Any], sandbox: dict[str, Any],
                       container: dict[str, Any], config: ContainerConfig,
                       image: ImageRecord) -> None:
        cid = rec["id"]
        directory = self._state.container_dir(cid)
        if sandbox.get("cgroup"):
            group = {c: os.path.join(d, cid) for c, d in sandbox["cgroup"].items()}
            rec["cgroup"] = group
            self._state.save_container(rec)
            cgroups.create(group)
            cgroups.apply_limits(group, config.resources)
        bundle = directory / "bundle"
        rec["rootfs"] = str(bundle)
        self._state.save_container(rec)
        layers = [self.store.layer_path(d) for d in image.layers]
        kind = await asyncio.to_thread(rootfs.mount_rootfs, bundle, layers,
                                       allow_overlay=self._oci.overlay)
        rec["rootfs_kind"] = kind
        self._state.save_container(rec)
        pod = {"metadata": {"name": sandbox["name"], "namespace": sandbox["namespace"],
                            "uid": sandbox["uid"]}, "spec": sandbox.get("pod_spec") or {}}
        pause = sandbox.get("pause") or {}
        spec = build_spec(pod=pod, container=container, config=config, image=image.config,
                          rootfs=bundle / "rootfs", hostname=sandbox["hostname"],
                          netns=sandbox.get("netns"), pause_pid=pause.get("pid"),
                          namespaces=sandbox.get("namespaces") or [], shm=sandbox.get("shm"),
                          cgroups_path=self._cgroups_path(rec["cgroup"]) if rec["cgroup"]
                          else None, etc_files={})
        rec["cwd"] = spec["process"]["cwd"]
        (bundle / "config.json").write_text(json.dumps(spec))
        self._state.save_container(rec)
        self._state.save_container_config(cid, {
            "id": cid, "runc": self._runc, "runc_root": self._runc_root,
            "runc_log": str(directory / "runc.log"), "bundle": str(bundle),
            "cgroup": rec["cgroup"], "log_path": rec["log_path"],
            "log_max_bytes": self._config.log_max_bytes,
            "log_max_files": self._config.log_max_files, "tty": config.tty,
            "stdin": config.stdin, "stdin_once": config.stdin_once,
            "start_timeout": self._config.helper_timeout})

    @_bounded()
    async def start_container(self, container_id: str) -> None:
        async with self._lock(container_id):
            rec = self._state.load_container(container_id)
            if rec is None:
                raise NotFound(f"container {container_id} not found")
            if self._state.load_status(container_id) is not None:
                return
            sandbox = self._state.load_sandbox(rec["sandbox_id"])
            if sandbox is None or sandbox_info_of(sandbox).state != "ready":
                raise InvalidState(f"sandbox {rec['sandbox_id']} is not ready")
            directory = str(self._state.container_dir(container_id))
            try:
                await self._forks.spawn("navio.runtime.oci.shim", [directory],
                                        timeout=self._config.helper_timeout)
            except RuntimeFailure as exc:
                if self._state.load_status(container_id) is None:
                    finalize_lost(self._state, container_id, reason="StartError",
                                  message=str(exc), exit_code=128)
                status = self._state.load_status(container_id) or {}
                raise RuntimeFailure(status.get("message") or str(exc)) from None
            log.info("container started", extra={"container": container_id})

    async def _remove_container(self, container_id: str, rec: dict[str, Any] | None) -> None:
        await self._stop_container(container_id, 0.0)
        if rec is not None:
            proc = await asyncio.create_subprocess_exec(
                self._runc, "--root", self._runc_root, "delete", "--force", container_id,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()
            if rec.get("rootfs"):
                await asyncio.to_thread(rootfs.unmount_rootfs, Path(rec["rootfs"]))
        await super()._remove_container(container_id, rec)

    async def _exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                    tty: bool) -> ProcessExecSession:
        if not cmd:
            raise RuntimeFailure("exec needs a command")
        self._running(container_id)
        argv = [self._runc, "--root", self._runc_root, "exec", container_id, *cmd]
        kwargs: dict[str, Any] = dict(start_new_session=True)
        if tty:
            master, slave = pty.openpty()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, **kwargs)
            except BaseException:
                os.close(master)
                os.close(slave)
                raise
            return ProcessExecSession(proc, stdin=_PtyWriter(master) if stdin else None,
                                      stdout=_pty_reader(master), stderr=None, master=master,
                                      slave=slave)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **kwargs)
        assert proc.stdout is not None and proc.stderr is not None
        return ProcessExecSession(proc, stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr)


def _v1_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    out = []
    with open(mountinfo) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] in (["cgroup"], ["cgroup2"]):   # (runc uses both: hybrid)
                out.append(pre.split()[4])
    return out


def remove_cgroup_everywhere(relpath: str) -> None:
    """rmdir the (empty) cgroup `relpath` and its empty children in every hierarchy."""
    for mount in _v1_mounts():
        top = Path(mount) / relpath.lstrip("/")
        if not top.is_dir():
            continue
        for sub in sorted((p for p in top.glob("**/") if p.is_dir()),
                          key=lambda p: -len(p.parts)):
            try:
                sub.rmdir()
            except OSError:
                pass


def _display_ref(ref: str, image: ImageRecord) -> str:
    from navio.images.reference import InvalidReference, parse
    try:
        return str(parse(ref))
    except InvalidReference:
        return image.repo_tags[0] if image.repo_tags else image.id


def _repo_digest(ref: str, image: ImageRecord) -> str:
    """kubelet's imageID: the repo digest of the image's repository, else any, else the ID."""
    from navio.images.reference import InvalidReference, parse
    try:
        name = parse(ref).name
    except InvalidReference:
        name = ""
    for digest in image.repo_digests:
        if digest.startswith(name + "@"):
            return digest
    return image.repo_digests[0] if image.repo_digests else image.id


if TYPE_CHECKING:
    from navio.runtime.protocol import Runtime
    _runtime: type[Runtime] = OciRuntime
