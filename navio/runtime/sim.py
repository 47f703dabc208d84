"""The `sim` runtime: runs nothing, reports containers Running (hollow nodes, scale tests).

Why: `navio sim --nodes N` and kubelet tests need a runtime with the real one's contract but
none of its cost, as kwok keeps simulated nodes behind the same API as real ones.

Behaviour: sandboxes get IPs from the node's pod CIDR (in memory); a started container is
"running" (pid None) until it is stopped — then "exited" with exit code 0, reason Completed —
or until a test or scenario calls `terminate(id, exit_code)` to simulate it ending on its own.
An init container (labelled INIT_LABEL by the kubelet) succeeds as soon as it starts: it
goes straight to "exited" with exit code 0, so pods with init containers become Running
(`finish_init_containers=False` keeps them running until `terminate`, for tests that drive
them).
Exec commands succeed with no output; attach input is discarded; port-forward is
Unsupported. All state is in memory: a
new SimRuntime starts empty. Every call is immediate and idempotent as protocol.py requires.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from navio.runtime.protocol import (INIT_LABEL, REASON_COMPLETED, REASON_ERROR, ByteSink,
                                    Capabilities,
                                    ContainerConfig, ContainerStats, ContainerStatus,
                                    InvalidState, NotFound, RuntimeFailure, SandboxInfo,
                                    Unsupported)

__all__ = ["SimAttachSession", "SimExecSession", "SimRuntime"]


class SimExecSession:
    """An exec that ends at once with exit code 0 and no output."""

    def __init__(self, *, tty: bool) -> None:
        self.stdin: ByteSink | None = None
        self.stdout = asyncio.StreamReader()
        self.stdout.feed_eof()
        self.stderr: asyncio.StreamReader | None = None
        if not tty:
            self.stderr = asyncio.StreamReader()
            self.stderr.feed_eof()

    async def resize(self, cols: int, rows: int) -> None:
        return None

    async def wait(self) -> int:
        return 0

    async def kill(self) -> None:
        return None


class _Discard:
    """A stdin that takes everything and keeps nothing (protocol.ByteSink)."""

    def __init__(self) -> None:
        self._closed = False

    def write(self, data: bytes) -> None:
        return None

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._closed = True

    def is_closing(self) -> bool:
        return self._closed


class SimAttachSession:
    """An attachment whose input goes nowhere (nothing runs to read it)."""

    def __init__(self, *, stdin: bool) -> None:
        self.stdin: ByteSink | None = _Discard() if stdin else None

    async def resize(self, cols: int, rows: int) -> None:
        return None

    async def close(self) -> None:
        return None


class SimRuntime:
    name = "sim"

    def __init__(self, *, pod_cidr: str = "10.42.0.0/24",
                 finish_init_containers: bool = True) -> None:
        self._finish_inits = finish_init_containers
        network = ipaddress.IPv4Network(pod_cidr)
        self._free = [str(ip) for ip in network.hosts()][1:]   # the first is the gateway
        self._sandboxes: dict[str, SandboxInfo] = {}
        self._containers: dict[str, ContainerStatus] = {}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(pod_network=False, namespaces=False, cgroups=False, mounts=False,
                            notes=("simulated node: containers are not run",))

    async def close(self) -> None:
        return None

    # ---- sandboxes ---------------------------------------------------------------------

    async def run_sandbox(self, pod: dict[str, Any], *, ip_hint: str | None = None) -> SandboxInfo:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", "default"))
        if not name:
            raise RuntimeFailure("pod has no metadata.name")
        uid = str(meta.get("uid") or f"{namespace}/{name}")
        for sandbox in self._sandboxes.values():
            if sandbox.uid == uid and sandbox.state == "ready":
                return sandbox
        if not self._free:
            raise RuntimeFailure("no free pod IP")
        ip = ip_hint if ip_hint in self._free else self._free[0]
        self._free.remove(ip)
        sandbox = SandboxInfo(id=uuid.uuid4().hex, name=name, namespace=namespace, uid=uid,
                              state="ready", ip=ip, created_at=time.time(),
                              hostname=str(spec.get("hostname") or name)[:63],
                              host_network=bool(spec.get("hostNetwork")))
        self._sandboxes[sandbox.id] = sandbox
        return sandbox

    async def stop_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.state != "ready":
            return
        for status in list(self._containers.values()):
            if status.sandbox_id == sandbox_id:
                await self.stop_container(status.id, 0.0)
        self._free.append(sandbox.ip)
        self._sandboxes[sandbox_id] = replace(sandbox, state="notready")

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self.stop_sandbox(sandbox_id)
        for cid in [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            del self._containers[cid]
        self._sandboxes.pop(sandbox_id, None)

    async def sandbox_status(self, sandbox_id: str) -> SandboxInfo | None:
        return self._sandboxes.get(sandbox_id)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        return list(self._sandboxes.values())

    # ---- containers --------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, container: dict[str, Any],
                               config: ContainerConfig) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        if sandbox.state != "ready":
            raise InvalidState(f"sandbox {sandbox_id} is not ready")
        name = config.name or str(container.get("name", ""))
        for status in self._containers.values():
            if status.sandbox_id == sandbox_id and status.name == name \
                    and status.attempt == config.attempt:
                return status.id
        cid = uuid.uuid4().hex
        self._containers[cid] = ContainerStatus(
            id=cid, sandbox_id=sandbox_id, name=name, attempt=config.attempt, state="created",
            created_at=time.time(), log_path=config.log_path, labels=config.labels)
        return cid

    def _get(self, container_id: str) -> ContainerStatus:
        status = self._containers.get(container_id)
        if status is None:
            raise NotFound(f"container {container_id} not found")
        return status

    async def start_container(self, container_id: str) -> None:
        status = self._get(container_id)
        if status.state == "created":
            self._containers[container_id] = replace(status, state="running",
                                                     started_at=time.time())
            if self._finish_inits and dict(status.labels).get(INIT_LABEL) == "true":
                self.terminate(container_id, 0)

    def terminate(self, container_id: str, exit_code: int, *, reason: str = "") -> None:
        """Simulate a running container ending by itself with `exit_code`."""
        status = self._get(container_id)
        if status.state == "running":
            self._containers[container_id] = replace(
                status, state="exited", finished_at=time.time(), exit_code=exit_code,
                reason=reason or (REASON_COMPLETED if exit_code == 0 else REASON_ERROR))

    async def stop_container(self, container_id: str, grace: float) -> None:
        status = self._containers.get(container_id)
        if status is not None and status.state == "running":
            self.terminate(container_id, 0)

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        return self._containers.get(container_id)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c for c in self._containers.values()
                if sandbox_id is None or c.sandbox_id == sandbox_id]

    async def exec(self, container_id: str, cmd: list[str], *, stdin: bool,
                   tty: bool) -> SimExecSession:
        if self._get(container_id).state != "running":
            raise InvalidState(f"container {container_id} is not running")
        return SimExecSession(tty=tty)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> SimAttachSession:
        if self._get(container_id).state != "running":
            raise InvalidState(f"container {container_id} is not running")
        return SimAttachSession(stdin=stdin)

    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[int, bytes, bytes]:
        if self._get(container_id).state != "running":
            raise InvalidState(f"container {container_id} is not running")
        return 0, b"", b""

    async def log_path(self, container_id: str) -> str | None:
        status = self._containers.get(container_id)
        return status.log_path if status else None

    async def port_forward(self, sandbox_id: str, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise Unsupported("the sim runtime runs no processes to forward to")

    async def stats(self, container_id: str) -> ContainerStats | None:
        status = self._containers.get(container_id)
        if status is None or status.state != "running":
            return None
        return ContainerStats(container_id, time.time(), 0, 0, 0, 0)


if TYPE_CHECKING:
    from navio.runtime.protocol import Runtime
    _runtime: type[Runtime] = SimRuntime
