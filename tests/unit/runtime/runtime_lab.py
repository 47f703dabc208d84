"""Test scaffolding for the runtime tests: a node netns, runtimes over it, forced cleanup.

Follows PLATFORM.md's safe network pattern: the runtime's bridge lives in a node netns the
test created, which has no route out; pod netns veths live there, never in the host ns.
Everything a test's runtimes made is removed by `RuntimeLab.cleanup()`, even after a failure
and even if the runtime object is broken: it reads the state dirs directly, kills recorded
processes by PID (after checking their start time), deletes the recorded network namespaces,
unmounts, removes the test's cgroup parent and finally the node netns and /etc/netns entries.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from navio.runtime import namespaces as ns
from navio.runtime.process import ProcessRuntime, ProcessRuntimeConfig
from navio.runtime.protocol import ContainerConfig, Mount, Resources
from navio.runtime.sim import SimRuntime

POD_CIDR = "10.250.0.0/24"
ROOT = Path(__file__).resolve().parents[3]


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float, what: str,
                     interval: float = 0.05) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc


def pod(name: str, uid: str | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid or uuid.uuid4().hex},
            "spec": {"containers": [{"name": "main"}], **spec}}


def config(name: str, *argv: str, attempt: int = 0, mounts: tuple[Mount, ...] = (),
           resources: Resources = Resources(), env: dict[str, str] | None = None,
           **kw: Any) -> ContainerConfig:
    return ContainerConfig(name=name, log_path=f"{name}-{uuid.uuid4().hex[:6]}/{attempt}.log",
                           command=tuple(argv), attempt=attempt, mounts=mounts,
                           resources=resources, env=tuple((env or {}).items()), **kw)


def alive(pid: int | None) -> bool:
    return ns.process_alive(pid, None)


@dataclass
class RuntimeUnderTest:
    """A runtime plus how to make its containers end, for the contract tests."""

    kind: str
    rt: Any

    @property
    def runs_processes(self) -> bool:
        return self.kind != "sim"

    async def exit_with(self, container_id: str, code: int) -> None:
        """The container (started with `sh -c 'exit <code>'`) ends by itself."""
        if isinstance(self.rt, SimRuntime):
            self.rt.terminate(container_id, code)

    async def kill_from_outside(self, container_id: str) -> None:
        """Someone else SIGKILLs the container's process."""
        if isinstance(self.rt, SimRuntime):
            self.rt.terminate(container_id, 137)
            return
        status = await self.rt.container_status(container_id)
        assert status is not None and status.pid
        os.kill(status.pid, signal.SIGKILL)


class RuntimeLab:
    """One test's node netns, cgroup parent and runtimes."""

    def __init__(self, tmp: Path, *, isolated: bool = True) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = tmp
        self.isolated = isolated
        self.node = f"nvt-{self.tag}" if isolated else None
        self.cgroup_parent = f"navio-test-{self.tag}"
        self.state_dirs: set[Path] = set()
        self.runtimes: list[ProcessRuntime] = []
        if self.node:
            sh("ip", "netns", "add", self.node)
            sh("ip", "-n", self.node, "link", "set", "lo", "up")

    def config(self, name: str = "rt", **kw: Any) -> ProcessRuntimeConfig:
        state = self.tmp / f"{name}-state"
        self.state_dirs.add(state)
        values: dict[str, Any] = dict(state_dir=state, log_dir=self.tmp / f"{name}-logs",
                                      pod_cidr=POD_CIDR, node_netns=self.node,
                                      cgroup_parent=self.cgroup_parent, call_timeout=20.0)
        if not self.isolated:
            values["isolation"] = False
        values.update(kw)
        return ProcessRuntimeConfig(**values)

    def runtime(self, name: str = "rt", **kw: Any) -> ProcessRuntime:
        rt = ProcessRuntime(self.config(name, **kw))
        self.runtimes.append(rt)
        return rt

    def oci_runtime(self, name: str = "rt") -> "ImageDefault":
        """An oci runtime holding the test busybox image (oci_lab.py); containers created
        without an image run it."""
        from navio.images.archive import import_archive
        from navio.runtime.oci.runtime import OciRuntime, OciRuntimeConfig
        rt = OciRuntime(OciRuntimeConfig(process=self.config(name),
                                         image_dir=self.tmp / f"{name}-images"))
        self.runtimes.append(rt)
        import_archive(rt.store, _test_image_archive(self.tmp))
        return ImageDefault(rt, TEST_IMAGE)

    def node_socket_connect(self, ip: str, port: int, timeout: float = 2.0) -> bytes:
        """Connect from the node netns (blocking; use via asyncio.to_thread) and read all."""
        assert self.node
        sock = ns.socket_in_netns(f"/run/netns/{self.node}")
        with sock:
            sock.settimeout(timeout)
            sock.connect((ip, port))
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    def assert_no_route_out(self) -> None:
        if self.node:
            routes = sh("ip", "-n", self.node, "route").stdout
            assert "default" not in routes, routes

    async def cleanup(self) -> None:
        records = self._records()
        for rt in self.runtimes:       # the polite way first, bounded
            try:
                async with asyncio.timeout(30):
                    for sandbox in await rt.list_sandboxes():
                        await rt.remove_sandbox(sandbox.id)
            except Exception:
                pass
            await rt.close()
        self._force(records)

    def _records(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {"procs": [], "netns": [], "shm": []}
        for state in self.state_dirs:
            for path in glob.glob(str(state / "containers" / "*" / "status.json")):
                status = _load(path)
                found["procs"] += [
                    (status.get("pid"), status.get("starttime")),
                    (status.get("supervisor_pid"), status.get("supervisor_starttime"))]
            for path in glob.glob(str(state / "sandboxes" / "*" / "sandbox.json")):
                rec = _load(path)
                pause = rec.get("pause") or _load(path.replace("sandbox.json", "pause.json"))
                found["procs"].append((pause.get("pid"), pause.get("starttime")))
                found["netns"].append(f"navio-{rec.get('id', '')[:12]}")
                if rec.get("shm"):
                    found["shm"].append(rec["shm"])
        return found

    def _force(self, records: dict[str, list[Any]]) -> None:
        for pid, start in records["procs"]:
            if pid and start and ns.process_alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for shm in records["shm"]:
            if os.path.ismount(shm):
                sh("umount", "-l", shm, check=False)
        for name in records["netns"]:
            if os.path.exists(f"/run/netns/{name}"):
                sh("ip", "netns", "del", name, check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
        for directory in cgroup_dirs(self.cgroup_parent):
            for sub in sorted(Path(directory).glob("**/"), key=lambda p: -len(p.parts)):
                procs = sub / "cgroup.procs"
                for pid in (procs.read_text().split() if procs.exists() else []):
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    sub.rmdir()
                except OSError:
                    pass
        # runc (oci runtime) makes the same path in every other hierarchy (devices, ...)
        from navio.runtime import cgroups
        from navio.runtime.oci.runtime import remove_cgroup_everywhere
        memory = cgroups.resolve(self.cgroup_parent).get("memory")
        mounts = cgroups.discover()
        if memory and "memory" in mounts:
            remove_cgroup_everywhere("/" + os.path.relpath(memory, mounts["memory"]))
        if self.node:
            sh("ip", "netns", "del", self.node, check=False)
            shutil.rmtree(f"/etc/netns/{self.node}", ignore_errors=True)


TEST_IMAGE = "test.local/busybox:contract"
_ARCHIVE: list[Path] = []


def _test_image_archive(tmp: Path) -> Path:
    if not _ARCHIVE or not _ARCHIVE[0].exists():
        import sys
        sys.path.insert(0, str(ROOT / "tests" / "e2e"))
        from oci_lab import build_image, docker_save
        path = tmp / "busybox-image.tar"
        docker_save(build_image(), path, [TEST_IMAGE])
        _ARCHIVE[:] = [path]
    return _ARCHIVE[0]


class ImageDefault:
    """The oci runtime under the runtime contract: a container spec without an image runs
    the test image (the process runtime's tests name none)."""

    def __init__(self, rt: Any, image: str) -> None:
        self.rt = rt
        self.image = image

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rt, name)

    async def create_container(self, sandbox_id: str, container: dict[str, Any],
                               config: ContainerConfig) -> str:
        return await self.rt.create_container(sandbox_id, {"image": self.image, **container},
                                              config)


def cgroup_dirs(parent: str) -> list[str]:
    """Where a relative cgroup parent lands, in every hierarchy."""
    from navio.runtime import cgroups
    return [d for d in cgroups.resolve(parent).values() if os.path.isdir(d)]


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
