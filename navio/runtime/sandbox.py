"""Building and tearing down what a pod sandbox is made of (process runtime).

Why: a sandbox is several kernel resources — a pod IP and network namespace (netns.py), a
per-pod /dev/shm, a pod cgroup, and the pause process holding the PID/UTS/IPC namespaces
(pause.py) — made in an order that a crash can interrupt anywhere. Each one is written into
the sandbox record *before* it is made, so `teardown` (and recovery after a restart) can
release exactly what exists.

Guarantees: `teardown` is idempotent and releases everything the record names: it stops the
pause (SIGTERM, then SIGKILL after 2 s; its PID namespace dies with it), deletes the pod
network, releases the IP, unmounts /dev/shm and removes the pod cgroup. Host namespaces a
pod asks for (hostNetwork, hostIPC, hostPID) are simply not unshared.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Any, Callable

from navio.runtime import cgroups, mounts
from navio.runtime import namespaces as ns
from navio.runtime.ipam import IPAllocator
from navio.runtime.forkserver import ForkServer
from navio.runtime.process_config import ProcessRuntimeConfig
from navio.runtime.process_records import wait_gone
from navio.runtime.protocol import Capabilities
from navio.runtime.state import StateDir, read_json

if TYPE_CHECKING:
    from navio.runtime.netns import PodNetwork

__all__ = ["SandboxResources"]


class SandboxResources:
    def __init__(self, config: ProcessRuntimeConfig, caps: Capabilities, state: StateDir,
                 ipam: IPAllocator, forks: ForkServer) -> None:
        self._config = config
        self._forks = forks
        self._caps = caps
        self._state = state
        self._ipam = ipam
        self._net: PodNetwork | None = None
        if caps.pod_network:   # (pyroute2 is only needed, and imported, for pod networks)
            from navio.runtime import netns
            self._net = netns.PodNetwork(bridge=config.bridge, gateway=ipam.gateway,
                                   prefixlen=ipam.prefixlen, node_netns=config.node_netns,
                                   mtu=config.mtu)

    async def create(self, rec: dict[str, Any], ip_hint: str | None) -> None:
        """Make the sandbox's resources, recording each in `rec` (saved) before making it."""
        if not self._caps.namespaces:
            return
        sid, cfg = rec["id"], self._config
        save: Callable[[], None] = lambda: self._state.save_sandbox(rec)  # noqa: E731
        host = rec["host"]
        directory = self._state.sandbox_dir(sid)
        args = ["--log", str(directory / "pause.log"), "--pidfile", str(directory / "pause.json"),
                "--timeout", str(cfg.helper_timeout)]
        joined: list[str] = []
        if not host["network"]:
            assert self._net is not None
            rec["ip"] = self._ipam.allocate(sid, ip_hint)
            rec["own_netns"] = True
            save()
            rec["netns"] = await self._net.setup(sid, rec["ip"])
            joined += ["net", "uts"]
            args += ["--netns", rec["netns"], "--uts", "--hostname", rec["hostname"]]
        elif cfg.node_netns:   # "the host's network" is the node namespace
            rec["netns"] = os.path.join(ns.NETNS_DIR, cfg.node_netns)
            joined.append("net")
            args += ["--netns", rec["netns"]]
        if not host["ipc"]:
            joined.append("ipc")
            args.append("--ipc")
            rec["shm"] = str(self._state.sandbox_dir(sid) / "shm")
            save()
            mounts.mount_tmpfs(rec["shm"], cfg.shm_size, mode=0o1777)
        if not host["pid"]:
            joined.append("pid")
            args.append("--pid")
        if self._caps.cgroups:
            rec["cgroup"] = cgroups.resolve(cfg.cgroup_parent, f"pod{sid}")
            save()
            cgroups.create(rec["cgroup"])
            args += ["--cgroup-procs", *(os.path.join(d, "cgroup.procs")
                                         for d in rec["cgroup"].values())]
        report = await self._forks.spawn("navio.runtime.pause", args,
                                         timeout=cfg.helper_timeout)
        rec["pause"] = {"pid": report["pid"], "starttime": report["starttime"]}
        rec["namespaces"] = joined

    async def close(self) -> None:
        """Stop the pod network's worker; every sandbox keeps what it has."""
        if self._net is not None:
            await asyncio.to_thread(self._net.close)

    async def teardown(self, rec: dict[str, Any]) -> None:
        """Release everything the record says exists; safe to repeat."""
        # (pause.json: written by the launcher before the agent hears of the pause, so even
        # a pause whose record was never saved is found.)
        pause = rec.get("pause") or read_json(
            self._state.sandbox_dir(rec["id"]) / "pause.json") or {}
        pid, start = pause.get("pid"), pause.get("starttime")
        if pid and ns.process_alive(pid, start):
            os.kill(pid, signal.SIGTERM)
            if not await wait_gone(pid, start, 2.0) and ns.process_alive(pid, start):
                os.kill(pid, signal.SIGKILL)
                await wait_gone(pid, start, 5.0)
        if rec.get("own_netns") and self._net is not None:
            await self._net.teardown(rec["id"])
        self._ipam.release(rec["id"])
        if rec.get("shm"):
            mounts.unmount(rec["shm"])
        if rec.get("cgroup"):
            await asyncio.to_thread(cgroups.remove, rec["cgroup"])
